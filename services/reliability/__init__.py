"""Measured reliability (issue 16): every connector's status history, freshness, uptime, occupancy.

Where things are:

* the history is written by the feed itself: ``feed_store_status_push`` (pushes, migration 1500),
  ``ingest.store.store_status_batches`` (pulls) and ``zh_status_history_late`` (a report older
  than the one held, into its place); ``connector_status.id`` is a connector's key in it;
* :mod:`.freshness` (``mark_silent``): silent connectors become unknown;
* :mod:`.partitions`: the monthly partitions, their carried month starts and the retention;
* :mod:`.uptime`: the definition, ``connector_uptime`` (connectors over any window) and
  ``uptime_table`` (per connector, station, operator, district or city; per day, month or window),
  both reading the aggregates where they hold the window and the history for the rest;
* :mod:`.rollup`: the aggregates (``connector_daily``, ``connector_monthly``, ``station_daily``);
* :mod:`.history`: what the open API gives per station (``status_history``, ``station_reliability``)
  and ``station_connectors`` (a visible station's connectors with their keys);
* :mod:`.profile`: the week profile of occupancy (``occupancy_profile``);
* :mod:`.summary`: each station's 30-day figures for the public (``refresh_station_reliability``:
  ``station_reliability`` and ``station_search.up4``, read by the search's ``min_uptime`` and
  ``sort=uptime`` and shown as ``reliability`` on every station of the open API);
* :mod:`.hours`: ``BusineHours`` read as opening hours; :mod:`.window`: ``from``/``to`` parsing;
* :mod:`.jobs`: the background job that runs silence, partitions, hours, aggregates, the 30-day
  figures, retention.
"""

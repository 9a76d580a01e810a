"""T/CEC 102 upward: zhcharge as the data provider of higher platforms (a provincial supervision
platform), with the codec of :mod:`ingest.protocol` used the other way round.

* :mod:`ingest.upstream.platforms`: the registered platforms (``zhcharge upstream add``), the
  secrets they call us with and how we push to them;
* :mod:`ingest.upstream.provider`: the queries they call on our ``/evcs/<version>/`` endpoints
  (``query_token``, ``query_stations_info``, ``query_station_status``, ``query_station_stats``,
  ``query_equip_business_policy``), routed here by ``portal_site/routes/evcs.py``;
* :mod:`ingest.upstream.stations` and :mod:`ingest.upstream.business`: what those queries read;
* :mod:`ingest.upstream.push`: ``notification_stationStatus`` pushed to them as statuses change;
* :mod:`ingest.upstream.cli`: ``zhcharge upstream add | list | remove``.
"""

"""Open dumps of the public dataset, so researchers do not crawl the search API.

* :mod:`services.exports.formats` — the whole public dataset (what ``/api/v1/stations`` shows:
  active, interconnected stations, the same items) as GeoJSON or CSV, streamed from a server-side
  cursor in constant memory, and its state (data version, count, last change) for ``ETag`` and
  ``Last-Modified``;
* :mod:`services.exports.snapshots` — a daily snapshot of both, gzipped, under the data directory,
  written by one process (advisory lock) and kept for 30 days.
"""

from services.exports.formats import CsvWriter, DatasetState, GeoJsonWriter, chunks, dataset_state, iter_items

__all__ = ["CsvWriter", "DatasetState", "GeoJsonWriter", "chunks", "dataset_state", "iter_items"]

"""The whole public dataset as GeoJSON and CSV, item for item what the open API shows.

Items come from :func:`services.search.catalog.iter_matches` with no filter: every visible station
(active, interconnected) by id, read through a server-side cursor in batches, so memory stays flat
whatever the size. A GeoJSON feature is built as ``/api/v1/stations.geojson`` builds it and a CSV
row as ``/api/v1/stations.csv`` writes it (the columns are passed in by the caller, the open API's
own list), so a dump and the search API cannot disagree.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import text

from services.search.catalog import iter_matches
from services.search.query import SearchQuery, parse_search
from services.settings import SearchSettings
from services.stations.filters import VISIBLE_SQL

__all__ = ["CsvWriter", "DatasetState", "GeoJsonWriter", "all_stations", "chunks", "csv_row", "dataset_state",
           "feature", "iter_items"]

_ENCODER = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class DatasetState:
    """What identifies a version of the public dataset: the stations' data version (bumped by syncs,
    status pushes and the price job), the number of visible stations and the latest change (of a
    station, an operator or the data version), to the second."""

    version: int
    count: int
    last_modified: datetime

    def etag(self, kind: str) -> str:
        """A weak ETag (the same data gzipped or not) per format.

        >>> DatasetState(7, 1204, datetime(2026, 12, 6, 1, 2, 3, tzinfo=UTC)).etag("csv")
        'W/"7-1204-1796518923-csv"'
        """
        return f'W/"{self.version}-{self.count}-{int(self.last_modified.timestamp())}-{kind}"'

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.version}-{self.count}-{self.last_modified.isoformat()}".encode()).hexdigest()[:16]


def dataset_state(conn: Any) -> DatasetState:
    row = conn.execute(text(f"""
        SELECT (SELECT count(*) FROM stations s WHERE {VISIBLE_SQL}) AS n,
               greatest((SELECT u.updated_at FROM station_updates u JOIN stations s ON s.id = u.station_pk
                         WHERE {VISIBLE_SQL} ORDER BY u.updated_at DESC LIMIT 1),
                        (SELECT max(updated_at) FROM operators),
                        (SELECT updated_at FROM data_versions WHERE layer = 'stations')) AS changed,
               (SELECT version FROM data_versions WHERE layer = 'stations') AS version""")).one()
    changed = (row.changed or datetime(1970, 1, 1, tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)
    return DatasetState(int(row.version or 1), int(row.n), changed)


def all_stations() -> SearchQuery:
    """The search of everything public: no filter, by id."""
    return parse_search({}, SearchSettings(), paging=False)


def iter_items(conn: Any, *, batch: int = 2000) -> Iterator[list[dict[str, Any]]]:
    """Every visible station as an open-API item, in batches by id (server-side cursor)."""
    return iter_matches(conn, all_stations(), batch=batch)


def feature(item: dict[str, Any]) -> dict[str, Any]:
    """An item as the GeoJSON feature ``/api/v1/stations.geojson`` makes of it.

    >>> feature({"id": 1, "lng": 113.5, "lat": 22.2, "name": "站"})["geometry"]
    {'type': 'Point', 'coordinates': [113.5, 22.2]}
    """
    props = {k: v for k, v in item.items() if k not in ("lng", "lat")}
    return {"type": "Feature", "id": item["id"], "geometry": {"type": "Point", "coordinates": [item["lng"], item["lat"]]},
            "properties": props}


def csv_row(item: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    """An item as the CSV row ``/api/v1/stations.csv`` writes (fees flattened, lists joined by ``|``)."""
    flat = {**item, **item["fees"], "facility_types": "|".join(item["facility_types"]),
            "payments": "|".join(item["payments"])}
    return [flat[c] for c in columns]


class GeoJsonWriter:
    """A FeatureCollection (RFC 7946) in pieces: the head (with the foreign members ``generated_at``
    and ``data_version``), the features of each batch, the tail. ``count`` counts the features."""

    kind = "geojson"

    def __init__(self, *, generated_at: datetime, state: DatasetState) -> None:
        self.generated_at, self.state, self.count = generated_at, state, 0

    def head(self) -> bytes:
        meta = {"type": "FeatureCollection", "generated_at": self.generated_at.astimezone(UTC).isoformat(),
                "data_version": self.state.version}
        return _ENCODER.encode(meta)[:-1] + b',"features":['

    def batch(self, items: Sequence[dict[str, Any]]) -> bytes:
        parts = [_ENCODER.encode(feature(it)) for it in items]
        out = (b"," if self.count and parts else b"") + b",".join(parts)
        self.count += len(parts)
        return out

    def tail(self) -> bytes:
        return b"]}"


class CsvWriter:
    """UTF-8 CSV in pieces: a BOM (spreadsheet programs then read Chinese right) and the header, the
    rows of each batch, nothing at the end. ``count`` counts the rows."""

    kind = "csv"

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns, self.count = list(columns), 0

    def _lines(self, rows: Iterable[Sequence[Any]]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf).writerows(rows)
        return buf.getvalue().encode("utf-8")

    def head(self) -> bytes:
        return "\ufeff".encode() + self._lines([self.columns])

    def batch(self, items: Sequence[dict[str, Any]]) -> bytes:
        self.count += len(items)
        return self._lines(csv_row(it, self.columns) for it in items)

    def tail(self) -> bytes:
        return b""


def chunks(batches: Iterable[Sequence[dict[str, Any]]], writer: GeoJsonWriter | CsvWriter) -> Iterator[bytes]:
    """The whole document, one chunk per batch (a streamed response body)."""
    yield writer.head()
    for items in batches:
        piece = writer.batch(items)
        if piece:
            yield piece
    yield writer.tail()

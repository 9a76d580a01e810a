"""Derived station columns (pile count, scale, facility types, max power, connector counts,
availability) and the data versions that tile ETags and caches key on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlalchemy.types import BigInteger

from services.db import read_sql
from services.stations.vocab import DEFAULT_SCALE_BANDS

__all__ = ["bump_version", "data_version", "refresh_station_summaries"]


def refresh_station_summaries(conn: Connection | Session, station_pks: Iterable[int],
                              scale_bands: Sequence[int] = DEFAULT_SCALE_BANDS) -> list[int]:
    """Recompute derived columns of these stations; returns the ids whose summary changed."""
    ids = sorted(set(station_pks))
    if not ids:
        return []
    stmt = text(read_sql("queries/refresh_station_summary.sql")).bindparams(bindparam("ids", type_=ARRAY(BigInteger)))
    b1, b2, b3, b4 = scale_bands
    rows = conn.execute(stmt, {"ids": ids, "b1": b1, "b2": b2, "b3": b3, "b4": b4})
    return [r[0] for r in rows]


def bump_version(conn: Connection | Session, layer: str = "stations") -> int:
    """Advance a layer's data version (tile ETags change with it); returns the new version."""
    return conn.execute(text(
        "INSERT INTO data_versions (layer, version) VALUES (:layer, 2) "
        "ON CONFLICT (layer) DO UPDATE SET version = data_versions.version + 1, updated_at = now() "
        "RETURNING version"), {"layer": layer}).scalar_one()


def data_version(conn: Connection | Session, layer: str = "stations") -> int:
    return conn.execute(text("SELECT version FROM data_versions WHERE layer = :layer"), {"layer": layer}).scalar() or 1

"""Render tiles in PostGIS: one statement per tile on a small raw psycopg2 pool.

The HTTP path skips the ORM on purpose: a tile is ``execute`` + ``fetchone`` of one ``bytea``,
on autocommit read-only connections (no BEGIN/COMMIT round trips). Statement text is built once
per filter shape (the predicates of ``StationFilter.where_sql()``) and kept; values are always
bind parameters.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import psycopg2
import psycopg2.extensions
from sqlalchemy.engine import URL, make_url

from geo.gcj02 import wgs84_to_gcj02
from services.db import read_sql
from services.errors import DatabaseUnavailable
from services.search.prepared import execute_prepared, to_pyformat
from services.settings import TileSettings
from services.stations.filters import StationFilter
from tiles.grid import WORLD_SIZE, TileAddress, cells_per_tile, cluster_cell_size, tile_bounds_3857

__all__ = ["TileRenderer", "connect_kwargs", "station_tile_sql", "filter_cells_where", "filter_uses_cells",
           "CRS_VALUES"]

CRS_VALUES = ("wgs84", "gcj02")
_BUFFER = 64 / 4096
CELL_TABLE_MAX_Z = 11  # levels kept in tile_cluster_cells (sql/functions/tile_cluster_cells.sql)
CELL_TABLE_CELLS_PER_TILE = 8
FILTER_CELL_MAX_Z = 8  # levels kept in tile_filter_cells (migration 0353)
# Filter fields tile_filter_cells can answer exactly (every one a function of its key); a filter
# that sets anything else (operator, district, q, exclude_operator, bbox/radius/route) clusters
# per request.
FILTER_CELL_FIELDS = frozenset({"station_type", "scale", "facility_type", "payment", "available", "min_power"})
# GCJ-02 moves a point by well under 1 km; in Web Mercator metres that is < 2 km up to 55°N.
_GCJ_SEARCH_MARGIN_M = 2000.0
_GEOM = {
    "wgs84": "s.geom_3857",
    "gcj02": "ST_Transform(zh_wgs84_to_gcj02(s.geom), 3857)",
}


def connect_kwargs(url: str | URL, *, statement_timeout_ms: int = 10_000, pgbouncer: bool = False) -> dict[str, Any]:
    """psycopg2.connect() arguments for a SQLAlchemy URL. ``pgbouncer``: the URL goes through PgBouncer
    in transaction mode, which refuses startup options (the pool's own settings apply)."""
    u = make_url(url) if isinstance(url, str) else url
    kw: dict[str, Any] = {k: v for k, v in u.translate_connect_args(username="user", database="dbname").items()
                          if v is not None}
    kw.update({k: v for k, v in u.query.items() if isinstance(v, str)})
    kw["application_name"] = "zhcharge-tiles"
    kw["connect_timeout"] = 5
    if not pgbouncer:
        # plan_cache_mode applies to our PREPAREd statements only (fixed SQL, index scans either way)
        kw["options"] = (f"-c statement_timeout={statement_timeout_ms} -c default_transaction_read_only=on "
                         "-c timezone=UTC -c jit=off -c plan_cache_mode=force_generic_plan")
    return kw


class TileConnection(psycopg2.extensions.connection):
    """A pooled connection that remembers which statements it has PREPAREd."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: set[str] = set()


class ConnectionPool:
    """Lazy LIFO pool of at most ``maxconn`` connections that keeps idle ones open.

    (psycopg2's own pools close every returned connection beyond ``minconn``, i.e. a new
    connection per tile unless all are opened up front.)
    """

    def __init__(self, maxconn: int, kwargs: dict[str, Any], *, wait_s: float = 30.0) -> None:
        self._kwargs = kwargs
        self._idle: list[TileConnection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(maxconn)
        self._wait_s = wait_s

    def getconn(self) -> TileConnection:
        if not self._slots.acquire(timeout=self._wait_s):
            raise DatabaseUnavailable("the tile server is busy; please retry shortly")
        with self._lock:
            if self._idle:
                return self._idle.pop()
        try:
            return psycopg2.connect(connection_factory=TileConnection, **self._kwargs)
        except BaseException:
            self._slots.release()
            raise

    def putconn(self, conn: TileConnection, close: bool = False) -> None:
        try:
            if close or conn.closed:
                with contextlib.suppress(Exception):
                    conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
        finally:
            self._slots.release()

    def closeall(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(Exception):
                conn.close()


def station_tile_sql(flt: StationFilter, *, clusters: bool, crs: str) -> str:
    """The full statement for a station tile (psycopg2 paramstyle)."""
    template = read_sql("queries/tile_clusters.sql" if clusters else "queries/tile_stations.sql")
    # The envelope is written inline (not taken from the CTE): with literal z/x/y it folds to a
    # constant, so the planner estimates the rows from statistics (index vs bitmap vs seq scan).
    env = ("ST_TileEnvelope(%(z)s, %(x)s, %(y)s)" if clusters
           else "ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s)")
    if crs == "gcj02":
        prefilter = (f"s.geom_3857 && ST_Expand({env}, {_GCJ_SEARCH_MARGIN_M}) "
                     f"AND {_GEOM['gcj02']} && {env}")
    else:
        prefilter = f"s.geom_3857 && {env}"
    where = to_pyformat(flt.where_sql("s"))
    return (template.replace("{{geom}}", _GEOM[crs]).replace("{{prefilter}}", prefilter)
            .replace("{{where}}", where))


def filter_cells_where(flt: StationFilter, alias: str = "c") -> str:
    """``flt``'s predicates over tile_filter_cells (psycopg2 paramstyle, StationFilter's binds).

    Same semantics as ``StationFilter.where_sql``: visibility is built into the table, ``available``
    is the stored ``connectors_free > 0`` of each station, ``min_power`` compares the exact
    ``max_power_kw`` (stations without one are stored as -1 and never match, as NULL never does).
    """
    a = alias
    preds = []
    if flt.station_type:
        preds.append(f"{a}.station_type = ANY(CAST(%(f_station_type)s AS int[]))")
    if flt.scale:
        preds.append(f"{a}.scale = ANY(CAST(%(f_scale)s AS varchar[]))")
    if flt.facility_type:
        preds.append(f"{a}.facility_types && CAST(%(f_facility_type)s AS varchar[])")
    if flt.payment:
        preds.append(f"{a}.payments && CAST(%(f_payment)s AS varchar[])")
    if flt.available:
        preds.append(f"{a}.available")
    if flt.min_power is not None:
        preds.append(f"{a}.max_power_kw >= %(f_min_power)s")
    return " AND ".join(f"({p})" for p in preds) or "TRUE"


def filter_uses_cells(flt: StationFilter) -> bool:
    """Whether every field ``flt`` sets is answerable from tile_filter_cells."""
    return all(not getattr(flt, f.name) or f.name in FILTER_CELL_FIELDS
               for f in fields(flt) if f.name != "extra") and not flt.is_empty()


def _gcj_offset_3857(z: int, x: int, y: int) -> tuple[float, float]:
    """GCJ-02 shift at the tile centre in Web Mercator metres (0, 0 outside China)."""
    minx, miny, maxx, maxy = tile_bounds_3857(z, x, y)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    r = WORLD_SIZE / (2 * math.pi)
    lng = math.degrees(cx / r)
    lat = math.degrees(2 * math.atan(math.exp(cy / r)) - math.pi / 2)
    glng, glat = wgs84_to_gcj02(lng, lat)
    gx = math.radians(glng) * r
    gy = r * math.log(math.tan(math.pi / 4 + math.radians(glat) / 2))
    return gx - cx, gy - cy


class TileRenderer:
    """Owns the tile connection pool and turns (layer, address, filter, crs) into MVT bytes."""

    def __init__(self, url: str | URL, settings: TileSettings, *, maxconn: int = 8,
                 statement_timeout_ms: int = 10_000, pgbouncer: bool = False, prepare: bool = True) -> None:
        self.settings = settings
        self.prepare = prepare  # False behind PgBouncer (ZHCHARGE_DB_PREPARED): plain statements
        self.kwargs = connect_kwargs(url, statement_timeout_ms=statement_timeout_ms, pgbouncer=pgbouncer)
        self._pool = ConnectionPool(maxconn, self.kwargs)
        self._sql: dict[tuple[bool, str, str], str] = {}
        self._lock = threading.Lock()
        self._cells: bool | None = None
        self._filter_cells: bool | None = None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._pool.closeall()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        try:
            conn = self._pool.getconn()
        except psycopg2.OperationalError as exc:
            raise DatabaseUnavailable("the database is unavailable; please retry shortly") from exc
        if not conn.autocommit:
            conn.autocommit = True
        broken = False
        try:
            yield conn
        except psycopg2.OperationalError as exc:
            broken = True
            raise DatabaseUnavailable("the database is unavailable; please retry shortly") from exc
        except psycopg2.Error:
            broken = bool(conn.closed)
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed))

    def query_bytes(self, sql: str, params: dict[str, Any] | tuple, *, prepare: bool = False) -> bytes:
        """Run a one-bytea statement. ``prepare``: PREPARE it once per connection and EXECUTE it
        (saves parsing and planning, ~0.3 ms of a 0.5 ms high-zoom tile); only for fixed SQL."""
        with self.connection() as conn, conn.cursor() as cur:
            if prepare and isinstance(params, dict):
                execute_prepared(cur, conn.prepared if self.prepare else None, sql, params)
            else:
                cur.execute(sql, params)
            row = cur.fetchone()
        return bytes(row[0]) if row and row[0] is not None else b""

    def data_version(self, layer: str) -> int:
        """The layer's data version in this renderer's database (a replica may be behind the primary)."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT version FROM data_versions WHERE layer = %s", (layer,))
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 1

    # --- layers -----------------------------------------------------------------------------
    @property
    def has_cell_table(self) -> bool:
        """Whether the precomputed cluster cells (migration 0351) exist in this database."""
        if self._cells is None:
            try:
                with self.connection() as conn, conn.cursor() as cur:
                    cur.execute("SELECT to_regclass('tile_cluster_cells') IS NOT NULL")
                    self._cells = bool(cur.fetchone()[0])
            except (psycopg2.Error, DatabaseUnavailable):
                return False
        return self._cells

    @property
    def has_filter_cell_table(self) -> bool:
        """Whether the per-facet cluster cells (migration 0353) exist in this database."""
        if self._filter_cells is None:
            try:
                with self.connection() as conn, conn.cursor() as cur:
                    cur.execute("SELECT to_regclass('tile_filter_cells') IS NOT NULL")
                    self._filter_cells = bool(cur.fetchone()[0])
            except (psycopg2.Error, DatabaseUnavailable):
                return False
        return self._filter_cells

    def uses_filter_cells(self, addr: TileAddress, flt: StationFilter, crs: str) -> bool:
        """Filtered WGS84 cluster tiles up to FILTER_CELL_MAX_Z whose filter only tests station type,
        scale, facility type, payment, availability and minimum power read the per-facet cells."""
        return (addr.z < self.settings.cluster_below_zoom and addr.z <= FILTER_CELL_MAX_Z and crs == "wgs84"
                and cells_per_tile(self.settings.cluster_cell_px) == CELL_TABLE_CELLS_PER_TILE
                and filter_uses_cells(flt) and self.has_filter_cell_table)

    def uses_cells(self, addr: TileAddress, flt: StationFilter, crs: str) -> bool:
        """Unfiltered WGS84 cluster tiles read the per-cell aggregates (same grid, ids, positions)."""
        return (addr.z < self.settings.cluster_below_zoom and addr.z <= CELL_TABLE_MAX_Z and crs == "wgs84"
                and cells_per_tile(self.settings.cluster_cell_px) == CELL_TABLE_CELLS_PER_TILE
                and flt.is_empty() and self.has_cell_table)

    def station_statement(self, addr: TileAddress, flt: StationFilter, crs: str) -> tuple[str, dict[str, Any]]:
        if self.uses_cells(addr, flt, crs):
            return read_sql("queries/tile_cluster_cells.sql"), {"z": addr.z, "x": addr.x, "y": addr.y}
        if self.uses_filter_cells(addr, flt, crs):
            key = (True, "filter_cells", filter_cells_where(flt))
            sql = self._sql.get(key)
            if sql is None:
                sql = read_sql("queries/tile_filter_cells.sql").replace("{{where}}", key[2])
                with self._lock:
                    if len(self._sql) > 512:
                        self._sql.clear()
                    self._sql[key] = sql
            return sql, {**flt.sql_params(), "z": addr.z, "x": addr.x, "y": addr.y}
        clusters = addr.z < self.settings.cluster_below_zoom
        key = (clusters, crs, flt.where_sql("s"))
        sql = self._sql.get(key)
        if sql is None:
            sql = station_tile_sql(flt, clusters=clusters, crs=crs)
            with self._lock:
                if len(self._sql) > 512:
                    self._sql.clear()
                self._sql[key] = sql
        params = flt.sql_params()
        params.update(z=addr.z, x=addr.x, y=addr.y, margin=_BUFFER, limit=self.settings.max_features,
                      cell=cluster_cell_size(addr.z, self.settings.cluster_cell_px))
        return sql, params

    def stations(self, addr: TileAddress, flt: StationFilter, crs: str = "wgs84") -> bytes:
        sql, params = self.station_statement(addr, flt, crs)
        # unfiltered and per-facet-cell statements are fixed text per filter shape (values are
        # binds): prepare them; other filtered ones plan per call (selectivity varies by value)
        prepare = flt.is_empty() or self.uses_filter_cells(addr, flt, crs)
        return self.query_bytes(sql, params, prepare=prepare)

    def districts(self, addr: TileAddress, crs: str = "wgs84") -> bytes:
        dx, dy = _gcj_offset_3857(addr.z, addr.x, addr.y) if crs == "gcj02" else (0.0, 0.0)
        return self.query_bytes("SELECT tile_districts(%(z)s, %(x)s, %(y)s, %(dx)s, %(dy)s)",
                                {"z": addr.z, "x": addr.x, "y": addr.y, "dx": dx, "dy": dy}, prepare=True)

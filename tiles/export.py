"""PMTiles v3 archives of the public station layer (``zhcharge tiles export``).

The archive holds exactly the tiles ``/tiles/stations/{z}/{x}/{y}.mvt`` serves without filters
(WGS84, clusters below ``cluster_below_zoom`` included): each one is rendered by the server's own
path (``TileService.render_bytes``: the same statements, cells and feature cap), gzipped as the
server gzips and written with the ``pmtiles`` library, so a CDN can serve the map's static layer
while the live server only adds status.

Only tiles that can hold a station are rendered: at the zooms the per-cell cluster aggregates
answer, the tiles of the non-empty cells; at the others, the tiles whose buffered envelope
(``ST_TileEnvelope(..., margin => 64/4096)``, as ``tile_stations.sql``) contains a visible station.
A candidate that renders empty is left out, so the archive has no empty tile (a PMTiles reader
answers "no tile" for them, which MapLibre draws as empty). Tiles are written in tile-id (Hilbert)
order, so the archive is clustered; identical tiles are stored once (the library deduplicates).

The data of a long export is not one snapshot: tiles rendered a minute apart may differ in a
status. That is harmless here: the map takes status from the live server and the archive only for
positions, names and clusters. The data version at the start is kept in the metadata.
"""

from __future__ import annotations

import math
import os
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer

from services.errors import BadRequest, NotFound
from services.settings import Settings
from services.stations.filters import VISIBLE_SQL, StationFilter
from tiles.grid import WORLD_SIZE, TileAddress
from tiles.render import CELL_TABLE_CELLS_PER_TILE
from tiles.service import TileRequest, TileService
from tiles.tilejson import ATTRIBUTION, VECTOR_LAYERS

__all__ = ["ExportResult", "ZoomStats", "candidate_tiles", "default_maxzoom", "export_stations", "station_bounds"]

_HALF = WORLD_SIZE / 2
_BUFFER = 64 / 4096  # the station tiles' buffer, as a fraction of the tile (tiles.render)
_BATCH = 256  # tiles in flight at once (bounded memory, order kept)


def default_maxzoom(settings: Settings) -> int:
    """Two zooms past the first one with single stations: at z14 a tile unit is about 0.55 m in
    Zhuhai (2 screen pixels at z18), so MapLibre overzooms the deepest tiles to street level with no
    visible error, while every further zoom would add about one tile per station."""
    return min(settings.tiles.cluster_below_zoom + 2, settings.tiles.max_zoom)


@dataclass
class ZoomStats:
    candidates: int = 0
    tiles: int = 0
    empty: int = 0
    bytes: int = 0  # gzipped tile bytes, before deduplication

    def as_dict(self) -> dict[str, int]:
        return {"candidates": self.candidates, "tiles": self.tiles, "empty": self.empty, "bytes": self.bytes}


@dataclass
class ExportResult:
    path: Path
    minzoom: int
    maxzoom: int
    stations: int
    tiles: int  # addressed tiles in the archive
    contents: int  # distinct tile contents stored
    empty: int  # candidates that rendered empty (left out)
    bytes: int  # size of the archive file
    seconds: float
    bounds: list[float]
    center: list[float]
    data_version: int
    zooms: dict[int, ZoomStats] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.path), "minzoom": self.minzoom, "maxzoom": self.maxzoom, "stations": self.stations,
                "tiles": self.tiles, "contents": self.contents, "empty": self.empty, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "bounds": self.bounds, "center": self.center,
                "data_version": self.data_version,
                "zooms": {str(z): s.as_dict() for z, s in sorted(self.zooms.items())}}


def _gzip(data: bytes) -> bytes:
    """gzip as the tile server does (level 6, no file name, mtime 0: the same bytes give the same
    archive entry, which is what lets the writer deduplicate)."""
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


# --- what to render ------------------------------------------------------------------------------
def _fetch(svc: TileService, sql: str, params: dict[str, Any]) -> list[tuple]:
    with svc.renderer.connection() as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def candidate_tiles(svc: TileService, z: int) -> list[tuple[int, int]]:
    """(x, y) of the tiles at zoom ``z`` that can hold a station, in no particular order."""
    if svc.renderer.uses_cells(TileAddress(z, 0, 0), StationFilter(), "wgs84"):
        shift = CELL_TABLE_CELLS_PER_TILE.bit_length() - 1
        rows = _fetch(svc, "SELECT DISTINCT cx >> %(s)s, cy >> %(s)s FROM tile_cluster_cells "
                           "WHERE z = %(z)s AND point_count > 0", {"z": z, "s": shift})
        return [(int(x), int(y)) for x, y in rows]
    n = 1 << z
    size = WORLD_SIZE / n
    # a hair wider than the tiles' own buffer: a candidate too many renders empty and is dropped
    buf = size * _BUFFER * 1.01
    rows = _fetch(svc, f"""
        WITH p AS (
            SELECT ST_X(s.geom_3857) + {_HALF!r} AS px, {_HALF!r} - ST_Y(s.geom_3857) AS py
            FROM stations s WHERE {VISIBLE_SQL} AND s.geom_3857 IS NOT NULL
        )
        SELECT DISTINCT tx, ty FROM p,
            generate_series(greatest(floor((px - %(buf)s) / %(size)s)::int, 0),
                            least(floor((px + %(buf)s) / %(size)s)::int, %(n)s - 1)) AS tx,
            generate_series(greatest(floor((py - %(buf)s) / %(size)s)::int, 0),
                            least(floor((py + %(buf)s) / %(size)s)::int, %(n)s - 1)) AS ty""",
                  {"buf": buf, "size": size, "n": n})
    return [(int(x), int(y)) for x, y in rows]


def station_bounds(svc: TileService) -> tuple[int, list[float] | None]:
    """(count, [west, south, east, north]) of the visible stations (WGS84), bounds None when none."""
    (count, *box), = _fetch(svc, f"SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                                 f"(SELECT count(*) AS n, ST_Extent(s.geom) AS e FROM stations s WHERE {VISIBLE_SQL}) t", {})
    if not count:
        return 0, None
    return int(count), [float(v) for v in box]


def _data_version(svc: TileService) -> int:
    rows = _fetch(svc, "SELECT version FROM data_versions WHERE layer = 'stations'", {})
    return int(rows[0][0]) if rows else 1


def _padded(bounds: list[float], z: int) -> list[float]:
    """The stations' extent widened by the tile buffer at zoom ``z`` (a station at the edge is also
    drawn in the buffer of the neighbouring tile, which MapLibre only asks for inside the bounds)."""
    pad = 360.0 / (1 << z) * _BUFFER
    w, s, e, n = bounds
    return [max(-180.0, w - pad), max(-85.0511, s - pad), min(180.0, e + pad), min(85.0511, n + pad)]


def _center_zoom(bounds: list[float], minzoom: int, maxzoom: int) -> int:
    """The zoom at which the bounds fill about 1,000 pixels of 512-pixel tiles."""
    w, s, e, n = bounds
    y0, y1 = (math.degrees(math.log(math.tan(math.pi / 4 + math.radians(v) / 2))) for v in (s, n))
    span = max(e - w, y1 - y0, 1e-6)
    return max(minzoom, min(maxzoom, int(math.floor(math.log2(720.0 / span)))))


def _e7(v: float) -> int:
    return int(round(v * 10_000_000))


# --- the export --------------------------------------------------------------------------------------
def _rendered(svc: TileService, tiles: list[tuple[int, int, int]], jobs: int) -> Iterator[tuple[tuple[int, int, int], bytes]]:
    """Render ``tiles`` with ``jobs`` threads (each on a pooled connection), yielding in order."""
    flt = StationFilter()

    def render(t: tuple[int, int, int]) -> bytes:
        return svc.render_bytes(TileRequest(layer="stations", addr=TileAddress(*t), filter=flt, crs="wgs84", etag=""))

    if jobs <= 1:
        for t in tiles:
            yield t, render(t)
        return
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="pmtiles") as pool:
        for i in range(0, len(tiles), _BATCH):
            batch = tiles[i:i + _BATCH]
            yield from zip(batch, pool.map(render, batch))


def export_stations(settings: Settings, db_url: Any, out: str | os.PathLike[str], *, minzoom: int = 0,
                    maxzoom: int | None = None, jobs: int = 2,
                    progress: Callable[[int, ZoomStats], None] | None = None) -> ExportResult:
    """Write the PMTiles archive of the public station layer to ``out`` (replaced atomically)."""
    t = settings.tiles
    maxzoom = default_maxzoom(settings) if maxzoom is None else maxzoom
    if not 0 <= minzoom <= maxzoom:
        raise BadRequest(f"zooms must satisfy 0 <= minzoom <= maxzoom, got {minzoom}..{maxzoom}", param="minzoom")
    if maxzoom > min(t.max_zoom, 22):
        raise BadRequest(f"maxzoom {maxzoom} is beyond the tile server's maximum zoom {min(t.max_zoom, 22)}",
                         param="maxzoom")
    jobs = max(1, min(jobs, max(2, settings.db.pool_size)))
    path = Path(out)
    started = time.perf_counter()
    svc = TileService(settings, db_url, listen=False)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        version = _data_version(svc)
        count, extent = station_bounds(svc)
        if extent is None:
            raise NotFound("no public station to export (no active, interconnected station)")
        bounds = _padded(extent, max(minzoom, min(t.cluster_below_zoom, maxzoom)))
        center = [round((bounds[0] + bounds[2]) / 2, 6), round((bounds[1] + bounds[3]) / 2, 6),
                  _center_zoom(bounds, minzoom, maxzoom)]
        zooms: dict[int, ZoomStats] = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            writer = Writer(f)
            for z in range(minzoom, maxzoom + 1):
                stats = zooms[z] = ZoomStats()
                tiles = sorted(((z, x, y) for x, y in candidate_tiles(svc, z)), key=lambda a: zxy_to_tileid(*a))
                stats.candidates = len(tiles)
                for (tz, tx, ty), raw in _rendered(svc, tiles, jobs):
                    if not raw:
                        stats.empty += 1
                        continue
                    gz = _gzip(raw)
                    writer.write_tile(zxy_to_tileid(tz, tx, ty), gz)
                    stats.tiles += 1
                    stats.bytes += len(gz)
                if progress is not None:
                    progress(z, stats)
            written = sum(s.tiles for s in zooms.values())
            if written == 0:
                raise NotFound(f"no station tile between zoom {minzoom} and {maxzoom}")
            layers = [dict(vl, minzoom=minzoom, maxzoom=maxzoom) for vl in VECTOR_LAYERS["stations"]]
            metadata = {
                "name": "zhcharge stations",
                "description": "Interconnected charging stations of Zhuhai (positions, names, clusters; "
                               "availability and price as of the export: the live map takes them from the server)",
                "attribution": ATTRIBUTION,
                "version": "1.0.0",
                "type": "overlay",
                "format": "pbf",
                "scheme": "xyz",
                "minzoom": minzoom,
                "maxzoom": maxzoom,
                "bounds": bounds,
                "center": center,
                "vector_layers": layers,
                "cluster_below_zoom": t.cluster_below_zoom,
                "crs": "wgs84",
                "data_version": version,
                "stations": count,
                "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "generator": "zhcharge tiles export",
            }
            header = {
                "tile_type": TileType.MVT, "tile_compression": Compression.GZIP,
                "min_zoom": minzoom, "max_zoom": maxzoom,
                "min_lon_e7": _e7(bounds[0]), "min_lat_e7": _e7(bounds[1]),
                "max_lon_e7": _e7(bounds[2]), "max_lat_e7": _e7(bounds[3]),
                "center_zoom": center[2], "center_lon_e7": _e7(center[0]), "center_lat_e7": _e7(center[1]),
            }
            contents = len(writer.hash_to_offset)
            writer.finalize(header, metadata)
        os.replace(tmp, path)
    finally:
        svc.close()
        if tmp.exists():
            tmp.unlink()
    return ExportResult(path=path, minzoom=minzoom, maxzoom=maxzoom, stations=count, tiles=written,
                        contents=contents, empty=sum(s.empty for s in zooms.values()), bytes=path.stat().st_size,
                        seconds=time.perf_counter() - started, bounds=bounds, center=center, data_version=version,
                        zooms=zooms)

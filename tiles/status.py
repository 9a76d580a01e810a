"""Live status for a map that draws its stations from a static archive (``tiles.export``).

The archive (a PMTiles file behind a CDN) gives positions, names and clusters; the page asks
``/map/status.json`` for what changes by the minute in its view and paints it on the archive's
features with ``map.setFeatureState`` (by feature id, which archive and server share):

* at the zooms with single stations (``z >= cluster_below_zoom``): each visible station in the
  box, ``[id, availability, connectors_free, connectors_total, price_now or null]``;
* at the cluster zooms the cell table answers: each non-empty cluster of the tiles the box
  touches, ``[id, point_count, connectors_total, connectors_free]`` (ids are the cell keys the
  cluster tiles carry).

One indexed query on the tile server's read-only pool; the route adds a data-version ETag.
"""

from __future__ import annotations

import math
from typing import Any

from services.errors import BadRequest
from services.search.prepared import to_pyformat
from services.stations.filters import StationFilter
from tiles.grid import TileAddress
from tiles.render import CELL_TABLE_CELLS_PER_TILE
from tiles.service import TileService

__all__ = ["STATION_LIMIT", "MAX_CLUSTER_TILES", "live_status"]

STATION_LIMIT = 5000  # a view holds a few hundred; more is answered with truncated = true
MAX_CLUSTER_TILES = 256  # tiles of one view at the cluster zooms (a screen shows ~12)


def _tile_range(lng0: float, lat0: float, lng1: float, lat1: float, z: int) -> tuple[int, int, int, int]:
    n = 1 << z

    def tx(lng: float) -> int:
        return min(n - 1, max(0, int((lng + 180.0) / 360.0 * n)))

    def ty(lat: float) -> int:
        lat = max(-85.0511, min(85.0511, lat))
        return min(n - 1, max(0, int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)))

    return tx(lng0), ty(lat1), tx(lng1), ty(lat0)


def live_status(svc: TileService, bbox: str | None, z: int) -> dict[str, Any]:
    """What ``/map/status.json`` answers for the box ``bbox`` (``minLng,minLat,maxLng,maxLat``) seen
    at tile zoom ``z``."""
    if not bbox:
        raise BadRequest("parameter 'bbox' is required (minLng,minLat,maxLng,maxLat)", param="bbox")
    flt = StationFilter.from_params({"bbox": bbox})
    assert flt.bbox is not None
    out: dict[str, Any] = {"z": z, "stations": [], "clusters": [], "truncated": False}
    with svc.renderer.connection() as conn, conn.cursor() as cur:
        if z >= svc.tiles.cluster_below_zoom:
            cur.execute(f"SELECT s.id, s.availability, s.connectors_free, s.connectors_total, s.price_now::float8 "
                        f"FROM stations s WHERE {to_pyformat(flt.where_sql('s'))} ORDER BY s.id LIMIT %(limit)s",
                        {**flt.sql_params(), "limit": STATION_LIMIT + 1})
            rows = cur.fetchall()
            out["truncated"] = len(rows) > STATION_LIMIT
            out["stations"] = [list(r) for r in rows[:STATION_LIMIT]]
        elif svc.renderer.uses_cells(TileAddress(z, 0, 0), StationFilter(), "wgs84"):
            b = flt.bbox
            x0, y0, x1, y1 = _tile_range(b.min_lng, b.min_lat, b.max_lng, b.max_lat, z)
            if (x1 - x0 + 1) * (y1 - y0 + 1) > MAX_CLUSTER_TILES:
                raise BadRequest(f"the box covers more than {MAX_CLUSTER_TILES} tiles at zoom {z}", param="bbox")
            k = CELL_TABLE_CELLS_PER_TILE
            cur.execute("SELECT cx::bigint * 4294967296 + cy, point_count, connectors_total::int, connectors_free::int "
                        "FROM tile_cluster_cells WHERE z = %(z)s AND cx BETWEEN %(cx0)s AND %(cx1)s "
                        "AND cy BETWEEN %(cy0)s AND %(cy1)s AND point_count > 0",
                        {"z": z, "cx0": x0 * k, "cx1": (x1 + 1) * k - 1, "cy0": y0 * k, "cy1": (y1 + 1) * k - 1})
            out["clusters"] = [list(r) for r in cur.fetchall()]
    return out

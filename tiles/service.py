"""The tile service: validation, ETags, the byte-bounded cache, gzip, and rendering.

Request path (``TileService.respond``): parse and validate (no database), compute the strong
ETag from the in-memory data version, answer ``304`` or a cached body, and only on a miss render
in PostGIS (``TileService.render``, run in a worker thread by the route).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg2

from services.errors import BadRequest, DatabaseUnavailable, NotFound
from services.settings import Settings
from services.search.query import PAGING_PARAMS, check_known
from services.stations.filters import FILTER_PARAMS, StationFilter
from tiles.cache import ByteLRU
from tiles.grid import TileAddress, cells_per_tile
from tiles.render import CRS_VALUES, TileRenderer, connect_kwargs
from tiles.versions import DataVersions

__all__ = ["LAYERS", "MVT_MEDIA_TYPE", "TileRequest", "TileResponse", "TileService", "parse_crs"]

MVT_MEDIA_TYPE = "application/vnd.mapbox-vector-tile"
LAYERS = ("stations", "districts")
_GZIP_MIN_BYTES = 256


#: What a station tile takes: every search filter, crs, the map's cache buster ``v``; the search's
#: paging parameters are accepted (a map opened from a search URL carries them) and mean nothing here.
STATION_TILE_PARAMS = (*FILTER_PARAMS, *PAGING_PARAMS, "v")


def parse_crs(params: Mapping[str, Any]) -> str:
    raw = params.get("crs") if hasattr(params, "get") else None
    crs = (raw or "wgs84").strip().lower()
    if crs in ("wgs84", "epsg:4326", "4326"):
        return "wgs84"
    if crs in CRS_VALUES:
        return crs
    raise BadRequest(f"parameter 'crs' must be wgs84 or gcj02, got {raw!r}", param="crs")


@dataclass(frozen=True, slots=True)
class TileRequest:
    layer: str
    addr: TileAddress
    filter: StationFilter | None
    crs: str
    etag: str  # without quotes, identity encoding
    version: int = 1  # the layer's data version the ETag was made from


@dataclass(slots=True)
class TileResponse:
    status: int
    body: bytes
    headers: dict[str, str]
    cache: str = "miss"


def _gzip(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


def _matches(if_none_match: str | None, etag: str) -> str | None:
    """The matching tag (weak comparison, as RFC 9110 prescribes for If-None-Match; either encoding
    variant of the tile matches), or None."""
    if not if_none_match:
        return None
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return f'"{etag}"'
        bare = tag.removeprefix("W/").strip('"')
        if bare.removesuffix("-gz") == etag:
            return f'"{bare}"'
    return None


class TileService:
    """One per app; built on startup, closed on shutdown.

    ``router`` (``services.routing.ReadRouter``): with a read replica, misses render there when it is
    usable and has replayed the data version of the tile's ETag (else on the primary, so no old
    tile is cached under a new ETag); a replica that fails is reported and the tile rendered on the
    primary. ``versions_url``: where the data versions are LISTENed for (the primary, directly:
    LISTEN does not work through PgBouncer in transaction mode; ``None`` behind it: polling)."""

    def __init__(self, settings: Settings, db_url: Any, *, listen: bool = True, router: Any = None,
                 versions_url: Any = None) -> None:
        self.settings = settings
        self.tiles = settings.tiles
        db = settings.db
        self.renderer = TileRenderer(db_url, self.tiles, maxconn=max(2, db.pool_size),
                                     statement_timeout_ms=db.statement_timeout_ms, pgbouncer=db.pgbouncer,
                                     prepare=db.use_prepared)
        self.router = router if router is not None and router.configured else None
        self.read_renderer = None if self.router is None else TileRenderer(
            self.router.replica_url, self.tiles, maxconn=max(2, db.pool_size),
            statement_timeout_ms=db.statement_timeout_ms, pgbouncer=db.pgbouncer, prepare=db.use_prepared)
        if versions_url is None and db.pgbouncer:
            versions_kwargs, listen = self.renderer.kwargs, False
        else:
            versions_kwargs = connect_kwargs(versions_url or db_url, statement_timeout_ms=db.statement_timeout_ms)
        self.versions = DataVersions(versions_kwargs, poll_s=self.tiles.version_poll_s, listen=listen)
        self.cache = ByteLRU(self.tiles.cache_bytes)
        t = self.tiles
        # Anything that changes the bytes for the same data goes into every ETag (v2: price_now).
        self._fingerprint = (f"v2|{t.max_zoom}|{t.cluster_below_zoom}|{cells_per_tile(t.cluster_cell_px)}"
                             f"|{t.max_features}")
        self.cache_control = (f"public, max-age={t.max_age_s}, s-maxage={t.cdn_max_age_s}, "
                              f"stale-while-revalidate={t.stale_while_revalidate_s}")

    def start(self) -> None:
        self.versions.start()

    def close(self) -> None:
        self.versions.stop()
        self.renderer.close()
        if self.read_renderer is not None:
            self.read_renderer.close()

    # --- request path -------------------------------------------------------------------------
    def prepare(self, layer: str, z: str, x: str, y: str, params: Mapping[str, Any]) -> TileRequest:
        """Validate everything and compute the ETag; touches no database."""
        if layer not in LAYERS:
            raise NotFound(f"no tile layer '{layer}'; layers: {', '.join(LAYERS)}")
        addr = TileAddress.parse(z, x, y, max_zoom=self.tiles.max_zoom)
        check_known(params, STATION_TILE_PARAMS if layer == "stations" else ("crs", "v"))
        crs = parse_crs(params)
        flt = None
        fkey = ""
        if layer == "stations":
            search = self.settings.search
            flt = StationFilter.from_params(params, max_radius_m=search.max_radius_m,
                                            max_corridor_m=search.max_corridor_m)
            fkey = flt.cache_key()
        version = self.versions.get(layer)
        key = f"{self._fingerprint}|{layer}|{version}|{addr.z}/{addr.x}/{addr.y}|{crs}|{fkey}"
        etag = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        return TileRequest(layer, addr, flt, crs, etag, version)

    def _headers(self, etag: str, gz: bool) -> dict[str, str]:
        h = {"ETag": f'"{etag}-gz"' if gz else f'"{etag}"', "Cache-Control": self.cache_control,
             "Vary": "Accept-Encoding"}
        if gz:
            h["Content-Encoding"] = "gzip"
        return h

    def lookup(self, req: TileRequest, *, accept_gzip: bool, if_none_match: str | None) -> TileResponse | None:
        """A 304 or a cached tile, or None when the tile has to be rendered."""
        matched = _matches(if_none_match, req.etag)
        if matched:
            return TileResponse(304, b"", {"ETag": matched, "Cache-Control": self.cache_control,
                                           "Vary": "Accept-Encoding"}, "revalidated")
        if accept_gzip:
            body = self.cache.get(req.etag + "-gz")
            if body is not None:
                return TileResponse(200, body, self._headers(req.etag, True), "hit")
        body = self.cache.get(req.etag)
        if body is not None and (not accept_gzip or len(body) < _GZIP_MIN_BYTES):
            return TileResponse(200, body, self._headers(req.etag, False), "hit")
        return None

    def render(self, req: TileRequest, *, accept_gzip: bool) -> TileResponse:
        """Render (or take from the cache) and encode; runs in a worker thread."""
        raw = self.cache.get(req.etag)
        if raw is None:
            raw = self.render_bytes(req)
            self.cache.put(req.etag, raw)
        if accept_gzip and len(raw) >= _GZIP_MIN_BYTES:
            gz = _gzip(raw)
            self.cache.put(req.etag + "-gz", gz)
            return TileResponse(200, gz, self._headers(req.etag, True))
        return TileResponse(200, raw, self._headers(req.etag, False))

    def render_bytes(self, req: TileRequest) -> bytes:
        renderer = self._renderer_for(req)
        try:
            return self._render(renderer, req)
        except DatabaseUnavailable as exc:
            if renderer is self.renderer:
                raise
            self.router.replica_failed(f"tile render: {exc.message}")
            return self._render(self.renderer, req)

    def _render(self, renderer: TileRenderer, req: TileRequest) -> bytes:
        if req.layer == "stations":
            assert req.filter is not None
            return renderer.stations(req.addr, req.filter, req.crs)
        return renderer.districts(req.addr, req.crs)

    def _renderer_for(self, req: TileRequest) -> TileRenderer:
        """The replica's renderer when it is usable and has the tile's data version, else the primary's."""
        router, replica = self.router, self.read_renderer
        if router is None or replica is None or not router.replica_usable():
            return self.renderer
        if router.known_version(req.layer) < req.version:
            try:
                router.note_versions({req.layer: replica.data_version(req.layer)})
            except (DatabaseUnavailable, psycopg2.Error) as exc:
                router.replica_failed(f"tile version check: {getattr(exc, 'message', exc)}")
                return self.renderer
            if router.known_version(req.layer) < req.version:
                router.count("tiles_primary_behind")
                return self.renderer
        router.count("tiles_replica")
        return replica

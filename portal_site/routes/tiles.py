"""Vector tiles over HTTP: ``/tiles/{layer}/{z}/{x}/{y}.mvt`` and TileJSON ``/tiles/{layer}.json``.

Kept lean: an async handler answers 304s and cache hits on the event loop without touching the
database or a worker thread; only a miss goes to a thread for one PostGIS statement. Bodies are
gzipped once by ``tiles.service`` and cached that way, so the app's compression middleware is
told to pass them through (the same flag Litestar's own response cache uses).
"""

from __future__ import annotations

import anyio
from litestar import Request, Response, get
from litestar.utils.scope.state import ScopeState

from services.errors import NotFound
from tiles.service import LAYERS, MVT_MEDIA_TYPE, TileService, parse_crs
from tiles.tilejson import tilejson

__all__ = ["ROUTES", "on_startup", "on_shutdown", "tile_service"]


def tile_service(app) -> TileService:  # noqa: ANN001
    svc = getattr(app.state, "tiles", None)
    if svc is None:
        from services.routing import direct_url

        settings = app.state.settings
        url = app.state.db.engine.url
        svc = TileService(settings, url, router=app.state.get("router"), versions_url=direct_url(settings.db, url))
        svc.start()
        app.state.tiles = svc
    return svc


def on_startup(app) -> None:  # noqa: ANN001
    tile_service(app)
    if app.state.settings.app.run_scheduler:
        # stations' price now moves at period boundaries and bumps the data version, so tiles, searches
        # and the live map follow (one process at a time: the tick takes an advisory lock)
        from services.prices.store import price_job

        job = price_job(app.state.db.engine)
        job.start()
        app.state.price_job = job


def on_shutdown(app) -> None:  # noqa: ANN001
    job = getattr(app.state, "price_job", None)
    if job is not None:
        job.stop()
        app.state.price_job = None
    svc = getattr(app.state, "tiles", None)
    if svc is not None:
        svc.close()
        app.state.tiles = None


@get("/tiles/{layer:str}/{z:str}/{x:str}/{y:str}", include_in_schema=True, cache=False,
     summary="A vector tile (Mapbox Vector Tile 2.1)",
     description="Layers: stations (filters as in the search API; crs=wgs84|gcj02), districts. "
                 "Strong ETag, 304 on If-None-Match, gzip when accepted.")
async def tile(request: Request, layer: str, z: str, x: str, y: str) -> Response[bytes]:
    svc = tile_service(request.app)
    req = svc.prepare(layer, z, x, y, request.query_params)
    headers = request.headers
    accept_gzip = "gzip" in headers.get("accept-encoding", "")
    res = svc.lookup(req, accept_gzip=accept_gzip, if_none_match=headers.get("if-none-match"))
    if res is None:
        res = await anyio.to_thread.run_sync(lambda: svc.render(req, accept_gzip=accept_gzip))
    ScopeState.from_scope(request.scope).is_cached = True  # already encoded: no second gzip
    res.headers["X-Tile-Cache"] = res.cache
    return Response(res.body, status_code=res.status, media_type=MVT_MEDIA_TYPE, headers=res.headers)


@get("/tiles/{name:str}", include_in_schema=True, cache=False, summary="TileJSON 3.0.0 of a tile layer")
async def tilejson_doc(request: Request, name: str) -> Response[dict]:
    layer, dot, ext = name.partition(".")
    if ext != "json" or layer not in LAYERS:
        raise NotFound(f"no TileJSON '{name}'; try " + ", ".join(f"/tiles/{n}.json" for n in LAYERS))
    svc = tile_service(request.app)
    params = request.query_params
    parse_crs(params)
    if layer == "stations":  # validate filters now rather than on every tile
        svc.prepare(layer, "0", "0", "0", params)
    query = [(k, v) for k, v in params.multi_items() if k != "lang"]
    return Response(tilejson(layer, svc.settings, query),
                    headers={"Cache-Control": f"public, max-age={svc.tiles.max_age_s}"})


ROUTES = [tile, tilejson_doc]

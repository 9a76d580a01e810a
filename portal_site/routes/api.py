"""The open API, ``/api/v1``: station search with facets, one station, GeoJSON, CSV, reference, stats.

Rules every endpoint follows
- Query parameters are parsed by :func:`services.search.parse_search`; a bad or unknown one is a
  400 whose JSON names it (``{"error", "message", "param"}``), never a 500.
- Rate limits (``X-RateLimit-Limit/Remaining/Reset`` on every response, 429 + ``Retry-After``
  over the limit) are counted in the database so all worker processes share them
  (:mod:`services.search.ratelimit`; per process only while the primary is down and a read replica
  serves). A key (``X-API-Key`` header or ``api_key`` parameter)
  raises the limit; an unknown or revoked key is a 401.
- ETags are ``W/"<stations data version>-<hash of path and query>"`` (the station detail, whose
  prices depend on the time, hashes its content instead); ``If-None-Match`` gives 304.
- Coordinates in: WGS84. Out: ``crs=wgs84`` (default) or ``gcj02``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import datetime, timezone
from decimal import Decimal
from functools import partial
from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import MediaType, Request, Response, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.middleware import AbstractMiddleware
from litestar.params import Parameter
from litestar.response import Stream
from litestar.types import Message, Receive, Scope, Send
from sqlalchemy.exc import SQLAlchemyError

from services.db import Database, is_disconnect
from services.errors import BadRequest
from services.prices.views import next_change, parse_kwh
from services.search import parse_search, search
from services.search.query import check_known
from services.search.catalog import iter_matches, reference, station_detail, stats
from services.search.ratelimit import LOCAL_WINDOWS, RateDecision, check_rate, check_rate_locally
from services.search.schemas import ReferenceResponse, SearchResponse, StationDetail, StatsResponse
from services.settings import Settings
from services.stations.filters import _single

__all__ = ["ROUTES", "RateLimitMiddleware", "detail_query", "load_station", "request_now"]

API_PREFIX = "/api/v1"


# --- rate limiting ------------------------------------------------------------------------------
def _client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def _api_key(scope: Scope) -> str | None:
    request: Request = Request(scope)
    return request.headers.get("x-api-key") or request.query_params.get("api_key") or None


def _check(db: Database, settings: Settings, ip: str, key: str | None, router: Any = None) -> RateDecision:
    limits = {"ip": ip, "api_key": key, "anonymous_per_min": settings.search.anonymous_rate_per_min,
              "key_per_min": settings.search.key_rate_per_min}
    try:
        with db.engine.begin() as conn:
            return check_rate(conn, **limits)
    except SQLAlchemyError as exc:
        # the primary is down: while a read replica serves the public reads, count in this process
        if not (is_disconnect(exc) and router is not None and router.replica_usable()):
            raise
        with router.replica.engine.connect() as conn:
            return check_rate_locally(conn, LOCAL_WINDOWS, **limits)


class RateLimitMiddleware(AbstractMiddleware):
    """Counts the request, stops it with 429/401 when needed, and adds the X-RateLimit headers."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        app = scope["app"]
        decision = await anyio.to_thread.run_sync(partial(
            _check, app.state["db"], app.state["settings"], _client_ip(scope), _api_key(scope), app.state.get("router")))
        scope.setdefault("state", {})["zh_data_version"] = decision.data_version
        headers = {"X-RateLimit-Limit": str(decision.limit), "X-RateLimit-Remaining": str(decision.remaining),
                   "X-RateLimit-Reset": str(decision.reset_at)}
        if not decision.key_valid:
            await _send_json(send, 401, {"error": "Unauthorized", "message": "unknown or revoked API key",
                                         "param": "api_key"}, headers)
            return
        if not decision.allowed:
            headers["Retry-After"] = str(decision.retry_after)
            await _send_json(send, 429, {"error": "RateLimited", "message":
                                         f"rate limit of {decision.limit} requests per minute exceeded; "
                                         f"retry after {decision.retry_after} s (an API key raises the limit)"},
                             headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mh = MutableScopeHeaders.from_message(message)
                for k, v in headers.items():
                    mh[k] = v
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


# --- helpers ------------------------------------------------------------------------------------
def _etag(request: Request, *extra: str) -> str:
    version = request.scope.get("state", {}).get("zh_data_version", 0)
    digest = hashlib.sha256("\x1f".join([request.url.path, *extra]).encode()).hexdigest()[:16]
    return f'W/"{version}-{digest}"'


def _not_modified(request: Request, etag: str) -> bool:
    inm = request.headers.get("if-none-match")
    return bool(inm) and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")])


def _cached(request: Request, etag: str, content: Any, media_type: str = MediaType.JSON) -> Response:
    headers = {"ETag": etag, "Cache-Control": "public, max-age=0, must-revalidate", "Vary": "Accept-Encoding"}
    if _not_modified(request, etag):
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=content, media_type=media_type, headers=headers)


# --- documented parameters (for the OpenAPI document; the values are parsed from the query) -----
def _search_params(
    operator: Annotated[list[str] | None, Parameter(description="OperatorID(s); repeat or comma-separate (OR)")] = None,
    district: Annotated[list[str] | None, Parameter(description="district adcode(s), e.g. 440402")] = None,
    station_type: Annotated[list[str] | None, Parameter(description="StationType integer(s): 1 public, 50 personal, "
                                                                    "100–106 dedicated, 255 other")] = None,
    scale: Annotated[list[str] | None, Parameter(description="small|medium|large|xlarge (piles 1–9, 10–29, 30–99, "
                                                             "100+ by default)")] = None,
    facility_type: Annotated[list[str] | None, Parameter(description="dc|ac|acdc|wireless|other: a station matches "
                                                                     "when at least one pile is of the type")] = None,
    payment: Annotated[list[str] | None, Parameter(description="card|online|cash|other")] = None,
    q: Annotated[str | None, Parameter(description="name, operator or address: Chinese substring, full pinyin "
                                                   "(changlong) or initials (xxcd)", max_length=100)] = None,
    available: Annotated[str | None, Parameter(description="true: at least one connector free now")] = None,
    min_power: Annotated[str | None, Parameter(description="kW: at least one pile of at least this power")] = None,
    max_price: Annotated[str | None, Parameter(description="yuan per kWh, 0 to 100: the price now (electricity + "
                                                           "service, the station's cheapest connector) is at most "
                                                           "this; stations without a known price never match")] = None,
    min_uptime: Annotated[str | None, Parameter(description="0 to 1: the uptime of the last 30 days "
                                                            "(reliability.uptime_30d) is at least this; stations "
                                                            "with nothing observed never match")] = None,
    exclude_operator: Annotated[list[str] | None, Parameter(description="OperatorID(s) to leave out")] = None,
    bbox: Annotated[str | None, Parameter(description="minLng,minLat,maxLng,maxLat (WGS84)")] = None,
    lat: Annotated[str | None, Parameter(description="WGS84 latitude (with lng): distances and nearest-N")] = None,
    lng: Annotated[str | None, Parameter(description="WGS84 longitude (with lat)")] = None,
    radius: Annotated[str | None, Parameter(description="metres around lat/lng (geodesic)")] = None,
    route: Annotated[str | None, Parameter(description="encoded polyline (precision 5) or WKT LINESTRING")] = None,
    corridor: Annotated[str | None, Parameter(description="metres either side of the route (default 1000)")] = None,
    sort: Annotated[str | None, Parameter(description="id|relevance|distance|route|name|max_power|free|price|uptime "
                                                      "(price now, cheapest first, unpriced last; uptime of the last "
                                                      "30 days, highest first, stations without one last); default: "
                                                      "route, distance, relevance or id by what is given")] = None,
    updated_since: Annotated[str | None, Parameter(description="ISO 8601: only stations changed since then")] = None,
    crs: Annotated[str | None, Parameter(description="wgs84 (default) or gcj02, for output coordinates")] = None,
    api_key: Annotated[str | None, Parameter(description="API key (or the X-API-Key header)")] = None,
) -> None:
    return None


def _paging_params(
    limit: Annotated[str | None, Parameter(description="page size, 1 to max_limit (see /api/v1/reference)")] = None,
    cursor: Annotated[str | None, Parameter(description="next_cursor of the previous page")] = None,
    facets: Annotated[str | None, Parameter(description="true (default) or false")] = None,
    total: Annotated[str | None, Parameter(description="with facets=false: total=false skips counting the "
                                                       "matches (total is null); nearest-N is then pure KNN")] = None,
) -> None:
    return None


_SEARCH_DEPS = {"search_params": Provide(_search_params, sync_to_thread=False),
                "paging_params": Provide(_paging_params, sync_to_thread=False)}


# --- handlers -----------------------------------------------------------------------------------
@get("/stations", sync_to_thread=True, dependencies=_SEARCH_DEPS, summary="Search stations with facets",
     description="Filters: OR within a dimension, AND across dimensions. `facets` maps each dimension to "
                 "`{value, label, label_en, count}`, each count applying every other dimension's filter but not "
                 "its own. Pages with `next_cursor` (stable while data changes). With `q`, matches are counted "
                 "exactly up to 2,000 (after the filters); beyond, the answer carries `total_exact: false`, "
                 "`total` is a lower bound (2,000) and relevance ranks the first 2,001 matches found; facets "
                 "counted on such a sample carry `facets_exact: false`.", tags=["stations"])
def list_stations(request: Request, db: Database, settings: Settings, search_params: None,
                  paging_params: None) -> Response[SearchResponse]:
    query = parse_search(request.query_params, settings.search)
    etag = _etag(request, query.cache_key())
    if _not_modified(request, etag):
        return _cached(request, etag, b"")
    with db.engine.connect() as conn:
        res = search(conn, query)
    body = {"total": res.total, "items": res.items, "facets": res.facets, "next_cursor": res.next_cursor}
    if not res.total_exact:  # a text query over the count cap: total is a lower bound
        body["total_exact"] = False
    if not res.facets_exact:  # ... and its facets counted on a sample
        body["facets_exact"] = False
    return _cached(request, etag, body)


def request_now(app: Any) -> datetime:
    """Now, from the app's clock when one is set (``app.state.clock``: tests move time without sleeping)."""
    clock = getattr(app.state, "clock", None)
    return clock() if clock is not None else datetime.now(timezone.utc)


def detail_query(request: Request) -> tuple[str, Decimal | None]:
    """``crs`` and ``kwh`` of a station detail request (the only parameters it takes); 400 naming a bad one."""
    params = request.query_params
    check_known(params, ["crs", "kwh"])
    crs = (_single(params, "crs") or "wgs84").lower()
    if crs not in ("wgs84", "gcj02"):
        raise BadRequest(f"unknown value {crs[:40]!r} for parameter 'crs'; allowed: wgs84, gcj02", param="crs")
    return crs, parse_kwh(_single(params, "kwh"))


def load_station(request: Request, db: Database, station_pk: int) -> dict[str, Any]:
    """A station detail with its prices at the request's ``now`` (the API and the map popup)."""
    crs, kwh = detail_query(request)
    if not 0 < station_pk < 2**63:
        raise BadRequest("parameter 'station_pk' is out of range", param="station_pk")
    with db.engine.connect() as conn:
        return station_detail(conn, station_pk, crs=crs, now=request_now(request.app), kwh=kwh)


@get("/stations/{station_pk:int}", sync_to_thread=True, tags=["stations"],
     summary="One station with piles, connectors, live status, prices and reliability",
     description="`tariff` on the station and on each connector: `{source, currency, varies, updated_at, "
                 "checked_at, periods: [{start, end, electricity, service, total}], now: {electricity, service, "
                 "total, until}}` (yuan per kWh as strings with 4 decimals; null when nothing is known). With "
                 "`kwh`, `estimate` on each connector (that many kWh started now at its power, across periods) "
                 "and on the station (the cheapest connector's, naming `connector_id`). `reliability`: "
                 "`{uptime_30d, faults_30d, last_fault_at}` over the last 30 days (refreshed hourly); "
                 "`occupancy_profile`: 7 x 24 shares of the connectors occupied, Monday first, hours in China "
                 "time (\"usually busy around 18:00\"). The ETag follows the content, so it changes when the "
                 "price in force does.")
def get_station(request: Request, db: Database, settings: Settings,
                station_pk: Annotated[int, Parameter(description="the station's id (from search items)")],
                crs: Annotated[str | None, Parameter(description="wgs84 (default) or gcj02")] = None,
                kwh: Annotated[str | None, Parameter(description="kWh to estimate the cost of, started now: "
                                                                 "0 < kwh <= 500")] = None,
                api_key: Annotated[str | None, Parameter(description="API key")] = None) -> Response[StationDetail]:
    item = load_station(request, db, station_pk)
    # The answer depends on the time (the price in force, the estimate), so the ETag is taken from the
    # content: a new period (``until``), a new tariff version or a status change each give a new tag,
    # and nothing else does (the estimate starts at the current minute, so requests within it match).
    until = next_change(item)
    body = msgspec.json.encode(item)  # encoded once: hashed for the tag and sent as it is
    etag = _etag(request, until.isoformat() if until else "", hashlib.sha256(body).hexdigest())
    return _cached(request, etag, body)


@get("/stations.geojson", sync_to_thread=True, dependencies=_SEARCH_DEPS, tags=["stations"],
     summary="Search results as a GeoJSON FeatureCollection (RFC 7946)",
     description="Same parameters as /stations; `limit` up to `geojson_max_limit`; the next page's cursor "
                 "is in the foreign member `next_cursor` (and `total_exact: false` as in /stations). RFC 7946 "
                 "means WGS84; crs=gcj02 is a non-standard convenience for Chinese base maps.",
     media_type="application/geo+json")
def stations_geojson(request: Request, db: Database, settings: Settings, search_params: None,
                     paging_params: None) -> Response[dict[str, Any]]:
    query = parse_search(request.query_params, settings.search, max_limit=settings.search.geojson_max_limit)
    etag = _etag(request, query.cache_key())
    if _not_modified(request, etag):
        return _cached(request, etag, b"", "application/geo+json")
    from dataclasses import replace

    with db.engine.connect() as conn:
        res = search(conn, replace(query, facets=False))
    features = []
    for it in res.items:
        props = {k: v for k, v in it.items() if k not in ("lng", "lat")}
        features.append({"type": "Feature", "id": it["id"],
                         "geometry": {"type": "Point", "coordinates": [it["lng"], it["lat"]]}, "properties": props})
    body = {"type": "FeatureCollection", "features": features, "total": res.total, "next_cursor": res.next_cursor}
    if not res.total_exact:  # as /stations: a text query over the count cap, total is a lower bound
        body["total_exact"] = False
    return _cached(request, etag, body, "application/geo+json")


CSV_COLUMNS = ["id", "operator_id", "station_id", "name", "operator_name", "address", "district", "district_name",
               "lng", "lat", "station_type", "station_status", "facility_types", "payments", "connectors_total",
               "connectors_free", "availability", "pile_count", "scale", "max_power_kw", "price_now", "electricity_fee",
               "service_fee", "park_fee", "hours", "updated_at"]


def _csv_chunks(db: Database, query: Any) -> Iterator[bytes]:
    yield "\ufeff".encode()  # a BOM, so spreadsheet programs read UTF-8 Chinese correctly
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    with db.engine.connect() as conn:
        for batch in iter_matches(conn, query):
            for it in batch:
                flat = {**it, **it["fees"], "facility_types": "|".join(it["facility_types"]),
                        "payments": "|".join(it["payments"])}
                writer.writerow([flat[c] for c in CSV_COLUMNS])
            yield buf.getvalue().encode("utf-8")
            buf.seek(0)
            buf.truncate()
    rest = buf.getvalue()
    if rest:
        yield rest.encode("utf-8")


@get("/stations.csv", sync_to_thread=True, dependencies={"search_params": Provide(_search_params,
                                                                                 sync_to_thread=False)},
     tags=["stations"], summary="Every matching station as CSV (streamed)",
     description="Bulk download: all matches ordered by id, UTF-8 with a BOM; `X-Generated-At` and "
                 "`Last-Modified` give the generation time.", media_type="text/csv")
def stations_csv(request: Request, db: Database, settings: Settings, search_params: None) -> Stream:
    query = parse_search(request.query_params, settings.search, paging=False)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return Stream(partial(_csv_chunks, db, query), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="zhcharge-stations-{now:%Y%m%d}.csv"',
        "X-Generated-At": now.isoformat(),
        "Last-Modified": now.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Cache-Control": "no-cache"})


@get("/reference", sync_to_thread=True, tags=["reference"],
     summary="Every enumeration the API uses, with Chinese and English labels")
def get_reference(request: Request, db: Database, settings: Settings,
                  api_key: Annotated[str | None, Parameter(description="API key")] = None,
                  ) -> Response[ReferenceResponse]:
    check_known(request.query_params, [])
    etag = _etag(request, "reference")
    if _not_modified(request, etag):
        return _cached(request, etag, b"")
    with db.engine.connect() as conn:
        body = reference(conn, settings.search)
    return _cached(request, etag, body)


_STATS_CACHE: dict[tuple[int, int], dict[str, Any]] = {}


@get("/stats", sync_to_thread=True, tags=["reference"],
     summary="Totals: stations, piles, connectors, power, operators; by district, operator and station type")
def get_stats(request: Request, db: Database, settings: Settings,
              api_key: Annotated[str | None, Parameter(description="API key")] = None) -> Response[StatsResponse]:
    check_known(request.query_params, [])
    version = int(request.scope.get("state", {}).get("zh_data_version", 0))
    etag = _etag(request, "stats")
    if _not_modified(request, etag):
        return _cached(request, etag, b"")
    cache_key = (id(db), version)
    body = _STATS_CACHE.get(cache_key)
    if body is None:
        with db.engine.connect() as conn:
            body = stats(conn, version)
        _STATS_CACHE.clear()
        _STATS_CACHE[cache_key] = body
    return _cached(request, etag, body)


api_router = Router(path=API_PREFIX, route_handlers=[list_stations, get_station, stations_geojson, stations_csv,
                                                    get_reference, get_stats],
                    middleware=[RateLimitMiddleware])

ROUTES: list[Any] = [api_router]


def on_startup(app) -> None:  # noqa: ANN001 - a Litestar app
    """The daily re-ordering of the search table in space (services.search.maintenance), in the processes
    that run background jobs (one at a time across them)."""
    settings: Settings = app.state["settings"]
    if settings.app.run_scheduler and settings.search.cluster_hour >= 0:
        from services.search.maintenance import cluster_job

        job = cluster_job(app.state["db"].engine, settings.search.cluster_hour)
        job.start()
        app.state["search_cluster_job"] = job


def on_shutdown(app) -> None:  # noqa: ANN001
    job = app.state.get("search_cluster_job")
    if job is not None:
        job.stop()

"""The public charging map (mission P2): ``/map``, a station's details for the popup, and live
data versions over Server-Sent Events.

The page draws our own vector tiles (``/tiles/...``); base map = ``TileSettings.basemap_style_url``
when set, else an offline style from our district tiles. Popups read the open API
(``/api/v1/stations/{id}``) and fall back to ``/map/stations/{id}.json`` (same shape, no API
quota), e.g. when the API answers 429.

With ``ZHCHARGE_TILES_PMTILES_URL`` (``TileSettings.pmtiles_url``) the page draws the stations
from that PMTiles archive (``zhcharge tiles export``) through the pmtiles protocol and paints live
status on it from ``/map/status.json`` (``tiles.status``); a filtered view reads the live tiles.
``/map/pmtiles/NAME.pmtiles`` serves archives from ``<ZHCHARGE_DATA_DIR>/pmtiles/`` with HTTP range
requests, for a deployment without a CDN (and for the tests).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import AsyncGenerator, Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
from litestar import Request, Response, get
from litestar.response import ServerSentEvent, Stream, Template
from litestar.response.sse import ServerSentEventMessage
from litestar.utils.scope.state import ScopeState

from portal_site.i18n import lang_of
from portal_site.routes.tiles import tile_service
from services.db import Database
from services.errors import BadRequest, NotFound
from services.params import int_param
from services.stations import enums
from services.stations.vocab import AVAILABILITY, FACILITY_TYPES, PAYMENTS

__all__ = ["ROUTES"]

_STREAM_LIFETIME_S = 30.0

# Strings the page's script needs, in both languages (templates use t(); scripts get this table).
JS_TEXT: dict[str, tuple[str, str]] = {
    "loading": ("正在加载…", "Loading…"),
    "load_failed": ("加载失败，请稍后重试", "Could not load; please retry"),
    "operator": ("运营商", "Operator"),
    "address": ("地址", "Address"),
    "hours": ("营业时间", "Opening hours"),
    "fees": ("收费", "Fees"),
    "electricity_fee": ("电费", "Electricity"),
    "service_fee": ("服务费", "Service fee"),
    "park_fee": ("停车费", "Parking"),
    "payment": ("支付方式", "Payment"),
    "connectors": ("充电接口", "Connectors"),
    "free_of": ("空闲", "free"),
    "navigate": ("导航（高德地图）", "Navigate (Amap)"),
    "open_in_map": ("在其他地图中打开", "Open in another map app"),
    "stations": ("个充电站", "stations"),
    "connectors_free": ("个接口空闲", "connectors free"),
    "fast": ("快", "DC"),
    "slow": ("慢", "AC"),
    "updated": ("状态已更新", "Status updated"),
    "live": ("实时", "Live"),
    "none": ("暂无", "n/a"),
    "kw": ("kW", "kW"),
    "station_type": ("站点类型", "Station type"),
    "unknown": ("未知", "unknown"),
    "price_now": ("当前价格", "Price now"),
    "per_kwh": ("元/度", "yuan/kWh"),
    "until": ("至", "until"),
    "today_prices": ("今日电价（电费+服务费）", "Today's prices (electricity + service)"),
    "cheapest": ("最低", "Cheapest"),
    "now_marker": ("现在", "now"),
    "estimate": ("充 {kwh} 度约", "{kwh} kWh costs about"),
    "minutes": ("分钟", "min"),
    "hours_short": ("小时", "h"),
    "varies": ("各接口价格不同，显示最低价", "Prices differ by connector; the lowest is shown"),
    "no_price": ("暂无价格信息", "No price information yet"),
    "source_policy": ("运营商计费策略", "operator's tariff"),
    "source_fee_text": ("站点公示收费", "posted fees"),
    "source_mixed": ("计费策略与公示收费", "tariffs and posted fees"),
    "price_legend": ("当前价格（元/度）", "Price now (yuan/kWh)"),
    # measured reliability (issue 16): the last 30 days, and the week profile's "usually busy"
    "uptime": ("近30天 {pct}% 的时间可用", "Working {pct} % of the last 30 days"),
    "uptime_note": ("可充电时间占有状态上报时间的比例（离线、故障算作不可用；维护、非营业时间不计）",
                    "Share of the reported time its connectors could charge (offline and fault count as down; "
                    "maintenance and closed hours are left out)"),
    "no_faults": ("无故障", "no faults"),
    "fault_one": ("故障 1 次", "1 fault"),
    "faults": ("故障 {n} 次", "{n} faults"),
    "last_fault": ("最近 {date}", "last on {date}"),
    "date_format": ("{m}月{d}日", "{d} {m}"),
    "months": ("1,2,3,4,5,6,7,8,9,10,11,12", "Jan,Feb,Mar,Apr,May,Jun,Jul,Aug,Sep,Oct,Nov,Dec"),
    "weekdays": ("周一,周二,周三,周四,周五,周六,周日",
                 "Mondays,Tuesdays,Wednesdays,Thursdays,Fridays,Saturdays,Sundays"),
    "busy_on": ("{day}通常", "On {day}"),
    "usually_busy": ("{hour} 左右最忙", "usually busy around {hour}"),
    "not_busy": ("很少有人使用", "rarely busy"),
    "busy_chart": ("各小时通常的繁忙程度", "How busy it usually is, hour by hour"),
    "occupied": ("占用", "occupied"),
}

#: the charge the popup estimates the cost of (kWh): a typical top-up of a car
ESTIMATE_KWH = 30
#: prices (yuan/kWh) the "colour by price" ramp runs between: green, amber, red
PRICE_RAMP = (0.6, 1.2, 1.8)


def _labels(vocab: dict[Any, tuple[str, str]], en: bool) -> dict[str, str]:
    return {str(k): (v[1] if en else v[0]) for k, v in vocab.items()}


def map_config(request: Request) -> dict[str, Any]:
    """Everything map.js needs, as one JSON document embedded in the page."""
    settings = request.app.state.settings
    svc = tile_service(request.app)
    en = lang_of(request) == "en"
    t = settings.tiles
    return {
        "lang": "en" if en else "zh",
        "text": {k: (v[1] if en else v[0]) for k, v in JS_TEXT.items()},
        "availability": _labels(AVAILABILITY, en),
        "facility": _labels(FACILITY_TYPES, en),
        "payment": _labels(PAYMENTS, en),
        "stationType": _labels(enums.STATION_TYPES, en),
        "connectorType": _labels(enums.CONNECTOR_TYPES, en),
        "basemapStyleUrl": t.basemap_style_url,
        # the archive is WGS84: under a GCJ-02 base map the page keeps the live tiles
        "pmtilesUrl": t.pmtiles_url if t.pmtiles_url and t.basemap_crs != "gcj02" else None,
        "crs": t.basemap_crs,
        "maxzoom": min(t.max_zoom, t.tilejson_maxzoom),
        "clusterBelowZoom": t.cluster_below_zoom,
        "version": svc.versions.get("stations"),
        "districtsVersion": svc.versions.get("districts"),
        "center": [113.45, 22.2],
        "zoom": 9.3,
        "bounds": [113.15, 21.95, 113.65, 22.42],  # where Zhuhai's stations are (the far islands left out)
        "initialFilters": request.url.query or "",
        "estimateKwh": ESTIMATE_KWH,
        "priceRamp": list(PRICE_RAMP),
    }


@get("/map", include_in_schema=False, cache=False)
async def map_page(request: Request) -> Template:
    config = map_config(request)
    # Embedded in <script type="application/json">: escape what could end the element or start markup.
    config_json = (json.dumps(config, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
                   .replace("&", "\\u0026"))
    return Template(template_name="map.html", context={"config_json": config_json, "price_ramp": PRICE_RAMP,
                                                           "pmtiles": bool(config["pmtilesUrl"])})


@get("/map/stations/{name:str}", sync_to_thread=True, include_in_schema=False, cache=False)
def station_json(request: Request, db: Database, name: str) -> Response[dict]:
    """The popup's details (the same shape and parameters as ``/api/v1/stations/{id}``: ``crs``,
    ``kwh``), without the API quota."""
    from portal_site.routes.api import load_station

    pk_text, _, ext = name.partition(".")
    if ext != "json" or not pk_text.isdigit() or not 0 < int(pk_text) < 2**63:
        raise NotFound(f"no such station: {name[:40]}")
    return Response(load_station(request, db, int(pk_text)), headers={"Cache-Control": "no-cache"})


@get("/map/events", include_in_schema=False, cache=False)
async def map_events(request: Request) -> ServerSentEvent:
    """Data versions as Server-Sent Events: one ``version`` event now and on every change (at most
    one per ``sse_min_interval_s``, so a burst of status pushes is one tile refresh), and a comment
    every 15 s to keep proxies from closing the stream. The page re-requests tiles with ``v=``.

    A stream ends after ``_STREAM_LIFETIME_S`` and the browser reconnects by itself (``retry``):
    uvicorn's graceful shutdown waits for open responses, so an endless stream would hold it up."""
    svc = tile_service(request.app)
    min_interval = request.app.state.settings.tiles.sse_min_interval_s

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        last: dict[str, int] | None = None
        last_sent = 0.0
        last_beat = started = time.monotonic()
        while time.monotonic() - started < _STREAM_LIFETIME_S:
            now = time.monotonic()
            current = {"stations": svc.versions.get("stations"), "districts": svc.versions.get("districts")}
            if current != last and now - last_sent >= min_interval:
                last, last_sent, last_beat = current, now, now
                yield ServerSentEventMessage(event="version", data=json.dumps(current), retry=1000)
            elif now - last_beat >= 15:
                last_beat = now
                yield ServerSentEventMessage(comment="keep-alive")
            await asyncio.sleep(0.25)

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@get("/map/status.json", include_in_schema=False, cache=False)
async def status_json(request: Request) -> Response[bytes]:
    """Live status of the stations (``z`` at or above the cluster zoom) or clusters (below) in
    ``bbox``, for the map drawn from a PMTiles archive (``tiles.status``). ETag from the data
    version: ``304`` on ``If-None-Match`` without touching the database."""
    from services.search.query import check_known
    from tiles.status import live_status

    svc = tile_service(request.app)
    params = request.query_params
    check_known(params, ("bbox", "z", "v"))
    z = int_param(params.get("z"), "z", lo=0, hi=svc.tiles.max_zoom)
    if z is None:
        raise BadRequest("parameter 'z' is required (the tile zoom of the view)", param="z")
    bbox = params.get("bbox") or ""
    version = svc.versions.get("stations")
    etag = '"' + hashlib.blake2b(f"{version}|{z}|{bbox}".encode(), digest_size=12).hexdigest() + '"'
    headers = {"ETag": etag, "Cache-Control": svc.cache_control, "Vary": "Accept-Encoding"}
    inm = request.headers.get("if-none-match")
    if inm and etag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
        return Response(b"", status_code=304, headers=headers)
    body = await anyio.to_thread.run_sync(lambda: live_status(svc, bbox, z))
    body["version"] = version
    return Response(json.dumps(body, separators=(",", ":")).encode(), media_type="application/json", headers=headers)


_ARCHIVE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}\.pmtiles$")
_RANGE = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
_CHUNK = 256 * 1024


def archive_dir(settings: Any) -> Path:
    """Where ``/map/pmtiles/`` finds archives: ``<ZHCHARGE_DATA_DIR>/pmtiles``."""
    return Path(settings.db.data_dir) / "pmtiles"


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one range ``header`` asks for, clipped to the file (inclusive ends); None for the whole
    file (no header, several ranges, or a form we do not take: RFC 9110 lets a server ignore
    Range); raises ``ValueError`` when it cannot be satisfied."""
    m = _RANGE.match((header or "").strip())
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise ValueError
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise ValueError
    return start, end


def _read(path: Path, start: int, end: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = f.read(min(_CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


@get("/map/pmtiles/{name:str}", include_in_schema=False, cache=False)
async def pmtiles_file(request: Request, name: str) -> Response[bytes] | Stream:
    """A PMTiles archive from :func:`archive_dir`, with single-range requests (``206``, ``416``,
    ``If-Range``), a strong ETag from the file's size and modification time (the pmtiles client
    notices a replaced archive by it) and no compression (the ranges are of the file's bytes)."""
    if not _ARCHIVE_NAME.match(name):
        raise NotFound("no such archive")
    path = archive_dir(request.app.state.settings) / name
    try:
        st = path.stat()
    except OSError:
        raise NotFound("no such archive") from None
    if not path.is_file():
        raise NotFound("no such archive")
    size = st.st_size
    etag = f'"{size:x}-{st.st_mtime_ns:x}"'
    ScopeState.from_scope(request.scope).is_cached = True  # byte ranges: never gzip them
    headers = {"Accept-Ranges": "bytes", "ETag": etag, "Last-Modified": formatdate(st.st_mtime, usegmt=True),
               "Cache-Control": "public, max-age=60"}
    req_headers = request.headers
    rng_header = req_headers.get("range")
    if_range = req_headers.get("if-range")
    if if_range and if_range.strip() != etag:
        rng_header = None  # the client's copy is of another archive: send this one whole
    if rng_header is None and (inm := req_headers.get("if-none-match")):
        if etag in [t.strip().removeprefix("W/") for t in inm.split(",")]:
            return Response(b"", status_code=304, headers=headers)
    try:
        rng = _byte_range(rng_header, size)
    except ValueError:
        return Response(b"", status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end = rng if rng is not None else (0, size - 1)
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    if rng is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    status = 206 if rng is not None else 200
    if length <= _CHUNK:
        data = await anyio.to_thread.run_sync(lambda: b"".join(_read(path, start, end)))
        return Response(data, status_code=status, media_type="application/octet-stream", headers=headers)
    return Stream(_read(path, start, end), status_code=status, media_type="application/octet-stream",
                  headers=headers)


ROUTES = [map_page, station_json, map_events, status_json, pmtiles_file]

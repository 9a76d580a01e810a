"""The public charging map (mission P2): ``/map``, a station's details for the popup, and live
data versions over Server-Sent Events.

The page draws our own vector tiles (``/tiles/...``); base map = ``TileSettings.basemap_style_url``
when set, else an offline style from our district tiles. Popups read the open API
(``/api/v1/stations/{id}``) and fall back to ``/map/stations/{id}.json`` (same shape, no API
quota), e.g. when the API answers 429.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

from litestar import Request, Response, get
from litestar.response import ServerSentEvent, Template
from litestar.response.sse import ServerSentEventMessage

from portal_site.i18n import lang_of
from portal_site.routes.tiles import tile_service
from services.db import Database
from services.errors import NotFound
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
    return Template(template_name="map.html", context={"config_json": config_json, "price_ramp": PRICE_RAMP})


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


ROUTES = [map_page, station_json, map_events]

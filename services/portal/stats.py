"""Live operation statistics of the platform (P1): stations, piles, connectors, rated power and
operators, in total, by district and by station type; and the charging of the last 30 days from
the orders (sessions, energy, the average price paid per kWh, by day, district, operator and
facility type: :func:`charging_stats`).

Computed from the feed tables (``stations``, ``equipment``, ``connectors``) in one statement
(``sql/queries/portal_stats.sql``). The home page only calls :func:`platform_stats` for these, so it can be
swapped for the search service's ``GET /api/v1/stats`` without touching the page.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.db import read_sql
from services.orders.daily import DIMENSIONS, charging_daily
from services.orders.window import Window, china_today
from services.stations.enums import STATION_TYPES

__all__ = ["CHARGING_TTL_S", "charging_stats", "platform_stats"]

CHARGING_TTL_S = 300.0
_charging_cache: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
_charging_lock = threading.Lock()


def platform_stats(conn: Any, city_adcode: int = 440400) -> dict[str, Any]:
    """``{"totals": {...}, "by_district": [...], "by_type": [...]}``; districts with no station
    are listed too (zeros), so the chart always shows the whole city."""
    rows = conn.execute(text(read_sql("queries/portal_stats.sql"))).mappings().all()
    districts = conn.execute(text("SELECT adcode, name, name_en FROM districts WHERE city_adcode = :c ORDER BY adcode"),
                             {"c": city_adcode}).mappings().all()

    def blank() -> dict[str, Any]:
        return {"stations": 0, "piles": 0, "connectors": 0, "power_kw": Decimal(0), "operators": set()}

    totals = blank()
    by_district: dict[int | None, dict[str, Any]] = {d["adcode"]: blank() for d in districts}
    by_type: dict[int, dict[str, Any]] = {}
    for r in rows:
        for bucket in (totals, by_district.setdefault(r["adcode"], blank()), by_type.setdefault(r["station_type"], blank())):
            bucket["stations"] += r["stations"]
            bucket["piles"] += int(r["piles"])
            bucket["connectors"] += int(r["connectors"])
            bucket["power_kw"] += Decimal(r["power_kw"])
            bucket["operators"].update(r["operators"] or ())

    def out(bucket: dict[str, Any], **labels: Any) -> dict[str, Any]:
        return {**labels, "stations": bucket["stations"], "piles": bucket["piles"], "connectors": bucket["connectors"],
                "power_kw": float(bucket["power_kw"]), "operators": len(bucket["operators"])}

    names = {d["adcode"]: (d["name"], d["name_en"] or d["name"]) for d in districts}
    district_list = [out(b, adcode=code, name=names.get(code, ("未知区域", "unknown"))[0],
                         name_en=names.get(code, ("未知区域", "unknown"))[1])
                     for code, b in by_district.items() if code in names or b["stations"]]
    type_list = [out(b, station_type=st, name=STATION_TYPES.get(st, ("其他", "other"))[0],
                     name_en=STATION_TYPES.get(st, ("其他", "other"))[1])
                 for st, b in sorted(by_type.items())]
    return {"totals": out(totals), "by_district": district_list, "by_type": type_list}


def charging_stats(conn: Any, days: int = 30) -> dict[str, Any]:
    """The city's charging over the last ``days`` China days, for the home page: ``total``
    (sessions, energy_kwh, money_yuan, avg_price), ``daily`` and per dimension (district, operator,
    facility) the window's ``rows`` and the ``series`` per day (the district stack of the chart).

    Aggregating every order is not for each visit: the answer is kept for :data:`CHARGING_TTL_S`
    seconds, and sooner replaced when an order arrives (the newest order id is part of the key).
    """
    newest = conn.execute(text("SELECT max(id) FROM charge_orders")).scalar()
    today = china_today()
    key = (days, today, newest)
    now = time.monotonic()
    with _charging_lock:
        hit = _charging_cache.get(key)
        if hit is not None and now - hit[0] < CHARGING_TTL_S:
            return hit[1]
    c = charging_daily(conn, Window.last(days, today))
    out: dict[str, Any] = {"days": [d.isoformat() for d in sorted(c.daily)], "total": c.total.as_row(),
                           "daily": [c.daily[d].as_row() for d in sorted(c.daily)]}
    for dim in DIMENSIONS:
        keys = c.keys(dim)
        out[dim] = [{"name": c.labels[dim][k][0], "name_en": c.labels[dim][k][1], **c.totals[dim][k].as_row()}
                    for k in keys]
        out[f"{dim}_series"] = [{"name": c.labels[dim][k][0], "name_en": c.labels[dim][k][1],
                                 "energy": [float(c.by_day[dim][(d, k)].energy_kwh) if (d, k) in c.by_day[dim] else 0
                                            for d in sorted(c.daily)]} for k in keys]
    with _charging_lock:
        _charging_cache.clear()  # only the newest answer is worth keeping
        _charging_cache[key] = (now, out)
    return out

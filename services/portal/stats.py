"""Live operation statistics of the platform (P1): stations, piles, connectors, rated power and
operators, in total, by district and by station type.

Computed from the feed tables (``stations``, ``equipment``, ``connectors``) in one statement
(``sql/queries/portal_stats.sql``). The home page only calls :func:`platform_stats`, so it can be
swapped for the search service's ``GET /api/v1/stats`` without touching the page.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.db import read_sql
from services.stations.enums import STATION_TYPES

__all__ = ["platform_stats"]


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

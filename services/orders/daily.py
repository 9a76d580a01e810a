"""Charging statistics from the orders (issue 15, item 9): sessions and energy per day by
district, operator and facility type, and the average price drivers actually paid per kWh
(money / energy), for the home page and the regulators' dashboard.

One statement (``sql/queries/charging_daily.sql``) gives every breakdown; :func:`charging_daily`
shapes it. Labels are bilingual pairs; a missing dimension (an order on a connector we do not
know) is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.db import read_sql
from services.orders.window import Window
from services.stations.vocab import EQUIPMENT_TYPE_FACILITY, FACILITY_TYPES

__all__ = ["DIMENSIONS", "Charging", "Figures", "charging_daily"]

UNKNOWN = ("未知", "unknown")
_FEN = Decimal("0.01")
#: dimension -> (column of the query, its GROUPING flag, zh, en)
DIMENSIONS: dict[str, tuple[str, str, str, str]] = {
    "district": ("district_adcode", "all_districts", "区", "district"),
    "operator": ("operator_id", "all_operators", "运营商", "operator"),
    "facility": ("equipment_type", "all_facilities", "设施类型", "facility type"),
}


@dataclass
class Figures:
    sessions: int = 0
    energy_kwh: Decimal = Decimal(0)
    money_yuan: Decimal = Decimal(0)

    @property
    def avg_price(self) -> Decimal | None:
        """Yuan per kWh actually paid (4 decimals); None without energy.

        >>> Figures(2, Decimal("30"), Decimal("37.50")).avg_price, Figures().avg_price
        (Decimal('1.2500'), None)
        """
        return (self.money_yuan / self.energy_kwh).quantize(Decimal("0.0001")) if self.energy_kwh else None

    def as_row(self, *, exact: bool = False) -> dict[str, Any]:
        """``{sessions, energy_kwh, money_yuan, avg_price}``: Decimals to the fen (tables, CSV) when
        ``exact``, floats otherwise (chart JSON)."""
        if exact:
            return {"sessions": self.sessions, "energy_kwh": self.energy_kwh.quantize(_FEN),
                    "money_yuan": self.money_yuan.quantize(_FEN), "avg_price": self.avg_price}
        return {"sessions": self.sessions, "energy_kwh": float(self.energy_kwh), "money_yuan": float(self.money_yuan),
                "avg_price": float(self.avg_price) if self.avg_price is not None else None}


@dataclass
class Charging:
    """``total`` and ``daily`` (every day of the window, zeros included) for the city; per
    dimension, ``labels`` (key -> (zh, en)), ``totals`` (key -> Figures over the window) and
    ``daily`` ((day, key) -> Figures)."""

    window: Window
    total: Figures = field(default_factory=Figures)
    daily: dict[date, Figures] = field(default_factory=dict)
    labels: dict[str, dict[Any, tuple[str, str]]] = field(default_factory=dict)
    totals: dict[str, dict[Any, Figures]] = field(default_factory=dict)
    by_day: dict[str, dict[tuple[date, Any], Figures]] = field(default_factory=dict)

    def keys(self, dim: str) -> list[Any]:
        """The keys of a dimension, the most energy first."""
        return sorted(self.totals[dim], key=lambda k: (-self.totals[dim][k].energy_kwh, self.labels[dim][k]))

    def rows(self, dim: str, lang: str = "zh") -> list[dict[str, Any]]:
        """Flat rows ``{day, label, sessions, energy_kwh, money_yuan, avg_price}``, newest day first."""
        order = {k: i for i, k in enumerate(self.keys(dim))}
        out = []
        for (day, key), f in sorted(self.by_day[dim].items(), key=lambda x: (-x[0][0].toordinal(), order[x[0][1]])):
            out.append({"day": day.isoformat(), "label": self.labels[dim][key][1 if lang == "en" else 0],
                        **f.as_row(exact=True)})
        return out


def _figures(r: Any) -> Figures:
    return Figures(int(r["sessions"]), Decimal(r["energy_kwh"]), Decimal(r["money_yuan"]))


def charging_daily(conn: Any, window: Window) -> Charging:
    rows = conn.execute(text(read_sql("queries/charging_daily.sql")),
                        {"a": window.day_from, "b": window.day_to}).mappings().all()
    out = Charging(window, daily={d: Figures() for d in window.each_day()})
    for dim in DIMENSIONS:
        out.labels[dim], out.totals[dim], out.by_day[dim] = {}, {}, {}
    for r in rows:
        split = [dim for dim, (_, flag, _, _) in DIMENSIONS.items() if not r[flag]]
        if not split:
            if r["all_days"]:
                out.total = _figures(r)
            else:
                out.daily[r["day"]] = _figures(r)
            continue
        dim = split[0]
        key = r[DIMENSIONS[dim][0]]
        if r["all_days"]:
            out.totals[dim][key] = _figures(r)
        else:
            out.by_day[dim][(r["day"], key)] = _figures(r)
    _label(conn, out)
    return out


def _label(conn: Any, out: Charging) -> None:
    districts = {r.adcode: (r.name, r.name_en or r.name) for r in conn.execute(text(
        "SELECT adcode, name, name_en FROM districts WHERE adcode = ANY(:a)"),
        {"a": [k for k in out.totals["district"] if k is not None]})}
    operators = {r.operator_id: (r.name, r.name) for r in conn.execute(text(
        "SELECT operator_id, name FROM operators WHERE operator_id = ANY(:o)"), {"o": list(out.totals["operator"])})}
    for k in out.totals["district"]:
        out.labels["district"][k] = districts.get(k, UNKNOWN)
    for k in out.totals["operator"]:
        out.labels["operator"][k] = operators.get(k, (k, k))
    for k in out.totals["facility"]:
        out.labels["facility"][k] = FACILITY_TYPES.get(EQUIPMENT_TYPE_FACILITY.get(k, ""), UNKNOWN)

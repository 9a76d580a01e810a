"""Figures over charge orders: one operator's window (``zhcharge orders stats``), price execution
per operator and station (the regulators' page), and energy per day by district, operator and
facility type (home page and dashboard). Every figure counts each order once, in its latest
version; dates are China dates of the order's end.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text

__all__ = ["order_stats"]

_STATS = text("""
SELECT count(*) AS orders,
       coalesce(sum(total_power), 0) AS energy_kwh,
       coalesce(sum(total_money), 0) AS money_yuan,
       count(*) FILTER (WHERE confirm_result = 1) AS disputed,
       count(*) FILTER (WHERE overcharge_yuan > 0) AS overcharged,
       coalesce(sum(overcharge_yuan), 0) AS overcharge_yuan
FROM charge_orders
WHERE latest AND operator_id = :op
  AND (CAST(:a AS date) IS NULL OR day >= :a) AND (CAST(:b AS date) IS NULL OR day <= :b)
""")


def _money(value: Any) -> float:
    return float(Decimal(value).quantize(Decimal("0.01")))


def order_stats(conn: Any, operator_id: str, day_from: date | None = None, day_to: date | None = None) -> dict[str, Any]:
    """``{orders, energy_kwh, money_yuan, disputed, overcharged, overcharge_yuan}`` of the orders of
    ``operator_id`` that ended from ``day_from`` to ``day_to`` (China dates, both included)."""
    r = conn.execute(_STATS, {"op": operator_id, "a": day_from, "b": day_to}).one()
    return {"operator_id": operator_id, "from": day_from.isoformat() if day_from else None,
            "to": day_to.isoformat() if day_to else None, "orders": r.orders, "energy_kwh": _money(r.energy_kwh),
            "money_yuan": _money(r.money_yuan), "disputed": r.disputed, "overcharged": r.overcharged,
            "overcharge_yuan": _money(r.overcharge_yuan)}

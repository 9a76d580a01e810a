"""The energy of a station's charge orders in a window of days, each order classified by whether it
may be the basis of money (per-kWh subsidies, ``services.subsidy.energy``) and, if not, why.

An order counts when its **latest version** ended in the window (its China ``day``), was
**accepted** on receipt (``confirm_result = 0``) and the operator's latest reconciliation list
**agreed** with it (``reconcile_state = 'agreed'``). Every other order is excluded with the first
reason that applies, in this order (:func:`classify`):

``disputed_on_receipt``
    answered ConfirmResult 1 when it arrived; the codes are its error findings (``over_tariff``,
    ``total_money``, ``energy`` …);
``reconcile_disputed``
    the operator's daily list disagreed with it; the codes are the dispute reasons
    (``dispute_2`` money differs, ``dispute_3`` energy differs);
``unlisted``
    the operator's daily list for its day left it out;
``revised_unreconciled``
    a revision arrived (version > 1) and no list has spoken of that version yet;
``unreconciled``
    no reconciliation list has covered it yet.

Orders belong to the station they were received for (``station_pk``) or, for one received before
its connector was known (no station then), to the station its connector belongs to now; they are
attributed to a pile (EquipmentID) through their connector (``None`` when the connector is gone
from the feed).

>>> classify(0, "agreed", 1), classify(1, "agreed", 1), classify(0, None, 2), classify(0, None, 1)
('counted', 'disputed_on_receipt', 'revised_unreconciled', 'unreconciled')
>>> classify(0, "disputed", 3), classify(0, "unlisted", 1)
('reconcile_disputed', 'unlisted')
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import text

from services.orders.execution import REASONS as DISPUTE_REASONS

__all__ = ["COUNTED", "EXCLUSIONS", "OrderEnergy", "Tally", "classify", "code_label", "station_order_energy"]

COUNTED = "counted"
#: every reason an order is not counted, in the order :func:`classify` tries them: (zh, en)
EXCLUSIONS: dict[str, tuple[str, str]] = {
    "disputed_on_receipt": ("接收时存疑（已答复 ConfirmResult 1）", "disputed on receipt (answered ConfirmResult 1)"),
    "reconcile_disputed": ("对账争议", "disputed in the reconciliation"),
    "unlisted": ("运营商对账清单未列出", "left out of the operator's reconciliation list"),
    "revised_unreconciled": ("订单已修订，最新版本尚未对账", "revised; the latest version is not reconciled yet"),
    "unreconciled": ("尚未对账", "not reconciled yet"),
}


def classify(confirm_result: int, reconcile_state: str | None, version: int) -> str:
    """:data:`COUNTED` or the key of :data:`EXCLUSIONS` that excludes the order (see the module doc)."""
    if confirm_result != 0:
        return "disputed_on_receipt"
    if reconcile_state == "agreed":
        return COUNTED
    if reconcile_state == "disputed":
        return "reconcile_disputed"
    if reconcile_state == "unlisted":
        return "unlisted"
    return "revised_unreconciled" if version > 1 else "unreconciled"


def code_label(code: str, lang: str = "zh") -> str:
    """A finding code as it is, a reconciliation dispute code (``dispute_2``) by its reason.

    >>> code_label("over_tariff"), code_label("dispute_2"), code_label("dispute_3", "en")
    ('over_tariff', '金额不符', 'energy differs')
    """
    if code.startswith("dispute_") and code[8:].isdigit() and int(code[8:]) in DISPUTE_REASONS:
        zh, en = DISPUTE_REASONS[int(code[8:])]
        return en if lang == "en" else zh
    return code


@dataclass
class Tally:
    """A number of orders, their energy (kWh, exact) and how many of them carry each code."""

    orders: int = 0
    kwh: Decimal = Decimal(0)
    codes: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.orders += other.orders
        self.kwh += other.kwh
        self.codes.update(other.codes)


@dataclass
class OrderEnergy:
    """A station's orders of a window, by pile (EquipmentID, ``None``: connector no longer known)
    and by class (:data:`COUNTED` or a key of :data:`EXCLUSIONS`)."""

    start: date
    end: date
    by_equipment: dict[str | None, dict[str, Tally]] = field(default_factory=dict)

    def _piles(self, equipment_ids: Iterable[str | None] | None) -> list[dict[str, Tally]]:
        if equipment_ids is None:
            return list(self.by_equipment.values())
        return [self.by_equipment[e] for e in dict.fromkeys(equipment_ids) if e in self.by_equipment]

    def counted(self, equipment_ids: Iterable[str | None] | None = None) -> Tally:
        """The orders that count, of these piles (all of the station's by default)."""
        out = Tally()
        for pile in self._piles(equipment_ids):
            if COUNTED in pile:
                out.add(pile[COUNTED])
        return out

    def excluded(self, equipment_ids: Iterable[str | None] | None = None) -> dict[str, Tally]:
        """The excluded orders of these piles by reason, in the order of :data:`EXCLUSIONS`
        (only the reasons that occur)."""
        out: dict[str, Tally] = {}
        for reason in EXCLUSIONS:
            for pile in self._piles(equipment_ids):
                if reason in pile:
                    out.setdefault(reason, Tally()).add(pile[reason])
        return out

    def received(self, equipment_ids: Iterable[str | None] | None = None) -> Tally:
        """Every order of these piles, counted or not."""
        out = Tally()
        for pile in self._piles(equipment_ids):
            for t in pile.values():
                out.add(t)
        return out


_ORDERS = text("""
WITH con AS (
    SELECT c.connector_id, e.equipment_id
    FROM connectors c JOIN equipment e ON e.id = c.equipment_pk
    WHERE c.operator_id = :op
      AND c.station_pk = (SELECT id FROM stations WHERE operator_id = :op AND station_id = :sid)
), o AS (
    -- both branches can read ix_charge_orders_station_day (a btree holds the NULLs too)
    SELECT id, start_charge_seq, version, connector_id, total_power, confirm_result, findings, reconcile_state,
           reconciled_by
    FROM charge_orders
    WHERE latest AND station_pk = (SELECT id FROM stations WHERE operator_id = :op AND station_id = :sid)
      AND day BETWEEN :a AND :b AND operator_id = :op
    UNION ALL
    SELECT id, start_charge_seq, version, connector_id, total_power, confirm_result, findings, reconcile_state,
           reconciled_by
    FROM charge_orders
    WHERE latest AND station_pk IS NULL AND day BETWEEN :a AND :b AND operator_id = :op
      AND connector_id IN (SELECT connector_id FROM con)
)
SELECT con.equipment_id, o.confirm_result, o.reconcile_state, o.version > 1 AS revised,
       CASE WHEN o.confirm_result <> 0 THEN
                ARRAY(SELECT DISTINCT f->>'code' FROM jsonb_array_elements(o.findings) f
                      WHERE f->>'severity' = 'error' ORDER BY 1)
            WHEN o.reconcile_state = 'disputed' THEN
                ARRAY(SELECT DISTINCT 'dispute_' || (d->>'DisputeReason')
                      FROM order_checks k, jsonb_array_elements(k.disputes) d
                      WHERE k.id = o.reconciled_by AND d->>'StartChargeSeq' = o.start_charge_seq ORDER BY 1)
            ELSE CAST('{}' AS text[]) END AS codes,
       count(*) AS orders, sum(o.total_power) AS kwh
FROM o LEFT JOIN con ON con.connector_id = o.connector_id
GROUP BY 1, 2, 3, 4, 5
""")


def station_order_energy(conn: Any, operator_id: str, station_id: str, start: date, end: date) -> OrderEnergy:
    """The orders of the operator's station ``station_id`` (its StationID) that ended from
    ``start`` to ``end`` (China dates, both included), latest versions, classified. ``conn`` is a
    SQLAlchemy connection or session."""
    out = OrderEnergy(start, end)
    if start > end:
        return out
    for r in conn.execute(_ORDERS, {"op": operator_id, "sid": station_id, "a": start, "b": end}):
        reason = classify(r.confirm_result, r.reconcile_state, 2 if r.revised else 1)
        t = out.by_equipment.setdefault(r.equipment_id, {}).setdefault(reason, Tally())
        t.add(Tally(int(r.orders), Decimal(r.kwh), Counter({c: int(r.orders) for c in (r.codes or [])})))
    return out

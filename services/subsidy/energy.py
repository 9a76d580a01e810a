"""The energy of per-kWh subsidies: **reconciled charge orders**, with the operator's
``query_station_stats`` (T/CEC 102) as a cross-check.

The basis of money (:class:`EnergyBasis`) is the energy of the orders of the claimed piles that
ended in the subsidy period up to the day of the calculation and that were accepted, reconciled
and undisputed (:mod:`services.orders.energy` classifies every order and names why one does not
count). A pile without such orders earns 0 kWh; a claim whose piles have **no orders at all** is
flagged ``no_orders``: the statistics never stand in for missing orders.

The statistics are only compared (:class:`CrossCheck`): over the claimed piles when the answer
breaks the station down by EquipmentID, otherwise over the whole station (``StationElectricity``
against the counted orders of every pile of the station). A difference of more than
:data:`TOLERANCE` (5 %) of the statistics' figure, either way, is flagged ``stats_difference``;
statistics that cannot be read are flagged ``stats_unavailable``. Neither changes the amount.

The service never calls the feed itself (``services`` does not import ``ingest``): the web layer
passes an :data:`EnergySource`, a callable ``(operator_id, station_id, start, end) -> StationEnergy``
(``portal_site.routes.subsidy.feed_energy_source`` in production, a fake in tests).

>>> e = parse_station_stats({"StationID": "S1", "StationElectricity": 30.3,
...     "EquipmentStatsInfos": [{"EquipmentID": "E1", "EquipmentElectricity": 10.1},
...                             {"EquipmentID": "E2", "EquipmentElectricity": 20.2}]})
>>> e.total, e.for_equipment("E2"), e.for_equipment("E9")
(Decimal('30.3'), Decimal('20.2'), Decimal('0'))
>>> c = CrossCheck(Decimal("105.01"), Decimal("100"), "facilities")
>>> c.flagged, c.percent
(True, Decimal('5.01'))
>>> [CrossCheck(Decimal(k), Decimal("100"), "facilities").flagged for k in ("95", "105")]  # exactly 5 %: not over
[False, False]
>>> CrossCheck(Decimal("94.99"), Decimal("100"), "station").flagged, CrossCheck(Decimal(0), Decimal(0), "station").flagged
(True, False)
>>> CrossCheck(Decimal("0.01"), Decimal(0), "station").flagged, CrossCheck(Decimal(1), None, "station").flagged
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from services.orders.energy import OrderEnergy, Tally, station_order_energy
from services.subsidy.amounts import as_decimal
from services.subsidy.eligibility import Failure

__all__ = ["TOLERANCE", "CrossCheck", "EnergyBasis", "EnergySource", "EnergyUnavailable", "Flag", "StationEnergy",
           "energy_basis", "kwh_text", "parse_station_stats"]

TOLERANCE = Decimal("0.05")
"""The largest difference between the orders and the statistics that is not flagged (a share of
the statistics' figure)."""


class EnergyUnavailable(Exception):
    """The energy figures could not be obtained (feed not connected, operator system down)."""


@dataclass(frozen=True)
class StationEnergy:
    total: Decimal
    per_equipment: dict[str, Decimal] = field(default_factory=dict)

    def for_equipment(self, equipment_id: str) -> Decimal:
        return self.per_equipment.get(equipment_id, Decimal(0))


EnergySource = Callable[[str, str, date, date], StationEnergy]


def _num(value: Any) -> Decimal:
    try:
        d = as_decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return Decimal(0)
    return d if d.is_finite() and d >= 0 else Decimal(0)


def kwh_text(value: Decimal) -> str:
    """kWh as written in messages: no exponent, no trailing zeros.

    >>> kwh_text(Decimal("100.000")), kwh_text(Decimal("37.50")), kwh_text(Decimal(0))
    ('100', '37.5', '0')
    """
    return f"{value.normalize():f}"


def parse_station_stats(stats: dict[str, Any]) -> StationEnergy:
    """``StationStats`` → totals; missing or malformed numbers count as 0 kWh."""
    per: dict[str, Decimal] = {}
    for eq in stats.get("EquipmentStatsInfos") or []:
        if isinstance(eq, dict) and eq.get("EquipmentID"):
            per[str(eq["EquipmentID"])] = per.get(str(eq["EquipmentID"]), Decimal(0)) + _num(eq.get("EquipmentElectricity"))
    total = _num(stats.get("StationElectricity")) if stats.get("StationElectricity") is not None else sum(per.values(), Decimal(0))
    return StationEnergy(total, per)


Flag = Failure
"""Something the reviewer should look at: a stable ``code`` (``no_orders``, ``stats_difference``,
``stats_unavailable``, ``changed``) and the message in both languages, shaped like an
eligibility failure so the pages render both alike."""


@dataclass(frozen=True)
class CrossCheck:
    """The counted order energy against ``query_station_stats`` over the same ``scope``:
    ``facilities`` (the claimed piles) or ``station`` (the answer has no per-pile figures).
    ``stats_kwh`` is ``None`` when the statistics could not be read (``error`` says why)."""

    orders_kwh: Decimal
    stats_kwh: Decimal | None
    scope: str
    error: str | None = None

    @property
    def difference(self) -> Decimal | None:
        """Orders minus statistics, kWh."""
        return None if self.stats_kwh is None else self.orders_kwh - self.stats_kwh

    @property
    def percent(self) -> Decimal | None:
        """The difference in per cent of the statistics' figure (2 decimals); ``None`` when that
        figure is unknown or 0."""
        if self.stats_kwh is None or self.stats_kwh == 0:
            return None
        return (self.difference / self.stats_kwh * 100).quantize(Decimal("0.01"))  # type: ignore[operator]

    @property
    def flagged(self) -> bool:
        """More than :data:`TOLERANCE` apart, either way (anything against a statistics' 0)."""
        if self.stats_kwh is None:
            return False
        return abs(self.orders_kwh - self.stats_kwh) > TOLERANCE * self.stats_kwh


@dataclass
class EnergyBasis:
    """The orders behind a per-kWh claim: the station's orders of the period, the claimed piles
    (``equipment_ids``), and (when asked) the statistics of the same period."""

    orders: OrderEnergy
    equipment_ids: tuple[str, ...]
    stats: StationEnergy | None = None
    stats_error: str | None = None
    stats_asked: bool = False
    notes: list[Flag] = field(default_factory=list)

    @property
    def start(self) -> date:
        return self.orders.start

    @property
    def end(self) -> date:
        return self.orders.end

    @property
    def counted(self) -> Tally:
        """The orders that count, of the claimed piles: their kWh is the basis of the amount."""
        return self.orders.counted(self.equipment_ids)

    @property
    def excluded(self) -> dict[str, Tally]:
        """The claimed piles' orders that do not count, by reason."""
        return self.orders.excluded(self.equipment_ids)

    @property
    def excluded_total(self) -> Tally:
        out = Tally()
        for t in self.excluded.values():
            out.add(t)
        return out

    @property
    def received(self) -> Tally:
        return self.orders.received(self.equipment_ids)

    @property
    def other(self) -> Tally:
        """Orders at this station's piles that are not claimed (or whose connector is gone)."""
        others = [e for e in self.orders.by_equipment if e not in self.equipment_ids]
        return self.orders.received(others)

    def kwh_for(self, equipment_id: str) -> Decimal:
        return self.orders.counted([equipment_id]).kwh

    def counted_for(self, equipment_id: str) -> Tally:
        return self.orders.counted([equipment_id])

    def excluded_for(self, equipment_id: str) -> Tally:
        out = Tally()
        for t in self.orders.excluded([equipment_id]).values():
            out.add(t)
        return out

    def stats_for(self, equipment_id: str) -> Decimal | None:
        """The statistics' kWh of one pile (``None`` when unknown or not broken down by pile)."""
        if self.stats is None or not self.stats.per_equipment:
            return None
        return self.stats.for_equipment(equipment_id)

    @property
    def no_orders(self) -> bool:
        return self.received.orders == 0

    @property
    def check(self) -> CrossCheck | None:
        """``None`` when the statistics were not asked for (saving does not need them)."""
        if not self.stats_asked:
            return None
        if self.stats is None:
            return CrossCheck(self.counted.kwh, None, "facilities", self.stats_error)
        if self.stats.per_equipment:
            return CrossCheck(self.counted.kwh, sum((self.stats.for_equipment(e) for e in self.equipment_ids),
                                                   Decimal(0)), "facilities")
        return CrossCheck(self.orders.counted().kwh, self.stats.total, "station")

    @property
    def flags(self) -> list[Flag]:
        out: list[Flag] = []
        if self.no_orders:
            out.append(Flag("no_orders",
                            f"未收到所申报设施 {self.start} 至 {self.end} 的任何充电订单：按订单计 0 kWh"
                            f"（不以充电量统计代替）",
                            f"no charge orders received for the claimed facilities from {self.start} to "
                            f"{self.end}: 0 kWh from orders (the statistics are not used instead)"))
        c = self.check
        if c is not None and c.stats_kwh is None:
            out.append(Flag("stats_unavailable", f"无法与充电量统计核对：{c.error or '统计不可用'}",
                            f"cannot cross-check with the charging statistics: {c.error or 'unavailable'}"))
        elif c is not None and c.flagged:
            scope_zh, scope_en = (("所申报设施", "the claimed facilities") if c.scope == "facilities"
                                  else ("全站", "the whole station"))
            pct = f"{c.percent:+}%" if c.percent is not None else "—"
            out.append(Flag("stats_difference",
                            f"{scope_zh}按订单计入 {kwh_text(c.orders_kwh)} kWh，运营商充电量统计（query_station_stats）为 "
                            f"{kwh_text(c.stats_kwh)} kWh，相差 {pct}，超过 5%",
                            f"{scope_en}: {kwh_text(c.orders_kwh)} kWh from counted orders against "
                            f"{kwh_text(c.stats_kwh)} kWh in the operator's statistics (query_station_stats), {pct}: "
                            f"more than 5 % apart"))
        return out + self.notes


def energy_basis(conn: Any, operator_id: str, station_id: str, equipment_ids: Iterable[str], start: date, end: date,
                 stats_source: EnergySource | None = None) -> EnergyBasis:
    """The orders of ``station_id`` from ``start`` to ``end`` (China dates) for the claimed piles
    and, with a ``stats_source``, the statistics of the same period to compare with."""
    basis = EnergyBasis(station_order_energy(conn, operator_id, station_id, start, end), tuple(equipment_ids))
    if stats_source is not None:
        basis.stats_asked = True
        if start > end:
            basis.stats = StationEnergy(Decimal(0))
        else:
            try:
                basis.stats = stats_source(operator_id, station_id, start, end)
            except EnergyUnavailable as exc:
                basis.stats_error = str(exc)
    return basis

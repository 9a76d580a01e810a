"""Energy charged at a station in a period, for per-kWh rules: the answer of the operator's
``query_station_stats`` (T/CEC 102), reduced to exact Decimals per EquipmentID.

The service never calls the feed itself (``services`` does not import ``ingest``): the web layer
passes an :data:`EnergySource`, a callable ``(operator_id, station_id, start, end) -> StationEnergy``
(``portal_site.routes.subsidy.feed_energy_source`` in production, a fake in tests).

>>> e = parse_station_stats({"StationID": "S1", "StationElectricity": 30.3,
...     "EquipmentStatsInfos": [{"EquipmentID": "E1", "EquipmentElectricity": 10.1},
...                             {"EquipmentID": "E2", "EquipmentElectricity": 20.2}]})
>>> e.total, e.for_equipment("E2"), e.for_equipment("E9")
(Decimal('30.3'), Decimal('20.2'), Decimal('0'))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from services.subsidy.amounts import as_decimal

__all__ = ["EnergySource", "EnergyUnavailable", "StationEnergy", "no_energy_source", "parse_station_stats"]


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


def parse_station_stats(stats: dict[str, Any]) -> StationEnergy:
    """``StationStats`` → totals; missing or malformed numbers count as 0 kWh."""
    per: dict[str, Decimal] = {}
    for eq in stats.get("EquipmentStatsInfos") or []:
        if isinstance(eq, dict) and eq.get("EquipmentID"):
            per[str(eq["EquipmentID"])] = per.get(str(eq["EquipmentID"]), Decimal(0)) + _num(eq.get("EquipmentElectricity"))
    total = _num(stats.get("StationElectricity")) if stats.get("StationElectricity") is not None else sum(per.values(), Decimal(0))
    return StationEnergy(total, per)


def no_energy_source(operator_id: str, station_id: str, start: date, end: date) -> StationEnergy:
    raise EnergyUnavailable("无法获取充电量统计 / the charging statistics are unavailable")

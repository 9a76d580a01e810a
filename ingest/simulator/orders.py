"""Charge orders of the simulated operators (T/CEC 102 part 3), and the faults a platform must catch.

Pure: an order is built from a finished session and the station's tariff history, one
``ChargeDetails`` entry per price period the session crossed. Energy is the connector's power ×
hours × the session's load factor, rounded *down* to 0.01 kWh (so it never exceeds power ×
duration); money is price × energy rounded half up to 0.01 yuan per detail; totals are the sums
of the details and ``TotalMoney`` is electricity + service. Each detail bills the tariff version
in force when its period started, so a tariff change takes effect at the next period boundary.

>>> from ingest.protocol import CHINA_TZ
>>> from ingest.simulator.tariffs import Policy
>>> tou = Policy(((0, 0.3, 0.5), (28800, 0.65, 0.8)))
>>> o, expected = build_order(seq="MA0000001" + "0" * 18, connector_id="C1", power=7.0,
...     start=datetime(2024, 5, 1, 7, 0, tzinfo=CHINA_TZ), end=datetime(2024, 5, 1, 9, 0, tzinfo=CHINA_TZ),
...     load_factor=0.8, stop_reason=0, tariff_at=lambda t: (1, tou))
>>> [(d["DetailStartTime"][11:16], d["DetailPower"], d["DetailElecMoney"], d["DetailSeviceMoney"])
...  for d in o["ChargeDetails"]]
[('07:00', 5.6, 1.68, 2.8), ('08:00', 5.6, 3.64, 4.48)]
>>> o["TotalPower"], o["TotalElecMoney"], o["TotalSeviceMoney"], o["TotalMoney"], o["SumPeriod"]
(11.2, 5.32, 7.28, 12.6, 2)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from ingest.protocol import format_query_time
from ingest.simulator.tariffs import Policy, split

__all__ = [
    "OVERCHARGE", "break_arithmetic", "build_order", "check_data", "kwh", "money", "overcharge", "revise",
    "with_totals",
]

_CENT = Decimal("0.01")
#: Service fee billed above the tariff by the ``order_overcharge_rate`` fault, yuan/kWh.
OVERCHARGE = 0.20

TariffAt = Callable[[datetime], tuple[int, Policy]]
"""The tariff version (number, policy of the connector's kind) in force at a moment."""


def money(price: float, energy: float) -> float:
    """Yuan for ``energy`` kWh at ``price``, half up to the cent.

    >>> money(0.65, 1.5), money(0.3333, 3.0)
    (0.98, 1.0)
    """
    return float((Decimal(str(price)) * Decimal(str(energy))).quantize(_CENT, ROUND_HALF_UP))


def kwh(power_kw: float, seconds: float, load_factor: float) -> float:
    """Energy of ``seconds`` at ``power_kw`` × ``load_factor``, rounded down to 0.01 kWh.

    >>> kwh(7.0, 3600, 0.95), kwh(120.0, 1, 0.55)
    (6.65, 0.01)
    """
    e = Decimal(str(power_kw)) * Decimal(str(seconds)) / 3600 * Decimal(str(load_factor))
    return float(e.quantize(_CENT, ROUND_FLOOR))


def _cents(values: list[float]) -> float:
    return float(sum((Decimal(str(v)) for v in values), Decimal(0)).quantize(_CENT))


def _detail(a: datetime, b: datetime, elec: float, service: float, energy: float) -> dict[str, Any]:
    return {
        "DetailStartTime": format_query_time(a), "DetailEndTime": format_query_time(b),
        "ElecPrice": elec, "SevicePrice": service, "DetailPower": energy,
        "DetailElecMoney": money(elec, energy), "DetailSeviceMoney": money(service, energy),
    }


def with_totals(order: dict[str, Any]) -> dict[str, Any]:
    """``order`` with its totals (and ``SumPeriod``) recomputed from its details."""
    details = order["ChargeDetails"]
    elec = _cents([d["DetailElecMoney"] for d in details])
    service = _cents([d["DetailSeviceMoney"] for d in details])
    return {
        **order,
        "TotalPower": _cents([d["DetailPower"] for d in details]),
        "TotalElecMoney": elec,
        "TotalSeviceMoney": service,
        "TotalMoney": _cents([elec, service]),
        "SumPeriod": len(details),
    }


def build_order(
    *, seq: str, connector_id: str, power: float, start: datetime, end: datetime, load_factor: float,
    stop_reason: int, tariff_at: TariffAt,
) -> tuple[dict[str, Any], list[tuple[float, float, int]]]:
    """The order of a finished session, and per detail the tariff it must bill:
    ``(ElecPrice, SevicePrice, tariff version)``."""
    details, expected = [], []
    for a, b, period_start, _ in split(start, end, tariff_at(start)[1].starts):
        version, policy = tariff_at(period_start)
        elec, service = policy.prices_at(int((period_start - period_start.replace(hour=0, minute=0, second=0))
                                             .total_seconds()))
        d = _detail(a, b, elec, service, kwh(power, (b - a).total_seconds(), load_factor))
        details.append(d)
        expected.append((elec, service, version))
    order = {
        "StartChargeSeq": seq, "ConnectorID": connector_id,
        "StartTime": format_query_time(start), "EndTime": format_query_time(end),
        "TotalPower": 0.0, "TotalElecMoney": 0.0, "TotalSeviceMoney": 0.0, "TotalMoney": 0.0,
        "StopReason": stop_reason, "SumPeriod": 0, "ChargeDetails": details,
    }
    return with_totals(order), expected


def _busiest(order: dict[str, Any]) -> int:
    details = order["ChargeDetails"]
    return max(range(len(details)), key=lambda i: details[i]["DetailPower"])


def overcharge(order: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Bill the busiest detail's service fee ``OVERCHARGE`` above the tariff, money consistent
    with that price (a price-execution violation, not an arithmetic one)."""
    i = _busiest(order)
    details = [dict(d) for d in order["ChargeDetails"]]
    d = details[i]
    before = d["DetailSeviceMoney"]
    d["SevicePrice"] = round(d["SevicePrice"] + OVERCHARGE, 4)
    d["DetailSeviceMoney"] = money(d["SevicePrice"], d["DetailPower"])
    info = {"detail": i, "SevicePrice": d["SevicePrice"], "tariff_SevicePrice": round(d["SevicePrice"] - OVERCHARGE, 4),
            "overcharge_yuan": round(d["DetailSeviceMoney"] - before, 2)}
    return with_totals({**order, "ChargeDetails": details}), info


def break_arithmetic(order: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], dict[str, Any]]:
    """A detail's money ≠ price × energy (totals still its sums), or a total that does not add up."""
    delta = round(rng.uniform(0.30, 3.00), 2)
    kind = rng.choice(("detail_money", "total_money", "total_power"))
    if kind == "detail_money":
        i = _busiest(order)
        field = rng.choice(("DetailElecMoney", "DetailSeviceMoney"))
        details = [dict(d) for d in order["ChargeDetails"]]
        details[i][field] = round(details[i][field] + delta, 2)
        return with_totals({**order, "ChargeDetails": details}), {"kind": kind, "detail": i, "field": field,
                                                                 "delta": delta}
    field = "TotalMoney" if kind == "total_money" else "TotalPower"
    return {**order, field: round(order[field] + delta, 2)}, {"kind": kind, "field": field, "delta": delta}


def revise(order: dict[str, Any], factor: float) -> dict[str, Any] | None:
    """A corrected version: every detail's energy × ``factor`` (rounded down), money recomputed
    at the prices the order billed; None when that changes no figure."""
    details = []
    for d in order["ChargeDetails"]:
        energy = float((Decimal(str(d["DetailPower"])) * Decimal(str(factor))).quantize(_CENT, ROUND_FLOOR))
        details.append({**d, "DetailPower": energy, "DetailElecMoney": money(d["ElecPrice"], energy),
                        "DetailSeviceMoney": money(d["SevicePrice"], energy)})
    revised = with_totals({**order, "ChargeDetails": details})
    same = all(revised[k] == order[k] for k in ("TotalPower", "TotalElecMoney", "TotalSeviceMoney", "TotalMoney"))
    return None if same else revised


def check_data(check_seq: str, day: str, orders: list[dict[str, Any]]) -> dict[str, Any]:
    """``check_charge_orders`` Data for one China day over ``orders`` (as listed).

    >>> d = check_data("X" * 27, "2024-05-01", [{"StartChargeSeq": "A", "TotalPower": 1.5, "TotalMoney": 2.25},
    ...                                         {"StartChargeSeq": "B", "TotalPower": 0.1, "TotalMoney": 0.2}])
    >>> d["StartTime"], d["EndTime"], d["OrderCount"], d["TotalOrderPower"], d["TotalOrderMoney"]
    ('2024-05-01 00:00:00', '2024-05-01 23:59:59', 2, 1.6, 2.45)
    >>> check_data("X" * 27, "2024-05-02", [])["ChargeOrders"]
    []
    """
    return {
        "CheckOrderSeq": check_seq,
        "StartTime": f"{day} 00:00:00",
        "EndTime": f"{day} 23:59:59",
        "OrderCount": len(orders),
        "TotalOrderPower": _cents([o["TotalPower"] for o in orders]),
        "TotalOrderMoney": _cents([o["TotalMoney"] for o in orders]),
        "ChargeOrders": [{"StartChargeSeq": o["StartChargeSeq"], "TotalPower": o["TotalPower"],
                          "TotalMoney": o["TotalMoney"]} for o in orders],
    }

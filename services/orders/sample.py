"""An order billed exactly by a tariff, as an operator's platform builds it: one detail per price
period the session crossed, energy at a constant power × load factor, money = price × energy rounded
half up per detail, totals the sums. For tests and benchmarks (the simulator has its own, with faults).

>>> from datetime import datetime
>>> from services.prices.tariff import CHINA_TZ, Tariff
>>> o = billed_order(Tariff.flat("0.5", "0.5"), datetime(2026, 12, 1, 8, tzinfo=CHINA_TZ),
...                  datetime(2026, 12, 1, 9, tzinfo=CHINA_TZ), Decimal(10), connector_id="C1", seq="S1")
>>> o["TotalPower"], o["TotalMoney"], o["SumPeriod"]
('8.00', '8.00', 1)
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from services.prices.tariff import Tariff, money

__all__ = ["billed_order"]


def billed_order(tariff: Tariff, start: datetime, end: datetime, power_kw: Decimal, *, connector_id: str, seq: str,
                 factor: Decimal = Decimal("0.8"), bump: Decimal = Decimal(0)) -> dict[str, Any]:
    """The Data of ``notification_charge_order_info`` (``bump`` is added to the service price: an
    overcharge whose money is consistent with the price billed)."""
    details = []
    for a, b, p in tariff.segments(start, end):
        kwh = (power_kw * Decimal((b - a).total_seconds()) / 3600 * factor).quantize(Decimal("0.01"))
        service = p.service + bump
        details.append({"DetailStartTime": f"{a:%Y-%m-%d %H:%M:%S}", "DetailEndTime": f"{b:%Y-%m-%d %H:%M:%S}",
                        "ElecPrice": str(p.electricity), "SevicePrice": str(service), "DetailPower": str(kwh),
                        "DetailElecMoney": str(money(p.electricity * kwh)), "DetailSeviceMoney": str(money(service * kwh))})
    tp = sum((Decimal(d["DetailPower"]) for d in details), Decimal("0.00"))
    te = sum((Decimal(d["DetailElecMoney"]) for d in details), Decimal("0.00"))
    ts = sum((Decimal(d["DetailSeviceMoney"]) for d in details), Decimal("0.00"))
    return {"StartChargeSeq": seq, "ConnectorID": connector_id, "StartTime": f"{start:%Y-%m-%d %H:%M:%S}",
            "EndTime": f"{end:%Y-%m-%d %H:%M:%S}", "TotalPower": str(tp), "TotalElecMoney": str(te),
            "TotalSeviceMoney": str(ts), "TotalMoney": str(te + ts), "StopReason": 0, "SumPeriod": len(details),
            "ChargeDetails": details}

"""Charge orders (T/CEC 102 part 3, ``notification_charge_order_info``): reading and checking.

Pure functions, no database. :func:`read_order` turns the Data of a push into an :class:`Order`
or raises :class:`OrderInvalid` naming the field (the receiver answers Ret 4004: nothing is
stored). :func:`check_order` runs every check on an order that could be read and returns the
verdict: the findings, the ``ConfirmResult`` (1, disputed, when any finding is an error), and
the price execution (billed at the announced tariff or not, and the overcharge in yuan).

Checks:

* **arithmetic**: the details add up to the totals, each detail's money is price × energy
  (within 0.01 yuan), the total is electricity + service, ``SumPeriod`` counts the details;
* **physics**: the session has a duration, did not end in the future, the details lie inside
  it, and the energy is at most the connector's power × the duration + 5 %;
* **references**: the connector is one of the operator's (and ``StationID``/``EquipmentID``,
  when sent, are its station and pile);
* **price execution**: each detail's prices against the tariff in force when the detail began,
  the energy split over the tariff's periods by time where a detail crosses a boundary. Billed
  above the tariff is an error and the excess (price above the tariff × energy) is the
  overcharge; billed below it is a warning (the driver was not harmed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from services.errors import BadRequest
from services.prices.tariff import CHINA_TZ, Tariff, money

__all__ = ["ConnectorRef", "Detail", "Finding", "Order", "OrderInvalid", "TariffInForce", "Verdict", "check_order",
           "number_field", "parse_china_time", "read_order", "text_field"]

MAX_DETAILS = 500
MONEY_TOLERANCE = Decimal("0.01")
PRICE_TOLERANCE = Decimal("0.00005")
ENERGY_MARGIN = Decimal("1.05")
CLOCK_SKEW = timedelta(minutes=5)
DETAIL_SLACK = timedelta(seconds=60)
_BIG = Decimal("10000000000")  # numeric(12, 2) holds less than 10^10
_EPS = Decimal("0.000001")


class OrderInvalid(BadRequest):
    """The order cannot be read; ``param`` names the field (Ret 4004 at the receiver)."""


@dataclass(frozen=True, slots=True)
class Detail:
    start: datetime
    end: datetime
    elec_price: Decimal
    service_price: Decimal
    power: Decimal
    elec_money: Decimal
    service_money: Decimal


@dataclass(frozen=True, slots=True)
class Order:
    seq: str
    connector_id: str
    start: datetime
    end: datetime
    total_power: Decimal
    total_elec_money: Decimal
    total_service_money: Decimal
    total_money: Decimal
    stop_reason: int | None
    sum_period: int | None
    details: tuple[Detail, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def day(self):  # noqa: ANN201 - a date
        """The China date the order ended on (the day it belongs to in reconciliation)."""
        return self.end.astimezone(CHINA_TZ).date()

    def digest(self) -> str:
        """MD5 of the figures: a resend with the same content (however formatted: ``12.5`` or
        ``"12.50"``) has the same digest."""
        def c(d: Decimal | None) -> str:
            return "" if d is None else format(d.normalize(), "f")

        parts = [self.seq, self.connector_id, self.start.isoformat(), self.end.isoformat(), c(self.total_power),
                 c(self.total_elec_money), c(self.total_service_money), c(self.total_money), str(self.stop_reason),
                 str(self.sum_period)]
        for d in self.details:
            parts += [d.start.isoformat(), d.end.isoformat(), c(d.elec_price), c(d.service_price), c(d.power),
                      c(d.elec_money), c(d.service_money)]
        return hashlib.md5("|".join(parts).encode("utf-8")).hexdigest()


# --- reading ------------------------------------------------------------------------------------
def parse_china_time(value: Any, name: str) -> datetime:
    """``"yyyy-MM-dd HH:mm:ss"`` in China time (a ``T`` is tolerated) → an aware datetime.

    >>> parse_china_time("2026-12-06 08:00:00", "StartTime").isoformat()
    '2026-12-06T08:00:00+08:00'
    >>> parse_china_time("06/12/2026", "EndTime")
    Traceback (most recent call last):
    ...
    services.orders.checks.OrderInvalid: EndTime '06/12/2026' is not a time "yyyy-MM-dd HH:mm:ss"
    """
    text = value.strip() if isinstance(value, str) else ""
    try:
        if len(text) != 19 or text[10] not in " T" or text[4] != "-" or text[7] != "-" or not text[:4].isdigit():
            raise ValueError
        return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)  # the C parser: this is the hot path
    except ValueError:
        raise OrderInvalid(f'{name} {str(value)[:30]!r} is not a time "yyyy-MM-dd HH:mm:ss"', param=name) from None


def number_field(obj: Mapping[str, Any], name: str, *aliases: str, label: str | None = None,
            required: bool = True) -> Decimal | None:
    label = label or name
    value = obj.get(name)
    for alias in aliases:
        if value is None:
            value = obj.get(alias)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise OrderInvalid(f"{label} is required", param=label)
        return None
    if isinstance(value, bool):
        raise OrderInvalid(f"{label} must be a number, not {value!r}", param=label)
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise OrderInvalid(f"{label} {str(value)[:30]!r} is not a number", param=label) from None
    if not d.is_finite() or abs(d) >= _BIG:
        raise OrderInvalid(f"{label} {str(value)[:30]!r} is out of range", param=label)
    return d


def _int(obj: Mapping[str, Any], name: str, low: int, high: int) -> int | None:
    value = obj.get(name)
    if value is None or value == "":
        return None
    try:
        n = int(str(value).strip())
    except ValueError:
        raise OrderInvalid(f"{name} {str(value)[:30]!r} is not a whole number", param=name) from None
    if not low <= n <= high:
        raise OrderInvalid(f"{name} {n} must be from {low} to {high}", param=name)
    return n


def text_field(obj: Mapping[str, Any], name: str, max_len: int) -> str:
    value = obj.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise OrderInvalid(f"{name} is required (a string of at most {max_len} characters)", param=name)
    value = value.strip()
    if len(value) > max_len:
        raise OrderInvalid(f"{name} is longer than {max_len} characters", param=name)
    return value


_EXTRA = ("StationID", "EquipmentID", "MeterValueStart", "MeterValueEnd", "ChargeLast", "ConnectorPower")


def read_order(data: Any) -> Order:
    """The order in a push's Data (``{...}`` or ``{"ChargeOrderInfo": {...}}``), or OrderInvalid.

    >>> o = read_order({"StartChargeSeq": "MA5ZHOP01000000000000000001", "ConnectorID": "C1",
    ...     "StartTime": "2026-12-06 08:00:00", "EndTime": "2026-12-06 09:00:00", "TotalPower": 10,
    ...     "TotalElecMoney": 6.5, "TotalSeviceMoney": 6, "TotalMoney": 12.5, "ChargeDetails": [
    ...     {"DetailStartTime": "2026-12-06 08:00:00", "DetailEndTime": "2026-12-06 09:00:00", "ElecPrice": 0.65,
    ...      "SevicePrice": 0.6, "DetailPower": 10, "DetailElecMoney": 6.5, "DetailSeviceMoney": 6}]})
    >>> o.day.isoformat(), str(o.total_money), len(o.details)
    ('2026-12-06', '12.5', 1)
    >>> read_order({"ConnectorID": "C1"})
    Traceback (most recent call last):
    ...
    services.orders.checks.OrderInvalid: StartChargeSeq is required (a string of at most 64 characters)
    """
    if isinstance(data, Mapping) and isinstance(data.get("ChargeOrderInfo"), Mapping):
        data = data["ChargeOrderInfo"]
    if not isinstance(data, Mapping):
        raise OrderInvalid("Data must be a charge order object", param="Data")
    seq = text_field(data, "StartChargeSeq", 64)
    connector = text_field(data, "ConnectorID", 26)
    start = parse_china_time(data.get("StartTime"), "StartTime")
    end = parse_china_time(data.get("EndTime"), "EndTime")
    totals = [number_field(data, "TotalPower"), number_field(data, "TotalElecMoney"),
              number_field(data, "TotalSeviceMoney", "TotalServiceMoney"), number_field(data, "TotalMoney")]
    raw_details = data.get("ChargeDetails")
    if raw_details is None:
        raw_details = []
    if not isinstance(raw_details, list):
        raise OrderInvalid("ChargeDetails must be a list", param="ChargeDetails")
    if len(raw_details) > MAX_DETAILS:
        raise OrderInvalid(f"ChargeDetails has {len(raw_details)} entries; at most {MAX_DETAILS}", param="ChargeDetails")
    details = []
    for i, d in enumerate(raw_details):
        where = f"ChargeDetails[{i}]"
        if not isinstance(d, Mapping):
            raise OrderInvalid(f"{where} must be an object", param=where)
        details.append(Detail(
            parse_china_time(d.get("DetailStartTime"), f"{where}.DetailStartTime"),
            parse_china_time(d.get("DetailEndTime"), f"{where}.DetailEndTime"),
            number_field(d, "ElecPrice", label=f"{where}.ElecPrice"),  # type: ignore[arg-type]
            number_field(d, "SevicePrice", "ServicePrice", label=f"{where}.SevicePrice"),  # type: ignore[arg-type]
            number_field(d, "DetailPower", label=f"{where}.DetailPower"),  # type: ignore[arg-type]
            number_field(d, "DetailElecMoney", label=f"{where}.DetailElecMoney"),  # type: ignore[arg-type]
            number_field(d, "DetailSeviceMoney", "DetailServiceMoney", label=f"{where}.DetailSeviceMoney"),  # type: ignore[arg-type]
        ))
    extra = {k: data[k] for k in _EXTRA if data.get(k) not in (None, "")}
    return Order(seq, connector, start, end, *totals, _int(data, "StopReason", 0, 99),  # type: ignore[arg-type]
                 _int(data, "SumPeriod", 0, 1000), tuple(details), extra)


# --- checking -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    code: str
    message: str
    severity: str = "error"

    def to_json(self) -> dict[str, str]:
        return {"check": self.check, "code": self.code, "severity": self.severity, "message": self.message}


@dataclass(frozen=True, slots=True)
class ConnectorRef:
    """What we know of the order's connector."""

    power_kw: Decimal
    station_id: str | None = None
    equipment_id: str | None = None


@dataclass(frozen=True, slots=True)
class TariffInForce:
    tariff: Tariff
    version_id: int | None = None
    assumed: bool = False
    """No version was known yet at that moment: the earliest one known is assumed."""


@dataclass
class Verdict:
    findings: list[Finding] = field(default_factory=list)
    overcharge: Decimal = Decimal("0.0000")
    """Yuan billed above the tariff (price above it × energy), to 4 decimals; sums round to fen."""
    at_tariff: bool | None = None
    tariff_versions: list[int] = field(default_factory=list)

    @property
    def confirm_result(self) -> int:
        """0 accepted, 1 disputed (any error finding)."""
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    @property
    def overcharged(self) -> bool:
        return self.overcharge > 0

    def add(self, check: str, code: str, message: str, severity: str = "error") -> None:
        self.findings.append(Finding(check, code, message, severity))


def _off(a: Decimal, b: Decimal, tolerance: Decimal = MONEY_TOLERANCE) -> bool:
    return abs(a - b) > tolerance + _EPS


def _arithmetic(o: Order, v: Verdict) -> None:
    if not o.details:
        v.add("arithmetic", "no_details", "ChargeDetails is empty: the price execution cannot be checked")
    else:
        sums = {"TotalPower": (sum(d.power for d in o.details), o.total_power),
                "TotalElecMoney": (sum(d.elec_money for d in o.details), o.total_elec_money),
                "TotalSeviceMoney": (sum(d.service_money for d in o.details), o.total_service_money)}
        for name, (got, stated) in sums.items():
            if _off(got, stated):
                v.add("arithmetic", "details_sum", f"the details add up to {got} but {name} is {stated}")
        for i, d in enumerate(o.details):
            for what, p, m in (("ElecPrice", d.elec_price, d.elec_money), ("SevicePrice", d.service_price, d.service_money)):
                expected = p * d.power
                if _off(m, expected):
                    v.add("arithmetic", "detail_money", f"ChargeDetails[{i}]: money {m} ≠ {what} {p} × "
                          f"{d.power} kWh = {money(expected)}")
    if _off(o.total_elec_money + o.total_service_money, o.total_money):
        v.add("arithmetic", "total_money", f"TotalMoney {o.total_money} ≠ TotalElecMoney {o.total_elec_money} + "
              f"TotalSeviceMoney {o.total_service_money}")
    if o.sum_period is not None and o.details and o.sum_period != len(o.details):
        v.add("arithmetic", "sum_period", f"SumPeriod {o.sum_period} but {len(o.details)} ChargeDetails", "warning")


def _physics(o: Order, connector: ConnectorRef | None, now: datetime, v: Verdict) -> None:
    duration = (o.end - o.start).total_seconds()
    if duration <= 0:
        v.add("physics", "duration", f"EndTime {o.end:%Y-%m-%d %H:%M:%S} is not after StartTime {o.start:%Y-%m-%d %H:%M:%S}")
    if o.end > now + CLOCK_SKEW:
        v.add("physics", "future", f"EndTime {o.end.astimezone(CHINA_TZ):%Y-%m-%d %H:%M:%S} is in the future")
    negatives = [n for n, x in (("TotalPower", o.total_power), ("TotalElecMoney", o.total_elec_money),
                                ("TotalSeviceMoney", o.total_service_money), ("TotalMoney", o.total_money)) if x < 0]
    negatives += [f"ChargeDetails[{i}]" for i, d in enumerate(o.details)
                  if min(d.power, d.elec_money, d.service_money, d.elec_price, d.service_price) < 0]
    if negatives:
        v.add("physics", "negative", "negative figures: " + ", ".join(negatives))
    for i, d in enumerate(o.details):
        if d.end <= d.start or d.start < o.start - DETAIL_SLACK or d.end > o.end + DETAIL_SLACK:
            v.add("physics", "detail_time", f"ChargeDetails[{i}] ({d.start:%H:%M:%S}–{d.end:%H:%M:%S}) does not lie "
                  f"inside the session ({o.start:%H:%M:%S}–{o.end:%H:%M:%S})")
    if connector is not None and duration > 0:
        limit = connector.power_kw * Decimal(duration) / 3600 * ENERGY_MARGIN
        if o.total_power > limit + MONEY_TOLERANCE:
            v.add("physics", "energy", f"TotalPower {o.total_power} kWh is more than the connector's "
                  f"{connector.power_kw} kW × {duration / 3600:.2f} h + 5 % = {limit:.2f} kWh")


def _references(o: Order, connector: ConnectorRef | None, v: Verdict) -> None:
    if connector is None:
        v.add("reference", "connector", f"ConnectorID {o.connector_id} is not a connector of this operator")
        return
    for name, ours in (("StationID", connector.station_id), ("EquipmentID", connector.equipment_id)):
        theirs = o.extra.get(name)
        if theirs is not None and ours is not None and str(theirs) != ours:
            v.add("reference", name.lower(), f"{name} {str(theirs)[:30]} is not the connector's ({ours})")


def _price_execution(o: Order, tariff_at: Callable[[datetime], TariffInForce | None], v: Verdict) -> None:
    if not o.details:
        return
    over = Decimal(0)
    exact = True
    unknown = False
    assumed = False
    for i, d in enumerate(o.details):
        found = tariff_at(d.start)
        if found is None:
            unknown = True
            continue
        if found.version_id is not None and found.version_id not in v.tariff_versions:
            v.tariff_versions.append(found.version_id)
        assumed = assumed or found.assumed
        span = (d.end - d.start).total_seconds()
        billed = d.elec_price + d.service_price
        for a, b, p in found.tariff.segments(d.start, d.end) if span > 0 else [(d.start, d.end, found.tariff.at(d.start))]:
            share = Decimal((b - a).total_seconds() / span) if span > 0 else Decimal(1)
            energy = d.power * share
            if (b - a) <= DETAIL_SLACK and span > DETAIL_SLACK.total_seconds():
                continue  # a boundary within a minute of the detail's edge: clocks differ that much
            if billed > p.total + PRICE_TOLERANCE:
                over += (billed - p.total) * energy
                exact = False
                v.add("price", "over_tariff", f"ChargeDetails[{i}] billed {billed} yuan/kWh from {a:%H:%M} while the "
                      f"tariff in force was {p.total} (electricity {p.electricity} + service {p.service})")
            elif billed < p.total - PRICE_TOLERANCE:
                exact = False
                v.add("price", "under_tariff", f"ChargeDetails[{i}] billed {billed} yuan/kWh from {a:%H:%M}, below the "
                      f"tariff in force ({p.total})", "warning")
            elif _off(d.elec_price, p.electricity, PRICE_TOLERANCE):
                v.add("price", "split", f"ChargeDetails[{i}] splits the price differently (electricity {d.elec_price} "
                      f"vs {p.electricity} announced)", "warning")
    if unknown and not v.tariff_versions:
        v.add("price", "no_tariff", "no tariff is known for this connector: the prices cannot be checked", "info")
        v.at_tariff = None
    else:
        v.at_tariff = exact and not unknown
    if assumed:
        v.add("price", "tariff_assumed", "no tariff was known yet when the session ran; the earliest known "
              "one was used", "info")
    v.overcharge = over.quantize(Decimal("0.0001"))


def check_order(order: Order, connector: ConnectorRef | None,
                tariff_at: Callable[[datetime], TariffInForce | None], now: datetime) -> Verdict:
    """Every check of the module doc on one order."""
    v = Verdict()
    _arithmetic(order, v)
    _physics(order, connector, now, v)
    _references(order, connector, v)
    _price_execution(order, tariff_at, v)
    return v

"""Subsidy amounts in exact decimal arithmetic, rounded to the fen, allocated under caps.

The rule (stated once, used everywhere):

1. **Gross amount of an application** = the exact sum of its facility lines, where a line is
   ``rated power (kW) × the rule's rate for the facility type`` (per-kW rules) or
   ``energy charged in the subsidy period (kWh) × the per-kWh rate`` (per-kWh rules). Products
   and sums of ``Decimal`` values are exact; no float ever enters (``Decimal(str(x))`` for feed
   numbers).
2. The gross amount is **rounded once, per application, to the fen (0.01 yuan) with
   ROUND_HALF_UP** (0.005 → 0.01). Lines are never rounded separately.
3. **Caps are applied in a fixed order**: applications in application order (first submission
   time, then id); each one's accounted amount is
   ``min(rounded gross, station headroom, operator headroom, budget headroom)`` and never below
   zero, where a headroom is the cap minus what this rule already accounted for that station /
   that operator / in total. Caps are whole fen and every accounted amount is whole fen, so the
   headrooms stay whole fen and no second rounding happens. A breach is impossible by
   construction: each amount is at most every remaining headroom, which then shrinks by it.

>>> to_fen(Decimal("0.005")), to_fen(Decimal("0.0049")), to_fen(Decimal("-0.005"))
(Decimal('0.01'), Decimal('0.00'), Decimal('-0.01'))
>>> gross_per_kw([Line(1, "dc", Decimal("60"))], {"dc": Decimal("200.0050")})
Decimal('12000.30')
>>> caps = Caps(station=Decimal("100"), operator=None, budget=Decimal("150"))
>>> [a.amount for a in allocate([Claim(1, "s1", 1, Decimal("80")), Claim(2, "s1", 1, Decimal("80")),
...                              Claim(3, "s2", 1, Decimal("80"))], caps)]
[Decimal('80.00'), Decimal('20.00'), Decimal('50.00')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "BASES",
    "Allocation",
    "Caps",
    "Claim",
    "FACILITY_RATE_KEYS",
    "FEN",
    "Line",
    "ZERO",
    "allocate",
    "as_decimal",
    "gross_per_kw",
    "gross_per_kwh",
    "line_amount",
    "to_fen",
]

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
BASES = ("per_kw", "per_kwh")
FACILITY_RATE_KEYS = ("dc", "ac", "acdc", "wireless", "other")


def as_decimal(value: Any) -> Decimal:
    """A Decimal from an int, str, Decimal or float (floats through ``str``: 0.1 stays 0.1).

    >>> as_decimal(0.1) + as_decimal(0.2)
    Decimal('0.3')
    >>> as_decimal(None)
    Decimal('0')
    """
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    return Decimal(value)


def to_fen(amount: Decimal) -> Decimal:
    """Round to 0.01 yuan, half away from zero (ROUND_HALF_UP)."""
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    """One facility of an application: its id, type key (dc/ac/acdc/wireless/other), rated power
    and (per-kWh rules) the energy charged in the subsidy period."""

    facility_id: int
    facility_type: str
    power_kw: Decimal
    kwh: Decimal | None = None


def line_amount(line: Line, basis: str, rates: Mapping[str, Decimal | None], rate_kwh: Decimal | None) -> Decimal:
    """The exact (unrounded) amount of one line."""
    if basis == "per_kw":
        rate = rates.get(line.facility_type)
        return as_decimal(line.power_kw) * as_decimal(rate)
    if basis == "per_kwh":
        return as_decimal(line.kwh) * as_decimal(rate_kwh)
    raise ValueError(f"unknown subsidy basis {basis!r}")


def gross_per_kw(lines: Iterable[Line], rates: Mapping[str, Decimal | None]) -> Decimal:
    """Σ power × rate of the facility type, rounded once to the fen. A type without a rate earns 0."""
    return to_fen(sum((line_amount(x, "per_kw", rates, None) for x in lines), Decimal(0)))


def gross_per_kwh(lines: Iterable[Line], rate_kwh: Decimal | None) -> Decimal:
    """Σ kWh × rate, rounded once to the fen."""
    return to_fen(sum((line_amount(x, "per_kwh", {}, rate_kwh) for x in lines), Decimal(0)))


@dataclass(frozen=True)
class Caps:
    """The rule's caps in yuan; ``None`` means no cap of that kind. Values are whole fen."""

    station: Decimal | None
    operator: Decimal | None
    budget: Decimal | None

    def __post_init__(self) -> None:
        for name in ("station", "operator", "budget"):
            v = getattr(self, name)
            if v is not None and (v < 0 or to_fen(v) != v):
                raise ValueError(f"the {name} cap must be a non-negative amount in whole fen, not {v}")


@dataclass(frozen=True)
class Claim:
    """An application to account: its id, station key, operator key and rounded gross amount."""

    application_id: int
    station: Any
    operator: Any
    gross: Decimal


@dataclass(frozen=True)
class Allocation:
    """The accounted amount of one claim and which cap (if any) cut it: ``station``,
    ``operator`` or ``budget``, the one whose headroom set the amount (on a tie, the first in
    that order)."""

    application_id: int
    gross: Decimal
    amount: Decimal
    limited_by: str | None


@dataclass
class _Used:
    station: dict[Any, Decimal] = field(default_factory=dict)
    operator: dict[Any, Decimal] = field(default_factory=dict)
    total: Decimal = ZERO


def _headroom(cap: Decimal | None, used: Decimal) -> Decimal | None:
    return None if cap is None else max(cap - used, ZERO)


def allocate(claims: Sequence[Claim], caps: Caps, *,
             already_station: Mapping[Any, Decimal] | None = None,
             already_operator: Mapping[Any, Decimal] | None = None,
             already_total: Decimal = ZERO) -> list[Allocation]:
    """Account ``claims`` in the order given (the caller sorts by application order).

    ``already_*`` are what earlier accounting runs of the same rule consumed, so a second run
    continues from the remaining headroom. Returns one :class:`Allocation` per claim, in order.
    """
    used = _Used(dict(already_station or {}), dict(already_operator or {}), to_fen(as_decimal(already_total)))
    out: list[Allocation] = []
    for c in claims:
        gross = to_fen(as_decimal(c.gross))
        amount = max(gross, ZERO)
        limited_by = None
        for name, room in (("station", _headroom(caps.station, used.station.get(c.station, ZERO))),
                           ("operator", _headroom(caps.operator, used.operator.get(c.operator, ZERO))),
                           ("budget", _headroom(caps.budget, used.total))):
            if room is not None and room < amount:
                amount, limited_by = room, name
        used.station[c.station] = used.station.get(c.station, ZERO) + amount
        used.operator[c.operator] = used.operator.get(c.operator, ZERO) + amount
        used.total += amount
        out.append(Allocation(c.application_id, gross, amount, limited_by))
    return out

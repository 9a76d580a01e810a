"""Parse the free-text fees of StationInfo (``ElectricityFee``, ``ServiceFee``) into time periods.

Operators write e.g. ``"00:00-08:00 0.35元/度;08:00-12:00 0.85元/度"`` or just ``"0.80元/度"``
(one price all day). Separators vary (``;`` ``；`` ``,`` ``，`` new lines), as do units (元/度,
元/kWh, 元/千瓦时) and dashes (``-`` ``~`` ``—`` ``至``). A schedule is kept per quarter hour of the day
(boundaries off the quarter round down), so periods that wrap midnight, overlap or leave gaps are
all handled the same way, and a city's worth of stations is cheap to aggregate.

>>> s = parse_fee("00:00-08:00 0.35元/度;08:00-12:00 0.85元/度;12:00-24:00 0.65元/度")
>>> s.price_at(7 * 60), s.price_at(8 * 60), s.price_at(23 * 60 + 59)
(0.35, 0.85, 0.65)
>>> s.max_price, s.min_price, s.complete
(0.85, 0.35, True)
>>> round(s.average(), 4)
0.5833
>>> parse_fee("0.80元/度").periods
[(0, 1440, 0.8)]
>>> parse_fee("22:00-08:00 0.3元/kWh；08:00-22:00 1.0元/千瓦时").price_at(23 * 60)
0.3
>>> parse_fee("") is None, parse_fee(None) is None, parse_fee("按国家电价执行") is None
(True, True, True)
>>> parse_fee("10:00-12:00 1.2元/度").complete
False
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["FeeSchedule", "PERIODS", "parse_fee", "period_average", "total_schedule"]

_TIME = r"(\d{1,2})[:：](\d{2})"
_DASH = r"\s*(?:-|~|～|—|–|至|到)\s*"
_PRICE = r"(\d+(?:\.\d+)?)\s*(?:元|¥|RMB)?\s*(?:/|每)?\s*(?:度|kwh|kWh|KWH|千瓦时|千瓦·时)?"
_PERIOD_RE = re.compile(_TIME + _DASH + _TIME + r"\s*[:：]?\s*" + _PRICE)
_FLAT_RE = re.compile(r"^\s*(?:全天|统一|均为)?\s*(\d+(?:\.\d+)?)\s*(?:元|¥)\s*(?:/|每)\s*(?:度|kwh|kWh|KWH|千瓦时)?\s*$")
_BARE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
DAY = 1440
SLOT = 15  # minutes
SLOTS = DAY // SLOT
MAX_PRICE = 20.0  # yuan/kWh: anything above is a typo, not a fee

# Zhuhai's time-of-use periods (Guangdong grid): valley 00–08, peak 10–12 and 14–19, flat otherwise.
PERIODS: dict[str, tuple[tuple[str, str], list[tuple[int, int]]]] = {
    "valley": (("谷时段 00–08", "valley 00–08"), [(0, 480)]),
    "flat": (("平时段 08–10, 12–14, 19–24", "flat 08–10, 12–14, 19–24"), [(480, 600), (720, 840), (1140, 1440)]),
    "peak": (("峰时段 10–12, 14–19", "peak 10–12, 14–19"), [(600, 720), (840, 1140)]),
}


@dataclass(frozen=True)
class FeeSchedule:
    """Price per quarter hour of the day, ``SLOTS`` values (None where the text says nothing)."""

    slots: tuple[float | None, ...]

    @property
    def periods(self) -> list[tuple[int, int, float]]:
        """Runs of one price: ``(start_minute, end_minute, price)``."""
        out: list[tuple[int, int, float]] = []
        start = 0
        for i in range(1, SLOTS + 1):
            if i == SLOTS or self.slots[i] != self.slots[start]:
                if self.slots[start] is not None:
                    out.append((start * SLOT, i * SLOT, self.slots[start]))  # type: ignore[arg-type]
                start = i
        return out

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.slots)

    @property
    def max_price(self) -> float:
        return max(p for p in self.slots if p is not None)

    @property
    def min_price(self) -> float:
        return min(p for p in self.slots if p is not None)

    def price_at(self, minute: int) -> float | None:
        return self.slots[(minute % DAY) // SLOT]

    def average(self, ranges: list[tuple[int, int]] | None = None) -> float | None:
        """Time-weighted average over ``ranges`` (minutes; the whole day by default), known quarters only."""
        vals = [p for a, b in (ranges or [(0, DAY)]) for p in self.slots[a // SLOT:b // SLOT] if p is not None]
        return sum(vals) / len(vals) if vals else None


def _minute(h: str, m: str) -> int | None:
    hh, mm = int(h), int(m)
    if hh == 24 and mm == 0:
        return DAY
    if 0 <= hh < 24 and 0 <= mm < 60:
        return hh * 60 + mm
    return None


@lru_cache(maxsize=4096)
def parse_fee(text: str | None) -> FeeSchedule | None:
    """The schedule a fee text describes, or None when no price can be read from it."""
    if not text or not text.strip():
        return None
    slots: list[float | None] = [None] * SLOTS
    found = False
    for m in _PERIOD_RE.finditer(text):
        a, b = _minute(m.group(1), m.group(2)), _minute(m.group(3), m.group(4))
        price = float(m.group(5))
        if a is None or b is None or price > MAX_PRICE:
            continue
        a, b = (a % DAY) // SLOT, b // SLOT
        span = range(a, b) if b > a else [*range(a, SLOTS), *range(0, b)]  # a == b: the whole day
        for i in span:
            slots[i] = price
        found = True
    if not found:
        flat = _FLAT_RE.match(text) or _BARE_RE.match(text)
        if flat is None or float(flat.group(1)) > MAX_PRICE:
            return None
        slots = [float(flat.group(1))] * SLOTS
    return FeeSchedule(tuple(slots))


@lru_cache(maxsize=8192)
def total_schedule(electricity: FeeSchedule | None, service: FeeSchedule | None) -> FeeSchedule | None:
    """Electricity + service per quarter hour (None where either is unknown).

    >>> t = total_schedule(parse_fee("0.5元/度"), parse_fee("00:00-12:00 0.3元/度;12:00-24:00 0.8元/度"))
    >>> t.price_at(0), t.price_at(13 * 60)
    (0.8, 1.3)
    >>> total_schedule(None, parse_fee("0.3元/度")) is None
    True
    """
    if electricity is None or service is None:
        return None
    return FeeSchedule(tuple(None if a is None or b is None else round(a + b, 4)
                             for a, b in zip(electricity.slots, service.slots, strict=True)))


@lru_cache(maxsize=8192)
def period_average(schedule: FeeSchedule | None, period: str) -> float | None:
    """Average price over one of Zhuhai's TOU periods (``valley``, ``flat``, ``peak``)."""
    if schedule is None:
        return None
    return schedule.average(PERIODS[period][1])

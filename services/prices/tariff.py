"""Tariffs: time-of-use prices per kWh, read from T/CEC 102 business policies or fee texts.

A tariff is a day of periods in China time. Each period starts at a second of the day and runs
until the next one starts; the last runs to midnight. A driver pays electricity + service per
kWh. Everything here is pure (no database): reading and checking a policy, the price at a
moment, the day's periods for people, the cheapest-per-period merge of a station's connectors,
and the cost estimate of a charge started now.

>>> t = read_policy({"SumPeriod": 3, "PolicyInfos": [
...     {"StartTime": "000000", "ElecPrice": 0.3, "SevicePrice": 0.6},
...     {"StartTime": "080000", "ElecPrice": "0.65", "SevicePrice": 0.6},
...     {"StartTime": "220000", "ElecPrice": 0.3, "SevicePrice": 0.6}]}).tariff
>>> [p["start"] + "-" + p["end"] + " " + p["total"] for p in t.api_periods()]
['00:00-08:00 0.9000', '08:00-22:00 1.2500', '22:00-24:00 0.9000']
>>> t.at(datetime(2026, 12, 6, 9, 30, tzinfo=CHINA_TZ)).total, t.max_total
(Decimal('1.2500'), Decimal('1.2500'))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = ["CHINA_TZ", "DAY_S", "MAX_PERIODS", "MAX_PRICE", "Cap", "Estimate", "Period", "PolicyReading", "Tariff",
           "china_seconds", "from_fee_texts", "merge_cheapest", "money", "price", "read_policy"]

CHINA_TZ = timezone(timedelta(hours=8), "CST")
DAY_S = 86400
MAX_PERIODS = 32
#: yuan per kWh: electricity or service above this is a typo, not a price (Guangdong's highest
#: peak electricity price is about 1.7; service fees are capped far below).
MAX_PRICE = Decimal("20")
_Q4 = Decimal("0.0001")
_Q2 = Decimal("0.01")


def price(value: Any) -> Decimal:
    """A price as a Decimal with 4 decimals (yuan/kWh).

    >>> price("0.65"), price(1), price(0.1 + 0.2)
    (Decimal('0.6500'), Decimal('1.0000'), Decimal('0.3000'))
    """
    return Decimal(str(value)).quantize(_Q4, ROUND_HALF_UP)


def money(value: Decimal | float | int) -> Decimal:
    """Yuan with 2 decimals, half up (how operators bill).

    >>> money(Decimal("1.005")), money(2)
    (Decimal('1.01'), Decimal('2.00'))
    """
    return Decimal(str(value)).quantize(_Q2, ROUND_HALF_UP)


def china_seconds(moment: datetime) -> int:
    """Seconds since China midnight of an aware ``moment``.

    >>> china_seconds(datetime(2026, 1, 1, 0, 30, tzinfo=UTC))
    30600
    """
    local = moment.astimezone(CHINA_TZ)
    return local.hour * 3600 + local.minute * 60 + local.second


def _hhmm(seconds: int) -> str:
    """``"08:00"`` (``"08:00:30"`` when not on a minute; ``"24:00"`` for the end of the day)."""
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}" + (f":{s:02d}" if s else "")


@dataclass(frozen=True, slots=True)
class Period:
    """One period of a tariff: from ``start`` (seconds since China midnight) to the next period."""

    start: int
    electricity: Decimal
    service: Decimal

    @property
    def total(self) -> Decimal:
        return self.electricity + self.service


@dataclass(frozen=True, slots=True)
class Cap:
    """The city's price cap: at most ``yuan_per_kwh`` on the total (electricity + service) or on
    the service fee alone (``basis``)."""

    yuan_per_kwh: Decimal
    basis: str = "total"

    def excess(self, p: Period) -> Decimal:
        """How far ``p`` is above the cap (0 when within)."""
        value = p.total if self.basis == "total" else p.service
        return max(Decimal(0), value - self.yuan_per_kwh)

    @property
    def what_en(self) -> str:
        return "electricity + service" if self.basis == "total" else "service fee"

    @property
    def what_zh(self) -> str:
        return "电费+服务费" if self.basis == "total" else "服务费"


@dataclass(frozen=True, slots=True)
class Tariff:
    """Periods sorted by start, the first at 0 (00:00:00), starts strictly increasing."""

    periods: tuple[Period, ...]

    def __post_init__(self) -> None:
        if not self.periods or self.periods[0].start != 0:
            raise ValueError("a tariff's first period starts at 00:00:00")
        starts = [p.start for p in self.periods]
        if starts != sorted(set(starts)) or starts[-1] >= DAY_S:
            raise ValueError("period starts must increase within the day")

    # --- reading -----------------------------------------------------------------------------
    def index_at(self, seconds: int) -> int:
        seconds %= DAY_S
        i = 0
        for j, p in enumerate(self.periods):
            if p.start <= seconds:
                i = j
            else:
                break
        return i

    def end_of(self, i: int) -> int:
        """End (seconds since midnight, up to 86400) of period ``i``."""
        return self.periods[i + 1].start if i + 1 < len(self.periods) else DAY_S

    def at(self, moment: datetime) -> Period:
        """The period in force at an aware ``moment``."""
        return self.periods[self.index_at(china_seconds(moment))]

    def until(self, moment: datetime) -> datetime:
        """When the price in force at ``moment`` next changes (the total or either part); a tariff
        with one price all day answers the next midnight.

        >>> t = Tariff.flat("0.5", "0.5")
        >>> t.until(datetime(2026, 12, 6, 9, 30, tzinfo=CHINA_TZ)).isoformat()
        '2026-12-07T00:00:00+08:00'
        """
        local = moment.astimezone(CHINA_TZ)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        i = self.index_at(china_seconds(local))
        here = self.periods[i]
        for j in range(i + 1, len(self.periods)):
            p = self.periods[j]
            if (p.electricity, p.service) != (here.electricity, here.service):
                return midnight + timedelta(seconds=p.start)
        return midnight + timedelta(days=1)

    @property
    def max_total(self) -> Decimal:
        return max(p.total for p in self.periods)

    @property
    def min_total(self) -> Decimal:
        return min(p.total for p in self.periods)

    def compact(self) -> Tariff:
        """Neighbouring periods with the same prices joined."""
        out: list[Period] = []
        for p in self.periods:
            if out and (out[-1].electricity, out[-1].service) == (p.electricity, p.service):
                continue
            out.append(p)
        return Tariff(tuple(out))

    # --- storage -----------------------------------------------------------------------------
    def to_json(self) -> list[dict[str, Any]]:
        return [{"start": p.start, "electricity": str(p.electricity), "service": str(p.service)}
                for p in self.periods]

    @classmethod
    def from_json(cls, value: Sequence[Mapping[str, Any]] | str) -> Tariff:
        items = json.loads(value) if isinstance(value, str) else value
        return cls(tuple(Period(int(p["start"]), price(p["electricity"]), price(p["service"])) for p in items))

    def digest(self) -> str:
        """MD5 of the canonical periods: two connectors with the same prices share one tariff row."""
        text = ";".join(f"{p.start}:{p.electricity}:{p.service}" for p in self.compact().periods)
        return hashlib.md5(text.encode("ascii")).hexdigest()

    @classmethod
    def flat(cls, electricity: Any, service: Any) -> Tariff:
        return cls((Period(0, price(electricity), price(service)),))

    # --- for people --------------------------------------------------------------------------
    def api_periods(self) -> list[dict[str, str]]:
        """``[{start: "00:00", end: "08:00", electricity, service, total}]`` (prices as strings
        with 4 decimals, so no float rounding reaches a client)."""
        t = self.compact()
        return [{"start": _hhmm(p.start), "end": _hhmm(t.end_of(i)), "electricity": str(p.electricity),
                 "service": str(p.service), "total": str(p.total)} for i, p in enumerate(t.periods)]

    def now(self, moment: datetime) -> dict[str, str]:
        """``{electricity, service, total, until}`` at ``moment`` (``until`` in ISO 8601, China time)."""
        p = self.at(moment)
        return {"electricity": str(p.electricity), "service": str(p.service), "total": str(p.total),
                "until": self.until(moment).isoformat()}

    def segments(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime, Period]]:
        """The periods a time span crosses, in order, clipped to the span (days repeat the tariff).

        >>> t = read_policy({"PolicyInfos": [{"StartTime": "000000", "ElecPrice": 1, "SevicePrice": 0},
        ...                                 {"StartTime": "100000", "ElecPrice": 2, "SevicePrice": 0}]}).tariff
        >>> [(a.strftime("%H:%M"), b.strftime("%H:%M"), str(p.total))
        ...  for a, b, p in t.segments(datetime(2026, 1, 1, 9, 30, tzinfo=CHINA_TZ),
        ...                             datetime(2026, 1, 1, 10, 15, tzinfo=CHINA_TZ))]
        [('09:30', '10:00', '1.0000'), ('10:00', '10:15', '2.0000')]
        """
        out: list[tuple[datetime, datetime, Period]] = []
        cur = start.astimezone(CHINA_TZ)
        end = end.astimezone(CHINA_TZ)
        while cur < end:
            midnight = cur.replace(hour=0, minute=0, second=0, microsecond=0)
            i = self.index_at(china_seconds(cur))
            stop = min(end, midnight + timedelta(seconds=self.end_of(i)))
            if stop <= cur:  # sub-second remainder at a boundary
                stop = min(end, cur + timedelta(seconds=1))
            out.append((cur, stop, self.periods[i]))
            cur = stop
        return out

    def estimate(self, kwh: Decimal, power_kw: Decimal, start: datetime) -> Estimate:
        """The cost of ``kwh`` charged at a constant ``power_kw`` from ``start``, across periods.

        >>> t = read_policy({"PolicyInfos": [{"StartTime": "000000", "ElecPrice": 1, "SevicePrice": 0.5},
        ...                                 {"StartTime": "100000", "ElecPrice": 2, "SevicePrice": 0.5}]}).tariff
        >>> e = t.estimate(Decimal(30), Decimal(60), datetime(2026, 1, 1, 9, 45, tzinfo=CHINA_TZ))
        >>> str(e.yuan), e.minutes, [str(p["kwh"]) for p in e.parts]
        ('60.00', 30, ['15.000', '15.000'])
        """
        if kwh <= 0 or power_kw <= 0:
            raise ValueError("kWh and power must be positive")
        remaining = Decimal(kwh)
        cur = start.astimezone(CHINA_TZ)
        parts: list[dict[str, Any]] = []
        elec = service = Decimal(0)
        per_second = Decimal(power_kw) / 3600
        for _ in range(10000):  # a day has at most 32 periods; 10,000 parts is far beyond any charge
            if remaining <= 0:
                break
            midnight = cur.replace(hour=0, minute=0, second=0, microsecond=0)
            i = self.index_at(china_seconds(cur))
            p = self.periods[i]
            period_end = midnight + timedelta(seconds=self.end_of(i))
            can = per_second * Decimal((period_end - cur).total_seconds())
            take = min(remaining, can)
            seconds = float(take / per_second)
            stop = cur + timedelta(seconds=seconds)
            elec += take * p.electricity
            service += take * p.service
            if parts and parts[-1]["total"] == p.total and parts[-1]["end"] == cur:
                parts[-1]["kwh"] += take.quantize(Decimal("0.001"))
                parts[-1]["end"] = stop
            else:
                parts.append({"start": cur, "end": stop, "kwh": take.quantize(Decimal("0.001")),
                              "total": p.total})
            remaining -= take
            cur = period_end if take == can else stop
        end = parts[-1]["end"] if parts else start
        return Estimate(kwh=Decimal(kwh), power_kw=Decimal(power_kw), start=start.astimezone(CHINA_TZ), end=end,
                        electricity_yuan=money(elec), service_yuan=money(service), parts=parts)


@dataclass(frozen=True, slots=True)
class Estimate:
    kwh: Decimal
    power_kw: Decimal
    start: datetime
    end: datetime
    electricity_yuan: Decimal
    service_yuan: Decimal
    parts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def yuan(self) -> Decimal:
        return self.electricity_yuan + self.service_yuan

    @property
    def minutes(self) -> int:
        return round((self.end - self.start).total_seconds() / 60)

    def to_api(self) -> dict[str, Any]:
        return {"kwh": float(self.kwh), "power_kw": float(self.power_kw), "yuan": str(self.yuan),
                "electricity_yuan": str(self.electricity_yuan), "service_yuan": str(self.service_yuan),
                "start": self.start.isoformat(), "end": self.end.isoformat(), "minutes": self.minutes,
                "periods": [{"start": p["start"].isoformat(), "end": p["end"].isoformat(), "kwh": float(p["kwh"]),
                             "total": str(p["total"])} for p in self.parts]}


# --- reading a business policy ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PolicyReading:
    """What a policy says: the tariff as best it can be read (``None`` when nothing can be) and
    every rule it breaks, in words an operator can act on."""

    tariff: Tariff | None
    problems: tuple[str, ...] = ()


def _start_seconds(value: Any) -> int | None:
    text = str(value).strip() if value is not None else ""
    if isinstance(value, int) and not isinstance(value, bool):
        text = f"{value:06d}"
    if len(text) != 6 or not text.isdigit():
        return None
    h, m, s = int(text[:2]), int(text[2:4]), int(text[4:])
    if h > 23 or m > 59 or s > 59:
        return None
    return h * 3600 + m * 60 + s


def _price_of(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


def read_policy(data: Mapping[str, Any], cap: Cap | None = None) -> PolicyReading:
    """Read ``SumPeriod`` and ``PolicyInfos`` of a ``query_equip_business_policy`` answer.

    Rules (each broken one is a problem; the tariff is still read where it can be): 1 to 32
    periods, ``SumPeriod`` equal to their number, the first at ``000000``, start times
    ``HHmmss`` in increasing order, prices numbers from 0 to 20 yuan/kWh with at most 4
    decimals, and within the city's ``cap``. Without a period at 000000 the day's last period
    is taken to run on past midnight (the day repeats); periods out of order are sorted.

    >>> r = read_policy({"SumPeriod": 2, "PolicyInfos": [{"StartTime": "080000", "ElecPrice": 1, "SevicePrice": 3},
    ...                                                  {"StartTime": "070000", "ElecPrice": -1, "SevicePrice": 0}]},
    ...                 Cap(Decimal(2)))
    >>> [x.split(" / ")[0] for x in r.problems]  # doctest: +NORMALIZE_WHITESPACE
    ['period 2: ElecPrice -1 is negative', 'no period starts at 000000',
     "over the city's cap: electricity + service 4.0000 yuan/kWh from 00:00, cap 2"]
    >>> read_policy({"PolicyInfos": []}).problems[0][:9]
    'no period'
    """
    problems: list[str] = []
    infos = data.get("PolicyInfos")
    if not isinstance(infos, list) or not infos:
        return PolicyReading(None, ("no period: PolicyInfos is empty or missing / 没有时段",))
    if len(infos) > MAX_PERIODS:
        problems.append(f"{len(infos)} periods; at most {MAX_PERIODS} are allowed / 时段超过 {MAX_PERIODS} 个")
    declared = data.get("SumPeriod")
    if declared is not None and str(declared).strip() != str(len(infos)):
        problems.append(f"SumPeriod {declared} but {len(infos)} PolicyInfos / 时段数不符")
    read: list[Period] = []
    previous = -1
    disorder = False
    for n, info in enumerate(infos, 1):
        if not isinstance(info, Mapping):
            problems.append(f"period {n} is not an object")
            continue
        start = _start_seconds(info.get("StartTime"))
        if start is None:
            problems.append(f"period {n}: StartTime {str(info.get('StartTime'))[:20]!r} is not HHmmss / 时间格式错误")
            continue
        prices = {}
        for name in ("ElecPrice", "SevicePrice"):
            value = info.get(name, info.get("ServicePrice") if name == "SevicePrice" else None)
            d = _price_of(value)
            if d is None:
                problems.append(f"period {n}: {name} {str(value)[:20]!r} is not a number / 价格不是数字")
            elif d < 0:
                problems.append(f"period {n}: {name} {d} is negative / 价格为负")
            elif d > MAX_PRICE:
                problems.append(f"period {n}: {name} {d} yuan/kWh is absurd (over {MAX_PRICE}) / 价格异常")
            elif d != d.quantize(_Q4):
                problems.append(f"period {n}: {name} {d} has more than 4 decimals / 小数位超过 4 位")
                prices[name] = price(d)
            else:
                prices[name] = price(d)
        if len(prices) != 2:
            continue
        if start <= previous:
            disorder = True
        previous = max(previous, start)
        read.append(Period(start, prices["ElecPrice"], prices["SevicePrice"]))
    if disorder:
        problems.append("start times are not in increasing order / 时段时间顺序错误")
    if not read:
        return PolicyReading(None, tuple(problems) or ("no readable period / 没有可读的时段",))
    by_start: dict[int, Period] = {}
    for p in read:
        by_start.setdefault(p.start, p)
    periods = sorted(by_start.values(), key=lambda p: p.start)
    if periods[0].start != 0:
        problems.append("no period starts at 000000 / 首个时段不是从 000000 开始")
        last = periods[-1]
        periods.insert(0, Period(0, last.electricity, last.service))
    tariff = Tariff(tuple(periods))
    if cap is not None:
        worst = max(tariff.periods, key=cap.excess)
        if cap.excess(worst) > 0:
            value = worst.total if cap.basis == "total" else worst.service
            problems.append(f"over the city's cap: {cap.what_en} {value} yuan/kWh from {_hhmm(worst.start)}, cap "
                            f"{cap.yuan_per_kwh} / 超过城市限价（{cap.what_zh} {value} 元/度 > {cap.yuan_per_kwh}）")
    return PolicyReading(tariff, tuple(problems))


def from_fee_texts(electricity_fee: str | None, service_fee: str | None) -> Tariff | None:
    """The tariff a station's free-text ``ElectricityFee`` and ``ServiceFee`` describe, when both
    can be read for the whole day (the fallback for operators without business policies).

    >>> t = from_fee_texts("00:00-08:00 0.35元/度;08:00-24:00 0.65元/度", "0.6元/度")
    >>> [(p["start"], p["total"]) for p in t.api_periods()]
    [('00:00', '0.9500'), ('08:00', '1.2500')]
    >>> from_fee_texts("10:00-12:00 1.2元/度", "0.5") is None
    True
    """
    from services.supervision.fees import SLOT, parse_fee

    e, s = parse_fee(electricity_fee), parse_fee(service_fee)
    if e is None or s is None or not e.complete or not s.complete:
        return None
    periods: list[Period] = []
    for i, (pe, ps) in enumerate(zip(e.slots, s.slots, strict=True)):
        p = Period(i * SLOT * 60, price(pe), price(ps))
        if not periods or (periods[-1].electricity, periods[-1].service) != (p.electricity, p.service):
            periods.append(p)
    return Tariff(tuple(periods))


def merge_cheapest(tariffs: Iterable[Tariff]) -> Tariff | None:
    """Per moment of the day, the cheapest total among ``tariffs`` (a station's "from" price:
    what a driver pays at least there).

    >>> a = Tariff.flat(1, 0)
    >>> b = read_policy({"PolicyInfos": [{"StartTime": "000000", "ElecPrice": 0.5, "SevicePrice": 0},
    ...                                 {"StartTime": "120000", "ElecPrice": 2, "SevicePrice": 0}]}).tariff
    >>> [(p["start"], p["total"]) for p in merge_cheapest([a, b]).api_periods()]
    [('00:00', '0.5000'), ('12:00', '1.0000')]
    >>> merge_cheapest([]) is None
    True
    """
    ts = list(tariffs)
    if not ts:
        return None
    if len({t.digest() for t in ts}) == 1:
        return ts[0].compact()
    starts = sorted({p.start for t in ts for p in t.periods})
    periods = [min((t.periods[t.index_at(s)] for t in ts), key=lambda p: (p.total, p.electricity))
               for s in starts]
    return Tariff(tuple(Period(s, p.electricity, p.service) for s, p in zip(starts, periods, strict=True))).compact()

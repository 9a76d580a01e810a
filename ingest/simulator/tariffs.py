"""Business policies of the simulated operators: time-of-use tariffs and their free texts.

Guangdong's Pearl River Delta periods: valley 00–08, flat 08–10, peak 10–12, flat 12–14,
peak 14–19, flat 19–24. Electricity (``ElecPrice``) follows them at every station (valley
0.25–0.35, flat 0.60–0.70, peak 1.00–1.15 yuan/kWh, 4 decimals); the service fee
(``SevicePrice``, 2 decimals) is cheaper in the valley at some operators, higher on DC piles at
some, and every station draws its own prices. A few operators bill one flat price all day
(one period). The total never exceeds 1.99 yuan/kWh, under the city's cap of 2; only the
``policy_over_cap`` fault breaks it (``over_cap``).

Pure and deterministic: prices come from string-seeded ``random.Random`` (seed, operator,
station, version), so the same seed gives the same tariffs whatever happened before.

>>> p = Profile(flat=False, service=0.7, valley_discount=0.2, dc_premium=0.1)
>>> ac, dc = draw_policies(1, p, "MA0000001", "440402000001", 1)
>>> [x["StartTime"] for x in dc.policy_infos()]
['000000', '080000', '100000', '120000', '140000', '190000']
>>> ac.prices_at(9 * 3600)[0] == dc.prices_at(9 * 3600)[0], round(dc.prices_at(9 * 3600)[1] - ac.prices_at(9 * 3600)[1], 2)
(True, 0.1)
>>> draw_policies(1, p, "MA0000001", "440402000001", 1) == (ac, dc)
True
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from ingest.protocol import format_query_time

__all__ = [
    "DAY", "MAX_TOTAL", "OVER_CAP_SERVICE", "PERIOD_STARTS", "Policy", "Profile", "StationTariffs", "TariffVersion",
    "draw_policies", "fee_texts", "hhmm", "hhmmss", "kind_of", "operator_profile", "over_cap", "split",
]

DAY = 86400
#: Start of each Pearl River Delta period, seconds since China midnight.
PERIOD_STARTS = (0, 8 * 3600, 10 * 3600, 12 * 3600, 14 * 3600, 19 * 3600)
_PERIOD_KIND = ("valley", "flat", "peak", "flat", "peak", "flat")
_ELECTRICITY = {"valley": (0.25, 0.35), "flat": (0.60, 0.70), "peak": (1.00, 1.15)}
#: Highest total (electricity + service) a normal tariff reaches: under the city cap of 2.
MAX_TOTAL = 1.99
#: The absurd service fee of the ``policy_over_cap`` fault.
OVER_CAP_SERVICE = 3.5


def hhmmss(seconds: int) -> str:
    """Policy time ``HHmmss``.

    >>> hhmmss(0), hhmmss(19 * 3600 + 61)
    ('000000', '190101')
    """
    h, rest = divmod(seconds, 3600)
    return f"{h:02d}{rest // 60:02d}{rest % 60:02d}"


def hhmm(seconds: int) -> str:
    """Fee-text time ``HH:MM`` (``24:00`` for the end of the day).

    >>> hhmm(8 * 3600), hhmm(DAY)
    ('08:00', '24:00')
    """
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


def kind_of(connector_type: int) -> str:
    """``"DC"`` for a DC plug (ConnectorType 4), ``"AC"`` for every other connector."""
    return "DC" if connector_type == 4 else "AC"


@dataclass(frozen=True)
class Policy:
    """One tariff: ``(start seconds, ElecPrice, SevicePrice)`` per period, the first at 0."""

    periods: tuple[tuple[int, float, float], ...]

    def policy_infos(self) -> list[dict]:
        return [{"StartTime": hhmmss(s), "ElecPrice": e, "SevicePrice": v} for s, e, v in self.periods]

    @property
    def starts(self) -> tuple[int, ...]:
        return tuple(p[0] for p in self.periods)

    def prices_at(self, seconds: int) -> tuple[float, float]:
        """(electricity, service) in force ``seconds`` after midnight."""
        _, e, v = [p for p in self.periods if p[0] <= seconds % DAY][-1]
        return e, v

    @property
    def max_total(self) -> float:
        return round(max(e + v for _, e, v in self.periods), 4)


@dataclass(frozen=True)
class Profile:
    """An operator's pricing habits (shared by its stations)."""

    flat: bool
    """One price all day (one period)."""
    service: float
    """Typical daytime service fee of its DC piles."""
    valley_discount: float
    """Service fee cheaper by this much in the valley (00–08)."""
    dc_premium: float
    """DC piles' service fee above AC piles'."""


def operator_profile(seed: int, operator_id: str, index: int) -> Profile:
    """The profile of the ``index``-th operator; every third operator bills a flat tariff."""
    r = random.Random(f"tariff-operator:{seed}:{operator_id}")
    return Profile(
        flat=index % 3 == 2,
        service=round(r.uniform(0.50, 0.85), 2),
        valley_discount=r.choice((0.0, 0.0, 0.10, 0.20, 0.30)),
        dc_premium=r.choice((0.0, 0.0, 0.05, 0.10, 0.15)),
    )


def _clamp(x: float, low: float, high: float) -> float:
    return min(max(x, low), high)


def draw_policies(seed: int, profile: Profile, operator_id: str, station_id: str, version: int) -> tuple[Policy, Policy]:
    """(AC, DC) policies of one station's tariff version. Electricity is the same for both; the
    service fee of AC piles is the DC one less the operator's ``dc_premium`` in every period."""
    r = random.Random(f"tariff:{seed}:{operator_id}:{station_id}:{version}")
    premium = profile.dc_premium
    if profile.flat:
        elec = round(r.uniform(0.60, 0.75), 4)
        dc = round(_clamp(profile.service + r.uniform(-0.08, 0.08), 0.40 + premium, 0.90), 2)
        return Policy(((0, elec, round(dc - premium, 2)),)), Policy(((0, elec, dc),))
    elec = {k: round(r.uniform(*span), 4) for k, span in _ELECTRICITY.items()}
    ceiling = math.floor(round((MAX_TOTAL - elec["peak"]) * 100, 6)) / 100  # in cents, rounded down
    day = round(_clamp(profile.service + r.uniform(-0.08, 0.08), 0.40 + premium, min(0.90, ceiling)), 2)
    valley = round(max(0.40 + premium, day - profile.valley_discount), 2)
    out = []
    for minus in (premium, 0.0):
        out.append(Policy(tuple(
            (start, elec[kind], round((valley if kind == "valley" else day) - minus, 2))
            for start, kind in zip(PERIOD_STARTS, _PERIOD_KIND)
        )))
    return out[0], out[1]


def over_cap(policy: Policy) -> Policy:
    """The same periods with the absurd service fee of the ``policy_over_cap`` fault."""
    return Policy(tuple((s, e, OVER_CAP_SERVICE) for s, e, _ in policy.periods))


@dataclass(frozen=True)
class TariffVersion:
    version: int
    since: datetime
    ac: Policy
    dc: Policy
    reason: str
    """``initial``, ``change``, ``over_cap`` or ``restore``."""

    def policy(self, kind: str) -> Policy:
        return self.dc if kind == "DC" else self.ac

    @property
    def over_cap(self) -> bool:
        return max(self.ac.max_total, self.dc.max_total) > 2

    def as_dict(self) -> dict:
        return {"version": self.version, "since": format_query_time(self.since), "reason": self.reason,
                "over_cap": self.over_cap, "AC": self.ac.policy_infos(), "DC": self.dc.policy_infos()}


@dataclass
class StationTariffs:
    """A station's tariff history, oldest first (versions are never removed)."""

    versions: list[TariffVersion]

    @property
    def current(self) -> TariffVersion:
        return self.versions[-1]

    def at(self, moment: datetime) -> TariffVersion:
        """The version in force at ``moment`` (the first one for earlier moments)."""
        found = self.versions[0]
        for v in self.versions:
            if v.since <= moment:
                found = v
            else:
                break
        return found


def _ranges(policy: Policy, column: int, decimals: int) -> str:
    """``"00:00-08:00 0.3500元/度;08:00-…"``: neighbouring periods with one price joined."""
    parts: list[tuple[int, int, float]] = []
    for i, period in enumerate(policy.periods):
        end = policy.periods[i + 1][0] if i + 1 < len(policy.periods) else DAY
        if parts and parts[-1][2] == period[column]:
            parts[-1] = (parts[-1][0], end, period[column])
        else:
            parts.append((period[0], end, period[column]))
    return ";".join(f"{hhmm(a)}-{hhmm(b)} {v:.{decimals}f}元/度" for a, b, v in parts)


def fee_texts(version: TariffVersion, kinds: set[str]) -> tuple[str, str]:
    """``(ElectricityFee, ServiceFee)`` free texts that say what the policy says.

    Written in the format ``services/supervision/fees.py`` parses. The service fee text is the
    DC piles' when the station has any (they sell most of the energy); when its AC piles bill
    less, a note says by how much (without time ranges, so a parser reads the DC schedule).

    >>> v = TariffVersion(1, datetime(2024, 1, 1), Policy(((0, 0.3, 0.5), (28800, 0.65, 0.7))),
    ...                   Policy(((0, 0.3, 0.6), (28800, 0.65, 0.8))), "initial")
    >>> fee_texts(v, {"AC", "DC"})
    ('00:00-08:00 0.3000元/度;08:00-24:00 0.6500元/度', '00:00-08:00 0.60元/度;08:00-24:00 0.80元/度；交流桩服务费每度低0.10元')
    >>> fee_texts(v, {"AC"})[1]
    '00:00-08:00 0.50元/度;08:00-24:00 0.70元/度'
    """
    main = version.dc if "DC" in kinds or not kinds else version.ac
    service = _ranges(main, 2, 2)
    if {"AC", "DC"} <= kinds and version.ac != version.dc:
        less = round(version.dc.periods[0][2] - version.ac.periods[0][2], 2)
        service += f"；交流桩服务费每度低{less:.2f}元"
    return _ranges(main, 1, 4), service


def split(start: datetime, end: datetime, starts: tuple[int, ...]) -> list[tuple[datetime, datetime, datetime, int]]:
    """The price periods ``start``..``end`` crosses: ``(from, to, period start, period index)``
    each, clipped to the span; every midnight starts a new period (the day repeats).

    >>> from ingest.protocol import CHINA_TZ
    >>> t = lambda h, m, d=1: datetime(2024, 5, d, h, m, tzinfo=CHINA_TZ)
    >>> [(a.strftime("%d %H:%M"), b.strftime("%H:%M"), p.strftime("%H:%M"), i)
    ...  for a, b, p, i in split(t(7, 30), t(10, 15), PERIOD_STARTS)]
    [('01 07:30', '08:00', '00:00', 0), ('01 08:00', '10:00', '08:00', 1), ('01 10:00', '10:15', '10:00', 2)]
    >>> [(a.strftime("%d %H:%M"), b.strftime("%d %H:%M"), i) for a, b, _, i in split(t(23, 0), t(1, 0, 2), (0,))]
    [('01 23:00', '02 00:00', 0), ('02 00:00', '02 01:00', 0)]
    """
    out = []
    cur = start
    while True:
        midnight = cur.replace(hour=0, minute=0, second=0, microsecond=0)
        offset = int((cur - midnight).total_seconds())
        i = max(j for j, s in enumerate(starts) if s <= offset)
        period_end = midnight + timedelta(seconds=starts[i + 1] if i + 1 < len(starts) else DAY)
        stop = min(end, period_end)
        out.append((cur, stop, midnight + timedelta(seconds=starts[i]), i))
        if stop >= end:
            return out
        cur = stop

"""Uptime from the status history: per connector, station, operator and district, per day and month.

Definition (NEVI-style, written out in the README): over a window, a connector is

* **up** while its status is 1 free, 2 occupied not charging, 3 charging or 4 reserved: able to charge;
* **down** while it is 0 offline or 255 fault;
* **unknown** while it is silent (no report for ``ZHCHARGE_RELIABILITY_SILENCE_S``) or before its
  first report: not observed, neither up nor down;
* **excluded**, whatever its status, while its station announced maintenance (StationStatus 6) or
  is closed by its opening hours (``services.reliability.hours``).

``uptime = up / (up + down)``, ``None`` when nothing was observed. A station's, operator's or
district's uptime adds up its connectors' seconds. A *fault* is an entry into 255 from any other
status (unknown included) outside excluded time.

Days are China days. What the job aggregated is read from the aggregates: whole months
(``connector_monthly``), whole days and today up to its last aggregated hour (``connector_daily``);
the rest of a window (its partial days, the last hour, days not aggregated or stale) is computed
from the history by the same query (``sql/queries/connector_uptime.sql``), so both agree to the
rounding of whole seconds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.db import read_sql
from services.reliability.window import china_date, china_midnight
from services.search.prepared import prepared_rows, to_pyformat

__all__ = ["GROUPS", "UPTIME_SQL", "Coverage", "Plan", "Uptime", "connector_uptime", "keyed", "plan_window", "query",
           "read_coverage", "uptime_table"]


def query(name: str) -> str:
    """A query file without its comments (their apostrophes would confuse the bind conversion)."""
    return re.sub(r"--[^\n]*", "", read_sql(f"queries/{name}"))


UPTIME_SQL = query("status_intervals.sql") + query("connector_uptime.sql")

_ALL_OR_KEYS = "WHERE CAST(:keys AS integer[]) IS NULL OR cs.id = ANY(CAST(:keys AS integer[]))"


def keyed(sql: str) -> str:
    """The statement for given connectors only (no NULL branch: a prepared statement's generic plan
    then looks the connectors up by key)."""
    assert _ALL_OR_KEYS in sql
    return sql.replace(_ALL_OR_KEYS, "WHERE cs.id = ANY(CAST(:keys AS integer[]))")


@dataclass
class Uptime:
    """Seconds of one connector (or a sum of them) over a window."""

    up_s: float = 0.0
    down_s: float = 0.0
    unknown_s: float = 0.0
    excluded_s: float = 0.0
    faults: int = 0
    last_fault_at: datetime | None = None

    def add(self, row: Mapping[str, Any]) -> None:
        self.up_s += float(row["up_s"])
        self.down_s += float(row["down_s"])
        self.unknown_s += float(row["unknown_s"])
        self.excluded_s += float(row["excluded_s"])
        self.faults += int(row["faults"])
        last = row["last_fault_at"]
        if last is not None and (self.last_fault_at is None or last > self.last_fault_at):
            self.last_fault_at = last

    @property
    def uptime(self) -> float | None:
        """Up / (up + down), ``None`` when nothing was observed.

        >>> Uptime(up_s=97, down_s=3).uptime, Uptime(unknown_s=5).uptime
        (0.97, None)
        """
        observed = self.up_s + self.down_s
        return self.up_s / observed if observed > 0 else None


# --- what the aggregates hold, and how a window is read ------------------------------------------
@dataclass(frozen=True)
class Coverage:
    """Days aggregated whole, days aggregated up to a time (today: up to its last hour), and months
    whose whole days are all summed in ``connector_monthly``; stale ones are left out."""

    complete: frozenset[date] = frozenset()
    partial: Mapping[date, datetime] = field(default_factory=dict)
    months: frozenset[date] = frozenset()

    @classmethod
    def of(cls, days: Sequence[tuple[date, datetime | None, bool]], months: Sequence[tuple[date, int]]) -> Coverage:
        """From ``reliability_days`` rows (day, aggregated_until, stale) of whole months, and
        ``uptime_months`` rows (month, days summed)."""
        complete = {d for d, until, stale in days
                    if not stale and until is not None and until >= china_midnight(d + timedelta(days=1))}
        partial = {d: until for d, until, stale in days if not stale and until is not None and d not in complete}
        stale_months = {d.replace(day=1) for d, _, stale in days if stale}
        whole = Counter(d.replace(day=1) for d in complete)
        ready = {m for m, n in months if n > 0 and m not in stale_months and whole.get(m) == n}
        return cls(frozenset(complete), partial, frozenset(ready))


_COVERAGE_DAYS = text("SELECT day, aggregated_until, stale FROM reliability_days WHERE day BETWEEN :a AND :b")
_COVERAGE_MONTHS = text("SELECT month, days FROM uptime_months WHERE month BETWEEN :a AND :b")


def read_coverage(conn: Connection, first: date, last: date) -> Coverage:
    """What the aggregates hold for the China days [first, last] (and the rest of their months)."""
    a = first.replace(day=1)
    return Coverage.of(conn.execute(_COVERAGE_DAYS, {"a": a, "b": last}).all(),
                       conn.execute(_COVERAGE_MONTHS, {"a": a, "b": last}).all())


@dataclass
class Plan:
    """How to read a window: months and days from the aggregates, the rest from the history."""

    months: list[date]
    days: list[date]
    raw: list[tuple[datetime, datetime]]


def plan_window(start: datetime, end: datetime, cov: Coverage, now: datetime, *, merge: bool = True,
                months: bool = True) -> Plan:
    """Split [start, end) (nothing after ``now``): whole months and days the aggregates hold (a
    partial day when the window runs past its aggregated hour), the rest as windows of the history
    (within one day each, or contiguous ones merged).

    >>> from services.prices.tariff import CHINA_TZ
    >>> t = lambda d, h=0: datetime(2026, 12, d, h, tzinfo=CHINA_TZ)
    >>> cov = Coverage(frozenset({date(2026, 12, 2), date(2026, 12, 4)}), {date(2026, 12, 6): t(6, 7)})
    >>> p = plan_window(t(1, 12), t(6, 9), cov, t(6, 8))
    >>> p.days, [(a.day, a.hour, b.day, b.hour) for a, b in p.raw]
    ([datetime.date(2026, 12, 2), datetime.date(2026, 12, 4), datetime.date(2026, 12, 6)], [(1, 12, 2, 0), (3, 0, 4, 0), (5, 0, 6, 0), (6, 7, 6, 8)])
    """
    end = min(end, now)
    plan = Plan([], [], [])

    def history(a: datetime, b: datetime) -> None:
        if merge and plan.raw and plan.raw[-1][1] == a:
            plan.raw[-1] = (plan.raw[-1][0], b)
        else:
            plan.raw.append((a, b))

    day = china_date(start)
    while start < end:
        day_start, day_end = china_midnight(day), china_midnight(day + timedelta(days=1))
        piece_end = min(day_end, end)
        until = cov.partial.get(day)
        if start == day_start and day in cov.complete and piece_end == day_end:
            plan.days.append(day)
        elif start == day_start and until is not None and until <= piece_end:
            plan.days.append(day)
            if until < piece_end:
                history(until, piece_end)
        else:
            history(start, piece_end)
        start, day = piece_end, day + timedelta(days=1)
    if months and cov.months:
        taken = set(plan.days)
        for month in sorted(cov.months):
            whole = {d for d in cov.complete if d.replace(day=1) == month}
            if whole and whole <= taken:
                plan.months.append(month)
                taken -= whole
        plan.days = sorted(taken)
    return plan


def _params(keys: Sequence[int] | None, plan: Plan, now: datetime) -> dict[str, Any]:
    return {"keys": list(keys) if keys is not None else None, "starts": [a for a, _ in plan.raw],
            "ends": [b for _, b in plan.raw], "now": now,
            "days": plan.days, "d0": min(plan.days, default=None), "d1": max(plan.days, default=None),
            "months": plan.months, "m0": min(plan.months, default=None), "m1": max(plan.months, default=None)}


_COLUMNS = "connector_key, station_pk, day, up_s, down_s, excluded_s, unknown_s, faults, last_fault_at"
_KEYS = "(CAST(:keys AS integer[]) IS NULL OR connector_key = ANY(CAST(:keys AS integer[])))"


def _combined(sql: str = UPTIME_SQL, keys: str = _KEYS) -> str:
    """``u``: the rows of the history windows, the aggregated days and the summed months (``day``:
    the month's first day), with the same columns."""
    monthly = _COLUMNS.replace(" day,", " month AS day,")
    return (f"WITH raw AS ({sql}), "
            f"daily AS (SELECT {_COLUMNS} FROM connector_daily WHERE day BETWEEN :d0 AND :d1 "
            f"AND day = ANY(CAST(:days AS date[])) AND {keys}), "
            f"monthly AS (SELECT {monthly} FROM connector_monthly WHERE month BETWEEN :m0 AND :m1 "
            f"AND month = ANY(CAST(:months AS date[])) AND {keys}), "
            f"u AS (SELECT {_COLUMNS} FROM raw UNION ALL SELECT {_COLUMNS} FROM daily "
            f"UNION ALL SELECT {_COLUMNS} FROM monthly) ")


_CONNECTORS_SQL = to_pyformat(
    _combined(keyed(UPTIME_SQL), "connector_key = ANY(CAST(:keys AS integer[]))")
    + "SELECT connector_key, sum(up_s) AS up_s, sum(down_s) AS down_s, sum(excluded_s) AS excluded_s, "
      "sum(unknown_s) AS unknown_s, sum(faults) AS faults, max(last_fault_at) AS last_fault_at "
      "FROM u GROUP BY connector_key")


def connector_uptime(conn: Connection, keys: Sequence[int], start: datetime, end: datetime, now: datetime, *,
                     aggregates: bool = True, coverage: Coverage | None = None) -> dict[int, Uptime]:
    """Each connector's uptime over [start, end) (keys: ``connector_status.id``); ``coverage``: what
    the aggregates hold, if the caller has read it; ``aggregates=False`` reads only the history."""
    if not keys or start >= min(end, now):
        return {}
    if not aggregates:
        coverage = Coverage()
    elif coverage is None:
        coverage = read_coverage(conn, china_date(start), china_date(end))
    plan = plan_window(start, end, coverage, now)
    out: dict[int, Uptime] = {}
    for row in prepared_rows(conn, _CONNECTORS_SQL, _params(keys, plan, now)):
        out.setdefault(row["connector_key"], Uptime()).add(row)
    return out


#: what a table can be grouped by: (expression over the connector rows ``p`` and ``stations s``, name)
GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "connector": (("p.connector_key", "connector_key"), ("s.id", "station_pk"), ("s.operator_id", "operator_id"),
                  ("s.district_adcode", "district_adcode")),
    "station": (("s.id", "station_pk"), ("s.operator_id", "operator_id"), ("s.district_adcode", "district_adcode")),
    "operator": (("s.operator_id", "operator_id"),),
    "district": (("s.district_adcode", "district_adcode"),),
    "city": (),
}
_PERIODS = {"day": "u.day", "month": "CAST(date_trunc('month', u.day) AS date)", "window": "NULL::date"}
_SUMS = ("sum(p.up_s) AS up_s", "sum(p.down_s) AS down_s", "sum(p.excluded_s) AS excluded_s",
         "sum(p.unknown_s) AS unknown_s", "sum(p.faults)::integer AS faults", "max(p.last_fault_at) AS last_fault_at")


def uptime_table(conn: Connection, start_day: date, end_day: date, *, by: str = "station", per: str = "month",
                 now: datetime, active_only: bool = True) -> list[dict[str, Any]]:
    """Uptime of every connector, station, operator or district (``by``, or the whole ``city``), per
    day, month or over the whole window (``per``), for the China days [start_day, end_day]: one query
    over the aggregates plus the history for what they do not hold (the last hour). Each row has its
    group's columns, ``period`` (null per window), the seconds, ``connectors``, ``faults``,
    ``last_fault_at`` and ``uptime``."""
    if by not in GROUPS or per not in _PERIODS:
        raise ValueError(f"by must be one of {sorted(GROUPS)} and per one of {sorted(_PERIODS)}")
    start, end = china_midnight(start_day), china_midnight(end_day + timedelta(days=1))
    if start >= min(end, now):
        return []
    plan = plan_window(start, end, read_coverage(conn, start_day, end_day), now, merge=False, months=per != "day")
    keys = [*(e for e, _ in GROUPS[by]), "p.period"]
    select = [f"{e} AS {n}" for e, n in GROUPS[by]]
    # per connector and period first (no count(DISTINCT) over the days), then per group
    sql = (_combined() + ", p AS (SELECT u.connector_key, u.station_pk, "
           f"{_PERIODS[per]} AS period, sum(u.up_s) AS up_s, sum(u.down_s) AS down_s, "
           "sum(u.excluded_s) AS excluded_s, sum(u.unknown_s) AS unknown_s, sum(u.faults) AS faults, "
           "max(u.last_fault_at) AS last_fault_at FROM u GROUP BY 1, 2, 3) "
           f"SELECT {', '.join([*select, 'p.period AS period', 'count(*) AS connectors', *_SUMS])} "
           "FROM p JOIN stations s ON s.id = p.station_pk "
           + ("WHERE s.feed_state = 'active' " if active_only else "")
           + f"GROUP BY {', '.join(keys)} ORDER BY {', '.join(keys)}")
    out = []
    for row in conn.execute(text(sql), _params(None, plan, now)).mappings():
        item = dict(row)
        item["faults"] = item["faults"] or 0
        observed = float(item["up_s"] or 0) + float(item["down_s"] or 0)
        item["uptime"] = float(item["up_s"]) / observed if observed > 0 else None
        out.append(item)
    return out

"""The aggregates: each China day's uptime per connector (``connector_daily``), its occupancy per
station and hour (``station_daily``), and each month's sums of whole days (``connector_monthly``),
computed by the same queries as a window read live.

A day is aggregated whole once it has ended and ``margin_s`` has passed (late pushes, at most the
TimeStamp window old, and silences land first); until then today is aggregated up to its last whole
hour before ``now - margin_s``, again every hour, so reading today means reading under an hour of
history. A report that lands later in an aggregated stretch marks its days stale
(``zh_status_history_late``, the silence job) and they are aggregated again. Aggregating a day holds
its ``reliability_days`` row, so a late report waits for it and then marks it stale: nothing is
lost between the two.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.reliability.partitions import add_months, horizon
from services.reliability.uptime import UPTIME_SQL, query
from services.reliability.window import china_date, china_midnight

__all__ = ["pending_days", "roll_month", "rollup_day"]

_UPTIME = text(
    "INSERT INTO connector_daily (connector_key, day, station_pk, up_s, down_s, unknown_s, excluded_s, faults, "
    "last_fault_at) "
    "SELECT connector_key, CAST(:day AS date), station_pk, round(up_s), round(down_s), round(unknown_s), "
    "round(excluded_s), faults, last_fault_at "
    f"FROM ({UPTIME_SQL}) u ORDER BY station_pk, connector_key")  # a station's rows together: a page a day
_OCCUPANCY = text(
    "INSERT INTO station_daily (station_pk, day, occupied_s, observed_s) SELECT station_pk, CAST(:day AS date), "
    f"occupied_s, observed_s FROM ({query('status_intervals.sql')}{query('station_occupancy.sql')}) o")
_MONTH = text("""
WITH whole AS (
    SELECT day FROM reliability_days
    WHERE day >= :m AND day < :next AND NOT stale
      AND aggregated_until >= CAST(day + 1 AS timestamp) AT TIME ZONE 'Asia/Shanghai'
), ins AS (
    INSERT INTO connector_monthly (connector_key, month, station_pk, up_s, down_s, unknown_s, excluded_s, faults,
                                   last_fault_at)
    SELECT d.connector_key, :m, max(d.station_pk), sum(d.up_s), sum(d.down_s), sum(d.unknown_s), sum(d.excluded_s),
           sum(d.faults), max(d.last_fault_at)
    FROM connector_daily d JOIN whole USING (day)
    GROUP BY d.connector_key ORDER BY 3, 1
)
INSERT INTO uptime_months (month, days, rolled_at) SELECT :m, count(*), now() FROM whole
ON CONFLICT (month) DO UPDATE SET days = EXCLUDED.days, rolled_at = now()
""")


def rollup_day(conn: Connection, day: date, until: datetime | None = None) -> int:
    """(Re)aggregate one China day, whole or up to ``until``, in the caller's transaction (a whole day
    also gets its occupancy and its month's sums); returns the connectors written."""
    start, end = china_midnight(day), china_midnight(day + timedelta(days=1))
    until = min(until or end, end)
    conn.execute(text("INSERT INTO reliability_days (day) VALUES (:d) ON CONFLICT DO NOTHING"), {"d": day})
    conn.execute(text("SELECT 1 FROM reliability_days WHERE day = :d FOR UPDATE"), {"d": day})
    conn.execute(text("DELETE FROM connector_daily WHERE day = :d"), {"d": day})
    conn.execute(text("DELETE FROM station_daily WHERE day = :d"), {"d": day})
    params = {"day": day, "start": start, "until": until, "keys": None, "starts": [start], "ends": [until],
              "now": until}
    n = conn.execute(_UPTIME, params).rowcount
    if until == end:
        conn.execute(_OCCUPANCY, params)
    conn.execute(text("UPDATE reliability_days SET aggregated_until = :u, aggregated_at = now(), stale = false "
                      "WHERE day = :d"), {"d": day, "u": until})
    if until == end:
        roll_month(conn, day.replace(day=1))
    return n


def roll_month(conn: Connection, month: date) -> None:
    """Sum the month's whole, fresh days into ``connector_monthly`` (and say how many in ``uptime_months``)."""
    conn.execute(text("DELETE FROM connector_monthly WHERE month = :m"), {"m": month})
    conn.execute(_MONTH, {"m": month, "next": add_months(month, 1)})


def pending_days(conn: Connection, now: datetime, margin_s: float) -> list[tuple[date, datetime]]:
    """(day, until) to aggregate, oldest first: ended days (plus the margin) not aggregated whole or
    stale, and today up to its last whole hour before ``now - margin_s`` when that is newer."""
    begin = horizon(conn)
    if begin is None:
        return []
    settled = now - timedelta(seconds=margin_s)
    first, last = china_date(begin), china_date(settled)
    have = {d: (u, stale) for d, u, stale in conn.execute(text(
        "SELECT day, aggregated_until, stale FROM reliability_days WHERE day BETWEEN :a AND :b"),
        {"a": first, "b": last})}
    out = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        end = china_midnight(day + timedelta(days=1))
        until = end if end <= settled else settled.replace(minute=0, second=0, microsecond=0)
        if until <= china_midnight(day):
            continue
        got, stale = have.get(day, (None, False))
        if stale or got is None or got < until:
            out.append((day, until))
    return out

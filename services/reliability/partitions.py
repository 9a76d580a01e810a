"""The monthly partitions of ``connector_status_history``: made ahead, carried over, dropped after
the retention.

A partition holds one China month. When a month begins, every connector's state at its start is
written into it (a *carried* row, source ``c``: not a change), so the state at any time is found
within its own month and a dropped month takes nothing the others need. Months are carried in
order, however late the job runs.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.prices.tariff import CHINA_TZ

__all__ = ["add_months", "carry_months", "drop_expired", "ensure_partitions", "horizon", "is_missing_partition",
           "make_partition", "month_of", "month_start", "partition_name"]

PARENT = "connector_status_history"


def month_of(at: datetime) -> date:
    """The first day of the China month of ``at``.

    >>> from datetime import UTC
    >>> month_of(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)), month_of(datetime(2026, 11, 30, 15, 59, tzinfo=UTC))
    (datetime.date(2026, 12, 1), datetime.date(2026, 11, 1))
    """
    d = at.astimezone(CHINA_TZ).date()
    return d.replace(day=1)


def add_months(month: date, n: int) -> date:
    """
    >>> add_months(date(2026, 12, 1), 1), add_months(date(2026, 1, 1), -13)
    (datetime.date(2027, 1, 1), datetime.date(2024, 12, 1))
    """
    y, m = divmod(month.year * 12 + month.month - 1 + n, 12)
    return date(y, m + 1, 1)


def month_start(month: date) -> datetime:
    """China midnight starting that month, as an aware datetime."""
    return datetime(month.year, month.month, 1, tzinfo=CHINA_TZ)


def partition_name(month: date) -> str:
    return f"{PARENT}_{month.year:04d}_{month.month:02d}"


def _partitions(conn: Connection) -> list[date]:
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = CAST(:parent AS regclass)"), {"parent": PARENT}).scalars()
    out = []
    for name in names:
        y, m = name.removeprefix(PARENT + "_").split("_")
        out.append(date(int(y), int(m), 1))
    return sorted(out)


def horizon(conn: Connection) -> datetime | None:
    """Where the history begins: the start of the oldest month kept."""
    months = _partitions(conn)
    return month_start(months[0]) if months else None


def make_partition(conn: Connection, month: date) -> bool:
    """Make one month's partition (and its ``reliability_months`` row); false when it exists.

    DDL waits at most 3 s for its lock (pushes hold the table briefly); a run that times out is
    repeated by the next one, months ahead of need.
    """
    if month in set(_partitions(conn)):
        return False
    conn.execute(text("SET LOCAL lock_timeout = '3s'"))
    name = partition_name(month)  # built from integers only
    conn.execute(text(
        f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF {PARENT} FOR VALUES FROM (:a) TO (:b)').bindparams(
        a=month_start(month), b=month_start(add_months(month, 1))))
    conn.execute(text("INSERT INTO reliability_months (month) VALUES (:m) ON CONFLICT DO NOTHING"), {"m": month})
    return True


def ensure_partitions(conn: Connection, now: datetime, ahead: int = 2) -> list[str]:
    """Make the partitions of this month and the ``ahead`` next ones, and any missing since the newest
    one (a job that did not run for months leaves no gap); returns the names made."""
    current = month_of(now)
    have = _partitions(conn)
    month = min(add_months(have[-1], 1), current) if have else current
    made = []
    while month <= add_months(current, ahead):
        if make_partition(conn, month):
            made.append(partition_name(month))
        month = add_months(month, 1)
    return made


_CARRY = text("""
INSERT INTO connector_status_history (at, connector_key, status, source)
SELECT CAST(:start AS timestamptz), cs.id, h.status, 'c'
FROM connector_status cs
CROSS JOIN LATERAL (SELECT h.status FROM connector_status_history h
                    WHERE h.connector_key = cs.id AND h.at >= CAST(:prev AS timestamptz)
                      AND h.at < CAST(:start AS timestamptz)
                    ORDER BY h.at DESC LIMIT 1) h
ON CONFLICT (connector_key, at) DO NOTHING
""")


def carry_months(conn: Connection, now: datetime) -> list[date]:
    """Write the carried rows of every month that has begun and has none yet, oldest first."""
    due = conn.execute(text(
        "SELECT month FROM reliability_months WHERE carried_at IS NULL AND month <= :m ORDER BY month"),
        {"m": month_of(now)}).scalars().all()
    for month in due:
        conn.execute(_CARRY, {"start": month_start(month), "prev": month_start(add_months(month, -1))})
        conn.execute(text("UPDATE reliability_months SET carried_at = now() WHERE month = :m"), {"m": month})
    return list(due)


def drop_expired(conn: Connection, now: datetime, retention_months: int, daily_retention_months: int) -> list[str]:
    """Detach and drop the months older than the retention (whole months: the current one and the
    ``retention_months - 1`` before it are kept), and daily aggregates older than theirs."""
    keep_from = add_months(month_of(now), -(retention_months - 1))
    dropped = []
    for month in _partitions(conn):
        if month >= keep_from:
            break
        name = partition_name(month)
        conn.execute(text("SET LOCAL lock_timeout = '3s'"))
        conn.execute(text(f'ALTER TABLE {PARENT} DETACH PARTITION "{name}"'))
        conn.execute(text(f'DROP TABLE "{name}"'))
        conn.execute(text("DELETE FROM reliability_months WHERE month = :m"), {"m": month})
        dropped.append(name)
    daily_from = add_months(month_of(now), -(daily_retention_months - 1))
    conn.execute(text("DELETE FROM connector_daily WHERE day < :d"), {"d": daily_from})
    conn.execute(text("DELETE FROM station_daily WHERE day < :d"), {"d": daily_from})
    conn.execute(text("DELETE FROM reliability_days WHERE day < :d"), {"d": daily_from})
    return dropped


def is_missing_partition(exc: BaseException) -> bool:
    """A write failed because the history has no partition for its time (SQLSTATE 23514)."""
    orig = getattr(exc, "orig", None)
    return getattr(orig, "pgcode", None) == "23514" and "no partition" in str(orig)

"""Keeping ``station_search`` in spatial order (issue 18: facets in a bbox at national scale).

Facet counts in a map box read every visible station in the box from the narrow table
``station_search``. Its rows are written in the order the feeds deliver them (operator by operator,
all over the country), so a city box of 57,000 stations out of 1,000,000 touched 13,500 of the table's
13,700 pages; in spatial order (``CLUSTER`` on its GiST index) the same box reads about 700, and the
query takes a third less time (bench ``search``, ``facets+bbox``). The order holds between runs: the
table's fillfactor (90, migration 0306) keeps the frequent updates (the free flag, the price now, the
30-day uptime) in their page; only new stations land elsewhere.

:func:`cluster_station_search` re-orders it: ``zhcharge db cluster``, and the app's daily job at
``ZHCHARGE_SEARCH_CLUSTER_HOUR`` (China time, default 4; -1: never). ``CLUSTER`` holds an exclusive lock on
the table while it runs (0.2 s for a city, 4.6 s for 1,000,000 stations on 2 cores), so it waits at
most ``lock_timeout_s`` for that lock and otherwise gives up until the next run; one process runs it
at a time (advisory lock). Each run is recorded in ``maintenance_runs``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from services.db import TransactionLock
from services.jobs import PeriodicJob

__all__ = ["ClusterRun", "JOB", "cluster_due", "cluster_job", "cluster_station_search"]

log = logging.getLogger("zhcharge.search")

JOB = "cluster_station_search"  # its maintenance_runs row
_LOCK = 0x7A68_0306  # advisory lock key
_CHINA = ZoneInfo("Asia/Shanghai")


@dataclass
class ClusterRun:
    ran: bool
    seconds: float = 0.0
    rows: int = 0
    reason: str = ""


def cluster_station_search(engine: Engine, *, lock_timeout_s: float = 2.0) -> ClusterRun:
    """``CLUSTER station_search`` on its GiST index, then ``ANALYZE``; recorded in ``maintenance_runs``.
    Not run (``ran`` False, with the reason) while another process runs it or when the table's lock is
    not had within ``lock_timeout_s`` (readers and writers queue behind a waiting CLUSTER)."""
    lock = TransactionLock(engine, ":k", {"k": _LOCK})
    if not lock.acquire():
        return ClusterRun(False, reason="another process is clustering")
    try:
        t0 = time.monotonic()
        try:
            with engine.connect() as conn, conn.begin():
                conn.execute(text("SELECT set_config('lock_timeout', :t, true), "
                                  "set_config('statement_timeout', '0', true)"), {"t": f"{int(lock_timeout_s * 1000)}ms"})
                conn.execute(text("CLUSTER station_search USING ix_station_search_geom"))
                conn.execute(text("ANALYZE station_search"))
                rows = conn.execute(text("SELECT count(*) FROM station_search")).scalar()
                seconds = time.monotonic() - t0
                conn.execute(text(
                    "INSERT INTO maintenance_runs (job, ran_at, seconds, detail) VALUES (:j, now(), :s, :d) "
                    "ON CONFLICT (job) DO UPDATE SET ran_at = EXCLUDED.ran_at, seconds = EXCLUDED.seconds, "
                    "detail = EXCLUDED.detail"), {"j": JOB, "s": seconds, "d": f"{rows} rows"})
        except OperationalError as exc:
            if "lock timeout" not in str(exc):
                raise
            return ClusterRun(False, reason=f"station_search was busy for {lock_timeout_s:g} s")
    finally:
        lock.release()
    log.info("search: station_search clustered in %.1f s (%d rows)", seconds, rows)
    return ClusterRun(True, seconds, rows)


def cluster_due(conn, hour: int, now: datetime | None = None) -> bool:  # noqa: ANN001
    """Whether the daily run is due: it is ``hour`` o'clock in China and the last run is 20 hours old
    or more (or there was none); never with ``hour`` -1."""
    if hour < 0:
        return False
    now = now or datetime.now(UTC)
    if now.astimezone(_CHINA).hour != hour:
        return False
    last = conn.execute(text("SELECT ran_at FROM maintenance_runs WHERE job = :j"), {"j": JOB}).scalar()
    return last is None or now - last >= timedelta(hours=20)


def cluster_job(engine: Engine, hour: int) -> PeriodicJob:
    """The app's daily run: checks every 10 minutes whether :func:`cluster_due`."""

    def run() -> None:
        with engine.connect() as conn:
            due = cluster_due(conn, hour)
        if due:
            result = cluster_station_search(engine)
            if not result.ran:
                log.info("search: clustering postponed: %s", result.reason)

    return PeriodicJob("search-cluster", run, 600.0, first_delay_s=60.0)

"""The reliability job: one run every ``job_interval_s`` in every app process that runs background
jobs; a PostgreSQL advisory lock lets one of them do it.

A run, each step its own transaction: make the coming months' partitions; mark silent connectors
unknown; carry each begun month's states into its partition; read changed opening hours; aggregate
ended days and today up to its last hour (at most ``days_per_run``, oldest first, so a backlog never
holds the lock for long); after new aggregates, or hourly, refresh every station's 30-day figures
(``services.reliability.summary``; the stations' data version moves when one changed, so search
ETags follow); drop what is older than the retention.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import Engine

from services.db import TransactionLock
from services.jobs import PeriodicJob
from services.reliability.freshness import mark_silent
from services.reliability.hours import refresh_open_hours
from services.reliability.partitions import carry_months, drop_expired, ensure_partitions, horizon
from services.reliability.rollup import pending_days, rollup_day
from services.reliability.settings import ReliabilitySettings
from services.reliability.summary import refresh_due, refresh_station_reliability
from services.stations.summary import bump_version

__all__ = ["JOB_LOCK", "MaintenanceRun", "maintain", "reliability_job"]

log = logging.getLogger("zhcharge.reliability")

JOB_LOCK = 0x7A68_1500  # pg advisory lock key of the reliability job


@dataclass
class MaintenanceRun:
    ran: bool = False
    partitions: list[str] = field(default_factory=list)
    silenced_stations: int = 0
    carried: list[date] = field(default_factory=list)
    hours: int = 0
    days: list[date] = field(default_factory=list)
    stations_changed: int | None = None
    """Stations whose 30-day figures changed (``None``: not refreshed in this run)."""
    dropped: list[str] = field(default_factory=list)


def maintain(engine: Engine, cfg: ReliabilitySettings, *, now: datetime | None = None,
             days_per_run: int = 7) -> MaintenanceRun:
    """One run (see the module docstring); does nothing when another process holds the job."""
    now = now or datetime.now(UTC)
    run = MaintenanceRun()
    # held by an open transaction of its own, not a session: holds behind PgBouncer in transaction mode
    lock = TransactionLock(engine, ":k", {"k": JOB_LOCK})
    if not lock.acquire():
        return run
    try:
        with engine.connect() as conn:
            run.ran = True
            with conn.begin():
                run.partitions = ensure_partitions(conn, now, cfg.partitions_ahead)
            with conn.begin():
                begins = horizon(conn)
                run.silenced_stations = len(mark_silent(conn, cfg.silence_s, history_begins=begins))
            with conn.begin():
                run.carried = carry_months(conn, now)
            with conn.begin():
                run.hours = refresh_open_hours(conn)
            with conn.begin():
                due = pending_days(conn, now, cfg.rollup_margin_s)[:days_per_run]
            for day, until in due:
                with conn.begin():
                    rollup_day(conn, day, until)
                run.days.append(day)
            with conn.begin():
                if run.days or refresh_due(conn, now):
                    run.stations_changed = refresh_station_reliability(conn, now)
                    if run.stations_changed:
                        bump_version(conn, "stations")
            with conn.begin():
                run.dropped = drop_expired(conn, now, cfg.retention_months, cfg.daily_retention_months)
    finally:
        lock.release()
    if run.partitions or run.days or run.dropped or run.carried:
        log.info("reliability: partitions %s, carried %s, days %s, dropped %s", run.partitions, run.carried,
                 run.days, run.dropped)
    return run


def reliability_job(engine: Engine, cfg: ReliabilitySettings) -> PeriodicJob:
    """A daemon thread calling :func:`maintain` every ``job_interval_s`` (safe in several processes)."""
    return PeriodicJob("reliability", lambda: maintain(engine, cfg), cfg.job_interval_s, first_delay_s=5.0)

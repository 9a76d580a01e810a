"""Background pulls inside the app: incremental syncs and status pulls per operator.

A daemon thread wakes every few seconds, reads from ``sync_runs`` which operators are due
(``FeedSettings.sync_interval_s`` for StationInfo, ``status_interval_s`` for statuses) and hands
them to a small thread pool. Several app processes may run it at once: every pull takes the
operator's ``pg_try_advisory_lock`` and re-checks under it that nobody pulled meanwhile, so the
coordination lives in the database, not in process memory. Open circuits are respected.

Business policies (prices) are pulled after each full sync and then daily (``ingest.policies``).

It also prunes replay-protection rows and expired tokens, and logs the receiver's push counts
as ``sync_runs`` rows of mode ``push`` once a minute.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from ingest.endpoints import load_endpoints
from ingest.policies import pull_policies
from ingest.retention import prune
from ingest.sync import pull_statuses, sync_operator
from services.settings import Settings

__all__ = ["FeedScheduler"]

log = logging.getLogger("zhcharge.feed.scheduler")

_DUE = text("""
SELECT operator_id,
       max(started_at) FILTER (WHERE mode IN ('full', 'incremental')) AS last_sync,
       max(started_at) FILTER (WHERE mode IN ('full', 'incremental', 'status')) AS last_status,
       max(started_at) FILTER (WHERE mode = 'policy') AS last_policy,
       max(finished_at) FILTER (WHERE mode = 'full' AND ok) AS last_full,
       max(finished_at) FILTER (WHERE mode IN ('full', 'incremental') AND ok) AS last_synced,
       now() AS now
FROM sync_runs WHERE started_at > now() - interval '2 days'
GROUP BY operator_id
""")


class FeedScheduler:
    def __init__(self, engine: Engine, settings: Settings, *, tick_s: float = 5.0, receiver=None) -> None:  # noqa: ANN001
        self.engine = engine
        self.settings = settings
        self.tick_s = tick_s
        self.receiver = receiver
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=max(1, settings.feed.max_workers), thread_name_prefix="feed-pull")
        self._running: dict[str, Future] = {}
        self._policies: dict[str, Future] = {}
        self._last_prune = 0.0
        self._last_push_log = time.monotonic()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="feed-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        delay = 1.0  # let the app finish starting first
        while not self._stop.wait(delay):
            delay = self.tick_s
            try:
                self.tick()
            except SQLAlchemyError:
                log.warning("feed scheduler: database unavailable; will retry")
            except Exception:  # noqa: BLE001 - the scheduler must survive anything
                log.exception("feed scheduler tick failed")

    def tick(self) -> list[str]:
        """Start the pulls that are due; returns what was started (for tests)."""
        f = self.settings.feed
        started: list[str] = []
        now_mono = time.monotonic()
        if now_mono - self._last_prune > 60:
            prune(self.engine, self.settings)
            self._last_prune = now_mono
        if self.receiver is not None and now_mono - self._last_push_log > 60:
            self._log_pushes()
            self._last_push_log = now_mono
        with self.engine.connect() as conn:
            endpoints = [ep for ep in load_endpoints(conn) if ep.enabled and ep.pullable]
            due = {r.operator_id: r for r in conn.execute(_DUE)}
        for ep in endpoints:
            fut = self._running.get(ep.operator_id)
            if fut is not None and not fut.done():
                continue
            row = due.get(ep.operator_id)
            age_sync = (row.now - row.last_sync).total_seconds() if row and row.last_sync else None
            age_status = (row.now - row.last_status).total_seconds() if row and row.last_status else None
            if age_sync is None or age_sync >= f.sync_interval_s:
                self._running[ep.operator_id] = self._pool.submit(
                    sync_operator, self.engine, self.settings, ep, respect_circuit=True,
                    skip_if_ran_within_s=f.sync_interval_s * 0.9)
                started.append(f"{ep.operator_id}:sync")
            elif age_status is None or age_status >= f.status_interval_s:
                self._running[ep.operator_id] = self._pool.submit(
                    pull_statuses, self.engine, self.settings, ep, respect_circuit=True,
                    skip_if_ran_within_s=f.status_interval_s * 0.9)
                started.append(f"{ep.operator_id}:status")
            if row is not None and self._policies_due(ep.operator_id, row):
                self._policies[ep.operator_id] = self._pool.submit(pull_policies, self.engine, self.settings, ep)
                started.append(f"{ep.operator_id}:policies")
        return started

    def _policies_due(self, operator_id: str, row) -> bool:  # noqa: ANN001
        """Business policies are pulled after each full sync and then every ``policy_interval_s``
        (only once the operator's stations have been pulled at all)."""
        fut = self._policies.get(operator_id)
        if fut is not None and not fut.done():
            return False
        if row.last_synced is None:  # nothing to price before the stations were pulled once
            return False
        if row.last_policy is None:
            return True
        if row.last_full is not None and row.last_full > row.last_policy:
            return True
        return (row.now - row.last_policy).total_seconds() >= self.settings.feed.policy_interval_s

    def _log_pushes(self) -> None:
        counts = getattr(self.receiver, "counts", None)
        if not counts:
            return
        lock = getattr(self.receiver, "_lock", None)
        if lock is None:
            return
        with lock:
            snapshot = dict(counts)
            counts.clear()
        try:
            with self.engine.begin() as conn:
                for op, n in snapshot.items():
                    conn.execute(text("INSERT INTO sync_runs (operator_id, mode, started_at, finished_at, statuses, ok) "
                                      "VALUES (:op, 'push', now() - interval '60 seconds', now(), :n, true)"),
                                 {"op": op, "n": n})
        except SQLAlchemyError:
            with lock:
                for op, n in snapshot.items():
                    counts[op] = counts.get(op, 0) + n

"""Pull sync: operators' StationInfos and statuses into PostGIS, idempotently.

One run per operator (``sync_operator``), several operators at once (``sync_all``, a thread per
operator with its own time budget, so one broken platform never stalls the others).

A run:

1. takes the operator's advisory lock (``pg_try_advisory_lock``; several app processes and the
   CLI can all try, one pulls) and logs a ``sync_runs`` row;
2. pages through ``query_stations_info`` (``LastQueryTime`` = start of the previous successful
   pull minus ``FeedSettings.overlap_s``; empty for a full pull). If ``ItemSize`` moves while
   paging, the pages shifted under us: the whole listing is read a second time and both passes
   are merged; withdrawals are only decided from a stable listing;
3. writes stations in chunks, each chunk one transaction: one ``INSERT .. ON CONFLICT`` for the
   stations (GCJ-02 converted to WGS84 here, district by ``ST_Intersects`` in PostGIS, rejected
   rows kept with their reason), then equipment and connectors of the stations that changed, and
   deletion of the piles and connectors they no longer report. A content hash makes an
   unchanged station a no-op;
4. pulls connector statuses in batches of ≤ 50 StationIDs into ``connector_status`` and its history,
   each batch stamped with the time it was asked for (a newer push is never overwritten);
5. refreshes the derived station columns, marks stations missing from a *full* listing as
   withdrawn, bumps the ``stations`` data version when anything visible changed, and moves the
   operator's ``last_query_time`` only when everything succeeded.

Database writes are retried while the database is unreachable (``FeedSettings.db_retry_s``), so a
database restart in the middle of a run delays it instead of failing it; every write is an
idempotent upsert, so a run cut short is completed by the next one.

This module orchestrates the pulls; the rows are prepared in :mod:`ingest.rows` and written by
:mod:`ingest.store` (shared with the push receiver), the run log, circuit and lock live in
:mod:`ingest.runs`, the endpoints in :mod:`ingest.endpoints`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ingest.client import FeedClient, FeedError
from ingest.endpoints import EndpointInfo, load_endpoints
from ingest.retention import prune
from ingest.runs import (
    CIRCUIT_FAIL,
    CIRCUIT_OK,
    RUN_END,
    RUN_START,
    OperatorLock,
    half_open,
    not_pullable_now,
    ran_recently,
)
from ingest.store import StoreCounts, asked_at, store_station_infos, store_status_batches, store_statuses
from ingest.times import format_query_time
from services.db import is_disconnect
from services.reliability.partitions import ensure_partitions
from services.settings import Settings
from services.stations.summary import bump_version, refresh_station_summaries

__all__ = [
    "EndpointInfo",
    "SyncResult",
    "load_endpoints",
    "pull_statuses",
    "store_station_infos",
    "store_statuses",
    "sync_all",
    "sync_operator",
]

log = logging.getLogger("zhcharge.feed.sync")

_CHUNK = 1000  # stations per write transaction


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class SyncResult:
    operator_id: str
    mode: str
    ok: bool = False
    skipped: str | None = None
    pages: int = 0
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    withdrawn: int = 0
    statuses: int = 0
    duration_ms: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None
    unkeyed: int = 0
    """StationInfos without a StationID: nothing to key them by, so reported, not stored."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One progress line for the CLI."""
        if self.skipped:
            return f"{self.operator_id}  {self.mode:<11}  skipped: {self.skipped}"
        counts = (f"{self.pages} pages, {self.received} stations (inserted {self.inserted}, updated "
                  f"{self.updated}, unchanged {self.unchanged}, rejected {self.rejected}, withdrawn "
                  f"{self.withdrawn}), {self.statuses} statuses")
        if self.mode == "status":
            counts = f"{self.statuses} statuses"
        tail = "ok" if self.ok else f"FAILED: {self.error}"
        return f"{self.operator_id}  {self.mode:<11}  {counts} in {self.duration_ms / 1000:.1f} s  {tail}"


class _DatabaseDown(Exception):
    """The database stayed unreachable for longer than the retry budget."""


def _with_db(engine: Engine, fn: Callable[[Connection], Any], budget_s: float) -> Any:
    """Run ``fn`` in one transaction; while the database is unreachable, retry with backoff."""
    deadline = time.monotonic() + budget_s
    delay = 0.25
    while True:
        try:
            with engine.begin() as conn:
                return fn(conn)
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise _DatabaseDown("the database is unreachable") from exc
            log.warning("database unreachable (%s); retrying in %.1f s", type(exc.orig).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 3.0)


# --------------------------------------------------------------------------------------------
# One operator
# --------------------------------------------------------------------------------------------


def _client_for(ep: EndpointInfo, settings: Settings, deadline: float) -> FeedClient:
    f = settings.feed
    return FeedClient(ep.endpoint(), timeout_s=f.timeout_s, retries=f.retries, backoff_s=f.backoff_s,
                      token_margin_s=f.token_margin_s, deadline=deadline)


def _fetch_listing(client: FeedClient, page_size: int, last_query_time: str, result: SyncResult,
                   on_chunk: Callable[[list[dict]], None], chunk_size: int = _CHUNK) -> tuple[list[str], bool]:
    """Page through query_stations_info; returns (StationIDs seen, listing was stable)."""
    seen: list[str] = []
    item_size: int | None = None
    stable = True
    chunk: list[dict] = []
    for page, stations in client.iter_station_pages(page_size, last_query_time):
        result.pages += 1
        result.received += len(stations)
        size = page.get("ItemSize")
        if item_size is None:
            item_size = size
        elif size != item_size:
            stable = False
        for st in stations:
            if isinstance(st, dict) and isinstance(st.get("StationID"), str) and st["StationID"].strip():
                seen.append(st["StationID"])
            else:
                result.unkeyed += 1
        chunk.extend(stations)
        if len(chunk) >= chunk_size:
            on_chunk(chunk)
            chunk = []
    if chunk:
        on_chunk(chunk)
    return seen, stable


def sync_operator(engine: Engine, settings: Settings, ep: EndpointInfo, *, full: bool = False,
                  statuses: bool = True, respect_circuit: bool = False, lock_wait_s: float = 0.0,
                  skip_if_ran_within_s: float | None = None) -> SyncResult:
    """Pull one operator now (see the module docstring). Never raises for feed or database trouble.

    ``skip_if_ran_within_s`` (the scheduler's) re-checks under the lock that no other process
    pulled this operator meanwhile.
    """
    mode = "full" if full or ep.last_query_time is None else "incremental"
    result = SyncResult(ep.operator_id, mode)
    t0 = time.monotonic()
    result.skipped = not_pullable_now(ep, settings, respect_circuit)
    if result.skipped:
        return result
    f = settings.feed
    lock = OperatorLock(engine, ep.operator_id)
    try:
        if not lock.acquire(lock_wait_s):
            result.skipped = "another process is pulling this operator"
            return result
        if ran_recently(engine, ep.operator_id, ["full", "incremental"], skip_if_ran_within_s):
            lock.release()
            result.skipped = "pulled recently by another process"
            return result
        half_open(engine, ep)
    except SQLAlchemyError:
        result.error = "the database is unreachable"
        lock.release()
        return result
    started = datetime.now(UTC)
    deadline = time.monotonic() + f.operator_budget_s
    budget = f.db_retry_s
    feed_failed = False
    try:
        result.run_id = _with_db(engine, lambda c: c.execute(RUN_START, {
            "op": ep.operator_id, "mode": mode, "started": started, "budget": f.operator_budget_s}).scalar_one(), budget)
        totals = StoreCounts()

        def write_chunk(chunk: list[dict]) -> None:
            def work(conn: Connection) -> None:
                counts = store_station_infos(conn, ep.operator_id, ep.name, chunk, interconnected=ep.interconnected,
                                             city_adcode=settings.app.city_adcode)
                changed = refresh_station_summaries(conn, counts.touched)
                if counts.touched or changed:
                    bump_version(conn, "stations")
                totals.add(counts)
            _with_db(engine, work, budget)

        last = "" if mode == "full" else format_query_time(ep.last_query_time)  # type: ignore[arg-type]
        with _client_for(ep, settings, deadline) as client:
            try:
                seen, stable = _fetch_listing(client, f.page_size, last, result, write_chunk, f.write_chunk)
                if not stable:
                    result.notes.append("the listing moved while paging; read it a second time")
                    seen2, stable = _fetch_listing(client, f.page_size, last, result, write_chunk, f.write_chunk)
                    seen = seen + seen2
                    if not stable:
                        result.notes.append("the listing kept moving: withdrawals left for the next full sync")
                status_ids: list[str] = []
                if statuses:
                    def active_ids(conn: Connection) -> list[str]:
                        if mode == "full":
                            q = "SELECT station_id FROM stations WHERE operator_id = :op AND feed_state = 'active'"
                            return list(conn.execute(text(q), {"op": ep.operator_id}).scalars())
                        q = ("SELECT station_id FROM stations WHERE operator_id = :op AND feed_state = 'active' "
                             "AND station_id = ANY(:ids)")
                        return list(conn.execute(text(q), {"op": ep.operator_id, "ids": list(set(seen))}).scalars())
                    status_ids = sorted(_with_db(engine, active_ids, budget))
                infos = _pull_status_infos(client, status_ids, f.status_batch)
            except FeedError as exc:
                feed_failed = True
                raise
        if result.unkeyed:
            result.notes.append(f"{result.unkeyed} StationInfos without a StationID could not be stored")
        result.inserted, result.updated = totals.inserted, totals.updated
        result.unchanged, result.rejected = totals.unchanged, totals.rejected

        def finish(conn: Connection) -> None:
            n, status_pks = store_status_batches(conn, ep.operator_id, infos, source="pull")
            result.statuses = n
            changed = refresh_station_summaries(conn, status_pks)
            withdrawn: list[int] = []
            if mode == "full" and stable:
                withdrawn = list(conn.execute(text(
                    "UPDATE stations SET feed_state = 'withdrawn', withdrawn_at = now(), updated_at = now() "
                    "WHERE operator_id = :op AND feed_state <> 'withdrawn' AND NOT (station_id = ANY(:seen)) "
                    "RETURNING id"), {"op": ep.operator_id, "seen": list(set(seen))}).scalars())
            result.withdrawn = len(withdrawn)
            if status_pks or changed or withdrawn:
                bump_version(conn, "stations")
            conn.execute(text(
                "UPDATE feed_endpoints SET last_query_time = :lqt, "
                "last_full_sync_at = CASE WHEN :full THEN now() ELSE last_full_sync_at END, updated_at = now() "
                "WHERE operator_id = :op"),
                {"lqt": started - timedelta(seconds=f.overlap_s), "full": mode == "full", "op": ep.operator_id})
            conn.execute(CIRCUIT_OK, {"op": ep.operator_id})
        _with_db(engine, _history_partitions, budget)
        _with_db(engine, finish, budget)
        result.ok = True
    except FeedError as exc:
        result.error = exc.message
    except _DatabaseDown:
        result.error = "the database is unreachable"
    except SQLAlchemyError as exc:
        log.exception("sync of %s failed on the database", ep.operator_id)
        result.error = f"database error ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - one operator's bug must not stop the others
        log.exception("sync of %s failed", ep.operator_id)
        result.error = f"internal error ({type(exc).__name__}: {str(exc)[:200]})"
    finally:
        result.duration_ms = int((time.monotonic() - t0) * 1000)
        try:
            def log_end(conn: Connection) -> None:
                if feed_failed:
                    conn.execute(CIRCUIT_FAIL, {"op": ep.operator_id, "error": result.error,
                                                 "threshold": f.circuit_failures})
                if result.run_id is not None:
                    conn.execute(RUN_END, {
                        "id": result.run_id, "duration_ms": result.duration_ms, "pages": result.pages,
                        "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
                        "rejected": result.rejected, "withdrawn": result.withdrawn, "statuses": result.statuses,
                        "ok": result.ok, "error": _run_error(result)})
            _with_db(engine, log_end, min(budget, 10.0))
        except (SQLAlchemyError, _DatabaseDown):
            log.warning("could not log the sync run of %s", ep.operator_id)
        lock.release()
    return result


def _run_error(result: SyncResult) -> str | None:
    parts = ([result.error] if result.error else []) + result.notes
    return "; ".join(parts) or None


def _history_partitions(conn: Connection) -> None:
    """The status history's partition of this month exists (the reliability job makes them months
    ahead; a process that pulls without it running still stores its statuses)."""
    ensure_partitions(conn, datetime.now(UTC))


def _pull_status_infos(client: FeedClient, station_ids: list[str], batch: int) -> list[tuple[datetime, list[dict]]]:
    """StationStatusInfos in batches, each with the time it was asked for: a status is the operator's
    at that time, so a push stamped later (even within the same second) is the newer report."""
    batches: list[tuple[datetime, list[dict]]] = []
    batch = max(1, min(50, batch))
    for i in range(0, len(station_ids), batch):
        at = asked_at()
        batches.append((at, list(client.station_status(station_ids[i:i + batch]))))
    return batches


def pull_statuses(engine: Engine, settings: Settings, ep: EndpointInfo, *, respect_circuit: bool = True,
                  skip_if_ran_within_s: float | None = None) -> SyncResult:
    """A status-only pull of every active station of the operator (mode ``status``), under its lock."""
    result = SyncResult(ep.operator_id, "status")
    t0 = time.monotonic()
    result.skipped = not_pullable_now(ep, settings, respect_circuit)
    if result.skipped:
        return result
    f = settings.feed
    feed_failed = False
    lock = OperatorLock(engine, ep.operator_id)
    try:
        if not lock.acquire(0):
            result.skipped = "another process is pulling this operator"
            return result
        if ran_recently(engine, ep.operator_id, ["full", "incremental", "status"], skip_if_ran_within_s):
            lock.release()
            result.skipped = "pulled recently by another process"
            return result
        half_open(engine, ep)
    except SQLAlchemyError:
        lock.release()
        result.error = "the database is unreachable"
        return result
    try:
        result.run_id = _with_db(engine, lambda c: c.execute(RUN_START, {
            "op": ep.operator_id, "mode": "status", "started": datetime.now(UTC),
            "budget": f.operator_budget_s}).scalar_one(), f.db_retry_s)
        ids = _with_db(engine, lambda c: sorted(c.execute(text(
            "SELECT station_id FROM stations WHERE operator_id = :op AND feed_state = 'active'"),
            {"op": ep.operator_id}).scalars()), f.db_retry_s)
        with _client_for(ep, settings, time.monotonic() + f.operator_budget_s) as client:
            try:
                infos = _pull_status_infos(client, ids, f.status_batch)
            except FeedError:
                feed_failed = True
                raise

        def store(conn: Connection) -> None:
            n, pks = store_status_batches(conn, ep.operator_id, infos, source="pull")
            result.statuses = n
            changed = refresh_station_summaries(conn, pks)
            if pks or changed:
                bump_version(conn, "stations")
            conn.execute(CIRCUIT_OK, {"op": ep.operator_id})
        _with_db(engine, _history_partitions, f.db_retry_s)
        _with_db(engine, store, f.db_retry_s)
        result.ok = True
    except FeedError as exc:
        result.error = exc.message
    except (_DatabaseDown, SQLAlchemyError):
        result.error = "the database is unreachable"
    finally:
        result.duration_ms = int((time.monotonic() - t0) * 1000)
        try:
            def log_end(conn: Connection) -> None:
                if feed_failed:
                    conn.execute(CIRCUIT_FAIL, {"op": ep.operator_id, "error": result.error,
                                                 "threshold": f.circuit_failures})
                if result.run_id is not None:
                    conn.execute(RUN_END, {
                        "id": result.run_id, "duration_ms": result.duration_ms, "pages": 0, "inserted": 0,
                        "updated": 0, "unchanged": 0, "rejected": 0, "withdrawn": 0, "statuses": result.statuses,
                        "ok": result.ok, "error": result.error})
            if result.run_id is not None or feed_failed:
                _with_db(engine, log_end, 10.0)
        except (SQLAlchemyError, _DatabaseDown):
            log.warning("could not log the status pull of %s", ep.operator_id)
        lock.release()
    return result


# --------------------------------------------------------------------------------------------
# Several operators
# --------------------------------------------------------------------------------------------


def sync_all(engine: Engine, settings: Settings, *, operator_id: str | None = None, full: bool = False,
             respect_circuit: bool = False, lock_wait_s: float = 0.0,
             on_result: Callable[[SyncResult], None] | None = None) -> list[SyncResult]:
    """Pull every enabled operator that has pull settings (or the one named) concurrently; results
    in completion order. Operators that only push to us (no base URL or secrets yet, e.g. between
    the two halves of B5 step 1) are not part of a run over all operators."""
    with engine.connect() as conn:
        endpoints = [ep for ep in load_endpoints(conn, operator_id)
                     if operator_id or (ep.enabled and ep.pullable)]
    results: list[SyncResult] = []
    if not endpoints:
        return results
    workers = max(1, min(settings.feed.max_workers, len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feed-sync") as pool:
        futures = [pool.submit(sync_operator, engine, settings, ep, full=full, respect_circuit=respect_circuit,
                               lock_wait_s=lock_wait_s) for ep in endpoints]
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            if on_result:
                on_result(r)
    prune(engine, settings)  # replay entries and expired tokens, also when no scheduler runs
    return results

"""Pushing connector status changes up: ``notification_stationStatus`` to every platform that takes them.

What is to be sent is ``upstream_push_queue`` (migration 1650): triggers on ``connector_status``
queue a row per platform and connector in the transaction of each change, whichever writer made it
(a push through the receiver, a status pull, a connector falling silent), so a change is never
missed and the queue survives restarts. A connector that changed several times since the last
run is one notification with the status it has when it is sent.

Every ``UpstreamSettings.push_interval_s`` a :class:`StatusPusher` (one per app process that runs
background jobs, on its own engine and threads: it never holds up the receiver) takes each due
platform under an advisory lock (:class:`services.db.TransactionLock`, so of several app processes
one sends to a platform at a time), reads up to ``push_batch`` queued connectors of public
stations, and sends them, ``push_concurrency`` in flight, through :class:`ingest.client.FeedClient`
with the secrets the platform issued to us and our own OperatorID (``ZHCHARGE_OPERATOR_ID``): its
AccessToken from the platform's ``query_token``, cached and renewed on Ret 4002, retries with
backoff on Ret -1/500, HTTP 5xx and network errors. A row is deleted only after the platform
answered Ret 0 (``Status`` 0 accepted or 1 discarded: both final), and only if the connector did
not change again meanwhile: at least once, never lost. Ret 4004 (the platform refuses the data) is
final too, and logged. Any other failure leaves the rows queued and the platform waits 2, 4, 8 …
seconds (at most ``push_max_backoff_s``) before the next try.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from ingest.client import Endpoint, FeedClient, FeedError
from ingest.errors import Ret
from ingest.upstream.platforms import Platform, push_platforms
from services.db import TransactionLock
from services.jobs import PeriodicJob
from services.settings import Settings
from services.stations.filters import VISIBLE_SQL

__all__ = ["INTERFACE", "PushResult", "StatusPusher"]

log = logging.getLogger("zhcharge.upstream.push")

INTERFACE = "notification_stationStatus"

_QUEUED = text(f"""
SELECT q.operator_id, q.connector_id, q.changes, cs.status, cs.park_status, cs.lock_status,
       cs.operator_id IS NOT NULL AND EXISTS (
           SELECT 1 FROM connectors c JOIN stations s ON s.id = c.station_pk
           WHERE c.operator_id = q.operator_id AND c.connector_id = q.connector_id AND {VISIBLE_SQL}) AS public
FROM upstream_push_queue q
LEFT JOIN connector_status cs ON cs.operator_id = q.operator_id AND cs.connector_id = q.connector_id
WHERE q.platform_pk = :pk
ORDER BY q.queued_at, q.operator_id, q.connector_id
LIMIT :n""")

# deletes the rows sent (or not to be sent) unless their connector changed again meanwhile
_DONE = text("""
DELETE FROM upstream_push_queue q
USING unnest(CAST(:ops AS varchar[]), CAST(:cids AS varchar[]), CAST(:changes AS integer[])) AS d (op, cid, changes)
WHERE q.platform_pk = :pk AND q.operator_id = d.op AND q.connector_id = d.cid AND q.changes = d.changes""")

_OK = text("UPDATE upstream_platforms SET pushed = pushed + :n, push_ok_at = now(), push_failures = 0, "
           "push_next_at = NULL, push_error = CASE WHEN :refused THEN push_error ELSE NULL END WHERE id = :pk")
_FAILED = text("""
UPDATE upstream_platforms SET pushed = pushed + :n, push_failures = push_failures + 1, push_error = :error,
       push_next_at = now() + make_interval(secs => least(:max_s, power(2, least(push_failures + 1, 30))))
WHERE id = :pk""")
_REFUSED = text("UPDATE upstream_platforms SET push_error = :error WHERE id = :pk")
_WAITING = text("SELECT push_next_at > now() FROM upstream_platforms WHERE id = :pk")


@dataclass
class PushResult:
    """One platform's run: notifications accepted (``Status`` 0), discarded (1), refused (Ret 4004),
    rows dropped unsent (their connector is not public), and the error that stopped it."""

    platform_id: str
    skipped: bool = False
    accepted: int = 0
    discarded: int = 0
    refused: int = 0
    dropped: int = 0
    error: str | None = None
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def _ret_of(exc: FeedError) -> int | None:
    m = re.search(r": Ret (-?\d+)", exc.message)
    return int(m.group(1)) if m else None


class StatusPusher:
    """The push job of one app process (or of a test): :meth:`run_once`, or :meth:`start` it."""

    def __init__(self, engine: Engine, settings: Settings, *, transport: Any = None) -> None:
        self.engine = engine
        self.settings = settings
        self.transport = transport
        self._clients: dict[int, tuple[Endpoint, FeedClient]] = {}
        self._lock = threading.Lock()
        self._job: PeriodicJob | None = None

    def start(self) -> None:
        u = self.settings.upstream
        self._job = PeriodicJob("upstream-push", self.run_once, u.push_interval_s,
                                first_delay_s=min(2.0, u.push_interval_s))
        self._job.start()

    def stop(self) -> None:
        if self._job is not None:
            self._job.stop()
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for _, client in clients:
            client.close()

    def run_once(self) -> list[PushResult]:
        """One round: every due platform in turn."""
        with self.engine.connect() as conn:
            platforms = push_platforms(conn)
        return [self.push(p) for p in platforms]

    def _client(self, platform: Platform) -> FeedClient | None:
        """One client per platform for the life of the job: its Seq counter then never repeats a
        (TimeStamp, Seq) of an earlier run of this process."""
        endpoint = platform.push_endpoint(self.settings.app.operator_id)
        if endpoint is None:
            return None
        u = self.settings.upstream
        with self._lock:
            have = self._clients.get(platform.pk)
            if have is not None and have[0] == endpoint:
                return have[1]
            if have is not None:
                have[1].close()
            client = FeedClient(endpoint, timeout_s=u.push_timeout_s, retries=u.push_retries, backoff_s=u.push_backoff_s,
                                token_margin_s=self.settings.feed.token_margin_s, transport=self.transport)
            self._clients[platform.pk] = (endpoint, client)
            return client

    def push(self, platform: Platform) -> PushResult:
        """Send what is queued for ``platform``, unless another process is sending to it."""
        result = PushResult(platform.platform_id)
        lock = TransactionLock(self.engine, "hashtext('zh_upstream_push'), :pk", {"pk": platform.pk})
        if not lock.acquire():
            result.skipped = True
            return result
        try:
            with self.engine.connect() as conn:
                if conn.execute(_WAITING, {"pk": platform.pk}).scalar():  # another process failed just now
                    result.skipped = True
                    return result
            client = self._client(platform)
            if client is None:
                result.skipped = True
                return result
            self._send_queue(platform, client, result)
        except Exception as exc:  # noqa: BLE001 - recorded, and the job goes on with the next platform
            log.exception("upstream push to %s failed", platform.platform_id)
            result.error = result.error or f"{type(exc).__name__}: {exc}"[:300]
        finally:
            lock.release()
        sent = result.accepted + result.discarded + result.refused
        try:
            with self.engine.begin() as conn:
                if result.error is not None:
                    conn.execute(_FAILED, {"pk": platform.pk, "n": sent, "error": result.error[:1000],
                                           "max_s": self.settings.upstream.push_max_backoff_s})
                elif sent or result.dropped:
                    conn.execute(_OK, {"pk": platform.pk, "n": sent, "refused": bool(result.refused)})
        except Exception:  # noqa: BLE001
            log.warning("upstream push: could not record the state of %s", platform.platform_id)
        if sent or result.error:
            log.info("upstream push to %s: %d accepted, %d discarded, %d refused%s", platform.platform_id,
                     result.accepted, result.discarded, result.refused, f"; {result.error}" if result.error else "")
        return result

    def _send_queue(self, platform: Platform, client: FeedClient, result: PushResult) -> None:
        u = self.settings.upstream
        client.deadline = time.monotonic() + u.push_budget_s
        try:
            client.token()  # once, before the notifications go out side by side
        except FeedError as exc:
            result.error = exc.message[:300]
            return
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(_QUEUED, {"pk": platform.pk, "n": max(1, u.push_batch)}).all()
            if not rows:
                return
            done = [r for r in rows if not r.public]
            result.dropped += len(done)
            stop = threading.Event()

            def send(row: Any) -> tuple[Any, str, str | None]:
                if stop.is_set():
                    return row, "unsent", None
                info = {"ConnectorID": row.connector_id, "Status": 0 if row.status is None else row.status,
                        "ParkStatus": row.park_status or 0, "LockStatus": row.lock_status or 0}
                try:
                    data = client.request(INTERFACE, {"ConnectorStatusInfo": info})
                except FeedError as exc:
                    if _ret_of(exc) == Ret.BUSINESS:
                        return row, "refused", exc.message
                    stop.set()
                    return row, "failed", exc.message
                result.sent.append(info)
                return row, "discarded" if str(data.get("Status", 0)) == "1" else "accepted", None

            with ThreadPoolExecutor(max_workers=max(1, u.push_concurrency), thread_name_prefix="upstream-push") as pool:
                outcomes = list(pool.map(send, [r for r in rows if r.public]))
            for row, outcome, message in outcomes:
                if outcome in ("accepted", "discarded", "refused"):
                    done.append(row)
                    setattr(result, outcome, getattr(result, outcome) + 1)
                if outcome == "refused":
                    log.warning("%s refused the status of %s/%s: %s", platform.platform_id, row.operator_id,
                                row.connector_id, message)
                    with self.engine.begin() as conn:
                        conn.execute(_REFUSED, {"pk": platform.pk, "error": (message or "")[:1000]})
                elif outcome == "failed" and result.error is None:
                    result.error = (message or "")[:300]
            if done:
                with self.engine.begin() as conn:
                    conn.execute(_DONE, {"pk": platform.pk, "ops": [r.operator_id for r in done],
                                         "cids": [r.connector_id for r in done], "changes": [r.changes for r in done]})
            if result.error is not None or len(rows) < u.push_batch or time.monotonic() > client.deadline:
                return

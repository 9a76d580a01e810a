"""Fixed-window rate limiting shared by every app process, in the database.

Each request runs one statement: resolve the API key (if any), add one hit to the current
one-minute window of its bucket (``key:<id>`` or ``ip:<address>``) in the UNLOGGED ``api_rate``
table, touch the key's ``last_used_at`` at most once a minute, and read the stations data
version (for ETags, so a 304 needs no other query). Windows older than two minutes are deleted
by roughly one request in a hundred.

Why the database and not process memory: ``zhcharge serve --workers N`` runs N processes, and a
per-process counter would let a client have N times its quota. The cost is one round trip of
well under a millisecond on the same connection the request uses anyway.

Only while the primary cannot be written and a read replica serves the public reads does
:func:`check_rate_locally` decide instead: the key is looked up on the replica and the windows are
counted in this process (:class:`LocalWindows`) — looser across workers, but reads keep working.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.search.apikeys import hash_key

__all__ = ["LOCAL_WINDOWS", "LocalWindows", "RateDecision", "check_rate", "check_rate_locally"]

_STATEMENT = text("""
WITH k AS (
    SELECT id, rate_per_min FROM api_keys
    WHERE :key_hash IS NOT NULL AND key_hash = :key_hash AND revoked_at IS NULL
), touch AS (
    UPDATE api_keys SET last_used_at = now()
    WHERE id = (SELECT id FROM k) AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
), hit AS (
    INSERT INTO api_rate (bucket, window_start, hits)
    SELECT CASE WHEN EXISTS (SELECT 1 FROM k) THEN 'key:' || (SELECT id FROM k) ELSE 'ip:' || :ip END,
           date_trunc('minute', now()), 1
    WHERE :key_hash IS NULL OR EXISTS (SELECT 1 FROM k)
    ON CONFLICT (bucket, window_start) DO UPDATE SET hits = api_rate.hits + 1
    RETURNING hits, window_start
)
SELECT (SELECT hits FROM hit) AS hits,
       extract(epoch FROM (SELECT window_start FROM hit))::bigint + 60 AS reset_at,
       (SELECT count(*) FROM k) AS key_found,
       (SELECT rate_per_min FROM k) AS key_rate,
       (SELECT version FROM data_versions WHERE layer = 'stations') AS data_version,
       extract(epoch FROM now())::bigint AS now
""")

_CLEANUP = text("DELETE FROM api_rate WHERE window_start < now() - interval '2 minutes'")


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the window ends
    retry_after: int
    key_valid: bool  # False only when a key was given and is unknown or revoked
    data_version: int


def check_rate(conn: Connection, *, ip: str, api_key: str | None, anonymous_per_min: int,
               key_per_min: int) -> RateDecision:
    key_hash = hash_key(api_key) if api_key else None
    row = conn.execute(_STATEMENT, {"key_hash": key_hash, "ip": ip[:64]}).mappings().one()
    if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
        conn.execute(_CLEANUP)
    version = int(row["data_version"] or 1)
    if key_hash is not None and not row["key_found"]:
        return RateDecision(False, anonymous_per_min, 0, int(row["now"]) + 60, 0, False, version)
    limit = int(row["key_rate"] or key_per_min) if key_hash else anonymous_per_min
    hits = int(row["hits"])
    reset_at = int(row["reset_at"])
    remaining = max(limit - hits, 0)
    allowed = hits <= limit
    return RateDecision(allowed, limit, remaining, reset_at, max(reset_at - int(row["now"]), 1), True, version)


class LocalWindows:
    """One-minute fixed windows counted in process memory (the degraded mode's count)."""

    def __init__(self, max_buckets: int = 100_000) -> None:
        self.max_buckets = max_buckets
        self._hits: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, bucket: str, now: float | None = None) -> tuple[int, int]:
        """Count one request of ``bucket``; returns (hits in this window, window start in unix seconds)."""
        start = int((time.time() if now is None else now) // 60 * 60)
        with self._lock:
            if len(self._hits) >= self.max_buckets:
                self._hits = {k: v for k, v in self._hits.items() if k[1] >= start}
            hits = self._hits.get((bucket, start), 0) + 1
            self._hits[(bucket, start)] = hits
        return hits, start


LOCAL_WINDOWS = LocalWindows()

_KEY_ON_REPLICA = text("""
SELECT (SELECT id FROM api_keys WHERE :key_hash IS NOT NULL AND key_hash = :key_hash AND revoked_at IS NULL) AS key_id,
       (SELECT rate_per_min FROM api_keys WHERE :key_hash IS NOT NULL AND key_hash = :key_hash
        AND revoked_at IS NULL) AS key_rate,
       (SELECT version FROM data_versions WHERE layer = 'stations') AS data_version
""")


def check_rate_locally(conn: Connection, windows: LocalWindows, *, ip: str, api_key: str | None,
                       anonymous_per_min: int, key_per_min: int) -> RateDecision:
    """:func:`check_rate`'s decision from a read-only connection (a replica) and process-local windows."""
    key_hash = hash_key(api_key) if api_key else None
    row = conn.execute(_KEY_ON_REPLICA, {"key_hash": key_hash}).mappings().one()
    version = int(row["data_version"] or 1)
    now = int(time.time())
    if key_hash is not None and row["key_id"] is None:
        return RateDecision(False, anonymous_per_min, 0, now + 60, 0, False, version)
    hits, start = windows.hit(f"key:{row['key_id']}" if key_hash else f"ip:{ip[:64]}")
    limit = int(row["key_rate"] or key_per_min) if key_hash else anonymous_per_min
    reset_at = start + 60
    return RateDecision(hits <= limit, limit, max(limit - hits, 0), reset_at, max(reset_at - now, 1), True, version)

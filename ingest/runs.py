"""What the feed keeps about its pulls: the ``sync_runs`` log, each operator's circuit and lock.

* One pull per operator at a time, across processes: ``pg_try_advisory_xact_lock`` in a
  transaction left open on a connection of its own for the whole pull (:class:`OperatorLock`; a
  session-level lock breaks behind PgBouncer in transaction mode), and a re-check under the lock
  that nobody pulled meanwhile (:func:`ran_recently`).
* A circuit breaker per operator in ``feed_endpoints``: ``FeedSettings.circuit_failures`` failed
  pulls in a row open it for ``circuit_open_s``; then one trial pull goes through (``half_open``)
  and a success closes it.
* A ``sync_runs`` row per pull: started (runs left unfinished by a crash are closed as
  interrupted), then finished with its counts or its error.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from ingest.endpoints import EndpointInfo
from services.db import TransactionLock
from services.settings import Settings

__all__ = ["CIRCUIT_FAIL", "CIRCUIT_OK", "RUN_END", "RUN_START", "OperatorLock", "circuit_allows", "half_open",
           "not_pullable_now", "ran_recently"]


class OperatorLock(TransactionLock):
    """One pull per operator across processes: the operator's advisory lock, held by an open
    transaction on a connection of its own (:class:`services.db.TransactionLock`, which also holds
    behind PgBouncer in transaction mode, where a session-level lock would not)."""

    def __init__(self, engine: Engine, operator_id: str) -> None:
        super().__init__(engine, "hashtext('zhcharge.feed'), hashtext(:op)", {"op": operator_id})
        self.operator_id = operator_id


def circuit_allows(ep: EndpointInfo, settings: Settings) -> str | None:
    """None when a pull may go ahead; otherwise why not."""
    if ep.circuit_state != "open" or ep.circuit_opened_at is None:
        return None
    until = ep.circuit_opened_at + timedelta(seconds=settings.feed.circuit_open_s)
    if datetime.now(UTC) < until:
        return f"circuit open until {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC after {ep.circuit_failures} failures"
    return None


def half_open(engine: Engine, ep: EndpointInfo) -> None:
    """An open circuit whose pause is over lets one trial pull through (state ``half_open``)."""
    if ep.circuit_state == "open":
        with engine.begin() as conn:
            conn.execute(text("UPDATE feed_endpoints SET circuit_state = 'half_open', updated_at = now() "
                              "WHERE operator_id = :op AND circuit_state = 'open'"), {"op": ep.operator_id})


CIRCUIT_OK = text("""
UPDATE feed_endpoints SET circuit_state = 'closed', circuit_failures = 0, circuit_opened_at = NULL,
       last_error = NULL, updated_at = now()
WHERE operator_id = :op
""")
CIRCUIT_FAIL = text("""
UPDATE feed_endpoints SET circuit_failures = circuit_failures + 1,
       circuit_state = CASE WHEN circuit_state <> 'closed' OR circuit_failures + 1 >= :threshold
                            THEN 'open' ELSE 'closed' END,
       circuit_opened_at = CASE WHEN circuit_state <> 'closed' OR circuit_failures + 1 >= :threshold
                                THEN now() ELSE circuit_opened_at END,
       last_error = :error, updated_at = now()
WHERE operator_id = :op
""")
RUN_START = text("""
WITH stale AS (
    UPDATE sync_runs SET ok = false, finished_at = coalesce(finished_at, now()),
           error = coalesce(error, 'interrupted (the process or the database stopped)')
    WHERE operator_id = :op AND finished_at IS NULL AND started_at < now() - make_interval(secs => :budget)
)
INSERT INTO sync_runs (operator_id, mode, started_at) VALUES (:op, :mode, :started) RETURNING id
""")
RUN_END = text("""
UPDATE sync_runs SET finished_at = now(), duration_ms = :duration_ms, pages = :pages, inserted = :inserted,
       updated = :updated, unchanged = :unchanged, rejected = :rejected, withdrawn = :withdrawn,
       statuses = :statuses, ok = :ok, error = :error
WHERE id = :id
""")


_RAN_WITHIN = text("""
SELECT EXISTS (SELECT 1 FROM sync_runs WHERE operator_id = :op AND mode = ANY(:modes)
               AND started_at > now() - make_interval(secs => :s))
""")


def ran_recently(engine: Engine, operator_id: str, modes: list[str], within_s: float | None) -> bool:
    if not within_s:
        return False
    with engine.connect() as conn:
        return bool(conn.execute(_RAN_WITHIN, {"op": operator_id, "modes": modes, "s": within_s}).scalar())


def not_pullable_now(ep: EndpointInfo, settings: Settings, respect_circuit: bool) -> str | None:
    """Why this operator is not pulled now (no pull settings, or its circuit is open), or None."""
    if not ep.pullable:
        return "no pull settings (base URL and secrets)"
    if respect_circuit:
        return circuit_allows(ep, settings) or None
    return None

"""Freshness: a connector with no push or pull for ``silence_s`` is *unknown*, never free.

The job sets its status to NULL (``status_since`` = when it fell silent: its last report plus
``silence_s``), writes an unknown change (source ``s``) into the history, and refreshes its
station: ``connectors_free`` no longer counts it, ``availability`` is ``unknown`` when nothing of
the station is known, ``silent_since`` says since when the whole station has been silent; the data
version moves, so search, tiles and exports follow. The next report (push or pull) is a change
and ends the silence.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.reliability.window import china_date
from services.stations.summary import bump_version, refresh_station_summaries

__all__ = ["mark_silent"]

_SILENCE = text("""
WITH s AS (
    UPDATE connector_status cs
    SET status = NULL, park_status = NULL, lock_status = NULL, source = 'silence',
        status_since = greatest(cs.updated_at + make_interval(secs => :silence),
                                cs.status_since + interval '1 microsecond',
                                coalesce(CAST(:horizon AS timestamptz), '-infinity'))
    WHERE cs.status IS NOT NULL AND cs.updated_at < now() - make_interval(secs => :silence)
    RETURNING cs.id, cs.status_since, cs.operator_id, cs.connector_id
), h AS (
    INSERT INTO connector_status_history (at, connector_key, status, source)
    SELECT s.status_since, s.id, NULL, 's' FROM s
    ON CONFLICT (connector_key, at) DO UPDATE SET status = NULL, source = 's'
), carried AS (  -- month starts carried after it (the job ran late) are silent too
    UPDATE connector_status_history x SET status = NULL
    FROM s WHERE x.connector_key = s.id AND x.at > s.status_since AND x.source = 'c'
)
SELECT s.status_since, c.station_pk
FROM s LEFT JOIN connectors c ON c.operator_id = s.operator_id AND c.connector_id = s.connector_id
""")


def mark_silent(conn: Connection, silence_s: float, *, history_begins: datetime | None = None) -> list[int]:
    """Mark every connector silent for ``silence_s`` as unknown (in the caller's transaction);
    returns the stations whose summary changed (their data version is bumped)."""
    rows = conn.execute(_SILENCE, {"silence": float(silence_s), "horizon": history_begins}).all()
    if not rows:
        return []
    first = min(r.status_since for r in rows)
    conn.execute(text("UPDATE reliability_days SET stale = true WHERE day >= :d AND NOT stale "
                      "AND aggregated_until > :at"), {"d": china_date(first), "at": first})
    pks = sorted({r.station_pk for r in rows if r.station_pk is not None})
    if pks:
        conn.execute(text("UPDATE stations SET status_changed_at = now() WHERE id = ANY(:ids)"), {"ids": pks})
    changed = refresh_station_summaries(conn, pks)
    if changed:
        bump_version(conn, "stations")
    return changed

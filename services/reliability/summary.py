"""Each station's reliability of the last 30 days, as the public sees it: ``reliability:
{uptime_30d, faults_30d, last_fault_at}`` on a station in the open API and the map popup, the
search filter ``min_uptime`` and ``sort=uptime``.

The figures are precomputed (migration 1501) so that filtering and sorting stay index work at
national scale: :func:`refresh_station_reliability` computes every station's uptime over the
window (the 30 China days before today and today up to the refresh, read from the aggregates and,
for the last hour, the history: :mod:`services.reliability.uptime`) and writes the rows that
changed into ``station_reliability`` and ``station_search.up4``. The reliability job runs it after
its aggregates, hourly (:func:`refresh_due`).

``up4`` is the uptime × 10,000, rounded: the API shows ``up4 / 10000`` (four decimals) and
``min_uptime`` compares with the same figure, so a station shown at 0.97 matches ``min_uptime=0.97``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.reliability.uptime import _combined, _params, plan_window, read_coverage
from services.reliability.window import china_date, china_midnight
from services.stations.filters import min_up4

__all__ = ["DAYS", "REFRESH_EVERY", "min_up4", "refresh_due", "refresh_station_reliability",
           "window_of"]

#: whole China days before today in the window (today up to the refresh comes on top)
DAYS = 30
#: how often the job refreshes the figures when no whole day was aggregated in between
REFRESH_EVERY = timedelta(hours=1)


def window_of(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the figures refreshed at ``now``: the 30 China days before today, and today so far.

    >>> from services.prices.tariff import CHINA_TZ
    >>> a, b = window_of(datetime(2026, 5, 31, 12, 0, tzinfo=CHINA_TZ))
    >>> a.isoformat(), b.isoformat()
    ('2026-05-01T00:00:00+08:00', '2026-05-31T12:00:00+08:00')
    """
    return china_midnight(china_date(now) - timedelta(days=DAYS)), now


def refresh_due(conn: Connection, now: datetime) -> bool:
    """Whether the figures are older than :data:`REFRESH_EVERY` (or from a later clock, or missing)."""
    until = conn.execute(text("SELECT until FROM station_reliability_window")).scalar()
    return until is None or not now - REFRESH_EVERY < until <= now


# Per station over the window: the aggregates' and the history's rows summed (``u``, see uptime._combined),
# then only the rows that changed written (most stations' figures stay the same from one hour to the next).
_REFRESH = """, st AS MATERIALIZED (
    SELECT u.station_pk, sum(u.up_s) AS up_s, sum(u.down_s) AS down_s, sum(u.faults)::integer AS faults,
           max(u.last_fault_at) AS last_fault_at
    FROM u GROUP BY u.station_pk
), fresh AS MATERIALIZED (
    SELECT st.station_pk,
           CASE WHEN st.up_s + st.down_s > 0
                THEN round(10000 * st.up_s / (st.up_s + st.down_s))::smallint END AS up4,
           st.faults, st.last_fault_at
    FROM st JOIN stations s ON s.id = st.station_pk
), gone AS (
    DELETE FROM station_reliability r WHERE NOT EXISTS (SELECT 1 FROM fresh f WHERE f.station_pk = r.station_pk)
    RETURNING r.station_pk
), put AS (
    INSERT INTO station_reliability AS r (station_pk, up4, faults, last_fault_at)
    SELECT station_pk, up4, faults, last_fault_at FROM fresh
    ON CONFLICT (station_pk) DO UPDATE SET up4 = EXCLUDED.up4, faults = EXCLUDED.faults,
                                           last_fault_at = EXCLUDED.last_fault_at
    WHERE (r.up4, r.faults, r.last_fault_at) IS DISTINCT FROM (EXCLUDED.up4, EXCLUDED.faults, EXCLUDED.last_fault_at)
    RETURNING r.station_pk
)
SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM put)
"""
_SEARCH = text("""
UPDATE station_search n SET up4 = x.up4
FROM (SELECT n2.id, r.up4 FROM station_search n2 LEFT JOIN station_reliability r ON r.station_pk = n2.id) x
WHERE x.id = n.id AND n.up4 IS DISTINCT FROM x.up4
""")
_WINDOW = text("""
INSERT INTO station_reliability_window (one, since, until, refreshed_at) VALUES (true, :a, :b, now())
ON CONFLICT (one) DO UPDATE SET since = EXCLUDED.since, until = EXCLUDED.until, refreshed_at = now()
""")


def refresh_station_reliability(conn: Connection, now: datetime) -> int:
    """Recompute every station's 30-day figures at ``now`` (:func:`window_of`) in the caller's
    transaction; returns how many stations' figures changed (rows written or removed, search rows
    moved). The caller bumps the stations' data version when it is not 0 (ETags of searches follow)."""
    start, end = window_of(now)
    plan = plan_window(start, end, read_coverage(conn, china_date(start), china_date(end)), now, merge=False)
    changed = int(conn.execute(text(_combined() + _REFRESH), _params(None, plan, now)).scalar_one())
    moved = conn.execute(_SEARCH).rowcount
    conn.execute(_WINDOW, {"a": start, "b": end})
    return changed + max(moved, 0)

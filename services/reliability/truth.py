"""Feed truth (issue 16, item 5): where what the feeds say of a connector disagrees with what they bill,
or with itself, per China month ([first day 00:00, next month's first day 00:00) China time, cut at
``now``), from the status history, the orders and the archives:

* **contradictions** (:func:`contradictions`): an order (latest version, ended in the month, on a
  connector we know) whose span [StartTime, EndTime) overlaps time the connector's history says
  free (1) or offline (0) by more than ``grace_s`` (default 300 s: a status push a few seconds late
  at either end is not a contradiction);
* **stuck connectors** (:func:`stuck_connectors`): a run of one status (consecutive history rows
  with the same status merged, carried month starts included) that overlaps the month and either is
  charging (3) for more than 24 h, or is any known status for at least 7 days while its station has
  an order that lies inside the run. A run that began before the month counts from its beginning
  (found in the month before); a run still open ends at the month's end (or now);
* **suspect stations** (:func:`suspect_stations`): ``use_without_orders``: a connector of the
  station changed to occupied (2) or charging (3) by a push or pull in the month, and no order of
  the station ended in the month; ``orders_without_status``: orders ended in the month, and no
  connector of the station changed status by a push or pull in it;
* **archive differences** (:func:`archive_differences`, now): an active feed station without an
  approved station archive (``no_archive``), an approved archive whose StationID the feed does not
  have (``not_in_feed``), and for pairs the fields that differ (``name``, ``station_type``,
  ``position`` farther than ``archive_max_distance_m``);
* silent connectors now (:func:`silent_connectors`).

:mod:`services.reliability.quality` makes the monthly table of them, and builds its own queries on
the pieces of this module, public for that (``__all__``; change them knowing both modules use them):

* the month: :class:`Month` (its ``params()`` are the bind parameters the month's queries take:
  ``:a``/``:b`` its bounds, ``:pm`` the month before's start, ``:d0``/``:d1`` its China days, ``:op``
  one OperatorID or NULL for all), :func:`parse_month`, ``EARLIEST`` (the first month there is);
* ``THRESHOLD``, the uptime a port must reach, and ``GRACE_S``, the default ``grace_s``;
* ``SCOPE_SQL``: the CTE ``k`` (the active stations' connectors, of ``:op`` or all), to follow
  ``WITH``; ``STATIONS_SQL``: the active stations with their connector counts; ``STATION_ORDERS_SQL``:
  per station, the orders (latest versions) of the month's days and the disputed ones;
* :func:`by_station` (a query's rows keyed by ``station_pk``) and :func:`month_scan` (the stuck runs
  and each station's changes, in one pass over the month's history).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.errors import BadRequest
from services.reliability.partitions import add_months
from services.reliability.window import china_date, china_midnight

__all__ = ["EARLIEST", "GRACE_S", "SCOPE_SQL", "STATIONS_SQL", "STATION_ORDERS_SQL", "THRESHOLD", "Month",
           "archive_differences", "by_station", "contradictions", "month_scan", "parse_month", "silent_connectors",
           "stuck_connectors", "suspect_stations"]

THRESHOLD = 0.97  # the NEVI uptime threshold a port must reach
GRACE_S = 300.0
EARLIEST = date(2020, 1, 1)
_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True)
class Month:
    """A China month: ``first`` its first day; ``start``/``end`` its bounds (``end`` cut at now)."""

    first: date
    now: datetime

    @property
    def start(self) -> datetime:
        return china_midnight(self.first)

    @property
    def end(self) -> datetime:
        return min(china_midnight(add_months(self.first, 1)), self.now)

    @property
    def last_day(self) -> date:
        return min(add_months(self.first, 1) - timedelta(days=1), china_date(self.now))

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}"

    @property
    def previous_start(self) -> datetime:
        return china_midnight(add_months(self.first, -1))

    def params(self, operator_id: str | None = None) -> dict[str, Any]:
        return {"a": self.start, "b": self.end, "pm": self.previous_start, "d0": self.first, "d1": self.last_day,
                "op": operator_id}


def parse_month(value: Any, now: datetime, name: str = "month") -> Month:
    """``YYYY-MM`` (a China month from 2020-01 to the current one); empty is the current month.

    >>> from datetime import UTC
    >>> now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    >>> parse_month("2026-11", now).first, parse_month(None, now).first
    (datetime.date(2026, 11, 1), datetime.date(2026, 12, 1))
    >>> parse_month("2026-13", now)
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: 参数 month 应为月份 YYYY-MM / parameter 'month' must be a month YYYY-MM, not '2026-13'
    >>> parse_month("2027-01", now)
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: 参数 month 超出范围 / parameter 'month' is out of range (2020-01 to 2026-12)
    """
    current = china_date(now).replace(day=1)
    raw = str(value).strip() if value is not None else ""
    if not raw:
        return Month(current, now)
    m = _MONTH_RE.match(raw)
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise BadRequest(f"参数 {name} 应为月份 YYYY-MM / parameter '{name}' must be a month YYYY-MM, not {raw[:20]!r}",
                         param=name)
    first = date(int(m.group(1)), int(m.group(2)), 1)
    if not EARLIEST <= first <= current:
        raise BadRequest(f"参数 {name} 超出范围 / parameter '{name}' is out of range ({EARLIEST:%Y-%m} to {current:%Y-%m})",
                         param=name)
    return Month(first, now)


# The active stations' connectors (of one operator, or all): key, station, operator, ConnectorID.
SCOPE_SQL = """
k AS MATERIALIZED (
    SELECT cs.id AS key, c.station_pk, s.operator_id, c.connector_id, s.station_id, s.name AS station_name
    FROM connectors c
    JOIN stations s ON s.id = c.station_pk AND s.feed_state = 'active'
    JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
    WHERE CAST(:op AS text) IS NULL OR s.operator_id = CAST(:op AS text)
)"""

_CONTRADICTIONS = text(f"""
WITH {SCOPE_SQL}, o AS MATERIALIZED (
    SELECT co.id, co.start_charge_seq, co.start_time, co.end_time, k.key, k.station_pk, k.operator_id,
           k.connector_id, k.station_id, k.station_name
    FROM charge_orders co JOIN k ON k.operator_id = co.operator_id AND k.connector_id = co.connector_id
    WHERE co.latest AND co.day BETWEEN :d0 AND :d1 AND co.end_time > co.start_time
      AND (CAST(:op AS text) IS NULL OR co.operator_id = CAST(:op AS text))
), r AS (
    -- the status at the order's start (a month begins with carried rows) and every change inside it;
    -- each row carries its order (no join back: with few orders estimated, a join back was planned
    -- as a nested loop rescanning the whole aggregate per order)
    SELECT o.*, o.start_time AS at, p.status
    FROM o CROSS JOIN LATERAL (
        SELECT h.status FROM connector_status_history h
        WHERE h.connector_key = o.key AND h.at >= date_trunc('month', o.start_time, 'Asia/Shanghai')
          AND h.at <= o.start_time
        ORDER BY h.at DESC LIMIT 1) p
    UNION ALL
    SELECT o.*, h.at, h.status
    FROM o JOIN connector_status_history h ON h.connector_key = o.key AND h.at > o.start_time AND h.at < o.end_time
), iv AS (
    SELECT r.*, coalesce(lead(r.at) OVER (PARTITION BY r.id ORDER BY r.at), r.end_time) - r.at AS span FROM r
), s AS (
    SELECT id, start_charge_seq, operator_id, station_pk, station_id, station_name, connector_id, start_time, end_time,
           coalesce(extract(epoch FROM sum(span) FILTER (WHERE status = 1)), 0) AS free_s,
           coalesce(extract(epoch FROM sum(span) FILTER (WHERE status = 0)), 0) AS offline_s
    FROM iv
    GROUP BY id, start_charge_seq, operator_id, station_pk, station_id, station_name, connector_id, start_time, end_time
)
SELECT id AS order_id, start_charge_seq, operator_id, station_pk, station_id, station_name, connector_id, start_time,
       end_time, free_s, offline_s
FROM s
WHERE free_s + offline_s > :grace
ORDER BY operator_id, start_time, id
""")


def contradictions(conn: Connection, month: Month, operator_id: str | None = None, *,
                   grace_s: float = GRACE_S) -> list[dict[str, Any]]:
    """Orders ended in the month whose span the history says free (1) or offline (0) for more than
    ``grace_s`` seconds, with those seconds."""
    return [dict(r) for r in conn.execute(_CONTRADICTIONS, {**month.params(operator_id), "grace": grace_s}).mappings()]


# One pass over the month's history: the runs that may be stuck (kind 's') and each station's
# changes from the feed (kind 'c'). Runs: consecutive rows of one status merged (carried month
# starts are not changes); the row before the month gives the first run's beginning.
_MONTH_SCAN = """
WITH {scope}, rows AS MATERIALIZED (
    SELECT k.key AS connector_key, p.at, p.status, 'c' AS source
    FROM k CROSS JOIN LATERAL (
        SELECT h.at, h.status FROM connector_status_history h
        WHERE h.connector_key = k.key AND h.at >= :pm AND h.at < :a ORDER BY h.at DESC LIMIT 1) p
    UNION ALL
    SELECT h.connector_key, h.at, h.status, h.source::text FROM connector_status_history h
    WHERE h.at >= :a AND h.at < :b {keys}
), starts AS (
    SELECT connector_key, at, status FROM (
        SELECT connector_key, at, status, lag(status) OVER w AS prev, row_number() OVER w AS n
        FROM rows WINDOW w AS (PARTITION BY connector_key ORDER BY at)) x
    WHERE n = 1 OR status IS DISTINCT FROM prev
), runs AS (
    SELECT connector_key AS key, status, at AS since, lead(at) OVER (PARTITION BY connector_key ORDER BY at) AS until
    FROM starts
), candidates AS MATERIALIZED (
    SELECT r.key, r.status, r.since, r.until, coalesce(r.until, CAST(:b AS timestamptz)) AS upto
    FROM runs r
    WHERE r.status IS NOT NULL AND coalesce(r.until, CAST(:b AS timestamptz)) > :a
      AND coalesce(r.until, CAST(:b AS timestamptz)) - r.since > interval '24 hours'
), changes AS MATERIALIZED (
    SELECT k.station_pk, count(*) FILTER (WHERE r.source IN ('p', 'l')) AS changes,
           count(*) FILTER (WHERE r.source IN ('p', 'l') AND r.status IN (2, 3)) AS use_changes
    FROM rows r JOIN k ON k.key = r.connector_key
    WHERE r.at >= :a
    GROUP BY k.station_pk
)
SELECT 's' AS kind, c.key, k.operator_id, k.station_pk, k.station_id, k.station_name, k.connector_id, c.status,
       c.since, c.until, extract(epoch FROM c.upto - c.since) AS seconds,
       (c.status = 3) AS charging_24h,
       (c.upto - c.since >= interval '7 days' AND EXISTS (
           SELECT 1 FROM charge_orders co
           WHERE co.station_pk = k.station_pk AND co.latest
             AND co.day BETWEEN CAST(c.since AT TIME ZONE 'Asia/Shanghai' AS date)
                            AND CAST(c.upto AT TIME ZONE 'Asia/Shanghai' AS date)
             AND co.start_time >= c.since AND co.end_time <= c.upto)) AS unchanged_7d,
       NULL::bigint AS changes, NULL::bigint AS use_changes
FROM candidates c JOIN k USING (key)
UNION ALL
SELECT 'c', NULL, NULL, station_pk, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, changes, use_changes
FROM changes
"""
# every connector's rows when all operators are asked (a scan of the month); one operator's by key
_SCAN_ALL = text(_MONTH_SCAN.format(scope=SCOPE_SQL, keys=""))
_SCAN_ONE = text(_MONTH_SCAN.format(scope=SCOPE_SQL, keys="AND h.connector_key IN (SELECT key FROM k)"))


def month_scan(conn: Connection, month: Month, operator_id: str | None
                ) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """(stuck runs, changes per station) of the month, in one pass over its history."""
    conn.execute(text("SET LOCAL work_mem = '64MB'"))
    stuck, changes = [], {}
    for r in conn.execute(_SCAN_ALL if operator_id is None else _SCAN_ONE, month.params(operator_id)).mappings():
        if r["kind"] == "c":
            changes[r["station_pk"]] = {"changes": r["changes"], "use_changes": r["use_changes"]}
        elif r["charging_24h"] or r["unchanged_7d"]:
            stuck.append({k: v for k, v in r.items() if k not in ("kind", "changes", "use_changes")})
    stuck.sort(key=lambda r: (r["operator_id"], r["station_id"], r["connector_id"], r["since"]))
    return stuck, changes


def stuck_connectors(conn: Connection, month: Month, operator_id: str | None = None) -> list[dict[str, Any]]:
    """Runs overlapping the month: charging (3) for more than 24 h (``charging_24h``), or any known
    status for 7 days or more while an order of its station lies inside the run (``unchanged_7d``)."""
    return month_scan(conn, month, operator_id)[0]


STATIONS_SQL = text("""
SELECT s.id AS station_pk, s.operator_id, s.station_id, s.name AS station_name, s.district_adcode,
       (SELECT count(*) FROM connectors c WHERE c.station_pk = s.id) AS connectors
FROM stations s
WHERE s.feed_state = 'active' AND (CAST(:op AS text) IS NULL OR s.operator_id = CAST(:op AS text))
ORDER BY s.operator_id, s.station_id
""")

STATION_ORDERS_SQL = text("""
SELECT co.station_pk, count(*) AS orders, count(*) FILTER (WHERE co.confirm_result = 1) AS disputed
FROM charge_orders co
WHERE co.latest AND co.day BETWEEN :d0 AND :d1 AND co.station_pk IS NOT NULL
  AND (CAST(:op AS text) IS NULL OR co.operator_id = CAST(:op AS text))
GROUP BY co.station_pk
""")


def by_station(conn: Connection, sql: Any, params: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The rows of ``sql`` (which selects ``station_pk``) by station."""
    return {r["station_pk"]: dict(r) for r in conn.execute(sql, params).mappings()}


def suspect_stations(conn: Connection, month: Month, operator_id: str | None = None, *,
                     _changes: Mapping[int, Mapping[str, Any]] | None = None,
                     _orders: Mapping[int, Mapping[str, Any]] | None = None,
                     _stations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Stations whose statuses say use but no order ended in the month (``use_without_orders``),
    or with orders but no status change from the feed in it (``orders_without_status``)."""
    params = month.params(operator_id)
    changes = _changes if _changes is not None else month_scan(conn, month, operator_id)[1]
    orders = _orders if _orders is not None else by_station(conn, STATION_ORDERS_SQL, params)
    stations = _stations if _stations is not None else [dict(r) for r in conn.execute(STATIONS_SQL, params).mappings()]
    out = []
    for s in stations:
        ch = changes.get(s["station_pk"], {})
        n_orders = int(orders.get(s["station_pk"], {}).get("orders", 0))
        reason = None
        if int(ch.get("use_changes", 0)) > 0 and n_orders == 0:
            reason = "use_without_orders"
        elif n_orders > 0 and int(ch.get("changes", 0)) == 0:
            reason = "orders_without_status"
        if reason:
            out.append({**s, "reason": reason, "orders": n_orders, "changes": int(ch.get("changes", 0)),
                        "use_changes": int(ch.get("use_changes", 0))})
    return out


_ARCHIVES = text("""
WITH f AS (
    SELECT s.id, s.operator_id, s.station_id, s.name, s.station_type, s.geom
    FROM stations s
    WHERE s.feed_state = 'active' AND (CAST(:op AS text) IS NULL OR s.operator_id = CAST(:op AS text))
), ar AS (
    SELECT a.id, o.operator_id, a.station_id, a.name, a.station_type, a.geom
    FROM station_archives a JOIN operators o ON o.id = a.operator_pk
    WHERE a.state = 'approved' AND (CAST(:op AS text) IS NULL OR o.operator_id = CAST(:op AS text))
), j AS (
    SELECT coalesce(f.operator_id, ar.operator_id) AS operator_id, coalesce(f.station_id, ar.station_id) AS station_id,
           f.id AS station_pk, ar.id AS archive_id, f.name AS feed_name, ar.name AS archive_name,
           f.station_type AS feed_type, ar.station_type AS archive_type,
           CASE WHEN f.geom IS NOT NULL AND ar.geom IS NOT NULL
                THEN ST_Distance(CAST(f.geom AS geography), CAST(ar.geom AS geography)) END AS distance_m
    FROM f FULL JOIN ar ON ar.operator_id = f.operator_id AND ar.station_id = f.station_id
)
SELECT j.*,
       CASE WHEN j.archive_id IS NULL THEN ARRAY['no_archive']
            WHEN j.station_pk IS NULL THEN ARRAY['not_in_feed']
            ELSE array_remove(ARRAY[
                CASE WHEN j.archive_name IS NOT NULL AND btrim(j.archive_name) <> btrim(j.feed_name) THEN 'name' END,
                CASE WHEN j.archive_type IS NOT NULL AND j.archive_type <> j.feed_type THEN 'station_type' END,
                CASE WHEN j.distance_m > :max_m THEN 'position' END], NULL) END AS kinds
FROM j
ORDER BY j.operator_id, j.station_id
""")


def archive_differences(conn: Connection, operator_id: str | None = None, *,
                        max_distance_m: float = 200.0) -> list[dict[str, Any]]:
    """Feed stations against approved station archives, now: each row's ``kinds`` say what differs."""
    return [dict(r) for r in conn.execute(_ARCHIVES, {"op": operator_id, "max_m": max_distance_m}).mappings()
            if r["kinds"]]


_SILENT = text(f"""
WITH {SCOPE_SQL}
SELECT k.operator_id, k.station_pk, k.station_id, k.station_name, k.connector_id, cs.status_since AS silent_since,
       cs.reported_at AS last_report
FROM k JOIN connector_status cs ON cs.id = k.key
WHERE cs.status IS NULL
ORDER BY k.operator_id, cs.status_since, k.connector_id
""")


def silent_connectors(conn: Connection, operator_id: str | None = None) -> list[dict[str, Any]]:
    """Connectors unknown now (silent since ``silent_since``)."""
    return [dict(r) for r in conn.execute(_SILENT, {"op": operator_id}).mappings()]

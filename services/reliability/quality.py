"""Feed truth and the data-quality table (issue 16, item 5): what the feeds say against what they bill.

Everything is per China month ([first day 00:00, next month's first day 00:00) China time, cut at
``now``) and computed on request from the status history, the orders and the archives:

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
* the **table** (:func:`month_table`): one row per operator (and per station) with freshness, push
  delay, those counts, rejected records and uptime (``services.reliability.uptime.uptime_table``),
  and :func:`trend` the same per operator for the last months.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from services.db import TransactionLock
from services.errors import BadRequest
from services.jobs import PeriodicJob
from services.prices.tariff import CHINA_TZ
from services.reliability.partitions import add_months
from services.reliability.uptime import uptime_table
from services.reliability.window import china_date, china_midnight

__all__ = ["THRESHOLD", "Month", "archive_differences", "contradictions", "month_table", "month_view", "parse_month",
           "quality_job", "quality_xlsx", "refresh", "silent_connectors", "store_month", "stored_month", "stuck_connectors",
           "suspect_stations", "trend"]

log = logging.getLogger("zhcharge.reliability")

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
_SCOPE = """
k AS MATERIALIZED (
    SELECT cs.id AS key, c.station_pk, s.operator_id, c.connector_id, s.station_id, s.name AS station_name
    FROM connectors c
    JOIN stations s ON s.id = c.station_pk AND s.feed_state = 'active'
    JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
    WHERE CAST(:op AS text) IS NULL OR s.operator_id = CAST(:op AS text)
)"""

_CONTRADICTIONS = text(f"""
WITH {_SCOPE}, o AS MATERIALIZED (
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
_SCAN_ALL = text(_MONTH_SCAN.format(scope=_SCOPE, keys=""))
_SCAN_ONE = text(_MONTH_SCAN.format(scope=_SCOPE, keys="AND h.connector_key IN (SELECT key FROM k)"))


def _month_scan(conn: Connection, month: Month, operator_id: str | None
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
    return _month_scan(conn, month, operator_id)[0]


_STATIONS = text("""
SELECT s.id AS station_pk, s.operator_id, s.station_id, s.name AS station_name, s.district_adcode,
       (SELECT count(*) FROM connectors c WHERE c.station_pk = s.id) AS connectors
FROM stations s
WHERE s.feed_state = 'active' AND (CAST(:op AS text) IS NULL OR s.operator_id = CAST(:op AS text))
ORDER BY s.operator_id, s.station_id
""")

_STATION_ORDERS = text("""
SELECT co.station_pk, count(*) AS orders, count(*) FILTER (WHERE co.confirm_result = 1) AS disputed
FROM charge_orders co
WHERE co.latest AND co.day BETWEEN :d0 AND :d1 AND co.station_pk IS NOT NULL
  AND (CAST(:op AS text) IS NULL OR co.operator_id = CAST(:op AS text))
GROUP BY co.station_pk
""")


def _by_station(conn: Connection, sql: Any, params: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["station_pk"]: dict(r) for r in conn.execute(sql, params).mappings()}


def suspect_stations(conn: Connection, month: Month, operator_id: str | None = None, *,
                     _changes: Mapping[int, Mapping[str, Any]] | None = None,
                     _orders: Mapping[int, Mapping[str, Any]] | None = None,
                     _stations: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Stations whose statuses say use but no order ended in the month (``use_without_orders``),
    or with orders but no status change from the feed in it (``orders_without_status``)."""
    params = month.params(operator_id)
    changes = _changes if _changes is not None else _month_scan(conn, month, operator_id)[1]
    orders = _orders if _orders is not None else _by_station(conn, _STATION_ORDERS, params)
    stations = _stations if _stations is not None else [dict(r) for r in conn.execute(_STATIONS, params).mappings()]
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
WITH {_SCOPE}
SELECT k.operator_id, k.station_pk, k.station_id, k.station_name, k.connector_id, cs.status_since AS silent_since,
       cs.reported_at AS last_report
FROM k JOIN connector_status cs ON cs.id = k.key
WHERE cs.status IS NULL
ORDER BY k.operator_id, cs.status_since, k.connector_id
""")


def silent_connectors(conn: Connection, operator_id: str | None = None) -> list[dict[str, Any]]:
    """Connectors unknown now (silent since ``silent_since``)."""
    return [dict(r) for r in conn.execute(_SILENT, {"op": operator_id}).mappings()]


# per operator: connectors and silent ones now, the delay of the last status push each connector
# holds (received in the month), the delay of order pushes (first version received - EndTime),
# pulled records rejected, stations rejected now, orders disputed
_OPERATORS = text(f"""
WITH {_SCOPE}, conn AS (
    SELECT k.operator_id, count(*) AS connectors, count(*) FILTER (WHERE cs.status IS NULL) AS silent_now,
           count(DISTINCT k.station_pk) AS stations
    FROM k JOIN connector_status cs ON cs.id = k.key GROUP BY k.operator_id
), sd AS (
    SELECT k.operator_id, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM cs.updated_at - cs.reported_at)) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM cs.updated_at - cs.reported_at)) AS p95
    FROM k JOIN connector_status cs ON cs.id = k.key
    WHERE cs.source = 'push' AND cs.updated_at >= :a AND cs.updated_at < :b
    GROUP BY k.operator_id
), od AS (
    SELECT co.operator_id, count(*) AS n,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM first.received_at - co.end_time)) AS p50,
           percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM first.received_at - co.end_time)) AS p95,
           count(*) FILTER (WHERE co.confirm_result = 1) AS disputed
    FROM charge_orders co
    CROSS JOIN LATERAL (SELECT v.received_at FROM charge_orders v
                        WHERE v.operator_id = co.operator_id AND v.start_charge_seq = co.start_charge_seq
                        ORDER BY v.version LIMIT 1) first
    WHERE co.latest AND co.day BETWEEN :d0 AND :d1
      AND (CAST(:op AS text) IS NULL OR co.operator_id = CAST(:op AS text))
    GROUP BY co.operator_id
), rj AS (
    SELECT operator_id, sum(rejected) AS pull_rejected FROM sync_runs
    WHERE started_at >= :a AND started_at < :b AND (CAST(:op AS text) IS NULL OR operator_id = CAST(:op AS text))
    GROUP BY operator_id
), rs AS (
    SELECT operator_id, count(*) AS rejected_stations FROM stations
    WHERE feed_state = 'rejected' AND (CAST(:op AS text) IS NULL OR operator_id = CAST(:op AS text))
    GROUP BY operator_id
), ops AS (
    SELECT operator_id FROM conn UNION SELECT operator_id FROM od UNION SELECT operator_id FROM rj
    UNION SELECT operator_id FROM rs
)
SELECT ops.operator_id, o.name AS operator_name, coalesce(conn.stations, 0) AS stations,
       coalesce(conn.connectors, 0) AS connectors, coalesce(conn.silent_now, 0) AS silent_now,
       coalesce(sd.n, 0) AS status_pushes, sd.p50 AS status_delay_p50_s, sd.p95 AS status_delay_p95_s,
       coalesce(od.n, 0) AS orders, od.p50 AS order_delay_p50_s, od.p95 AS order_delay_p95_s,
       coalesce(od.disputed, 0) AS disputed_orders, coalesce(rj.pull_rejected, 0) AS pull_rejected,
       coalesce(rs.rejected_stations, 0) AS rejected_stations
FROM ops LEFT JOIN operators o ON o.operator_id = ops.operator_id
LEFT JOIN conn ON conn.operator_id = ops.operator_id LEFT JOIN sd ON sd.operator_id = ops.operator_id
LEFT JOIN od ON od.operator_id = ops.operator_id LEFT JOIN rj ON rj.operator_id = ops.operator_id
LEFT JOIN rs ON rs.operator_id = ops.operator_id
ORDER BY ops.operator_id
""")


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


def _uptime_fields(row: Mapping[str, Any] | None) -> dict[str, Any]:
    if row is None:
        return {"uptime": None, "silent_time_share": None, "faults": 0, "below_threshold": False}
    up, down, unknown = float(row["up_s"] or 0), float(row["down_s"] or 0), float(row["unknown_s"] or 0)
    uptime = row["uptime"]
    return {"uptime": uptime, "silent_time_share": _share(unknown, up + down + unknown), "faults": row["faults"] or 0,
            "below_threshold": uptime is not None and uptime < THRESHOLD}


def month_table(conn: Connection, month: Month, operator_id: str | None = None, *, grace_s: float = GRACE_S,
                max_distance_m: float = 200.0, stations: bool = False, details: bool = False) -> dict[str, Any]:
    """The data-quality table of a month: ``operators`` (one row each), ``stations`` (with
    ``stations=True``), and the rows behind the counts with ``details=True`` (``contradictions``,
    ``stuck``, ``suspect``, ``archives``, ``silent``)."""
    params = month.params(operator_id)
    ops = [dict(r) for r in conn.execute(_OPERATORS, params).mappings()]
    contra = contradictions(conn, month, operator_id, grace_s=grace_s)
    stuck, changes = _month_scan(conn, month, operator_id)
    orders = _by_station(conn, _STATION_ORDERS, params)
    all_stations = [dict(r) for r in conn.execute(_STATIONS, params).mappings()]
    suspect = suspect_stations(conn, month, operator_id, _changes=changes, _orders=orders, _stations=all_stations)
    archives = archive_differences(conn, operator_id, max_distance_m=max_distance_m)
    up_rows = uptime_table(conn, month.first, month.last_day, by="operator", per="window", now=month.now)
    uptime_of = {r["operator_id"]: r for r in up_rows}

    def count(rows: list[dict[str, Any]], key: str = "operator_id", distinct: str | None = None) -> dict[str, int]:
        seen: dict[str, set[Any]] = defaultdict(set)
        for r in rows:
            seen[r[key]].add(r[distinct] if distinct else id(r))
        return {k: len(v) for k, v in seen.items()}

    n_contra = count(contra)
    n_stuck = count(stuck, distinct="connector_id")
    n_stuck_charging = count([r for r in stuck if r["charging_24h"]], distinct="connector_id")
    n_stuck_unchanged = count([r for r in stuck if r["unchanged_7d"]], distinct="connector_id")
    n_suspect = count(suspect)
    n_no_archive = count([r for r in archives if r["kinds"] == ["no_archive"]])
    n_not_in_feed = count([r for r in archives if r["kinds"] == ["not_in_feed"]])
    n_fields = count([r for r in archives if r["station_pk"] is not None and r["archive_id"] is not None])

    # the stations' rows (also for the operators' count of stations below the threshold)
    st_up = {r["station_pk"]: r for r in uptime_table(conn, month.first, month.last_day, by="station",
                                                      per="window", now=month.now)}
    sc = count(contra, key="station_pk")
    ss = count(stuck, key="station_pk", distinct="connector_id")
    reasons = {r["station_pk"]: r["reason"] for r in suspect}
    st_rows: list[dict[str, Any]] = []
    for s in all_stations:
        pk = s["station_pk"]
        st_rows.append({**s, **_uptime_fields(st_up.get(pk)),
                        "orders": int(orders.get(pk, {}).get("orders", 0)),
                        "disputed_orders": int(orders.get(pk, {}).get("disputed", 0)),
                        "status_changes": int(changes.get(pk, {}).get("changes", 0)),
                        "contradictions": sc.get(pk, 0), "stuck": ss.get(pk, 0), "suspect": reasons.get(pk)})
    below = count([r for r in st_rows if r["below_threshold"]])

    known = {o["operator_id"] for o in ops}
    for extra in sorted((set(n_no_archive) | set(n_not_in_feed) | set(n_fields)) - known):
        name = conn.execute(text("SELECT name FROM operators WHERE operator_id = :o"), {"o": extra}).scalar()
        ops.append({"operator_id": extra, "operator_name": name, "stations": 0, "connectors": 0, "silent_now": 0,
                    "status_pushes": 0, "status_delay_p50_s": None, "status_delay_p95_s": None, "orders": 0,
                    "order_delay_p50_s": None, "order_delay_p95_s": None, "disputed_orders": 0,
                    "pull_rejected": 0, "rejected_stations": 0})
    for o in ops:
        op = o["operator_id"]
        o.update(_uptime_fields(uptime_of.get(op)))
        o["silent_now_share"] = _share(o["silent_now"], o["connectors"])
        o["contradictions"] = n_contra.get(op, 0)
        o["stuck"] = n_stuck.get(op, 0)
        o["stuck_charging"] = n_stuck_charging.get(op, 0)
        o["stuck_unchanged"] = n_stuck_unchanged.get(op, 0)
        o["suspect_stations"] = n_suspect.get(op, 0)
        o["rejected_records"] = int(o["pull_rejected"]) + int(o["disputed_orders"])
        o["no_archive"] = n_no_archive.get(op, 0)
        o["not_in_feed"] = n_not_in_feed.get(op, 0)
        o["archive_field_diffs"] = n_fields.get(op, 0)
        o["archive_differences"] = o["no_archive"] + o["not_in_feed"] + o["archive_field_diffs"]
        o["stations_below_threshold"] = below.get(op, 0)
        for key in ("status_delay_p50_s", "status_delay_p95_s", "order_delay_p50_s", "order_delay_p95_s"):
            o[key] = float(o[key]) if o[key] is not None else None
    ops.sort(key=lambda r: r["operator_id"])
    out: dict[str, Any] = {"month": month, "operators": ops}
    if stations:
        out["stations"] = st_rows
    if details:
        out.update(contradictions=contra, stuck=stuck, suspect=suspect, archives=archives,
                   silent=silent_connectors(conn, operator_id))
    return out


TREND_FIELDS = ("uptime", "silent_time_share", "contradictions", "stuck", "suspect_stations", "rejected_records",
                "order_delay_p50_s", "archive_differences")


# --- the stored months (migration 1520) and their job ---------------------------------------------
REFRESH_S = 3600.0  # the current month's figures are refreshed this often by the job (a month of 30,000 connectors: ~1 min)
SETTLE_S = 3600.0  # a closed month is computed once more when it has been closed this long
JOB_LOCK = 0x7A68_1520  # pg advisory lock key of the data-quality job
_TIMES = ("since", "until", "start_time", "end_time")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_plain, ensure_ascii=False)


def _times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        for k in _TIMES:
            if isinstance(r.get(k), str):
                r[k] = datetime.fromisoformat(r[k])
    return rows


def store_month(conn: Connection, month: Month, *, grace_s: float = GRACE_S,
                max_distance_m: float = 200.0) -> dict[str, Any]:
    """Compute the whole city's table of ``month`` and store it (replacing what was stored), in the
    caller's transaction; returns the table."""
    t0 = time.perf_counter()
    table = month_table(conn, month, grace_s=grace_s, max_distance_m=max_distance_m, stations=True, details=True)
    m = {"m": month.first}
    conn.execute(text("DELETE FROM data_quality_months WHERE month = :m"), m)
    conn.execute(text("DELETE FROM data_quality_stations WHERE month = :m"), m)
    details: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: {"contradictions": [], "stuck": [], "suspect": []})
    for key in ("contradictions", "stuck", "suspect"):
        for r in table[key]:
            details[r["operator_id"]][key].append(r)
    if table["operators"]:
        conn.execute(text("INSERT INTO data_quality_months (month, operator_id, figures, details, computed_at) "
                          "VALUES (:m, :op, CAST(:f AS jsonb), CAST(:d AS jsonb), :at)"),
                     [{"m": month.first, "op": o["operator_id"], "f": _dumps(o), "at": month.now,
                       "d": _dumps(details.get(o["operator_id"], {}))} for o in table["operators"]])
    if table["stations"]:
        conn.execute(text("INSERT INTO data_quality_stations (month, station_pk, operator_id, figures) "
                          "VALUES (:m, :pk, :op, CAST(:f AS jsonb))"),
                     [{"m": month.first, "pk": s["station_pk"], "op": s["operator_id"], "f": _dumps(s)}
                      for s in table["stations"]])
    conn.execute(text("INSERT INTO data_quality_runs (month, computed_at, seconds) VALUES (:m, :at, :s) "
                      "ON CONFLICT (month) DO UPDATE SET computed_at = EXCLUDED.computed_at, seconds = EXCLUDED.seconds"),
                 {"m": month.first, "at": month.now, "s": time.perf_counter() - t0})
    table["computed_at"] = month.now
    return table


def is_fresh(month: Month, computed_at: datetime | None, now: datetime) -> bool:
    """A stored month is fresh when computed at least ``SETTLE_S`` after it closed, or (not yet
    closed then) within the last ``REFRESH_S``."""
    if computed_at is None:
        return False
    closed = china_midnight(add_months(month.first, 1))
    if computed_at >= closed + timedelta(seconds=SETTLE_S):
        return True
    return computed_at > now - timedelta(seconds=REFRESH_S)


def computed_at(conn: Connection, first: date) -> datetime | None:
    return conn.execute(text("SELECT computed_at FROM data_quality_runs WHERE month = :m"), {"m": first}).scalar()


def stored_month(conn: Connection, month: Month, operator_id: str | None = None, *, stations: bool = False,
                 details: bool = False) -> dict[str, Any] | None:
    """The stored table of ``month`` (``None`` when it was never computed), of one operator or all."""
    at = computed_at(conn, month.first)
    if at is None:
        return None
    p = {"m": month.first, "op": operator_id}
    where = "month = :m AND (CAST(:op AS text) IS NULL OR operator_id = CAST(:op AS text))"
    cols = "figures, details" if details else "figures, NULL AS details"
    rows = conn.execute(text(f"SELECT {cols} FROM data_quality_months WHERE {where} ORDER BY operator_id"), p).all()
    out: dict[str, Any] = {"month": month, "computed_at": at, "operators": [r.figures for r in rows]}
    if stations:
        out["stations"] = [r[0] for r in conn.execute(text(
            f"SELECT figures FROM data_quality_stations WHERE {where} "
            "ORDER BY operator_id, figures->>'station_id'"), p)]
    if details:
        for key in ("contradictions", "stuck", "suspect"):
            out[key] = _times([x for r in rows for x in (r.details or {}).get(key, [])])
    return out


def month_view(conn: Connection, month: Month, operator_id: str | None = None, *, stations: bool = False,
               details: bool = False, max_distance_m: float = 200.0, store: bool = True) -> dict[str, Any]:
    """The month as stored. A month never computed is computed for the whole city and stored now
    (``store``), or else computed for ``operator_id`` alone and not stored (an operator's request
    writes nothing of other operators). A stale month is served as stored (``computed_at`` says
    when); the job refreshes it."""
    got = stored_month(conn, month, operator_id, stations=stations, details=details)
    if got is not None:
        return got
    if not store:
        table = month_table(conn, month, operator_id, max_distance_m=max_distance_m, stations=stations,
                            details=details)
        table["computed_at"] = month.now
        return table
    store_month(conn, month, max_distance_m=max_distance_m)
    got = stored_month(conn, month, operator_id, stations=stations, details=details)
    assert got is not None
    return got


def trend(conn: Connection, month: Month, operator_id: str | None = None, *, months: int = 6,
          store: bool = True) -> dict[str, Any]:
    """The operators' rows of the ``months`` months ending with ``month`` (oldest first; months
    never computed are computed, and stored with ``store``): ``{"months": [Month...], "operators": {OperatorID:
    [row or None per month]}}``."""
    firsts = [add_months(month.first, -i) for i in range(months - 1, -1, -1)]
    ms = [Month(f, month.now) for f in firsts if f >= EARLIEST]
    per: dict[str, list[dict[str, Any] | None]] = {}
    for i, m in enumerate(ms):
        for row in month_view(conn, m, operator_id, store=store)["operators"]:
            per.setdefault(row["operator_id"], [None] * len(ms))[i] = {k: row.get(k) for k in TREND_FIELDS}
    return {"months": ms, "operators": per}


def refresh(engine: Engine, *, now: datetime | None = None, months: int = 6, per_run: int = 2) -> list[date]:
    """One run of the job: the last ``months`` months that are missing or stale, newest first, at
    most ``per_run`` of them, each in its own transaction; nothing when another process runs it."""
    now = now or datetime.now(UTC)
    lock = TransactionLock(engine, ":k", {"k": JOB_LOCK})
    if not lock.acquire():
        return []
    done: list[date] = []
    try:
        current = Month(china_date(now).replace(day=1), now)
        with engine.connect() as conn:
            for i in range(months):
                month = Month(add_months(current.first, -i), now)
                if month.first < EARLIEST or len(done) >= per_run:
                    break
                with conn.begin():
                    if is_fresh(month, computed_at(conn, month.first), now):
                        continue
                    store_month(conn, month)
                done.append(month.first)
    finally:
        lock.release()
    if done:
        log.info("data quality: months %s computed", done)
    return done


def quality_job(engine: Engine, interval_s: float = REFRESH_S) -> PeriodicJob:
    """A daemon thread calling :func:`refresh` every ``interval_s`` (safe in several processes)."""
    return PeriodicJob("data-quality", lambda: refresh(engine), interval_s, first_delay_s=30.0)


# --- the regulators' workbook ---------------------------------------------------------------------
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RED = "FFC7CE"  # the fill of an uptime below the threshold

#: the operator table's columns: (key, zh, en, kind); kinds: s text, n count, share (0..1), s1 seconds
OPERATOR_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("operator_id", "运营商编号", "OperatorID", "s"),
    ("operator_name", "运营商", "Operator", "s"),
    ("stations", "充电站", "Stations", "n"),
    ("connectors", "充电接口", "Connectors", "n"),
    ("uptime", "可用率", "Uptime", "share"),
    ("below_threshold", "低于 97 %", "Below 97 %", "flag"),
    ("stations_below_threshold", "可用率低于 97 % 的站", "Stations below 97 %", "n"),
    ("silent_now", "当前失联接口", "Silent connectors now", "n"),
    ("silent_now_share", "当前失联比例", "Share silent now", "share"),
    ("silent_time_share", "失联时间比例", "Silent time share", "share"),
    ("status_delay_p50_s", "状态推送延迟中位数（秒）", "Status push delay median (s)", "sec"),
    ("status_delay_p95_s", "状态推送延迟 P95（秒）", "Status push delay p95 (s)", "sec"),
    ("order_delay_p50_s", "订单推送延迟中位数（秒）", "Order push delay median (s)", "sec"),
    ("order_delay_p95_s", "订单推送延迟 P95（秒）", "Order push delay p95 (s)", "sec"),
    ("orders", "订单", "Orders", "n"),
    ("contradictions", "状态与订单矛盾", "Contradictions", "n"),
    ("stuck", "卡滞接口", "Stuck connectors", "n"),
    ("stuck_charging", "充电超过 24 小时", "Charging > 24 h", "n"),
    ("stuck_unchanged", "7 天无变化", "Unchanged 7 days", "n"),
    ("suspect_stations", "可疑站点", "Suspect stations", "n"),
    ("rejected_records", "被拒记录", "Rejected records", "n"),
    ("pull_rejected", "拉取被拒", "Rejected in pulls", "n"),
    ("disputed_orders", "存疑订单", "Disputed orders", "n"),
    ("rejected_stations", "被拒站点（当前）", "Rejected stations (now)", "n"),
    ("archive_differences", "档案与数据差异", "Archive differences", "n"),
    ("no_archive", "无备案档案", "No approved archive", "n"),
    ("not_in_feed", "档案未上报", "Archive not in the feed", "n"),
    ("archive_field_diffs", "字段不一致", "Fields differ", "n"),
)
STATION_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("operator_id", "运营商编号", "OperatorID", "s"),
    ("station_id", "充电站编号", "StationID", "s"),
    ("station_name", "充电站", "Station", "s"),
    ("connectors", "充电接口", "Connectors", "n"),
    ("uptime", "可用率", "Uptime", "share"),
    ("below_threshold", "低于 97 %", "Below 97 %", "flag"),
    ("silent_time_share", "失联时间比例", "Silent time share", "share"),
    ("faults", "故障次数", "Faults", "n"),
    ("orders", "订单", "Orders", "n"),
    ("disputed_orders", "存疑订单", "Disputed orders", "n"),
    ("status_changes", "状态变化", "Status changes", "n"),
    ("contradictions", "状态与订单矛盾", "Contradictions", "n"),
    ("stuck", "卡滞接口", "Stuck connectors", "n"),
    ("suspect", "可疑原因", "Suspect", "s"),
)
_FORMATS = {"n": "0", "share": "0.0%", "sec": "0.0"}


def _xl(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.astimezone(CHINA_TZ).replace(tzinfo=None)
    return value


def quality_xlsx(table: dict[str, Any], trend_: dict[str, Any] | None = None, lang: str = "zh") -> bytes:
    """The month's workbook: operators, stations (uptime below 97 % filled red and said in a column
    of its own), contradictions, stuck connectors, suspect stations, and the trend."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill

    en = lang == "en"
    red = PatternFill("solid", start_color=RED, end_color=RED)
    wb = Workbook()
    wb.remove(wb.active)

    def sheet(title: str, columns: tuple[tuple[str, str, str, str], ...], rows: list[dict[str, Any]]) -> None:
        ws = wb.create_sheet(title)
        ws.append([c[2] if en else c[1] for c in columns])
        for c in ws[1]:
            c.font = Font(bold=True)
        for r in rows:
            values = []
            for key, _, _, kind in columns:
                v = r.get(key)
                if kind == "flag":
                    v = ("yes" if en else "是") if v else ("no" if en else "否")
                values.append(_xl(v))
            ws.append(values)
            if r.get("below_threshold"):
                for i, (key, _, _, _) in enumerate(columns, start=1):
                    if key in ("uptime", "below_threshold"):
                        ws.cell(row=ws.max_row, column=i).fill = red
        for i, (_, zh, en_, kind) in enumerate(columns, start=1):
            ws.column_dimensions[ws.cell(row=1, column=i).column_letter].width = max(10, min(40, len(en_ if en else zh) + 4))
            if kind in _FORMATS:
                for (cell,) in ws.iter_rows(min_row=2, min_col=i, max_col=i):
                    if cell.value is not None:
                        cell.number_format = _FORMATS[kind]
        ws.freeze_panes = "A2"

    month = table["month"]
    sheet("运营商" if not en else "Operators", OPERATOR_COLUMNS, table["operators"])
    sheet("充电站" if not en else "Stations", STATION_COLUMNS,
          [dict(s, suspect=s.get("suspect") or "") for s in table.get("stations", [])])
    sheet("矛盾" if not en else "Contradictions", (
        ("operator_id", "运营商编号", "OperatorID", "s"), ("station_id", "充电站编号", "StationID", "s"),
        ("connector_id", "充电接口编号", "ConnectorID", "s"), ("start_charge_seq", "订单号", "StartChargeSeq", "s"),
        ("start_time", "开始", "Start", "s"), ("end_time", "结束", "End", "s"),
        ("free_s", "空闲（秒）", "Free (s)", "sec"), ("offline_s", "离线（秒）", "Offline (s)", "sec")),
        table.get("contradictions", []))
    sheet("卡滞" if not en else "Stuck", (
        ("operator_id", "运营商编号", "OperatorID", "s"), ("station_id", "充电站编号", "StationID", "s"),
        ("connector_id", "充电接口编号", "ConnectorID", "s"), ("status", "状态", "Status", "n"),
        ("since", "自", "Since", "s"), ("until", "至", "Until", "s"), ("seconds", "时长（秒）", "Seconds", "sec"),
        ("charging_24h", "充电超过 24 小时", "Charging > 24 h", "flag"),
        ("unchanged_7d", "7 天无变化且有订单", "Unchanged 7 days with orders", "flag")),
        table.get("stuck", []))
    sheet("可疑站点" if not en else "Suspect stations", (
        ("operator_id", "运营商编号", "OperatorID", "s"), ("station_id", "充电站编号", "StationID", "s"),
        ("station_name", "充电站", "Station", "s"), ("reason", "原因", "Reason", "s"),
        ("orders", "订单", "Orders", "n"), ("changes", "状态变化", "Status changes", "n")),
        table.get("suspect", []))
    if trend_ is not None:
        cols: list[tuple[str, str, str, str]] = [("operator_id", "运营商编号", "OperatorID", "s")]
        rows: dict[str, dict[str, Any]] = {}
        for i, m in enumerate(trend_["months"]):
            for key, zh, en_, kind in (("uptime", "可用率", "uptime", "share"),
                                       ("contradictions", "矛盾", "contradictions", "n"),
                                       ("stuck", "卡滞", "stuck", "n")):
                cols.append((f"{m.label}:{key}", f"{m.label} {zh}", f"{m.label} {en_}", kind))
            for op, per in trend_["operators"].items():
                row = rows.setdefault(op, {"operator_id": op})
                for key in ("uptime", "contradictions", "stuck"):
                    row[f"{m.label}:{key}"] = (per[i] or {}).get(key)
        sheet("趋势" if not en else "Trend", tuple(cols), [rows[k] for k in sorted(rows)])
    ws = wb.create_sheet("说明" if not en else "About", 0)
    ws.append(["月份" if not en else "month", month.label])
    ws.append(["计算时间" if not en else "computed at", _xl(table.get("computed_at"))])
    ws.append(["可用率门槛" if not en else "uptime threshold", THRESHOLD])
    ws["B3"].number_format = "0%"
    out = BytesIO()
    wb.save(out)
    return out.getvalue()

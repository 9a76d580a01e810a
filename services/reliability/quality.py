"""The data-quality table (issue 16, item 5): per operator (and station) and China month, freshness,
push delay, the feed-truth counts of :mod:`services.reliability.truth` (contradictions, stuck
connectors, suspect stations, archive differences; its queries are built on truth's public month,
scope and station SQL), rejected records and uptime
(``services.reliability.uptime.uptime_table``); :func:`trend` the same per operator for the last
months; the months stored by a job (:func:`refresh`, :func:`quality_job`) so the regulators' page
reads them; the workbook is :mod:`services.reliability.quality_xlsx`.

The names of :mod:`.truth` and :mod:`.quality_xlsx` are importable from here too (the routes and
tests use one module).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from services.db import TransactionLock
from services.jobs import PeriodicJob
from services.reliability.partitions import add_months
from services.reliability.uptime import uptime_table
from services.reliability.quality_xlsx import RED, XLSX_MEDIA_TYPE, quality_xlsx
from services.reliability.truth import (EARLIEST, GRACE_S, SCOPE_SQL, STATION_ORDERS_SQL, STATIONS_SQL, THRESHOLD,
                                        Month, archive_differences, by_station, contradictions, month_scan,
                                        parse_month, silent_connectors, stuck_connectors, suspect_stations)
from services.reliability.window import china_date, china_midnight

__all__ = ["RED", "THRESHOLD", "XLSX_MEDIA_TYPE", "Month", "archive_differences", "contradictions", "month_table",
           "month_view", "parse_month", "quality_job", "quality_xlsx", "refresh", "silent_connectors", "store_month",
           "stored_month", "stuck_connectors", "suspect_stations", "trend"]

log = logging.getLogger("zhcharge.reliability")


# per operator: connectors and silent ones now, the delay of the last status push each connector
# holds (received in the month), the delay of order pushes (first version received - EndTime),
# pulled records rejected, stations rejected now, orders disputed
_OPERATORS = text(f"""
WITH {SCOPE_SQL}, conn AS (
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
    stuck, changes = month_scan(conn, month, operator_id)
    orders = by_station(conn, STATION_ORDERS_SQL, params)
    all_stations = [dict(r) for r in conn.execute(STATIONS_SQL, params).mappings()]
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

"""Reliability benchmarks (issue 16): a status history of about 30,000 connectors over 30 days
(about 10 million changes, generated in SQL), its nightly aggregation, the whole city's monthly
uptime table, and one station's reliability, status history and week profile.

The database is made for the run and dropped after it: 2,400 generated Zhuhai stations
(``bench.generate``, about 30,000 connectors, some under maintenance and with opening hours),
and ~11 changes per connector and day appended in time order, as pushes and pulls would, into the
monthly partitions (plus the carried rows of a month start). The push rate with the history
written is the feed benchmark's ("status pushes, sustained"): every push that changes a status
appends its change there.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_feed import _row  # noqa: E402

STATIONS = 2400
DAYS = 30
CHANGES_PER_DAY = 11.1
SAMPLES = 200

_GENERATE = text("""
INSERT INTO connector_status_history (at, connector_key, status, source)
SELECT g.at, g.key, g.status, g.source FROM (
    SELECT cs.id AS key,
           CAST(:start AS timestamptz) + (i + CASE WHEN i = 0 THEN 0 ELSE 0.05 + random() * 0.9 END)
               * make_interval(secs => :step) AS at,
           (ARRAY[1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 2, 4, 0, 255, NULL]::smallint[])[1 + floor(random() * 15)::int]
               AS status,
           CASE WHEN i = 0 THEN 'c' ELSE (ARRAY['p', 'p', 'p', 'l'])[1 + floor(random() * 4)::int] END AS source
    FROM connector_status cs CROSS JOIN generate_series(CAST(:i0 AS integer), CAST(:i1 AS integer) - 1) i
) g
ORDER BY g.at
""")


def _ms(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return round(statistics.median(s) * 1000, 2), round(s[int(len(s) * 0.95) - 1] * 1000, 2)


def _generate(engine, start: datetime, now: datetime) -> float:  # noqa: ANN001
    """A fresh database with the stations and ~11 changes per connector and day, appended day by day
    in time order; returns the seconds the history took."""
    from bench.generate import generate_stations
    from services import migrate
    from services.geography import load_districts_into_db
    from services.reliability.hours import refresh_open_hours
    from services.reliability.partitions import add_months, carry_months, make_partition, month_of

    migrate.upgrade(engine)
    with engine.begin() as conn:
        load_districts_into_db(conn)
        generate_stations(conn, STATIONS, region="zhuhai", seed=1, operators=8, prefix="GEN")
        refresh_open_hours(conn)
        month = month_of(start)
        while month <= add_months(month_of(now), 2):
            make_partition(conn, month)
            month = add_months(month, 1)
        # the stations' statuses (maintenance among them) held since the window began
        conn.execute(text("UPDATE station_status_history SET at = :s"), {"s": start})
    per_conn = round(CHANGES_PER_DAY * DAYS)
    step = (now - start).total_seconds() / per_conn
    t0 = time.perf_counter()
    for d in range(DAYS + 1):
        i0, i1 = round(d * per_conn / (DAYS + 1)), round((d + 1) * per_conn / (DAYS + 1))
        with engine.begin() as conn:
            conn.execute(_GENERATE, {"start": start, "step": step, "i0": i0, "i1": i1})
    with engine.begin() as conn:
        conn.execute(text("UPDATE reliability_months SET carried_at = NULL"))
        carry_months(conn, now)
        conn.execute(text("""
            UPDATE connector_status cs SET status = h.status, status_since = h.at, reported_at = h.at,
                   updated_at = now()
            FROM (SELECT DISTINCT ON (connector_key) connector_key, at, status FROM connector_status_history
                  ORDER BY connector_key, at DESC) h
            WHERE h.connector_key = cs.id"""))
    return time.perf_counter() - t0


ORDERS_PER_CONNECTOR_DAY = 0.5

_ORDERS = text("""
INSERT INTO charge_orders (operator_id, start_charge_seq, version, latest, digest, connector_id, station_pk,
                           start_time, end_time, day, total_power, total_elec_money, total_service_money,
                           total_money, details, confirm_result, raw, received_at)
SELECT o.operator_id, 'B' || o.n::text, 1, true, md5(o.n::text), o.connector_id, o.station_pk, o.t0, o.t1,
       CAST(o.t1 AT TIME ZONE 'Asia/Shanghai' AS date), 20, 16, 8, 24, '[]', (random() < 0.02)::int, '{}',
       o.t1 + random() * interval '120 seconds'
FROM (
    SELECT row_number() OVER () AS n, c.operator_id, c.connector_id, c.station_pk, t.t0,
           t.t0 + (30 + random() * 60) * interval '1 minute' AS t1
    FROM connectors c
    CROSS JOIN LATERAL (SELECT CAST(:start AS timestamptz) + random() * (CAST(:end AS timestamptz) - :start) AS t0
                        FROM generate_series(1, :n) WHERE c.id > 0) t
) o
WHERE o.t1 < :end
""")


def _data_quality(engine, row, start: datetime, now: datetime) -> list[dict]:  # noqa: ANN001
    """Orders over the window (random times, as many as ORDERS_PER_CONNECTOR_DAY), then the city's
    data-quality table of the current month computed and stored (the job's work), the page's read
    of the stored month and its six-month trend, and one operator's month computed without the store."""
    from services.reliability import quality as q
    from services.reliability.partitions import add_months
    from services.reliability.window import china_date

    out = []
    t0 = time.perf_counter()
    with engine.begin() as conn:
        n = conn.execute(_ORDERS, {"start": start, "end": now,
                                   "n": max(1, round(ORDERS_PER_CONNECTOR_DAY * DAYS))}).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE charge_orders"))
    gen_s = time.perf_counter() - t0
    month = q.Month(china_date(now).replace(day=1), now)
    with engine.connect() as conn:
        changes = conn.execute(text("SELECT count(*) FROM connector_status_history WHERE at >= :a AND at < :b"),
                               {"a": month.start, "b": month.end}).scalar()
        n_conn = conn.execute(text("SELECT count(*) FROM connector_status")).scalar()
    samples = []
    for _ in range(2):
        t0 = time.perf_counter()
        with engine.begin() as conn:
            table = q.store_month(conn, month)
        samples.append(time.perf_counter() - t0)
    best = min(samples)
    counts = {k: sum(o[k] for o in table["operators"]) for k in ("contradictions", "stuck", "suspect_stations")}
    out.append(row("city data-quality table of the month, computed and stored", round(best, 2), "s",
                   "(job, hourly)", None,
                   f"{n_conn:,} connectors, {changes:,} history rows of {month.label} so far, {n:,} orders over "
                   f"{DAYS} days (made in {gen_s:.0f} s); {len(table['operators'])} operators, "
                   f"{len(table['stations']):,} stations; found {counts}; best of {len(samples)}"))
    samples = []
    for _ in range(5):
        t0 = time.perf_counter()
        with engine.begin() as conn:
            q.month_view(conn, month)
            q.trend(conn, month)
        samples.append(time.perf_counter() - t0)
    p50 = statistics.median(samples)
    out.append(row("regulators' page data: stored month + 6-month trend", round(p50 * 1000, 1), "ms p50", "(none set)",
                   None, "months already stored (the job's); a month never computed is computed once on request"))
    # the month before: as far as the history reaches (its last ~24 days), the job's work once it closed
    prev = q.Month(add_months(month.first, -1), now)
    with engine.connect() as conn:
        changes = conn.execute(text("SELECT count(*) FROM connector_status_history WHERE at >= :a AND at < :b"),
                               {"a": prev.start, "b": prev.end}).scalar()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        ptable = q.store_month(conn, prev)
    took = time.perf_counter() - t0
    counts = {k: sum(o[k] for o in ptable["operators"]) for k in ("contradictions", "stuck", "suspect_stations")}
    out.append(row("city data-quality table of the previous month, computed and stored", round(took, 2), "s",
                   "(job, once closed)", None, f"{changes:,} history rows of {prev.label}; found {counts}"))
    op = table["operators"][0]["operator_id"]
    samples = []
    for _ in range(2):
        t0 = time.perf_counter()
        with engine.connect() as conn:
            q.month_table(conn, month, op, stations=True, details=True)
        samples.append(time.perf_counter() - t0)
    out.append(row("one operator's month computed without the store", round(min(samples), 2), "s", "(none set)", None,
                   f"operator {op}, {table['operators'][0]['connectors']:,} connectors: an operator's page when "
                   "the month was never stored"))
    return out


def main() -> list[dict]:
    from services.reliability.history import station_reliability, status_history
    from services.reliability.profile import occupancy_profile
    from services.reliability.rollup import pending_days, rollup_day
    from services.reliability.uptime import connector_uptime, uptime_table
    from services.prices.tariff import CHINA_TZ
    from services.reliability.window import china_date, china_midnight
    from tests.conftest import _server_url, create_database, drop_database

    def create_database_url(db: str) -> str:
        from sqlalchemy import make_url

        return make_url(_server_url()).set(database=db).render_as_string(hide_password=False)

    row = lambda *a, **k: _row(*a, benchmark="reliability", **k)  # noqa: E731
    rows: list[dict] = []
    reuse = os.environ.get("ZHCHARGE_BENCH_RELIABILITY_DB")  # a database kept by ZHCHARGE_BENCH_KEEP=1
    name = reuse or f"zhcharge_bench_reliability_{secrets.token_hex(3)}"
    url = create_database(name) if not reuse else create_database_url(name)
    engine = create_engine(url, pool_size=4)
    try:
        now = datetime.now(UTC)
        today = china_date(now)
        start = china_midnight(today - timedelta(days=DAYS))
        gen_s = 0.0
        if not reuse:
            gen_s = _generate(engine, start, now)
        else:
            with engine.begin() as conn:
                conn.execute(text("UPDATE reliability_days SET stale = true"))
        with engine.connect() as conn:
            n_conn = conn.execute(text("SELECT count(*) FROM connector_status")).scalar()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE connector_status_history"))
            conn.execute(text("ANALYZE connector_status"))
            changes = conn.execute(text("SELECT count(*) FROM connector_status_history")).scalar()
            size = conn.execute(text(
                "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'connector_status_history'::regclass")).scalar()
        per_change = float(size) / changes
        per_year = per_change * n_conn * CHANGES_PER_DAY * 365
        rows.append(row("status history generated", changes, "changes", "about 10 million", changes > 9_000_000,
                        f"{n_conn:,} connectors x {DAYS} days in {gen_s:.0f} s; {per_change:.0f} bytes per change "
                        f"with its indexes; a year of {n_conn:,} connectors at {CHANGES_PER_DAY} changes a day: "
                        f"{per_year / 1e9:.1f} GB"))

        # 2. the aggregation of each ended day (nightly), and of today up to its last hour (hourly)
        with engine.connect() as conn:
            due = pending_days(conn, now, 900)
        times, partial = [], []
        for day, until in due:
            t0 = time.perf_counter()
            with engine.begin() as conn:
                rollup_day(conn, day, until)
            (times if until == china_midnight(day + timedelta(days=1)) else partial).append(time.perf_counter() - t0)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE connector_daily"))
            conn.execute(text("VACUUM ANALYZE connector_monthly"))
            conn.execute(text("VACUUM ANALYZE station_daily"))
            daily_size = conn.execute(text("SELECT pg_total_relation_size('connector_daily') "
                                           "+ pg_total_relation_size('station_daily')")).scalar()
        rows.append(row("aggregation of one ended day", round(statistics.median(times), 2), "s", "(none set)", None,
                        f"median of {len(times)} days (max {max(times):.2f} s), all {n_conn:,} connectors: uptime "
                        f"per connector, occupancy per station and hour, the month's sums; aggregates "
                        f"{daily_size / len(times) / 1e6:.1f} MB a day"))
        if partial:
            rows.append(row("aggregation of today up to its last hour", round(partial[0], 2), "s", "(none set)", None,
                            f"uptime only, {now.astimezone(CHINA_TZ):%H:%M} China time; the job does it hourly"))

        # 3. the whole city's monthly uptime table (this month so far, today from the history)
        first = today.replace(day=1)
        for by in ("station", "operator", "district"):
            samples = []
            for _ in range(3):
                t0 = time.perf_counter()
                with engine.connect() as conn:
                    table = uptime_table(conn, first, today, by=by, per="month", now=datetime.now(UTC))
                samples.append(time.perf_counter() - t0)
            best = statistics.median(samples)
            rows.append(row(f"city monthly uptime table, by {by}", round(best, 2), "s", "< 2 s", best < 2,
                            f"{len(table)} rows, {first}..{today} ({(today - first).days} aggregated days "
                            "+ today so far from the history)"))
        samples = []
        last = first - timedelta(days=1)
        for _ in range(3):
            t0 = time.perf_counter()
            with engine.connect() as conn:
                table = uptime_table(conn, last.replace(day=1), last, by="station", per="month",
                                     now=datetime.now(UTC))
            samples.append(time.perf_counter() - t0)
        rows.append(row("city uptime table of the previous month, by station", round(statistics.median(samples), 2),
                        "s", "< 2 s", statistics.median(samples) < 2,
                        f"{len(table)} rows, aggregated days only ({last.replace(day=1)}..{last}, as far as the "
                        "history reaches)"))

        # 4. one station: reliability over 30 days, status history over 24 h, week profile
        with engine.connect() as conn:
            pks = [r[0] for r in conn.execute(text(
                "SELECT id FROM stations WHERE feed_state = 'active' AND interconnected ORDER BY md5(id::text) "
                "LIMIT :n"), {"n": SAMPLES})]
            conns = conn.execute(text("SELECT avg(connectors_total) FROM stations WHERE id = ANY(:ids)"),
                                 {"ids": pks}).scalar()

        def timed(fn, sample: list[int] = pks) -> list[float]:  # noqa: ANN001
            out = []
            with engine.connect() as conn:
                for rep in (0, 1):  # the first round warms caches and plans
                    for pk in sample:
                        t0 = time.perf_counter()
                        fn(conn, pk)
                        if rep:
                            out.append(time.perf_counter() - t0)
            return out

        t_now = datetime.now(UTC)
        p50, p95 = _ms(timed(lambda c, pk: station_reliability(c, pk, t_now - timedelta(days=30), t_now, t_now)))
        rows.append(row("one station's reliability, 30 days", p50, "ms p50", "< 5 ms", p50 < 5,
                        f"p95 {p95} ms; {SAMPLES} stations ({conns:.1f} connectors on average), in process: the "
                        "station and its connectors, the aggregated days, the partial days from the history"))
        p50, p95 = _ms(timed(lambda c, pk: status_history(c, pk, t_now - timedelta(days=1), t_now, t_now)))
        rows.append(row("one station's status history, 24 h", p50, "ms p50", "(none set)", None, f"p95 {p95} ms"))
        p50, p95 = _ms(timed(lambda c, pk: occupancy_profile(c, pk, today)))
        rows.append(row("one station's week profile, 8 weeks", p50, "ms p50", "< 5 ms", p50 < 5,
                        f"p95 {p95} ms; from station_daily"))

        def raw_only(c, pk) -> None:  # noqa: ANN001
            keys = [k for (k,) in c.execute(text(
                "SELECT cs.id FROM connectors n JOIN connector_status cs USING (operator_id, connector_id) "
                "WHERE n.station_pk = :pk"), {"pk": pk})]
            connector_uptime(c, keys, t_now - timedelta(days=30), t_now, t_now, aggregates=False)

        p50, p95 = _ms(timed(raw_only, pks[:40]))
        rows.append(row("one station's reliability, 30 days, history only", p50, "ms p50", "(comparison)", None,
                        f"p95 {p95} ms: the same without the daily aggregates"))

        # 5. the data-quality table (issue 16, item 5): orders over the window, then the city's month
        rows.extend(_data_quality(engine, row, start, datetime.now(UTC)))
    finally:
        engine.dispose()
        if not (reuse or os.environ.get("ZHCHARGE_BENCH_KEEP")):
            drop_database(name)
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)

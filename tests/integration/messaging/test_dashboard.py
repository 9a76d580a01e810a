"""The regulator dashboard over generated Zhuhai stations: states, long faults, feed health, prices
and the cap, snapshots written once under concurrency, CSV exports; and the fee parser."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from services.settings import SupervisionSettings
from services.supervision import dashboard as dash
from services.supervision.fees import parse_fee, period_average, total_schedule
from tests.accounts_helpers import create_operator_user, create_regulator

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module")
def stations(engine):  # noqa: ANN001, ANN201
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from bench.generate import generate_stations

    with engine.begin() as conn:
        generate_stations(conn, 30, region="zhuhai", prefix="DB", operators=3, seed=7)
        # one connector in fault for two hours, one station above any cap
        conn.execute(text("UPDATE connector_status SET status = 255, status_since = now() - interval '2 hours' "
                          "WHERE (operator_id, connector_id) = (SELECT operator_id, connector_id FROM connector_status "
                          "WHERE operator_id LIKE 'DB%' ORDER BY connector_id LIMIT 1)"))
        conn.execute(text("UPDATE stations SET electricity_fee = '00:00-24:00 1.50元/度', service_fee = '1.20元/度' "
                          "WHERE id = (SELECT min(id) FROM stations WHERE operator_id LIKE 'DB%')"))
        conn.execute(text("INSERT INTO sync_runs (operator_id, mode, started_at, finished_at, ok, error) VALUES "
                          "('DB000001', 'incremental', now() - interval '5 minutes', now() - interval '4 minutes', true, NULL), "
                          "('DB000001', 'status', now() - interval '3 minutes', now() - interval '3 minutes', false, 'timeout'), "
                          "('DB000001', 'push', now() - interval '2 minutes', now() - interval '1 minute', true, NULL)"))
        conn.execute(text("UPDATE sync_runs SET statuses = 120 WHERE operator_id = 'DB000001' AND mode = 'push'"))
    return 30


def test_fee_parser_cases() -> None:
    s = parse_fee("00:00-08:00 0.35元/度;08:00-12:00 0.85元/度;12:00-14:00 0.65元/度;14:00-22:00 0.95元/度;"
                  "22:00-24:00 0.45元/度")
    assert s.complete and s.max_price == 0.95 and s.min_price == 0.35
    assert period_average(s, "valley") == pytest.approx(0.35)
    assert parse_fee("00:00-08:00 0.3000元/度；08:00-24:00 0.8000元/度").price_at(9 * 60) == 0.8
    assert parse_fee("0.8") .price_at(0) == 0.8
    assert parse_fee("全天 0.6元/度").complete
    assert parse_fee("免费") is None and parse_fee("00:00-08:00 99元/度") is None
    wrap = parse_fee("22:00-06:00 0.3元/kWh;06:00-22:00 1.0元/kWh")
    assert wrap.price_at(23 * 60) == 0.3 and wrap.price_at(5 * 60 + 59) == 0.3 and wrap.price_at(6 * 60) == 1.0
    assert total_schedule(parse_fee("1.5元/度"), parse_fee("1.2元/度")).max_price == 2.7
    partial = parse_fee("08:00-12:00 1.0元/度")
    assert not partial.complete and partial.price_at(0) is None and partial.average() == 1.0


def test_dashboard_tables_and_snapshots(stations, database, engine) -> None:  # noqa: ANN001
    cfg = SupervisionSettings(fault_threshold_min=60, fee_cap_yuan_per_kwh=2.0, snapshot_interval_s=300)
    # several processes at once: exactly one writes
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM status_snapshots"))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: dash.take_snapshot(engine, cfg), range(4)))
    assert results.count(True) == 1
    assert dash.take_snapshot(engine, cfg) is False  # fresh enough
    with database.session() as s:
        d = dash.dashboard(s, cfg)
    t = d["tables"]
    assert d["totals"]["total"] > 0 and d["totals"]["fault"] >= 1
    assert sum(r["total"] for r in t["stations_by_operator"].rows) >= stations
    assert any(r["connector_id"] for r in t["faults"].rows)
    assert any(r["name"] and r["max_total"] == 2.7 for r in t["over_cap"].rows)
    feed = {r["operator_id"]: r for r in t["feed_health"].rows}
    assert feed["DB000001"]["errors_24h"] >= 1 and feed["DB000001"]["push_per_min"] == 2.0
    assert t["prices_by_operator"].rows and t["prices_by_district"].rows
    assert len(d["series"]) == 1 and d["series"][0]["total"] > 0


def test_dashboard_page_and_csv(stations, make_client, engine) -> None:  # noqa: ANN001
    rc = make_client(create_regulator(engine))
    page = rc.get("/admin/dashboard", headers=HTML)
    assert page.status_code == 200 and "chart.umd.min.js" in page.text and 'id="dash-data"' in page.text
    for name in ("stations_by_district", "connectors_by_operator", "faults", "feed_health", "prices_by_operator",
                 "prices_by_district", "over_cap", "online_rate", "stations_by_operator", "connectors_by_district"):
        r = rc.get(f"/admin/dashboard/csv/{name}.csv")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), name
        rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
        assert len(rows) >= 1 and rows[0], name
    assert rc.get("/admin/dashboard/csv/nope.csv").status_code == 404
    oc = make_client(create_operator_user(engine))
    assert oc.get("/admin/dashboard", headers=HTML).status_code == 403
    assert oc.get("/admin/dashboard/csv/faults.csv").status_code == 403

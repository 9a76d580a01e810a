"""Charging statistics from the orders (issue 15, item 9) on the home page and the regulators'
dashboard with its CSV exports, and the dashboard's prices from the tariffs (item 6): periods and
sources from the stations' tariffs, stations over the cap from the tariffs, the fee-text parse
only for stations without any tariff."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from sqlalchemy import text

from services.portal.stats import charging_stats
from services.settings import SupervisionSettings
from services.supervision import dashboard as dash
from tests.accounts_helpers import create_operator_user, insert_station
from tests.orders_helpers import push, pushed_order
from tests.unit.test_prices_orders import GUANGDONG

HTML = {"accept": "text/html"}


def csv_rows(client, name: str) -> list[dict[str, str]]:  # noqa: ANN001
    r = client.get(f"/admin/dashboard/csv/{name}.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv"), name
    return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))


def latest(world, *keys: str) -> list[dict]:  # noqa: ANN001
    return [world.orders["revised2" if k == "revised" else k] for k in keys]


def test_charging_per_day_by_operator_district_and_facility(world, regulator, make_client) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    by_operator = [r for r in csv_rows(rc, "charging_by_operator") if r["运营商"] == world.a["name"]]
    expected = {"D-1": ("arith", "revised", "unknown"), "D-2": ("clean", "over", "omitted"), "D-3": ("ac",)}
    assert {r["日期"] for r in by_operator} == {str(world.days[k]) for k in expected}
    for key, orders in expected.items():
        row = next(r for r in by_operator if r["日期"] == str(world.days[key]))
        os = latest(world, *orders)
        energy = sum(Decimal(o["TotalPower"]) for o in os)
        money = sum(Decimal(o["TotalMoney"]) for o in os)
        assert (int(row["充电次数"]), Decimal(row["充电量（度）"]), Decimal(row["金额（元）"])) == (len(os), energy, money)
        assert Decimal(row["平均单价（元/度）"]) == (money / energy).quantize(Decimal("0.0001"))
    # the AC pile of station 2 (D-3) and the district 440403 (斗门区) are in the other breakdowns
    facility = [r for r in csv_rows(rc, "charging_by_facility") if r["日期"] == str(world.days["D-3"])]
    assert any(r["设施类型"] == "交流" and int(r["充电次数"]) >= 1 for r in facility)
    district = [r for r in csv_rows(rc, "charging_by_district") if r["日期"] == str(world.days["D-1"])]
    assert any(r["区"] == "未知" for r in district)  # the order on a connector we do not know
    daily = {r["日期"]: r for r in csv_rows(rc, "charging_daily")}
    assert len(daily) == 30 and int(daily[str(world.days["D-3"])]["充电次数"]) >= 1
    # English headers and labels
    r = rc.get("/admin/dashboard/csv/charging_by_facility.csv", params={"lang": "en"})
    head = next(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert head == ["day", "facility type", "sessions", "energy (kWh)", "money (yuan)", "average price (yuan/kWh)"]


def test_dashboard_price_execution_table(world, regulator, make_client) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    page = rc.get("/admin/dashboard", headers=HTML)
    assert page.status_code == 200 and 'id="t-price_execution"' in page.text and 'id="c-charging"' in page.text
    row = next(r for r in csv_rows(rc, "price_execution") if r["运营商"] == world.a["name"])
    assert (row["订单数"], row["按公示电价结算 %"], row["超收订单"], row["存疑订单"], row["对账争议"], row["未对账天数"],
            row["超限价接口"]) == ("7", "83.3", "1", "3", "2", "3", "1")
    assert Decimal(row["超收金额（元）"]) == Decimal("0.2") * Decimal(world.orders["over"]["TotalPower"])


def test_dashboard_prices_from_tariffs_with_the_fee_text_fallback(world, database, engine) -> None:  # noqa: ANN001
    # an operator with one station without any tariff, whose fee texts say 1.50 + 1.20 all day
    c = create_operator_user(engine, name=f"文本收费运营商{world.tag}")
    pk = insert_station(engine, c["operator_id"], f"文本收费站{world.tag}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET electricity_fee = '00:00-08:00 0.40元/度;08:00-24:00 1.50元/度', "
                          "service_fee = '1.20元/度' WHERE id = :pk"), {"pk": pk})
        names = dict(conn.execute(text("SELECT operator_id, name FROM operators")).all())
    with database.session() as s:
        d = dash.dashboard(s, SupervisionSettings(fee_cap_yuan_per_kwh=2.0))
    t = d["tables"]
    ops = {r["label"]: r for r in t["prices_by_operator"].rows}
    a = ops[names[world.a["operator_id"]]]
    # station 1: Guangdong (valley 0.30 + 0.60), station 2: 0.50 + 0.80 all the valley; both from policies
    assert (a["stations"], a["policy"], a["text"], a["unparsed"]) == (2, 2, 0, 0)
    assert a["e_valley"] == pytest.approx(0.4) and a["s_valley"] == pytest.approx(0.7)
    # peak 10–12 and 14–19: station 1 at 1.10 all of it, station 2 at 1.50 for 2 of the 7 hours and 0.50 for 5
    assert a["e_peak"] == pytest.approx((1.1 + (2 * 1.5 + 5 * 0.5) / 7) / 2, abs=1e-4)
    fallback = ops[names[c["operator_id"]]]
    assert (fallback["stations"], fallback["policy"], fallback["text"]) == (1, 0, 1)
    assert fallback["e_valley"] == pytest.approx(0.4) and fallback["s_peak"] == pytest.approx(1.2)

    over = {r["name"]: r for r in t["over_cap"].rows}
    tariffed = over[f"甲二号站{world.tag}"]
    assert (tariffed["max_total"], tariffed["connectors"], tariffed["source"]) == (2.3, 1, "policy")
    assert f"甲一号站{world.tag}" not in over  # Guangdong's 1.70 is within 2.00
    text_row = over[f"文本收费站{world.tag}"]
    assert (text_row["max_total"], text_row["connectors"], text_row["source"]) == (2.7, None, "text")
    assert d["cap"].yuan_per_kwh == Decimal("2.0000")


def test_home_page_charging_statistics_cached(world, client, engine) -> None:  # noqa: ANN001
    page = client.get("/", headers=HTML).text
    with engine.connect() as conn:
        stats = charging_stats(conn)
        assert charging_stats(conn) is stats  # cached
    assert stats["total"]["sessions"] >= 8
    assert re.search(rf'id="charging-sessions">{stats["total"]["sessions"]:,}<', page)
    assert f'{stats["total"]["avg_price"]:.2f}' in re.search(r'id="charging-price">([^<]*)<', page).group(1)
    ops = {r["name"]: r for r in stats["operator"]}
    a = ops[world.a["name"]]
    assert a["sessions"] == 7 and a["avg_price"] == pytest.approx(
        float(sum(Decimal(o["TotalMoney"]) for o in latest(world, "clean", "over", "omitted", "arith", "revised",
                                                                  "unknown", "ac")) /
              sum(Decimal(o["TotalPower"]) for o in latest(world, "clean", "over", "omitted", "arith", "revised",
                                                           "unknown", "ac"))), abs=1e-4)
    assert 'id="chart-charging"' in page and 'id="charging-data"' in page
    assert {s["name"] for s in stats["district_series"]} >= {"香洲区", "斗门区"}
    assert len(stats["days"]) == 30 and all(len(s["energy"]) == 30 for s in stats["district_series"])
    # a new order is counted at once (the cache is keyed on the newest order)
    other = create_operator_user(engine)
    pk = insert_station(engine, other["operator_id"], "缓存测试站", piles=1)
    with engine.begin() as conn:
        connector = conn.execute(text("SELECT connector_id FROM connectors WHERE station_pk = :s"), {"s": pk}).scalar_one()
        push(conn, other["operator_id"], pushed_order(GUANGDONG, connector, world.days["D-1"], 6, 30, 60))
    with engine.connect() as conn:
        again = charging_stats(conn)
    assert again is not stats and again["total"]["sessions"] == stats["total"]["sessions"] + 1
    page = client.get("/", params={"lang": "en"}, headers=HTML).text
    assert "Charging, last 30 days" in page and "Average price paid" in page

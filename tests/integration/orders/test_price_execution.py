"""The regulators' price execution (issue 15, item 6) on the real pages and the real workbook:
per operator and station figures, shares, overcharge sums, reconciliation disputes, unreconciled
days, tariffs over the cap, the drill-down to one order, and the city cap with its history."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import text

from tests.orders_helpers import World

HTML = {"accept": "text/html"}
_CELL = re.compile(r'<td class="num[^"]*">\s*([^<]*?)\s*</td>')


def cells(page: str, attr: str, value: str) -> list[str]:
    """The figure cells of the table row ``<tr data-{attr}="{value}">``."""
    m = re.search(rf'<tr data-{attr}="{re.escape(value)}">(.*?)</tr>', page, re.S)
    assert m, f"no row {attr}={value}"
    return _CELL.findall(m.group(1))


def latest(world: World, *keys: str) -> list[dict]:
    return [world.orders["revised2" if k == "revised" else k] for k in keys]


def total(orders: list[dict], field: str) -> Decimal:
    return sum((Decimal(o[field]) for o in orders), Decimal(0))


A_KEYS = ("clean", "over", "omitted", "arith", "revised", "unknown", "ac")


def test_overview_per_operator(world, regulator, make_client) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    r = rc.get("/admin/prices", headers=HTML)
    assert r.status_code == 200
    a = cells(r.text, "operator", world.a["operator_id"])
    orders = latest(world, *A_KEYS)
    energy, money = total(orders, "TotalPower"), total(orders, "TotalMoney")
    over_yuan = (Decimal("0.2") * Decimal(world.orders["over"]["TotalPower"])).quantize(Decimal("0.01"))
    # orders, energy, money, average price, share at the tariff (5 of the 6 whose prices could be checked: the order
    # on an unknown connector cannot be), overcharged, overcharge, disputed (over, arith, unknown), revised,
    # reconciliation disputes (one reason 1, one reason 2), unreconciled days (D-1, D-2 lacks one, D-3), over-cap connectors
    assert a == ["7", f"{energy:,.2f}", f"{money:,.2f}", f"{money / energy:.4f}", "83.3%", "1", f"{over_yuan:,.2f}",
                 "3", "1", "2", "5", "3", "1", "1"]
    b = cells(r.text, "operator", world.b["operator_id"])
    assert b[0] == "1" and b[4] == "100.0%" and b[5] == "0" and b[-2] == "0"  # B: no cap violation either
    assert world.orders["over"]["StartChargeSeq"] not in r.text  # orders only in the drill-down
    assert 'id="over-cap"' in r.text and 'id="unreconciled"' in r.text  # (A's rows: see the drill-down)


def test_window_filter_and_bad_dates(world, regulator, make_client) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    d2, d3 = world.days["D-2"], world.days["D-3"]
    r = rc.get("/admin/prices", params={"from": str(d3), "to": str(d2)}, headers=HTML)
    a = cells(r.text, "operator", world.a["operator_id"])
    orders = latest(world, "clean", "over", "omitted", "ac")
    assert a[0] == "4" and a[1] == f"{total(orders, 'TotalPower'):,.2f}"
    assert a[4] == "75.0%"  # over is off the tariff: 3 of 4
    assert a[11] == "2"  # unreconciled days D-2 (omitted) and D-3
    for params in ({"from": "2026-13-45"}, {"to": "yesterday"}, {"from": str(d2), "to": str(d3)},
                   {"from": "2024-01-01", "to": "2026-01-01"}):
        r = rc.get("/admin/prices", params=params, headers=HTML)
        assert r.status_code == 400, params
        assert "from" in r.text or "to" in r.text


def test_excel_export(world, regulator, make_client) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    r = rc.get("/admin/prices/export.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in r.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["概要", "运营商", "充电站", "超限价电价", "存疑订单", "未对账日"]

    def rows(sheet: str) -> list[dict]:
        ws = wb[sheet]
        head = [c.value for c in ws[1]]
        return [dict(zip(head, (c.value for c in row), strict=True)) for row in ws.iter_rows(min_row=2)]

    ops = {x["运营商编号"]: x for x in rows("运营商")}
    a = ops[world.a["operator_id"]]
    orders = latest(world, *A_KEYS)
    assert a["订单数"] == 7 and a["充电量（度）"] == pytest.approx(float(total(orders, "TotalPower")))
    assert a["金额（元）"] == pytest.approx(float(total(orders, "TotalMoney")))
    assert a["按公示电价结算 %"] == pytest.approx(83.3) and a["超收订单"] == 1
    assert a["超收金额（元）"] == pytest.approx(0.2 * float(world.orders["over"]["TotalPower"]))
    assert a["存疑订单"] == 3 and a["对账争议"] == 2 and a["争议：本平台无此订单"] == 1 and a["争议：金额不符"] == 1
    assert a["未对账天数"] == 3 and a["超限价接口"] == 1 and a["超限价站点"] == 1 and a["电价违规（接口）"] == 1
    assert isinstance(a["金额（元）"], float)  # numbers, not text
    assert rows("运营商")[-1]["运营商"] == "合计"

    stations = [x for x in rows("充电站") if x["运营商编号"] == world.a["operator_id"]]
    assert {x["充电站"]: x["订单数"] for x in stations} == {f"甲一号站{world.tag}": 5, "（未知接口）": 1,
                                                           f"甲二号站{world.tag}": 1}
    caps = [x for x in rows("超限价电价") if x["运营商编号"] == world.a["operator_id"]]
    assert len(caps) == 1 and caps[0]["接口数"] == 1 and caps[0]["来源"] == "业务策略"
    assert caps[0]["最高电费+服务费（元/度）"] == pytest.approx(2.3) and caps[0]["超出限价（电费+服务费）"] == pytest.approx(0.3)

    disputed = {x["充电订单号"]: x for x in rows("存疑订单") if x["运营商编号"] == world.a["operator_id"]}
    assert set(disputed) == {world.orders[k]["StartChargeSeq"] for k in ("over", "arith", "unknown")}
    assert "price/over_tariff" in disputed[world.orders["over"]["StartChargeSeq"]]["检查结果"]
    assert disputed[world.orders["over"]["StartChargeSeq"]]["对账"] == "对账争议"
    assert "arithmetic/total_money" in disputed[world.orders["arith"]["StartChargeSeq"]]["检查结果"]
    assert "reference/connector" in disputed[world.orders["unknown"]["StartChargeSeq"]]["检查结果"]

    days = {x["日期"].date(): x for x in rows("未对账日") if x["运营商编号"] == world.a["operator_id"]}
    assert set(days) == set(world.days.values())
    d2 = days[world.days["D-2"]]
    assert (d2["未对账订单"], d2["清单遗漏"], d2["当日有对账清单"]) == (1, 1, "是")
    assert days[world.days["D-1"]]["当日有对账清单"] == "否" and days[world.days["D-1"]]["尚无对账清单"] == 3

    # one operator only, in English
    r = rc.get("/admin/prices/export.xlsx", params={"operator": world.b["operator_id"], "lang": "en"})
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[0] == "summary"
    ws = wb["operators"]
    assert [c.value for c in ws[1]][:3] == ["operator", "OperatorID", "orders"]
    assert [row[1].value for row in ws.iter_rows(min_row=2)] == [world.b["operator_id"], None]  # B, then the total
    assert rc.get("/admin/prices/export.xlsx", params={"operator": "NOSUCHOP"}).status_code == 404


def test_drill_down_operator_stations_orders_order(world, regulator, make_client) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    op = world.a["operator_id"]
    r = rc.get(f"/admin/prices/operators/{op}", headers=HTML)
    assert r.status_code == 200
    with_station = {m: cells(r.text, "station", m) for m in re.findall(r'<tr data-station="([^"]*)">', r.text)}
    assert len(with_station) == 3 and with_station[""][0] == "1"  # the unknown connector's order
    s1 = [v for k, v in with_station.items() if k and v[0] == "5"]
    assert s1 and s1[0][5] == "1" and s1[0][7] == "2" and s1[0][9] == "1"  # overcharged, disputed, disputed by the list
    assert f"/admin/prices/operators/{op}/checks/{world.check_id}" in r.text
    # the tariff over the cap (station 2's peak 2.30 > 2.00), the days and their lists
    over = re.search(r'<table class="list figures" id="over-cap">(.*?)</table>', r.text, re.S).group(1)
    assert "甲二号站" in over and "2.3000" in over and "甲一号站" not in over
    days = re.search(r'id="checks">(.*?)</table>', r.text, re.S).group(1)
    assert set(re.findall(r'<tr data-day="([^"]+)">', days)) == {str(d) for d in world.days.values()}
    disputed = re.search(r'id="disputed">(.*?)</table>', r.text, re.S).group(1)
    assert set(re.findall(r'<tr data-seq="([^"]+)">', disputed)) == {
        world.orders[k]["StartChargeSeq"] for k in ("over", "arith", "unknown")}
    assert "price/over_tariff" in disputed and "arithmetic/total_money" in disputed and "reference/connector" in disputed
    assert "price/no_tariff" not in disputed  # errors only: the notes are on the order's page
    # → its orders of station 1, disputed
    r = rc.get(f"/admin/prices/operators/{op}/orders", params={"station": world.station1, "status": "disputed"},
               headers=HTML)
    seqs = re.findall(r'<tr data-seq="([^"]+)">', r.text)
    assert set(seqs) == {world.orders["over"]["StartChargeSeq"], world.orders["arith"]["StartChargeSeq"]}
    # → one order: its details, findings and both versions
    r = rc.get(f"/admin/prices/orders/{world.ids['revised']}", headers=HTML)
    assert r.status_code == 200
    assert "revision/revised" in r.text and ">v1" in r.text and ">v2" in r.text
    assert world.a["name"] in r.text
    r = rc.get(f"/admin/prices/orders/{world.ids['b']}", headers=HTML)  # regulators see every operator
    assert r.status_code == 200 and world.b["name"] in r.text
    # → one reconciliation
    r = rc.get(f"/admin/prices/operators/{op}/checks/{world.check_id}", headers=HTML)
    assert 'data-reason="1"' in r.text and 'data-reason="2"' in r.text
    assert world.orders["omitted"]["StartChargeSeq"] in r.text and world.expected["ghost"] in r.text
    assert rc.get(f"/admin/prices/operators/{world.b['operator_id']}/checks/{world.check_id}", headers=HTML).status_code == 404
    assert rc.get("/admin/prices/operators/NOSUCHOP", headers=HTML).status_code == 404
    assert rc.get("/admin/prices/orders/999999999", headers=HTML).status_code == 404


def test_operators_cannot_reach_the_regulator_pages(world, make_client) -> None:  # noqa: ANN001
    oc = make_client(world.a)
    for url in ("/admin/prices", "/admin/prices/export.xlsx", f"/admin/prices/operators/{world.a['operator_id']}",
                "/admin/price-cap"):
        assert oc.get(url, headers=HTML, follow_redirects=False).status_code == 403, url


@pytest.fixture()
def caps_restored(engine):  # noqa: ANN001, ANN201
    """The caps a test sets are removed after it (other tests read the cap in force)."""
    with engine.connect() as conn:
        before = conn.execute(text("SELECT coalesce(max(id), 0) FROM price_caps")).scalar_one()
    yield
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM price_caps WHERE id > :id"), {"id": before})


def test_city_cap_history_audit_and_violations(world, regulator, make_client, engine, caps_restored) -> None:  # noqa: ANN001
    rc = make_client(regulator)
    page = rc.get("/admin/price-cap", headers=HTML)
    assert page.status_code == 200 and 'id="cap-form"' in page.text
    for bad in ({"yuan_per_kwh": "0", "basis": "total"}, {"yuan_per_kwh": "abc", "basis": "total"},
                {"yuan_per_kwh": "1.23456", "basis": "total"}, {"yuan_per_kwh": "25", "basis": "total"},
                {"yuan_per_kwh": "1.5", "basis": "both"}, {"yuan_per_kwh": "1.5", "basis": "total", "valid_from": "2026-02-30"},
                {"yuan_per_kwh": "1.5", "basis": "total", "note": "x" * 501}):
        r = rc.post("/admin/price-cap", data={**bad, "_csrf": rc.csrf}, headers=HTML, follow_redirects=False)
        assert r.status_code == 400, bad
        assert 'class="flash-error"' in r.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM price_caps WHERE note = 'x'")).scalar_one() == 0

    r = rc.post("/admin/price-cap", data={"yuan_per_kwh": "1.5", "basis": "total", "note": "发改价格〔2026〕1号",
                                          "_csrf": rc.csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/price-cap?ok=1"
    r = rc.post("/admin/price-cap", data={"yuan_per_kwh": "0.7", "basis": "service", "valid_from": "2099-01-01",
                                          "note": "明年起限服务费", "_csrf": rc.csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    page = rc.get("/admin/price-cap", headers=HTML).text
    assert re.search(r'id="cap-now">1.5000<', page)
    history = re.search(r'id="cap-history">(.*?)</table>', page, re.S).group(1)
    assert re.search(r'data-state="scheduled">.*?0.7000.*?明年起限服务费.*?' + regulator["account_name"], history, re.S)
    assert re.search(r'data-state="in_force">.*?1.5000.*?发改价格〔2026〕1号', history, re.S)
    with engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, details FROM audit_log WHERE action = 'price_cap.set' "
                                  "ORDER BY id DESC LIMIT 2")).all()
    assert [a.actor for a in audit] == [regulator["account_name"]] * 2
    assert audit[0].details["basis"] == "service" and audit[0].details["valid_from"].startswith("2099-01-01T00:00:00+08")
    assert audit[1].details == {"yuan_per_kwh": "1.5", "basis": "total", "note": "发改价格〔2026〕1号", "valid_from": None}

    # under 1.50 every Guangdong peak (1.70) is over the cap too: A's three connectors, B's one
    r = rc.get("/admin/prices", headers=HTML)
    assert cells(r.text, "operator", world.a["operator_id"])[-2] == "3"
    assert cells(r.text, "operator", world.b["operator_id"])[-2] == "1"
    assert re.search(r'id="cap-value">1.5000<', r.text)

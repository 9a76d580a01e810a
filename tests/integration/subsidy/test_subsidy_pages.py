"""The subsidy pages over HTTP: B10 rules, B11 applications (htmx estimate, batches, export),
B12 accounting, the regulators' side, guards and operator isolation."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.subsidy.export import CURRENCY_FORMAT
from tests.accounts_helpers import csrf_from, login
from tests.integration.subsidy.conftest import TODAY, Factory, FakeEnergy, Op, OrderBook, Scene

HTML = {"accept": "text/html"}
D = Decimal


@pytest.fixture()
def energy(app):  # noqa: ANN001, ANN201
    fake = FakeEnergy()
    app.state["subsidy_energy"] = fake
    yield fake
    app.state["subsidy_energy"] = None


def as_operator(client, op: Op) -> str:  # noqa: ANN001
    login(client, op.user["account_name"])
    return csrf_from(client, "/backoffice/subsidy/rules")


def as_regulator(client, factory: Factory) -> str:  # noqa: ANN001
    reg = factory.regulator_user()
    login(client, reg["account_name"])
    return csrf_from(client, "/admin/subsidy/")


def post(client, path: str, token: str, data: dict | None = None, **kw):  # noqa: ANN001, ANN201
    return client.post(path, data={"_csrf": token, **(data or {})}, headers=HTML, follow_redirects=False, **kw)


def new_app_id(engine: Engine, op: Op) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT max(id) FROM subsidy_applications WHERE operator_pk = :op"),
                            {"op": op.pk}).scalar_one()


def state_of(engine: Engine, app_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM subsidy_applications WHERE id = :i"), {"i": app_id}).scalar()


def apply_form(rule: int, station: int, facilities: list[int], action: str = "submit") -> dict:
    return {"rule": str(rule), "station": str(station), "facilities": [str(f) for f in facilities],
            "contact_name": "王五", "contact_phone": "13800138000", "action": action}


# --- guards -------------------------------------------------------------------------------------
def test_guards(client, factory: Factory) -> None:  # noqa: ANN001
    r = client.get("/backoffice/subsidy/rules", follow_redirects=False)
    assert r.status_code in (302, 303, 401)
    op = factory.operator()
    as_operator(client, op)
    assert client.get("/admin/subsidy/", headers=HTML).status_code == 403
    client.cookies.clear()
    as_regulator(client, factory)
    assert client.get("/backoffice/subsidy/applications", headers=HTML).status_code == 403


# --- B10 --------------------------------------------------------------------------------------
def test_rules_page_offers_start_only_when_eligible_and_says_why_not(client, factory: Factory) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op)
    factory.facility(op, st, power="120")
    open_rule = factory.rule(name="开放规则X")
    closed = factory.rule(name="截止规则X", apply_start=TODAY - timedelta(days=30), apply_end=TODAY - timedelta(days=1))
    big = factory.rule(name="大功率规则X", min_operator_power_kw=D("1000"))
    status_rule = factory.rule(name="状态规则X", required_station_status=6)
    draft = factory.rule(name="草稿规则X", published_at=None)
    as_operator(client, op)
    page = client.get("/backoffice/subsidy/rules", headers=HTML)
    assert page.status_code == 200
    body = page.text

    def row(rule_id: int) -> str:
        m = re.search(rf'<tr id="rule-{rule_id}">(.*?)</tr>', body, re.S)
        assert m, f"rule {rule_id} not listed"
        return m.group(1)

    assert f"/backoffice/subsidy/applications/new?rule={open_rule}" in row(open_rule)
    assert "申请时间已结束" in row(closed) and "applications/new" not in row(closed)
    assert "低于规则要求的 1000.0 kW" in row(big) and "applications/new" not in row(big)
    assert "没有满足规则充电站条件的站点" in row(status_rule)
    assert "草稿规则X" not in body
    assert client.get(f"/backoffice/subsidy/rules/{draft}", headers=HTML).status_code == 404
    detail = client.get(f"/backoffice/subsidy/rules/{status_rule}", headers=HTML).text
    assert "充电站状态为“正常使用”，规则要求“维护中”" in detail


# --- B11 --------------------------------------------------------------------------------------
def test_apply_with_live_estimate_review_account_and_export(client, factory: Factory, engine: Engine,  # noqa: ANN001
                                                            energy) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op, name="金湾站")
    f1 = factory.facility(op, st, power="120", equipment_type=1)
    f2 = factory.facility(op, st, power="7", equipment_type=2)
    bad = factory.facility(op, st, power="60", state="ic_review")
    rule = factory.rule(cap_station=D("20000"))
    token = as_operator(client, op)

    form = client.get(f"/backoffice/subsidy/applications/new?rule={rule}", headers=HTML)
    assert form.status_code == 200 and 'hx-post="/backoffice/subsidy/applications/estimate"' in form.text
    frag = client.get(f"/backoffice/subsidy/applications/facilities?rule={rule}&station={st}", headers=HTML).text
    assert f'value="{f1}"' in frag and re.search(rf'value="{bad}"[^>]*disabled', frag, re.S)
    assert "充电设施尚未完成互联互通" in frag
    est = post(client, "/backoffice/subsidy/applications/estimate", token, apply_form(rule, st, [f1, f2]))
    assert est.status_code == 200
    assert re.search(r'id="expected-amount">24,700.00<', est.text)  # 120*200 + 7*100
    assert "单站上限" in est.text and "20,000.00" in est.text

    r = post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st, [f1, f2, bad]))
    assert r.status_code == 400 and "尚未完成互联互通" in r.text
    r = post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st, [f1, f2]))
    assert r.status_code in (302, 303), r.text[:500]
    app_id = new_app_id(engine, op)
    assert state_of(engine, app_id) == "submitted"
    listing = client.get(f"/backoffice/subsidy/applications?rule={rule}", headers=HTML).text
    assert f'id="app-{app_id}"' in listing and re.search(rf'data-rule="{rule}">.*?\(1/0\)', listing, re.S)

    client.cookies.clear()
    rtoken = as_regulator(client, factory)
    review_page = client.get(f"/admin/subsidy/applications/{app_id}", headers=HTML).text
    assert review_page.count("仍满足条件") == 2 and "审核通过" in review_page
    assert post(client, f"/admin/subsidy/applications/{app_id}/return", rtoken, {"reason": ""}).status_code == 400
    assert post(client, f"/admin/subsidy/applications/{app_id}/approve", rtoken).status_code in (302, 303)
    assert post(client, f"/admin/subsidy/applications/{app_id}/approve", rtoken).status_code == 409
    assert post(client, f"/admin/subsidy/rules/{rule}/accounting", rtoken).status_code in (302, 303)
    page = client.get(f"/admin/subsidy/rules/{rule}", headers=HTML).text
    assert re.search(r'id="accounted">20,000.00<', page)

    client.cookies.clear()
    as_operator(client, op)
    b12 = client.get(f"/backoffice/subsidy/accounting?rule={rule}", headers=HTML).text
    assert re.search(r'id="accounted-total">20,000.00<', b12) and "单站上限" in b12
    x = client.get(f"/backoffice/subsidy/accounting/export.xlsx?rule={rule}")
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    ws = load_workbook(BytesIO(x.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 3 and rows[1][0] == app_id and rows[1][4] == 24700 and rows[1][5] == 20000
    assert rows[2][0] == "合计" and rows[2][5] == 20000
    assert ws.cell(row=2, column=6).data_type == "n" and ws.cell(row=2, column=6).number_format == CURRENCY_FORMAT
    notices = client.get("/backoffice/messages", headers=HTML)
    if notices.status_code == 200:
        assert "补贴申请审核通过" in notices.text


def test_per_kwh_estimate_counts_the_reconciled_orders_and_cross_checks_the_stats(client, factory: Factory,  # noqa: ANN001
                                                                                  engine: Engine, energy) -> None:  # noqa: ANN001
    # Issue 15, item 7: the amount is no longer the statistics' kWh × rate but the reconciled orders';
    # the statistics (10000.5 kWh here) are shown beside them and flagged.
    op = factory.operator()
    st = factory.station(op, feed_interconnected=True)
    f = factory.facility(op, st)
    (c,) = factory.feed_pile(op, st, f)
    book = OrderBook(engine, op)
    day = TODAY - timedelta(days=2)
    agreed = book.push(c, day, hour=8, minutes=95)  # 76.00 kWh
    book.reconcile(day, [book.listed(agreed)])
    energy.per_equipment = {factory.equipment_id_of(f): D("10000.5")}
    rule = factory.rule(basis="per_kwh", rate_dc=None, rate_ac=None, rate_acdc=None, rate_wireless=None,
                        rate_kwh=D("0.15"))
    token = as_operator(client, op)
    est = post(client, "/backoffice/subsidy/applications/estimate", token, apply_form(rule, st, [f]))
    assert re.search(r'id="expected-amount">11.40<', est.text)  # 76.00 × 0.15
    assert re.search(r'id="counted-orders">1<', est.text) and re.search(r'id="counted-kwh">76<', est.text)
    assert re.search(r'id="stats-kwh">10000.5 kWh<', est.text) and 'data-flag="stats_difference"' in est.text
    assert energy.calls and energy.calls[0][1] == factory.station_id_of(st)


def test_the_application_page_shows_the_orders_exclusions_and_the_5_percent_flag(  # noqa: ANN001
        client, factory: Factory, engine: Engine, energy, scene: Scene) -> None:
    o = scene.orders
    rule = factory.rule(basis="per_kwh", rate_dc=None, rate_ac=None, rate_acdc=None, rate_wireless=None,
                        rate_kwh=D("0.1235"), subsidy_start=TODAY - timedelta(days=20))
    token = as_operator(client, scene.op)
    assert post(client, "/backoffice/subsidy/applications", token,
                apply_form(rule, scene.st, [scene.f1, scene.f2])).status_code == 303
    app_id = new_app_id(engine, scene.op)
    # within 5 %: the statistics say 103 kWh for the claimed piles (the orders count 100)
    energy.per_equipment = {scene.eq1: D("63"), scene.eq2: D("40")}
    page = client.get(f"/backoffice/subsidy/applications/{app_id}", headers=HTML).text
    assert re.search(r'id="counted-orders">2<', page) and re.search(r'id="counted-kwh">100<', page)
    assert re.search(r'id="excluded-orders">6<', page)
    for reason in ("disputed_on_receipt", "reconcile_disputed", "unlisted", "revised_unreconciled", "unreconciled"):
        assert f'data-reason="{reason}"' in page, reason
    assert "接收时存疑" in page and "运营商对账清单未列出" in page and "订单已修订，最新版本尚未对账" in page
    assert 'data-code="over_tariff"' in page and "金额不符 ×1" in page and "电量不符 ×1" in page
    assert 'id="other-orders"' in page
    assert re.search(r'id="stats-kwh">103 kWh<', page) and 'data-flagged="false"' in page
    assert "data-flag=" not in page
    assert "<strong>12.35</strong>" in page  # 100 kWh × 0.1235
    # the reviewer sees the same, and a difference over 5 % with both figures
    client.cookies.clear()
    as_regulator(client, factory)
    energy.per_equipment = {scene.eq1: D("70"), scene.eq2: D("40")}  # 110 kWh: orders 9.09 % under
    page = client.get(f"/admin/subsidy/applications/{app_id}", headers=HTML).text
    assert 'data-flagged="true"' in page and 'data-flag="stats_difference"' in page
    assert re.search(r'id="check-orders-kwh">100 kWh<', page) and re.search(r'id="stats-kwh">110 kWh<', page)
    assert "-9.09%" in page and "超过 5%" in page
    assert re.search(r'id="counted-kwh">100<', page) and 'data-reason="unreconciled"' in page
    energy.per_equipment = {scene.eq1: D("50"), scene.eq2: D("40")}  # 90 kWh: orders 11.11 % over
    page = client.get(f"/admin/subsidy/applications/{app_id}?lang=en", headers=HTML).text
    assert 'data-flagged="true"' in page and "+11.11%" in page and "more than 5 % apart" in page
    # an order reconciled after the application was saved: the reviewer is told, the amount stays
    scene.book.reconcile(TODAY - timedelta(days=1), [scene.book.listed(o["late"])])
    page = client.get(f"/admin/subsidy/applications/{app_id}", headers=HTML).text
    assert 'data-flag="changed"' in page and re.search(r'id="counted-orders">3<', page)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT expected_amount FROM subsidy_applications WHERE id = :i"),
                            {"i": app_id}).scalar_one() == D("12.35")


def test_batch_operations_with_mixed_states(client, factory: Factory, engine: Engine) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op)
    rule = factory.rule()
    token = as_operator(client, op)
    ids = []
    for action in ("save", "save", "submit"):
        f = factory.facility(op, st)
        assert post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st, [f], action)).status_code == 303
        ids.append(new_app_id(engine, op))
    p1, p2, sub = ids
    r = post(client, "/backoffice/subsidy/applications/batch", token,
             {"action": "submit", "ids": [str(i) for i in ids], "rule": str(rule)})
    assert r.status_code == 409 and f"#{sub}" in r.text and "未提交任何申请" in r.text
    assert [state_of(engine, i) for i in ids] == ["pending", "pending", "submitted"]
    r = post(client, "/backoffice/subsidy/applications/batch", token,
             {"action": "delete", "ids": [str(i) for i in ids], "rule": str(rule)})
    assert r.status_code == 409 and f"#{sub}" in r.text and "未删除任何申请" in r.text
    assert [state_of(engine, i) for i in ids] == ["pending", "pending", "submitted"]
    r = post(client, "/backoffice/subsidy/applications/batch", token, {"action": "submit", "ids": [str(p1)], "rule": str(rule)})
    assert r.status_code == 303 and state_of(engine, p1) == "submitted"
    r = post(client, "/backoffice/subsidy/applications/batch", token, {"action": "delete", "ids": [str(p2)], "rule": str(rule)})
    assert r.status_code == 303 and state_of(engine, p2) is None
    # single actions follow the table too
    assert post(client, f"/backoffice/subsidy/applications/{sub}/delete", token).status_code == 409
    assert post(client, f"/backoffice/subsidy/applications/{sub}/submit", token).status_code == 409


def test_export_of_the_current_search(client, factory: Factory, engine: Engine) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op, name="导出站")
    rule = factory.rule()
    token = as_operator(client, op)
    for action, power in (("save", "60"), ("submit", "30.5"), ("submit", "7")):
        f = factory.facility(op, st, power=power)
        post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st, [f], action))
    x = client.get(f"/backoffice/subsidy/applications/export.xlsx?rule={rule}&state=submitted")
    ws = load_workbook(BytesIO(x.content)).active
    rows = list(ws.iter_rows(values_only=True))
    assert len(rows) == 1 + 2 + 1
    assert {r[6] for r in rows[1:3]} == {"审核中"}
    assert sorted(r[7] for r in rows[1:3]) == [1400, 6100]
    assert rows[-1][0] == "合计" and rows[-1][7] == 7500 and rows[-1][5] == pytest.approx(37.5)
    for r in ws.iter_rows(min_row=2, max_row=ws.max_row):
        assert r[7].data_type == "n" and r[7].number_format == CURRENCY_FORMAT


def test_edit_when_returned_then_resubmit(client, factory: Factory, engine: Engine) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op)
    f1, f2 = factory.facility(op, st, power="10"), factory.facility(op, st, power="20")
    rule = factory.rule()
    token = as_operator(client, op)
    post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st, [f1]))
    app_id = new_app_id(engine, op)
    assert client.get(f"/backoffice/subsidy/applications/{app_id}/edit", headers=HTML).status_code == 409
    client.cookies.clear()
    rtoken = as_regulator(client, factory)
    assert post(client, f"/admin/subsidy/applications/{app_id}/return", rtoken, {"reason": "请补充设施"}).status_code == 303
    client.cookies.clear()
    token = as_operator(client, op)
    page = client.get(f"/backoffice/subsidy/applications/{app_id}/edit", headers=HTML)
    assert page.status_code == 200 and "请补充设施" in page.text
    r = post(client, f"/backoffice/subsidy/applications/{app_id}/edit", token, apply_form(rule, st, [f1, f2]))
    assert r.status_code == 303 and state_of(engine, app_id) == "submitted"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT expected_amount FROM subsidy_applications WHERE id = :i"),
                            {"i": app_id}).scalar_one() == D("6000.00")
    detail = client.get(f"/backoffice/subsidy/applications/{app_id}", headers=HTML).text
    assert "请补充设施" in detail and "退回" in detail


def test_operators_never_see_another_operators_applications(client, factory: Factory, engine: Engine) -> None:  # noqa: ANN001
    a, b = factory.operator(), factory.operator()
    st_b = factory.station(b, name="别人的站")
    rule = factory.rule()
    token = as_operator(client, b)
    post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st_b, [factory.facility(b, st_b)], "save"))
    theirs = new_app_id(engine, b)
    client.cookies.clear()
    token = as_operator(client, a)
    for path in (f"/backoffice/subsidy/applications/{theirs}", f"/backoffice/subsidy/applications/{theirs}/edit",
                 f"/backoffice/subsidy/applications/facilities?application={theirs}"):
        assert client.get(path, headers=HTML).status_code == 404, path
    for path in (f"/backoffice/subsidy/applications/{theirs}/submit", f"/backoffice/subsidy/applications/{theirs}/delete"):
        assert post(client, path, token).status_code == 404, path
    assert post(client, "/backoffice/subsidy/applications/batch", token,
                {"action": "delete", "ids": [str(theirs)]}).status_code == 404
    assert post(client, f"/backoffice/subsidy/applications/{theirs}/edit", token,
                apply_form(rule, st_b, [])).status_code == 404
    # using their station in a new application is refused as unknown
    assert post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st_b, [], "save")).status_code == 404
    listing = client.get(f"/backoffice/subsidy/applications?rule={rule}", headers=HTML).text
    assert "别人的站" not in listing
    x = client.get(f"/backoffice/subsidy/applications/export.xlsx?rule={rule}")
    assert len(list(load_workbook(BytesIO(x.content)).active.iter_rows())) == 1
    assert state_of(engine, theirs) == "pending"


# --- regulators' rules -------------------------------------------------------------------------
RULE_FORM = {"name": "新规则", "description": "说明", "basis": "per_kw", "rate_dc": "200", "budget": "100000",
             "required_interconnection": "none", "min_operator_power_kw": "0"}


def test_regulator_creates_edits_and_publishes_rules(client, factory: Factory, engine: Engine) -> None:  # noqa: ANN001
    token = as_regulator(client, factory)
    bad = post(client, "/admin/subsidy/rules", token, {**RULE_FORM, "budget": "abc", "subsidy_start": "2026-01-01"})
    assert bad.status_code == 400 and "不是数字" in bad.text
    dates = {"subsidy_start": str(TODAY - timedelta(days=100)), "subsidy_end": str(TODAY),
             "apply_start": str(TODAY + timedelta(days=1)), "apply_end": str(TODAY + timedelta(days=30))}
    r = post(client, "/admin/subsidy/rules", token, {**RULE_FORM, **dates})
    assert r.status_code == 303
    rule_id = int(r.headers["location"].split("/")[-1].split("?")[0])
    assert post(client, f"/admin/subsidy/rules/{rule_id}/publish", token).status_code == 303
    assert post(client, f"/admin/subsidy/rules/{rule_id}/publish", token).status_code == 409
    # published but not open yet: still editable
    r = post(client, f"/admin/subsidy/rules/{rule_id}/edit", token, {**RULE_FORM, **dates, "name": "改名"})
    assert r.status_code == 303
    with engine.begin() as conn:
        assert conn.execute(text("SELECT name FROM subsidy_rules WHERE id = :i"), {"i": rule_id}).scalar_one() == "改名"
        conn.execute(text("UPDATE subsidy_rules SET apply_start = :d WHERE id = :i"), {"d": TODAY, "i": rule_id})
    assert client.get(f"/admin/subsidy/rules/{rule_id}/edit", headers=HTML).status_code == 409
    r = post(client, f"/admin/subsidy/rules/{rule_id}/edit", token, {**RULE_FORM, **dates, "name": "再改"})
    assert r.status_code == 409
    assert "改名" in client.get("/admin/subsidy/", headers=HTML).text


def test_demo_rules_are_idempotent(engine: Engine) -> None:
    from sqlalchemy.orm import sessionmaker

    from services.models.subsidy import SubsidyRule
    from services.subsidy.demo import ensure_demo_subsidy
    from services.subsidy.shared import china_today

    with sessionmaker(engine).begin() as s:
        first = ensure_demo_subsidy(s)
    with sessionmaker(engine).begin() as s:
        assert ensure_demo_subsidy(s) == first
        today = china_today()
        open_rule, closed = s.get(SubsidyRule, first["open"]), s.get(SubsidyRule, first["closed"])
        assert open_rule.apply_start <= today <= open_rule.apply_end and open_rule.published_at is not None
        assert closed.apply_end < today and closed.published_at is not None


def test_every_page_renders_in_both_languages(client, factory: Factory, engine: Engine) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op)
    rule = factory.rule(basis="per_kw", cap_station=D("500"))
    token = as_operator(client, op)
    post(client, "/backoffice/subsidy/applications", token, apply_form(rule, st, [factory.facility(op, st)]))
    app_id = new_app_id(engine, op)
    pages = ["/backoffice/subsidy/rules", f"/backoffice/subsidy/rules/{rule}", "/backoffice/subsidy/applications",
             f"/backoffice/subsidy/applications?rule={rule}&state=submitted&q=ST",
             f"/backoffice/subsidy/applications/new?rule={rule}", f"/backoffice/subsidy/applications/{app_id}",
             "/backoffice/subsidy/accounting", f"/backoffice/subsidy/accounting?rule={rule}"]
    for lang in ("zh", "en"):
        for path in pages:
            r = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}", headers=HTML)
            assert r.status_code == 200, (path, lang, r.text[:300])
    en = client.get("/backoffice/subsidy/rules?lang=en", headers=HTML).text
    assert "Start application" in en and "Subsidy period" in en
    client.cookies.clear()
    as_regulator(client, factory)
    admin = ["/admin/subsidy/", "/admin/subsidy/rules/new", f"/admin/subsidy/rules/{rule}",
             f"/admin/subsidy/rules/{rule}?state=submitted", "/admin/subsidy/applications",
             f"/admin/subsidy/applications?state=approved&rule={rule}", f"/admin/subsidy/applications/{app_id}"]
    for lang in ("zh", "en"):
        for path in admin:
            r = client.get(path + ("&" if "?" in path else "?") + f"lang={lang}", headers=HTML)
            assert r.status_code == 200, (path, lang, r.text[:300])

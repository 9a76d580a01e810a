"""The application form in real headless Chromium: choosing a station loads its facilities
(htmx), ticking facilities updates the expected amount (htmx), submitting lands on the list; the
reviewer's page of a per-kWh application shows the orders behind its amount and the statistics'
5 % flag. Screenshots: test-artifacts/subsidy-*.png."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.accounts_helpers import DEFAULT_PASSWORD
from tests.integration.subsidy.conftest import Factory

pytestmark = pytest.mark.browser


def log_in(page, url: str, account: str, lands: str) -> None:  # noqa: ANN001
    page.goto(f"{url}/login")
    page.fill("input[name=login]", account)
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lands)


def test_apply_in_the_browser(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    factory = Factory(engine)
    op = factory.operator()
    st = factory.station(op, name="情侣路充电站")
    factory.station(op, name="建设中站", status=1)
    f1 = factory.facility(op, st, power="120", equipment_type=1)
    f2 = factory.facility(op, st, power="7", equipment_type=2)
    factory.facility(op, st, power="60", state="ic_review")
    rule = factory.rule(name="浏览器测试补贴", required_station_status=50, cap_station=Decimal("20000"))

    ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/login")
    page.fill("input[name=login]", op.user["account_name"])
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/backoffice/**")

    page.goto(f"{server}/backoffice/subsidy/rules")
    page.screenshot(path=str(artifacts / "subsidy-rules.png"), full_page=True)
    page.click(f"#rule-{rule} a:has-text('开始申请')")
    page.wait_for_url("**/applications/new?rule=*")
    page.select_option("#station", str(st))
    page.wait_for_selector(f"#fac-{f1}")
    assert page.is_disabled(f"#facilities input[type=checkbox]:not([value='{f1}']):not([value='{f2}'])")
    page.check(f"#fac-{f1}")
    page.wait_for_function("document.querySelector('#expected-amount') && "
                           "document.querySelector('#expected-amount').textContent.trim() === '24,000.00'")
    page.check(f"#fac-{f2}")
    page.wait_for_function("document.querySelector('#expected-amount').textContent.trim() === '24,700.00'")
    page.screenshot(path=str(artifacts / "subsidy-apply.png"), full_page=True)
    page.click("button[name=action][value=submit]")
    page.wait_for_url("**/backoffice/subsidy/applications?rule=*")
    assert "审核中" in page.inner_text(".rule-apps")
    page.screenshot(path=str(artifacts / "subsidy-applications.png"), full_page=True)
    assert errors == []
    ctx.close()


def test_regulator_reviews_and_accounts_in_the_browser(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    from sqlalchemy.orm import sessionmaker

    from services.subsidy.applications import ApplicationForm, save_application

    factory = Factory(engine)
    op = factory.operator()
    st = factory.station(op, name="横琴充电站")
    rule = factory.rule(name="浏览器核算补贴", cap_station=Decimal("10000"), budget=Decimal("50000"))
    with sessionmaker(engine).begin() as s:
        for power in ("30", "40"):
            f = factory.facility(op, st, power=power)
            save_application(s, op.actor, ApplicationForm.parse({
                "rule": str(rule), "station": str(st), "facilities": [str(f)], "contact_name": "王五",
                "contact_phone": "13800138000"}), submit=True, operator_id=op.operator_id)
    reg = factory.regulator_user()
    ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("dialog", lambda d: d.accept())
    page.goto(f"{server}/login")
    page.fill("input[name=login]", reg["account_name"])
    page.fill("input[name=password]", DEFAULT_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/admin/**")
    page.goto(f"{server}/admin/subsidy/applications?state=submitted&rule={rule}")
    links = page.locator("table a.small-btn")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert len(hrefs) == 2
    page.goto(server + hrefs[0])
    page.screenshot(path=str(artifacts / "subsidy-admin-review.png"), full_page=True)
    page.click("button:has-text('审核通过')")
    page.wait_for_url("**done=approve")
    page.goto(server + hrefs[1])
    page.fill("#reason", "请补充竣工验收材料")
    page.click("button:has-text('退回')")
    page.wait_for_url("**done=return")
    assert "请补充竣工验收材料" in page.inner_text(".bo-page")
    page.goto(f"{server}/admin/subsidy/rules/{rule}")
    page.click("button:has-text('财务核算')")
    page.wait_for_url("**done=accounted")
    assert page.inner_text("#accounted").strip() == "8,000.00"  # newest first: 40 kW * 200, under the station cap
    page.screenshot(path=str(artifacts / "subsidy-admin-rule.png"), full_page=True)
    page.goto(f"{server}/admin/subsidy/")
    page.screenshot(path=str(artifacts / "subsidy-admin-rules.png"), full_page=True)
    page.goto(f"{server}/admin/subsidy/rules/new")
    page.screenshot(path=str(artifacts / "subsidy-admin-rule-form.png"), full_page=True)
    assert errors == []
    ctx.close()


def test_reviewer_sees_the_orders_behind_a_per_kwh_amount_in_the_browser(settings, database, browser, engine,  # noqa: ANN001
                                                                         artifacts) -> None:  # noqa: ANN001
    from datetime import timedelta

    from sqlalchemy.orm import sessionmaker

    from portal_site.app import create_app
    from services.subsidy.applications import ApplicationForm, save_application
    from tests.conftest import serve_app
    from tests.integration.subsidy.conftest import TODAY, FakeEnergy, Scene

    factory = Factory(engine)
    scene = Scene(factory, engine)
    rule = factory.rule(name="浏览器电量补贴", basis="per_kwh", rate_dc=None, rate_ac=None, rate_acdc=None,
                        rate_wireless=None, rate_kwh=Decimal("0.1235"), subsidy_start=TODAY - timedelta(days=20))
    with sessionmaker(engine).begin() as s:
        app_id = save_application(s, scene.op.actor, ApplicationForm.parse({
            "rule": str(rule), "station": str(scene.st), "facilities": [str(scene.f1), str(scene.f2)],
            "contact_name": "王五", "contact_phone": "13800138000"}), submit=True, operator_id=scene.op.operator_id).id
    web = create_app(settings, database=database)
    web.state["subsidy_energy"] = FakeEnergy({scene.eq1: "80", scene.eq2: "40"})  # 120 kWh against 100 from orders
    reg = factory.regulator_user()
    with serve_app(web) as url:
        ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
        page = ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        log_in(page, url, reg["account_name"], "**/admin/**")
        page.goto(f"{url}/admin/subsidy/applications/{app_id}")
        assert page.is_visible("[data-flag=stats_difference]")
        assert page.inner_text("#counted-kwh").strip() == "100"
        assert page.inner_text("#stats-kwh").strip() == "120 kWh"
        assert page.locator("#energy-basis tr[data-reason]").count() == 6  # counted + five reasons
        page.screenshot(path=str(artifacts / "subsidy-admin-review-per-kwh.png"), full_page=True)
        assert errors == []
        ctx.close()

"""B4 in real headless Chromium: the batch check application with one wrongly-stated facility
selected names it and submits nothing; then the valid selection goes through. Also a tour of the
archives pages (operator and regulator). The app runs under uvicorn in a thread.

Screenshots in test-artifacts/: facilities-list.png, facilities-batch-error.png,
facilities-batch-ok.png, archives-*.png.
"""

from __future__ import annotations


import pytest
from sqlalchemy import text

from services.archives import facilities as fac
from services.archives import reports as rep
from services.archives import stations as sta
from services.archives.common import Actor
from tests.accounts_helpers import DEFAULT_PASSWORD, create_operator_user, create_regulator

pytestmark = pytest.mark.browser

REG = Actor(None, "browser-regulator", "regulator", None)
PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture()
def operator(engine, database, settings):  # noqa: ANN001, ANN201
    """An operator with one approved station, a report and four facilities: three pending, one approved."""
    info = create_operator_user(engine)
    actor = Actor(info["user_id"], info["account_name"], "operator", info["operator_pk"])
    with database.session() as s:
        st = sta.create_or_update(s, actor, {
            "station_id": "BRW0001", "name": "浏览器测试充电站", "district_adcode": "440402",
            "address": "广东省珠海市香洲区情侣中路3号", "lng_gcj02": "113.576726", "lat_gcj02": "22.270715",
            "station_type": "1", "station_status": "50", "construction": "9", "service_tel": "0756-2212345",
            "park_nums": "8"}, submit=True)
        sta.transition(s, REG, st.id, "approve")
        r = rep.create(s, actor, {"report_no": "BRW-R1", "lab": "珠海检测中心", "report_date": "2024-01-10",
                                  "equipment_model": "BRW-DC60"}, rep.StoredFile("r.pdf", PDF), settings.app.upload_dir)
        rows = [{"equipment_id": f"BRW-EQ{i}", "equipment_type": "1", "power_kw": "60", "connector_count": "2",
                 "connector_type": "4", "manufacturer_name": "测试电气", "equipment_model": "BRW-DC60",
                 "production_date": "2023-06-01", "report_archive_pk": r.id} for i in range(1, 5)]
        made = fac.create_many(s, actor, st.id, rows)
        approved = made[3]
        fac.transition(s, actor, approved.id, "submit")
        fac.transition(s, REG, approved.id, "approve")
    return info


def _login(page, server: str, account: str, password: str = DEFAULT_PASSWORD) -> None:  # noqa: ANN001
    page.goto(server + "/login")
    page.fill("#login", account)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _states(engine, operator_pk: int) -> dict[str, str]:  # noqa: ANN001
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT equipment_id, state FROM facility_archives WHERE operator_pk = :p"),
                                 {"p": operator_pk}).all())


def test_batch_check_application_with_a_wrongly_stated_row(server, browser, engine, operator, artifacts) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, server, operator["account_name"])
    page.goto(server + "/backoffice/facilities")
    assert page.locator("#batch-submit").is_disabled()  # nothing selected yet
    page.screenshot(path=str(artifacts / "facilities-list.png"), full_page=True)

    # select two pending facilities and the archive-approved one
    for eid in ("BRW-EQ1", "BRW-EQ2", "BRW-EQ4"):
        page.check(f'input[name=ids][aria-label="{eid}"]')
    assert page.locator("#batch-submit").is_enabled()
    page.click("#batch-submit")
    page.wait_for_load_state("networkidle")
    box = page.locator("#offenders")
    assert box.is_visible()
    assert "BRW-EQ4" in box.inner_text() and "档案申请通过" in box.inner_text()
    assert "BRW-EQ1" not in box.inner_text()
    assert "未提交任何记录" in page.locator(".flash-error").inner_text()
    page.screenshot(path=str(artifacts / "facilities-batch-error.png"), full_page=True)
    assert _states(engine, operator["operator_pk"]) == {
        "BRW-EQ1": "pending", "BRW-EQ2": "pending", "BRW-EQ3": "pending", "BRW-EQ4": "approved"}

    # the same two pending ones alone go through
    page.goto(server + "/backoffice/facilities")
    for eid in ("BRW-EQ1", "BRW-EQ2"):
        page.check(f'input[name=ids][aria-label="{eid}"]')
    page.click("#batch-submit")
    page.wait_for_load_state("networkidle")
    assert "2个设施已提交审核" in page.locator(".flash-ok").inner_text()
    page.screenshot(path=str(artifacts / "facilities-batch-ok.png"), full_page=True)
    assert _states(engine, operator["operator_pk"])["BRW-EQ1"] == "under_review"
    assert not errors, errors
    ctx.close()


def test_archives_pages_render(server, browser, engine, operator, artifacts) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, server, operator["account_name"])
    with engine.connect() as conn:
        fa = conn.execute(text("SELECT id FROM facility_archives WHERE operator_pk = :p ORDER BY id LIMIT 1"),
                          {"p": operator["operator_pk"]}).scalar()
    for path, name in [("/backoffice/stations", "stations"), ("/backoffice/stations/new", "station-new"),
                       ("/backoffice/stations/import", "stations-import"), ("/backoffice/reports", "reports"),
                       ("/backoffice/facilities/new?rows=2", "facility-new"), (f"/backoffice/facilities/{fa}", "facility"),
                       ("/backoffice/interconnection?step=1", "ic-step1"), ("/backoffice/interconnection?step=2", "ic-step2"),
                       ("/backoffice/interconnection?step=3", "ic-step3"), ("/backoffice/facilities?lang=en", "facilities-en")]:
        resp = page.goto(server + path)
        assert resp is not None and resp.status == 200, path
        page.screenshot(path=str(artifacts / f"archives-{name}.png"), full_page=True)
    # "+ add another facility" adds a row in place, renumbered
    page.goto(server + "/backoffice/facilities/new?rows=2")
    page.click("#add-row")
    assert page.locator("fieldset.facility-row").count() == 3
    assert page.locator('input[name="rows-2-equipment_id"]').count() == 1
    # station form: submit with errors shows them next to the fields
    page.goto(server + "/backoffice/stations/new")
    page.fill("#station_id", "BRW 9")
    page.click("button[value=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator(".field.has-error").count() >= 5
    page.screenshot(path=str(artifacts / "archives-station-errors.png"), full_page=True)
    ctx.close()
    reg = create_regulator(engine)
    ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
    page = ctx.new_page()
    _login(page, server, reg["account_name"], reg["password"])
    for path, name in [("/admin/stations?state=", "admin-stations"), ("/admin/facilities", "admin-facilities"),
                       ("/admin/interconnection", "admin-interconnection")]:
        resp = page.goto(server + path)
        assert resp is not None and resp.status == 200, path
        page.screenshot(path=str(artifacts / f"archives-{name}.png"), full_page=True)
    assert not errors, errors
    ctx.close()


def test_interconnection_three_steps_in_the_browser(server, browser, engine, database, settings, app, artifacts) -> None:  # noqa: ANN001
    """B5 against the simulator: docking data, live debugging through htmx, a push, the background check."""
    import httpx

    from ingest.simulator.config import SimConfig
    from ingest.simulator.server import build_app
    from tests.integration.archives.conftest import Operator
    from tests.integration.archives.test_interconnection import ServerThread, _archive, _summary, _truth, wait_for_push

    with ServerThread(build_app(SimConfig(seed=13, stations=30, operators=1, token_ttl=600,
                                          push_backoff_seconds=0.05))) as sim:
        summary = _summary(sim, 0)
        o = Operator(engine, app, operator_id=summary["operator_id"], name=summary["name"])
        try:
            pks = _archive(database, o, _truth(sim, o.operator_id, 2), settings)
            ctx = browser.new_context(viewport={"width": 1360, "height": 1000}, locale="zh-CN")
            page = ctx.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            _login(page, server, o.info["account_name"])
            page.goto(server + "/backoffice/interconnection?step=1")
            for name in ("base_url", "platform_operator_id", "operator_secret", "data_secret", "data_iv", "sig_secret"):
                page.fill(f"#dk-{name}", summary[name])
            page.click("#docking-form button")
            page.wait_for_load_state("networkidle")
            assert page.locator(".secret-box").is_visible()
            page.screenshot(path=str(artifacts / "interconnection-step1-saved.png"), full_page=True)
            for pk in pks.values():
                page.check(f'input[name=stations][value="{pk}"]')
            page.click("text=保存关联")
            page.wait_for_load_state("networkidle")
            page.goto(server + "/backoffice/interconnection?step=2")
            for name in ("query_token", "query_stations_info", "query_station_status", "query_station_stats"):
                page.click(f"#debug-{name} button")
                page.wait_for_selector(f'#debug-{name} .debug-box[data-ok="true"]', timeout=45000)
            page.click("#debug-query_station_status details:nth-of-type(2) summary")
            page.screenshot(path=str(artifacts / "interconnection-step2-debug.png"), full_page=True)
            with engine.connect() as conn:
                inbound = conn.execute(text("SELECT inbound_operator_secret, inbound_data_secret, inbound_data_iv, "
                                            "inbound_sig_secret FROM feed_endpoints WHERE operator_id = :o"),
                                       {"o": o.operator_id}).one()
            httpx.post(f"{sim.url}/_admin/push-targets", json={
                "operator_id": o.operator_id, "base_url": server, "operator_secret": inbound[0], "data_secret": inbound[1],
                "data_iv": inbound[2], "sig_secret": inbound[3]}).raise_for_status()
            wait_for_push(sim, engine, o.operator_id)
            page.goto(server + "/backoffice/interconnection?step=2")
            assert page.locator("#submit-check").is_enabled()
            page.click("#submit-check")
            page.wait_for_load_state("networkidle")
            page.wait_for_selector("#check-report.pass", timeout=120000)  # the page refreshes itself (htmx)
            page.screenshot(path=str(artifacts / "interconnection-step3-passed.png"), full_page=True)
            assert not errors, errors
            ctx.close()
        finally:
            o.close()

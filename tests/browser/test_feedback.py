"""A citizen reports a problem from a station popup on the map and gets a ticket number, then
looks it up; real headless Chromium against the app served by uvicorn.

Screenshots: test-artifacts/feedback-popup.png, feedback-form.png, feedback-ticket.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import serve_app
from sqlalchemy import text

pytestmark = pytest.mark.browser

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 300


@pytest.fixture(scope="module")
def station(engine):  # noqa: ANN001, ANN201
    from bench.generate import clear_generated, generate_stations

    with engine.begin() as conn:
        generate_stations(conn, 20, region="zhuhai", prefix="FB", seed=11, operators=2)
        conn.execute(text("UPDATE stations s SET district_adcode = d.adcode FROM districts d "
                          "WHERE ST_Intersects(d.geom, s.geom) AND s.district_adcode IS NULL AND s.operator_id LIKE 'FB%'"))
        conn.execute(text("UPDATE stations SET interconnected = true WHERE operator_id LIKE 'FB%'"))
        row = conn.execute(text("SELECT id, name, ST_X(geom) AS lng, ST_Y(geom) AS lat FROM stations "
                                "WHERE operator_id LIKE 'FB%' AND feed_state = 'active' ORDER BY id LIMIT 1")).one()
    from services.stations.summary import bump_version

    with engine.begin() as conn:
        bump_version(conn, "stations")
    yield dict(row._mapping)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM feedback WHERE station_pk IN (SELECT id FROM stations WHERE operator_id LIKE 'FB%')"))
        clear_generated(conn, "FB")


@pytest.fixture(scope="module")
def server(settings, database, station) -> Iterator[str]:  # noqa: ANN001
    from portal_site.app import create_app

    with serve_app(create_app(settings, database=database)) as url:
        yield url


def _wait_idle(page) -> None:  # noqa: ANN001
    page.wait_for_function("window.zhMap && window.zhMap.map.loaded() && window.zhMap.isIdle "
                           "&& window.zhMap.map.areTilesLoaded()", timeout=60_000)


def test_report_a_problem_from_the_station_popup(server, browser, station, engine, artifacts, tmp_path) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    _wait_idle(page)
    page.evaluate(f"zhMap.map.jumpTo({{center: [{station['lng']}, {station['lat']}], zoom: 17}})")
    _wait_idle(page)
    xy = page.evaluate(f"""() => {{
        const f = zhMap.map.queryRenderedFeatures({{layers: ['stations']}}).find(f => f.id === {station['id']});
        return f ? zhMap.map.project(f.geometry.coordinates) : null; }}""")
    assert xy, "the station is not drawn on the map"
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + xy["x"], box["y"] + xy["y"])
    popup = page.locator(".station-popup")
    popup.wait_for(state="visible", timeout=10_000)
    link = popup.locator("a.report-link")
    link.wait_for(timeout=10_000)
    assert link.get_attribute("href") == f"/feedback?station={station['id']}"
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "feedback-popup.png"))

    link.click()
    page.wait_for_url(f"**/feedback?station={station['id']}")
    assert station["name"] in page.locator("#feedback-form").inner_text()
    page.check("input[name=kind][value=repair]")
    page.fill("#body", "3号充电枪插枪后无法启动，屏幕显示故障代码 E05。")
    photo = tmp_path / "gun.jpg"
    photo.write_bytes(JPEG)
    page.set_input_files("#photos", str(photo))
    page.fill("#contact", "13912345678")
    page.screenshot(path=str(artifacts / "feedback-form.png"), full_page=True)
    page.click("#feedback-form button[type=submit]")
    page.locator("#ticket-number").wait_for(timeout=10_000)
    ticket = page.locator("#ticket-number").inner_text().strip()
    assert ticket.startswith("ZH") and len(ticket) == 16
    page.screenshot(path=str(artifacts / "feedback-ticket.png"), full_page=True)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT f.station_pk, f.state, o.operator_id, "
                                "(SELECT count(*) FROM feedback_photos p WHERE p.feedback_id = f.id) AS photos "
                                "FROM feedback f JOIN operators o ON o.id = f.operator_pk WHERE f.ticket = :t"),
                           {"t": ticket}).one()
    assert row.station_pk == station["id"] and row.state == "submitted" and row.photos == 1
    assert row.operator_id.startswith("FB")

    # the citizen looks the ticket up from the form
    page.goto(server + "/feedback/lookup")
    page.fill("#ticket", ticket.lower())
    page.click("form[action='/feedback/lookup'] button")
    page.locator("#feedback-state").wait_for(timeout=10_000)
    assert page.locator("#feedback-state").inner_text() == "已提交"
    assert not errors, errors
    page.close()


def _login(page, server: str, account: dict) -> None:  # noqa: ANN001
    page.goto(server + "/login")
    page.fill("#login", account["account_name"])
    page.fill("#password", account["password"])
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_back_office_pages_render(server, browser, station, engine, database, artifacts) -> None:  # noqa: ANN001
    """The operator's inbox (two panes, unread marks, reply window) and the regulator's dashboard with its charts."""
    from services.messaging.demo import ensure_demo_content
    from services.supervision.dashboard import take_snapshot
    from tests.accounts_helpers import create_operator_user, create_regulator

    from services.messaging.notify import notify_operator, notify_operators
    from services.settings import SupervisionSettings

    op = create_operator_user(engine, operator_id="FB0000001")
    with database.session() as s:
        ensure_demo_content(s)  # for an earlier operator, when another test created it first
        notify_operators(s, [op["operator_pk"]], "关于开展2026年冬季充电设施安全检查的通知",
                         "各运营商：\n请于12月15日前完成所辖充电站的消防、电气安全自查。\n请确认是否能按期完成。",
                         kind="notice", requires_confirmation=True, sender_name="珠海市发展和改革局")
        notify_operator(s, op["operator_pk"], "站点档案审核通过", "站点档案已通过审核。", link="/backoffice/stations")
    take_snapshot(engine, SupervisionSettings(), force=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 860})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, server, op)
    page.goto(server + "/backoffice/messages")
    assert page.locator(".msg-list li.unread").count() >= 1
    page.locator(".msg-list li", has_text="安全检查").first.locator("a").click()
    page.locator("#msg-content h2").wait_for()
    page.wait_for_timeout(300)
    assert "安全检查" in page.locator("#msg-content h2").inner_text()
    assert page.locator("input[name=choice]").count() == 2
    page.screenshot(path=str(artifacts / "messages-inbox.png"), full_page=True)
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, server, create_regulator(engine))
    page.goto(server + "/admin/dashboard")
    page.wait_for_function("document.querySelectorAll('canvas').length === 5 && "
                           "[...document.querySelectorAll('canvas')].every(c => c.width > 0)")
    page.wait_for_timeout(500)
    assert page.locator("#t-connectors_by_district tbody tr").count() >= 1
    page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
    page.goto(server + "/admin/feedback")
    page.screenshot(path=str(artifacts / "admin-feedback.png"))
    ctx.close()
    assert not errors, errors

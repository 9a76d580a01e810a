"""Measured reliability in the map popup, in real headless Chromium: "working 99.3 % of the last 30
days" with the faults and the last one's date, nothing for a station without a measured uptime, and
today's 24 "usually busy" bars with the busiest hour named.

The stations and their May 2026 history are those of tests/integration/reliability/test_public.py
(the app's clock is 31 May 2026 12:00, so the week profile covers May); the popup takes today's
weekday from the browser's own clock.

Screenshots: test-artifacts/map-reliability-popup.png, map-reliability-popup-en.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.browser.test_search import _wait_idle
from tests.conftest import serve_app
from tests.integration.reliability.test_public import NOW, built  # noqa: F401 - the stations, a fixture
from tests.integration.search.conftest import make_search_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(db_url, tmp_path_factory, database, built) -> Iterator[str]:  # noqa: ANN001, F811
    app = make_search_app(db_url, tmp_path_factory.mktemp("reliability-browser"), database)
    app.state.clock = lambda: NOW
    with serve_app(app) as url:
        yield url


def _open_popup(page, pk: int) -> None:  # noqa: ANN001
    d = httpx.get(page.url.split("/map")[0] + f"/api/v1/stations/{pk}").json()
    page.evaluate(f"zhMap.map.jumpTo({{center: [{d['lng']}, {d['lat']}], zoom: 16.5}})")
    page.wait_for_timeout(100)
    _wait_idle(page)
    xy = page.evaluate(f"""() => zhMap.map.queryRenderedFeatures({{layers: ['stations']}})
        .filter(f => f.id === {pk}).map(f => zhMap.map.project(f.geometry.coordinates))[0]""")
    assert xy, "the station is not drawn"
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + xy["x"], box["y"] + xy["y"])
    page.locator(".station-popup .connectors").wait_for(timeout=10_000)


def _today_row(page) -> int:  # noqa: ANN001
    """Today's weekday in China by the browser's clock, Monday 0 (as the popup reads it)."""
    return page.evaluate("(new Date(Date.now() + 8 * 3600e3).getUTCDay() + 6) % 7")


def test_the_popup_says_how_reliable_and_when_busy(server, browser, built, artifacts) -> None:  # noqa: ANN001, F811
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    _wait_idle(page)

    # S1: 0.9932 over 30 days, 2 faults, the last on 20 May (China)
    _open_popup(page, built.ids["S1"])
    popup = page.locator(".station-popup")
    line = popup.locator(".rel-line").inner_text()
    assert "近30天 99.3% 的时间可用" in line and "故障 2 次" in line and "5月20日" in line, line
    assert "good" in popup.locator(".rel-line").get_attribute("class")  # at least the 97 % of NEVI
    assert popup.locator("svg.busy-bars rect.bb").count() == 24  # S1 is observed every hour of May

    # S3: busy at 18:00 every day; 24 bars, the 18:00 one the tallest and named
    _open_popup(page, built.ids["S3"])
    popup = page.locator(".station-popup")
    assert "100% 的时间可用" in popup.locator(".rel-line").inner_text()
    assert "无故障" in popup.locator(".rel-faults").inner_text()
    bars = popup.locator("svg.busy-bars rect.bb")
    assert bars.count() == 24
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(24)]
    assert heights.index(max(heights)) == 18 and max(heights) > 5 * sorted(heights)[-2]
    assert popup.locator("svg.busy-bars rect.bb-peak").count() == 1
    assert "bb-peak" in bars.nth(18).get_attribute("class")
    assert "18:00 左右最忙" in popup.locator(".busy-peak").inner_text()
    assert "周一周二周三周四周五周六周日"[_today_row(page) * 2:][:2] in popup.locator(".busy-title").inner_text()
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "map-reliability-popup.png"))

    # S4: never reported: no uptime line, no bars
    _open_popup(page, built.ids["S4"])
    popup = page.locator(".station-popup")
    assert popup.locator(".rel-line").count() == 0 and popup.locator("svg.busy-bars").count() == 0
    assert not errors, errors
    page.close()


def test_the_popup_in_english(server, browser, built, artifacts) -> None:  # noqa: ANN001, F811
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.goto(server + "/map?lang=en")
    _wait_idle(page)
    _open_popup(page, built.ids["S1"])
    popup = page.locator(".station-popup")
    line = popup.locator(".rel-line").inner_text()
    assert "Working 99.3 % of the last 30 days" in line and "2 faults" in line and "last on 20 May" in line, line
    _open_popup(page, built.ids["S3"])
    assert "usually busy around 18:00" in page.locator(".station-popup .busy-peak").inner_text()
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "map-reliability-popup-en.png"))
    page.close()


def test_the_search_panel_filters_and_sorts_by_uptime(server, browser, built) -> None:  # noqa: ANN001, F811
    """The advanced panel's "working in the last 30 days ≥ 97 %" and the "most reliable" sort give the
    API's own answer, each item shows its uptime, and both are in the page's URL."""
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    _wait_idle(page)
    page.locator("#sp-toggle").click()
    page.select_option("#sp-min-uptime", "0.97")
    page.select_option("#sp-sort", "uptime")
    page.locator("#sp-apply").click()
    page.wait_for_function("document.querySelectorAll('#sp-results .sp-item').length > 0")
    api = httpx.get(server + "/api/v1/stations", params={"min_uptime": "0.97", "sort": "uptime", "limit": 50}).json()
    assert [i["id"] for i in api["items"]][:2] == [built.ids["S3"], built.ids["S1"]]
    shown = [int(x) for x in page.locator("#sp-results .sp-item").evaluate_all("els => els.map(e => e.dataset.id)")]
    assert shown == [i["id"] for i in api["items"]]
    metas = page.locator("#sp-results .sp-item .sp-uptime").all_inner_texts()
    assert metas[:2] == ["可用 100%", "可用 99.3%"], metas
    assert "min_uptime=0.97" in page.url and "sort=uptime" in page.url
    assert "min_uptime=0.97" in page.evaluate("zhMap.getFilters()")  # the map's tiles show the same stations
    # reloading the shared link restores the choice
    page.goto(page.url)
    page.wait_for_function("document.querySelectorAll('#sp-results .sp-item').length > 0")
    assert page.locator("#sp-min-uptime").input_value() == "0.97"
    assert page.locator("#sp-sort").input_value() == "uptime"
    assert not errors, errors
    page.close()

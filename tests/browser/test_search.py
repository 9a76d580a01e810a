"""The map's search panel in real headless Chromium: two operators and one district chosen in the
advanced panel, search, the list and the map change; reset restores everything.

Screenshots: test-artifacts/search-filtered.png, search-reset.png, search-en.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest

from tests.conftest import serve_app
from sqlalchemy import text

from tests.integration.search.conftest import make_search_app, search_data  # noqa: F401 - fixture

pytestmark = pytest.mark.browser

OPS = ["SGN000001", "SGN000002"]
DISTRICT = "440402"
VIEW = {"center": [113.55, 22.25], "zoom": 13.2}  # above the cluster zoom: single stations


@pytest.fixture(scope="module")
def server(db_url, tmp_path_factory, database, search_data) -> Iterator[str]:  # noqa: ANN001, F811
    with serve_app(make_search_app(db_url, tmp_path_factory.mktemp("search-browser"), database)) as url:
        yield url


def _wait_idle(page) -> None:  # noqa: ANN001
    page.wait_for_function("window.zhMap && zhMap.map.loaded() && zhMap.isIdle && zhMap.map.areTilesLoaded()",
                           timeout=60_000)


def _wait_search(page, n: int) -> None:  # noqa: ANN001
    page.wait_for_function(f"Number(document.getElementById('search-panel').dataset.searched || 0) >= {n}",
                           timeout=30_000)


def _rendered_stations(page) -> list[dict]:  # noqa: ANN001
    page.evaluate(f"zhMap.map.jumpTo({VIEW})")
    page.wait_for_timeout(100)
    _wait_idle(page)
    feats = page.evaluate("zhMap.map.queryRenderedFeatures({layers: ['stations']})"
                          ".map(f => ({id: f.id, operator: f.properties.operator}))")
    return list({f["id"]: f for f in feats}.values())


def _count(engine, where: str, params: dict) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM stations WHERE feed_state = 'active' AND interconnected AND "
                                 + where), params).scalar_one()


def test_advanced_search_then_reset(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    _wait_search(page, 1)
    _wait_idle(page)
    total_all = _count(engine, "TRUE", {})
    assert page.locator("#search-panel").get_attribute("data-total") == str(total_all)
    items_before = page.locator("#sp-results .sp-item").count()
    assert items_before == min(total_all, 50)
    before = _rendered_stations(page)
    assert len({f["operator"] for f in before} - set(OPS)) > 0, "the test view should show other operators"

    # advanced panel: two operators, one district, then search
    page.click("#sp-toggle")
    page.click("#sp-tabs [data-dim=operator]")
    for op in OPS:
        page.click(f"#sp-chips .chip[data-value='{op}']")
        page.wait_for_selector(f"#sp-chips .chip[data-value='{op}'][aria-pressed=true]")
    page.click("#sp-tabs [data-dim=district]")
    chip = page.locator(f"#sp-chips .chip[data-value='{DISTRICT}']")
    chip.click()
    # the district counts apply the operator choice: the chip shows the result count before searching
    want = _count(engine, "operator_id = ANY(:ops) AND district_adcode = :d", {"ops": OPS, "d": int(DISTRICT)})
    page.wait_for_function(f"document.querySelector(\"#sp-chips .chip[data-value='{DISTRICT}'] .count\")"
                           f".textContent === '{want}'", timeout=10_000)
    page.click("#sp-apply")
    _wait_search(page, 2)
    assert page.locator("#search-panel").get_attribute("data-total") == str(want)
    assert page.locator("#sp-status").inner_text().replace(",", "").find(str(want)) >= 0
    subs = page.locator("#sp-results .sp-item .sp-sub").all_inner_texts()
    assert subs and all("香洲" in s for s in subs[0::2])  # operator · district line
    # shareable URL and the map's filter
    q = parse_qs(urlparse(page.url).query)
    assert q["operator"] == [",".join(OPS)] and q["district"] == [DISTRICT]
    assert "operator=" in page.evaluate("zhMap.getFilters()")
    after = _rendered_stations(page)
    assert {f["operator"] for f in after} <= set(OPS)
    assert len(after) < len(before)
    page.screenshot(path=str(artifacts / "search-filtered.png"))

    # hover highlights, click flies to the station and opens its popup
    first = page.locator("#sp-results .sp-item").first
    first.hover()
    item_id = first.get_attribute("data-id")
    page.wait_for_function(f"zhSearch.state.highlighted === {item_id} && zhMap.map.getLayer('search-highlight')",
                           timeout=10_000)
    first.click()
    page.wait_for_selector(".maplibregl-popup", timeout=10_000)
    page.wait_for_function("zhMap.map.getZoom() >= 15", timeout=10_000)

    # a shared link restores the same search
    shared = browser.new_page(viewport={"width": 1000, "height": 700})
    shared.goto(page.url)
    _wait_search(shared, 1)
    assert shared.locator("#search-panel").get_attribute("data-total") == str(want)
    shared.close()

    # reset restores everything
    page.click("#sp-reset")
    _wait_search(page, 3)
    assert page.locator("#search-panel").get_attribute("data-total") == str(total_all)
    assert page.locator("#sp-results .sp-item").count() == items_before
    assert page.locator("#sp-chips .chip[aria-pressed=true]").count() == 0
    assert "operator" not in urlparse(page.url).query and page.evaluate("zhMap.getFilters()") == ""
    restored = _rendered_stations(page)
    assert {f["id"] for f in restored} == {f["id"] for f in before}
    page.screenshot(path=str(artifacts / "search-reset.png"))
    assert errors == []
    page.close()


def test_english_labels_and_select_all(server, browser, artifacts) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server + "/map?lang=en")
    _wait_search(page, 1)
    page.click("#sp-toggle")
    page.click("#sp-tabs [data-dim=facility_type]")
    assert "Facility type" in page.locator("#sp-tabs").inner_text()
    labels = page.locator("#sp-chips .chip").all_inner_texts()
    assert any(lbl.startswith("DC") for lbl in labels)
    page.click("#sp-all")
    assert page.locator("#sp-chips .chip[aria-pressed=true]").count() == page.locator("#sp-chips .chip").count()
    page.click("#sp-all")  # a second press clears the dimension
    assert page.locator("#sp-chips .chip[aria-pressed=true]").count() == 0
    page.fill("#sp-q", "changlong")
    page.press("#sp-q", "Enter")
    _wait_search(page, 2)
    assert "长隆" in page.locator("#sp-results").inner_text()
    assert "q=changlong" in page.url and "lang=en" in page.url
    page.screenshot(path=str(artifacts / "search-en.png"))
    page.close()

"""The public map in real headless Chromium: loads, reaches idle, draws stations, opens a popup.

Screenshots go to test-artifacts/map.png (desktop, popup open) and map-phone.png.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import serve_app
from sqlalchemy import text

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def live_data(engine):  # noqa: ANN001, ANN201
    from bench.generate import clear_generated, generate_stations
    from tests.conftest import truncate

    truncate(engine, "connector_status", "connectors", "equipment", "stations", "operators")
    with engine.begin() as conn:
        generate_stations(conn, 600, region="zhuhai", seed=3, operators=8, prefix="MAP")
        conn.execute(text("UPDATE stations s SET district_adcode = d.adcode FROM districts d "
                          "WHERE ST_Intersects(d.geom, s.geom) AND s.district_adcode IS NULL"))
    yield
    with engine.begin() as conn:
        clear_generated(conn, "MAP")


@pytest.fixture(scope="module")
def server(settings, database, live_data) -> Iterator[str]:  # noqa: ANN001
    from portal_site.app import create_app

    with serve_app(create_app(settings, database=database)) as url:
        yield url


def wait_idle(page, timeout: float = 60_000) -> None:  # noqa: ANN001
    page.wait_for_function("window.zhMap && window.zhMap.map.loaded() && window.zhMap.isIdle "
                           "&& window.zhMap.map.areTilesLoaded()", timeout=timeout)


def test_map_page_draws_stations_and_opens_a_popup(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    assert page.locator("#search-panel").count() == 1
    wait_idle(page)
    n_clusters = page.evaluate("zhMap.map.queryRenderedFeatures({layers: ['clusters']}).length")
    assert n_clusters > 0
    page.screenshot(path=str(artifacts / "map-overview.png"))

    # zoom to a busy spot and pick a drawn station
    with engine.connect() as conn:
        lng, lat = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE feed_state = 'active' AND interconnected "
            "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(113.548, 22.272), 4326) LIMIT 1")).one()
    page.evaluate(f"zhMap.map.jumpTo({{center: [{lng}, {lat}], zoom: 15.5}})")
    wait_idle(page)
    feats = page.evaluate("""() => zhMap.map.queryRenderedFeatures({layers: ['stations']})
        .map(f => ({id: f.id, name: f.properties.name, xy: zhMap.map.project(f.geometry.coordinates)}))""")
    assert feats, "no station drawn at z15.5"
    box = page.locator("#map").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    target = min(feats, key=lambda f: (f["xy"]["x"] + box["x"] - cx) ** 2 + (f["xy"]["y"] + box["y"] - cy) ** 2)
    with engine.connect() as conn:
        db_name = conn.execute(text("SELECT name FROM stations WHERE id = :i"), {"i": target["id"]}).scalar_one()
    assert target["name"] == db_name

    page.mouse.click(box["x"] + target["xy"]["x"], box["y"] + target["xy"]["y"])
    popup = page.locator(".station-popup")
    popup.wait_for(state="visible", timeout=10_000)
    assert popup.locator(".popup-name").inner_text() == db_name
    popup.locator(".nav-link").wait_for(timeout=10_000)  # details arrived
    href = popup.locator(".nav-link").get_attribute("href")
    assert href.startswith("https://uri.amap.com/navigation?to=")
    assert popup.locator("table.connectors tr").count() >= 1
    text_all = popup.inner_text()
    assert "报告" not in text_all and "report" not in text_all.lower()
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "map.png"))

    # live: a data-version bump reaches the page over SSE and the station tiles are re-requested
    from services.stations.summary import bump_version

    v0 = page.evaluate("zhMap.version()")
    with engine.begin() as conn:
        bump_version(conn, "stations")
    page.wait_for_function(f"zhMap.version() > {v0}", timeout=10_000)
    wait_idle(page)
    assert page.evaluate("zhMap.map.queryRenderedFeatures({layers: ['stations']}).length") > 0

    # the search panel's hook filters the tiles
    page.evaluate("zhMap.setFilters('operator=NOSUCHOP')")
    wait_idle(page)
    assert page.evaluate("zhMap.map.queryRenderedFeatures({layers: ['stations']}).length") == 0
    page.evaluate("zhMap.setFilters('')")
    wait_idle(page)
    assert not errors, errors
    page.close()


def test_map_on_a_phone_in_english(server, browser, artifacts) -> None:  # noqa: ANN001
    ctx = browser.new_context(viewport={"width": 390, "height": 780}, device_scale_factor=2, is_mobile=True,
                              has_touch=True)
    page = ctx.new_page()
    page.goto(server + "/map?lang=en")
    wait_idle(page)
    assert page.evaluate("zhMap.map.queryRenderedFeatures({layers: ['clusters', 'stations']}).length") > 0
    assert "Free now" in page.locator("#map-legend").inner_text()
    page.screenshot(path=str(artifacts / "map-phone.png"))
    ctx.close()


def test_events_stream_sends_the_data_version(server, engine) -> None:  # noqa: ANN001
    import http.client
    import json
    from urllib.parse import urlparse

    from services.stations.summary import bump_version

    u = urlparse(server)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/map/events", headers={"Accept": "text/event-stream"})
    r = conn.getresponse()
    assert r.status == 200 and r.getheader("content-type").startswith("text/event-stream")

    def next_version() -> dict:
        data = None
        while True:
            line = r.fp.readline().decode().strip()
            if line.startswith("data:"):
                data = json.loads(line[5:])
            elif line == "" and data is not None:
                return data

    first = next_version()
    with engine.begin() as c:
        v = bump_version(c, "stations")
    assert first["stations"] < v
    assert next_version()["stations"] == v
    conn.close()

"""Prices on the public map in real headless Chromium: the popup's price now, the day's price bar
with the current time marked, the estimate of a typical charge; colour by price; the list sorted
by price.

Screenshots: test-artifacts/map-price-popup.png, map-price-colours.png, search-by-price.png,
map-price-popup-en.png.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from sqlalchemy import text

from tests.browser.test_search import _wait_idle, server  # noqa: F401 - the search data's app, a fixture
from tests.integration.search.conftest import search_data  # noqa: F401 - fixture

pytestmark = pytest.mark.browser


def _priced_station(engine, *, varies: bool) -> tuple[int, float, float]:  # noqa: ANN001
    """A visible station with a time-of-use tariff, away from its neighbours (so a click hits it alone)."""
    with engine.connect() as conn:
        return tuple(conn.execute(text("""
            SELECT s.id, ST_X(s.geom), ST_Y(s.geom) FROM stations s JOIN station_tariffs st ON st.station_pk = s.id
            JOIN tariffs t ON t.id = st.tariff_id
            WHERE s.feed_state = 'active' AND s.interconnected AND st.varies = :v AND jsonb_array_length(t.periods) > 1
              AND NOT EXISTS (SELECT 1 FROM stations o WHERE o.id <> s.id AND ST_DWithin(o.geom, s.geom, 0.0006))
            ORDER BY s.id LIMIT 1"""), {"v": varies}).one())


def _open_popup(page, pk: int, lng: float, lat: float) -> None:  # noqa: ANN001
    page.evaluate(f"zhMap.map.jumpTo({{center: [{lng}, {lat}], zoom: 16.5}})")
    page.wait_for_timeout(100)
    _wait_idle(page)
    feat = page.evaluate(f"""() => zhMap.map.queryRenderedFeatures({{layers: ['stations']}})
        .filter(f => f.id === {pk}).map(f => ({{xy: zhMap.map.project(f.geometry.coordinates),
                                               price: f.properties.price_now}}))[0]""")
    assert feat, "the station is not drawn"
    assert feat["price"] is not None  # the tile carries the price now
    box = page.locator("#map").bounding_box()
    page.mouse.click(box["x"] + feat["xy"]["x"], box["y"] + feat["xy"]["y"])
    page.locator(".station-popup .price-block .pn-value").wait_for(timeout=10_000)


def _fmt(price: str) -> str:
    s = f"{Decimal(price):.4f}"
    return s[:-2] if s.endswith("00") else s[:-1] if s.endswith("0") else s


def test_popup_shows_price_now_bar_and_estimate(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    pk, lng, lat = _priced_station(engine, varies=False)
    api = httpx.get(f"{server}/api/v1/stations/{pk}?kwh=30").json()
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server + "/map")
    _wait_idle(page)
    _open_popup(page, pk, lng, lat)
    popup = page.locator(".station-popup")
    assert popup.locator(".pn-value").inner_text() == "¥" + _fmt(api["tariff"]["now"]["total"])
    assert "元/度" in popup.locator(".price-now").inner_text()
    # the bar: one block per period, the cheapest green and lowest, the current time marked
    rects = popup.locator("svg.price-bar rect")
    assert rects.count() == len(api["tariff"]["periods"]) >= 2
    heights = [float(rects.nth(i).get_attribute("height")) for i in range(rects.count())]
    totals = [Decimal(p["total"]) for p in api["tariff"]["periods"]]
    assert heights[totals.index(min(totals))] == min(heights)
    assert popup.locator("svg.price-bar rect.pb-low").count() >= 1
    assert popup.locator("svg.price-bar .pb-now line").count() == 1
    cheapest = popup.locator(".pb-cheap").inner_text()
    assert "最低" in cheapest and _fmt(str(min(totals))) in cheapest
    est = popup.locator(".estimate").inner_text()
    assert "30" in est and "¥" + api["estimate"]["yuan"] in est
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "map-price-popup.png"))

    # colour by price: the stations layer paints by price_now and the legend says so
    page.locator("#color-by-price").check()
    assert page.evaluate("zhMap.colorBy()") == "price"
    assert page.evaluate("JSON.stringify(zhMap.map.getPaintProperty('stations', 'circle-color'))").find("price_now") > 0
    assert page.locator("#map-legend.by-price .price-ramp").is_visible()
    page.evaluate("document.querySelector('.maplibregl-popup-close-button').click()")
    page.evaluate(f"zhMap.map.jumpTo({{center: [{lng}, {lat}], zoom: 13.5}})")
    page.wait_for_timeout(100)
    _wait_idle(page)
    page.screenshot(path=str(artifacts / "map-price-colours.png"))
    page.locator("#color-by-price").uncheck()
    assert page.evaluate("zhMap.colorBy()") == "availability"
    assert not errors, errors
    page.close()


def test_popup_of_a_station_whose_connectors_differ_in_english(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    pk, lng, lat = _priced_station(engine, varies=True)
    page = browser.new_page(viewport={"width": 420, "height": 860}, device_scale_factor=2)
    page.goto(server + "/map?lang=en")
    _wait_idle(page)
    _open_popup(page, pk, lng, lat)
    popup = page.locator(".station-popup")
    assert "Price now" in popup.inner_text() and "yuan/kWh" in popup.inner_text()
    assert "lowest is shown" in popup.locator(".pn-varies").inner_text()
    assert "kWh costs about" in popup.locator(".estimate").inner_text()
    assert popup.locator("table.connectors td").filter(has_text="¥").count() >= 1  # per-connector prices
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "map-price-popup-en.png"))
    page.close()


def test_station_list_sorted_by_price(server, browser, artifacts) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(server + "/map")
    page.wait_for_function("Number(document.getElementById('search-panel').dataset.searched || 0) >= 1",
                           timeout=30_000)
    page.select_option("#sp-sort", "price")
    page.wait_for_function("Number(document.getElementById('search-panel').dataset.searched || 0) >= 2",
                           timeout=30_000)
    assert "sort=price" in page.url
    prices = page.evaluate("zhSearch.state.items.map(it => it.price_now)")
    assert prices and prices[0] is not None
    known = [Decimal(p) for p in prices if p is not None]
    assert known == sorted(known)
    first = page.locator("#sp-results .sp-item .sp-price-now").first.inner_text()
    assert first == "¥" + _fmt(prices[0])
    # the price limit in the advanced panel filters the list and the map alike
    page.click("#sp-toggle")
    page.fill("#sp-max-price", "1.1")
    page.dispatch_event("#sp-max-price", "change")
    page.click("#sp-apply")
    page.wait_for_function("Number(document.getElementById('search-panel').dataset.searched || 0) >= 3",
                           timeout=30_000)
    assert "max_price=1.1" in page.evaluate("zhMap.getFilters()")
    limited = page.evaluate("zhSearch.state.items.map(it => it.price_now)")
    assert limited and all(p is not None and Decimal(p) <= Decimal("1.1") for p in limited)
    page.screenshot(path=str(artifacts / "search-by-price.png"))
    page.close()

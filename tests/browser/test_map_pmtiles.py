"""The public map drawn from a PMTiles archive (ZHCHARGE_TILES_PMTILES_URL) in real headless Chromium:
stations and clusters come from the archive (served by the app with byte ranges), their status from
the live server, a status change reaches the drawn station, and a filtered view reads the live tiles.

Screenshots: test-artifacts/map-pmtiles.png (clusters) and map-pmtiles-stations.png (z15.5).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.browser.test_map import wait_idle
from tests.conftest import serve_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def live_data(engine):  # noqa: ANN001, ANN201
    from bench.generate import clear_generated, generate_stations
    from tests.conftest import truncate

    truncate(engine, "connector_status", "connectors", "equipment", "stations", "operators")
    with engine.begin() as conn:
        generate_stations(conn, 400, region="zhuhai", seed=5, operators=6, prefix="PMT")
    yield
    with engine.begin() as conn:
        clear_generated(conn, "PMT")


@pytest.fixture(scope="module")
def server(db_url, database, engine, live_data, tmp_path_factory) -> Iterator[str]:  # noqa: ANN001
    from portal_site.app import create_app
    from services.settings import DatabaseSettings, TileSettings
    from tests.conftest import make_settings
    from tiles.export import export_stations

    data = tmp_path_factory.mktemp("data")
    settings = make_settings(db_url, data)
    settings.db = DatabaseSettings(database_url=db_url, data_dir=data)
    settings.tiles = TileSettings(pmtiles_url="/map/pmtiles/stations.pmtiles")
    export_stations(settings, engine.url, data / "pmtiles" / "stations.pmtiles")
    with serve_app(create_app(settings, database=database)) as url:
        yield url


def station_states(page) -> list[dict]:  # noqa: ANN001
    return page.evaluate("""() => zhMap.map.queryRenderedFeatures({layers: ['stations']})
        .map(f => ({id: f.id, state: f.state, availability: f.properties.availability}))""")


def test_map_draws_the_archive_with_live_status(server, browser, engine, artifacts) -> None:  # noqa: ANN001
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/map")
    wait_idle(page)
    assert page.evaluate("zhMap.stationSource()") == "pmtiles"
    page.wait_for_function("zhMap.statusVersion !== null", timeout=10_000)
    wait_idle(page)
    clusters = page.evaluate("""() => zhMap.map.queryRenderedFeatures({layers: ['clusters']})
        .map(f => ({id: f.id, n: f.properties.point_count, state: f.state}))""")
    assert clusters and sum(c["n"] for c in clusters) > 0
    assert all(c["state"].get("live") for c in clusters), clusters[:3]  # live counts over the archive's
    assert any("/map/pmtiles/stations.pmtiles" in u for u in requests)
    assert not any("/tiles/stations/" in u for u in requests), "the live station tiles were requested"
    page.screenshot(path=str(artifacts / "map-pmtiles.png"))

    # zoom in where stations are single: drawn from the archive, availability from the live server
    with engine.connect() as conn:
        lng, lat = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE feed_state = 'active' AND interconnected "
            "ORDER BY geom <-> ST_SetSRID(ST_MakePoint(113.548, 22.272), 4326) LIMIT 1")).one()
    page.evaluate(f"zhMap.map.jumpTo({{center: [{lng}, {lat}], zoom: 15.5}})")
    wait_idle(page)
    page.wait_for_function("zhMap.map.queryRenderedFeatures({layers: ['stations']})"
                           ".some(f => f.state && f.state.live)", timeout=10_000)
    feats = station_states(page)
    assert feats
    with engine.connect() as conn:
        live = dict(conn.execute(text("SELECT id, availability FROM stations WHERE id = ANY(:ids)"),
                                 {"ids": [f["id"] for f in feats]}).all())
    assert all(f["state"]["availability"] == live[f["id"]] for f in feats if f["state"].get("live"))

    # a status change reaches the drawn station through the live layer (the archive is unchanged)
    target = feats[0]["id"]
    new = "offline" if live[target] != "offline" else "free"
    from services.stations.summary import bump_version

    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET availability = :a, connectors_free = 0 WHERE id = :i"),
                     {"a": new, "i": target})
        bump_version(conn, "stations")
    page.wait_for_function(f"""zhMap.map.queryRenderedFeatures({{layers: ['stations']}})
        .some(f => f.id === {target} && f.state.availability === '{new}')""", timeout=15_000)
    drawn = next(f for f in station_states(page) if f["id"] == target)
    assert drawn["availability"] == live[target]  # the archive's own property still has the old status
    page.wait_for_timeout(300)
    page.screenshot(path=str(artifacts / "map-pmtiles-stations.png"))
    assert not any("/tiles/stations/" in u for u in requests)

    # a filter reads the live tiles; clearing it goes back to the archive
    page.evaluate("zhMap.setFilters('operator=NOSUCHOP')")
    wait_idle(page)
    assert page.evaluate("zhMap.stationSource()") == "tiles"
    assert page.evaluate("zhMap.map.queryRenderedFeatures({layers: ['stations']}).length") == 0
    assert any("/tiles/stations/" in u and "operator=NOSUCHOP" in u for u in requests)
    page.evaluate("zhMap.setFilters('')")
    wait_idle(page)
    assert page.evaluate("zhMap.stationSource()") == "pmtiles"
    page.wait_for_function("zhMap.map.queryRenderedFeatures({layers: ['stations']}).length > 0", timeout=10_000)
    assert not errors, errors
    page.close()

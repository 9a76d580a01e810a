"""The price job runs beside the tile server when the app runs background jobs, and the map page
carries what its price display needs."""

from __future__ import annotations

import json
import re

from tests.conftest import make_settings


def test_price_job_starts_and_stops_with_the_scheduler(db_url, database, tmp_path) -> None:  # noqa: ANN001
    from portal_site.app import create_app
    from portal_site.routes import tiles as tile_routes

    settings = make_settings(db_url, tmp_path)
    settings.app.run_scheduler = True
    app = create_app(settings, database=database)
    tile_routes.on_startup(app)  # this module's hook only: no feed pulls or snapshots start
    try:
        job = app.state.price_job
        assert job.name == "price-tick" and job._thread is not None and job._thread.is_alive()
    finally:
        tile_routes.on_shutdown(app)
    assert app.state.price_job is None and not job._thread.is_alive()


def test_no_price_job_without_the_scheduler(client) -> None:  # noqa: ANN001
    assert getattr(client.app.state, "price_job", None) is None


def test_map_page_config_for_prices(client, seeded) -> None:  # noqa: ANN001
    r = client.get("/map")
    cfg = json.loads(re.search(r'id="map-config">(.*?)</script>', r.text, re.S).group(1))
    assert cfg["estimateKwh"] == 30 and cfg["priceRamp"] == [0.6, 1.2, 1.8]
    assert cfg["text"]["price_now"] == "当前价格" and cfg["text"]["per_kwh"] == "元/度"
    assert 'id="color-by-price"' in r.text and "按当前价格着色" in r.text
    en = client.get("/map?lang=en").text
    assert "Colour by price now" in en and '"per_kwh": "yuan/kWh"' in en

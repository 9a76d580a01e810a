"""The map page and its small JSON endpoint (the browser test covers drawing, popups and SSE)."""

from __future__ import annotations

import json
import re

from sqlalchemy import text


def _config(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="map-config">(.*?)</script>', html, re.S)
    assert m, "map config missing"
    return json.loads(m.group(1))


def test_map_page_has_the_panel_hook_and_config(client, seeded) -> None:  # noqa: ANN001
    r = client.get("/map")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'id="search-panel"' in r.text and "/static/vendor/maplibre-gl.js" in r.text and "/static/map.js" in r.text
    cfg = _config(r.text)
    assert cfg["lang"] == "zh" and cfg["text"]["navigate"].startswith("导航")
    assert cfg["availability"]["free"] == "有空闲"
    assert cfg["clusterBelowZoom"] == 12 and cfg["version"] >= 1 and cfg["crs"] == "wgs84"
    assert "report" not in r.text.lower() and "报告问题" not in r.text
    en = _config(client.get("/map?lang=en").text)
    assert en["lang"] == "en" and en["availability"]["free"] == "free now"


def test_map_config_escapes_script_breakouts(client, seeded) -> None:  # noqa: ANN001
    r = client.get("/map?operator=%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert r.status_code == 200
    assert "<script>alert(1)" not in r.text
    assert _config(r.text)["initialFilters"].startswith("operator=")


def test_station_json_for_the_popup(client, seeded, engine) -> None:  # noqa: ANN001
    pk = next(iter(seeded.visible))
    r = client.get(f"/map/stations/{pk}.json")
    assert r.status_code == 200, r.text
    d = r.json()
    with engine.connect() as conn:
        name, lng = conn.execute(text("SELECT name, ST_X(geom) FROM stations WHERE id = :i"), {"i": pk}).one()
    assert d["id"] == pk and d["name"] == name and abs(d["lng"] - lng) < 1e-6
    assert {"operator_name", "address", "hours", "fees", "payments", "equipment", "connectors_free"} <= set(d)
    g = client.get(f"/map/stations/{pk}.json?crs=gcj02").json()
    assert abs(g["lng"] - lng) > 1e-4  # shifted
    hidden = next(iter(seeded.hidden))
    assert client.get(f"/map/stations/{hidden}.json").status_code == 404
    for bad in ("abc.json", f"{pk}.xml", "0.json", "99999999999999999999.json"):
        r = client.get(f"/map/stations/{bad}")
        assert r.status_code == 404 and r.json()["message"], bad
    assert client.get(f"/map/stations/{pk}.json?crs=bd09").status_code == 400

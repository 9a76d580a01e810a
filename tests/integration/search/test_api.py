"""The open API over HTTP: shapes, every 400, cursors, ETags, GeoJSON, CSV, detail, reference, stats."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import text

from geo.gcj02 import wgs84_to_gcj02
from services.stations.summary import bump_version
from tests.integration.search.conftest import all_visible

pytestmark = pytest.mark.usefixtures("search_data")

BAD = [
    ("operator=a%20b", "operator"), ("district=12", "district"), ("district=abcdef", "district"),
    ("station_type=7", "station_type"), ("station_type=x", "station_type"), ("scale=huge", "scale"),
    ("facility_type=dcx", "facility_type"), ("payment=bitcoin", "payment"), ("available=maybe", "available"),
    ("min_power=-1", "min_power"), ("min_power=abc", "min_power"), ("min_power=nan", "min_power"),
    ("exclude_operator=%25", "exclude_operator"), ("bbox=1,2,3", "bbox"), ("bbox=a,b,c,d", "bbox"),
    ("bbox=10,10,5,5", "bbox"), ("bbox=-200,0,0,10", "bbox"), ("lat=22.2", "lng"), ("lng=113&lat=95", "lng"),
    ("radius=100", "radius"), ("lng=113&lat=22&radius=0", "radius"), ("lng=113&lat=22&radius=300000", "radius"),
    ("lng=113&lat=22&radius=-5", "radius"), ("route=LINESTRING(1)", "route"), ("route=%40%40%40", "route"),
    ("route=LINESTRING(113 22, 113.1 22.1)&corridor=0", "corridor"),
    ("route=LINESTRING(113 22, 113.1 22.1)&corridor=99999999", "corridor"), ("corridor=100", "corridor"),
    ("limit=0", "limit"), ("limit=100000", "limit"), ("limit=ten", "limit"), ("limit=-1", "limit"),
    ("cursor=abc", "cursor"), ("cursor=WyJuYW1lIiwxLDIsIngiXQ", "cursor"), ("sort=cheapest", "sort"),
    ("sort=distance", "sort"), ("sort=route", "sort"), ("sort=relevance", "sort"), ("facets=perhaps", "facets"),
    ("updated_since=yesterday", "updated_since"), ("crs=bd09", "crs"), ("foo=1", "foo"),
    ("q=" + "x" * 101, "q"), ("limit=1&limit=2", "limit"), ("q=a&q=b", "q"), ("total=maybe", "total"),
]


@pytest.mark.parametrize("query,param", BAD)
@pytest.mark.parametrize("path", ["/api/v1/stations", "/api/v1/stations.geojson"])
def test_bad_parameters_are_400_naming_them(api, path, query, param) -> None:  # noqa: ANN001
    r = api.get(f"{path}?{query}")
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["param"] == param
    assert param in body["message"]
    assert "X-RateLimit-Limit" in r.headers


def test_csv_bad_parameter(api) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations.csv?bbox=1,2")
    assert r.status_code == 400 and r.json()["param"] == "bbox"


def test_detail_errors(api) -> None:  # noqa: ANN001
    assert api.get("/api/v1/stations/999999999").status_code == 404
    assert api.get("/api/v1/stations/abc").status_code in (400, 404)
    r = api.get("/api/v1/stations/1?crs=mars")
    assert r.status_code == 400 and r.json()["param"] == "crs"


def test_search_shape(api, search_data) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations?q=长隆海洋&limit=5")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"total", "items", "facets", "next_cursor"}
    item = next(it for it in body["items"] if it["id"] == search_data.hand_ids["长隆海洋王国充电站"])
    for key in ("id", "operator_id", "station_id", "name", "operator_name", "address", "district", "district_name",
                "lng", "lat", "station_type", "facility_types", "payments", "connectors_total", "connectors_free",
                "max_power_kw", "fees", "hours", "updated_at"):
        assert key in item
    assert item["operator_name"] == "星星充电"
    assert item["facility_types"] == ["ac", "dc"] and item["payments"] == ["online"]
    assert item["max_power_kw"] == 120.0 and item["connectors_free"] == 1
    assert item["fees"] == {"electricity_fee": "1.0元/度", "service_fee": "0.8元/度", "park_fee": "免费"}
    assert item["lng"] == pytest.approx(113.55) and item["lat"] == pytest.approx(22.102)
    assert set(body["facets"]) == {"operator", "district", "station_type", "scale", "facility_type", "payment"}
    fv = body["facets"]["payment"][0]
    assert set(fv) == {"value", "label", "label_en", "count"}


def test_gcj02_output(api, search_data) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations?q=长隆海洋&crs=gcj02&facets=false").json()
    it = r["items"][0]
    assert r["facets"] is None
    glng, glat = wgs84_to_gcj02(113.55, 22.102)
    assert it["lng"] == pytest.approx(glng, abs=1e-7) and it["lat"] == pytest.approx(glat, abs=1e-7)


def test_cursor_walks_everything_once_even_while_data_changes(api, engine) -> None:  # noqa: ANN001
    want = {r["id"] for r in all_visible(engine) if r["operator_id"] == "SGN000002"}
    for sort in ("id", "name", "max_power", "free"):
        seen: list[int] = []
        cursor = None
        pages = 0
        changed = False
        while True:
            url = f"/api/v1/stations?operator=SGN000002&limit=37&sort={sort}&facets=false"
            r = api.get(url + (f"&cursor={cursor}" if cursor else ""))
            assert r.status_code == 200, r.text
            body = r.json()
            seen += [it["id"] for it in body["items"]]
            pages += 1
            if pages == 2 and not changed:
                # a station of another operator appears, and an unrelated change lands: no effect on order
                with engine.begin() as conn:
                    conn.execute(text("UPDATE stations SET updated_at = now() WHERE operator_id = 'SGN000003'"))
                    bump_version(conn)
                changed = True
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)), sort
        assert set(seen) == want, sort


def test_cursor_of_another_query_is_rejected(api) -> None:  # noqa: ANN001
    c = api.get("/api/v1/stations?limit=2&facets=false").json()["next_cursor"]
    r = api.get(f"/api/v1/stations?limit=2&operator=SGN000001&cursor={c}")
    assert r.status_code == 400 and r.json()["param"] == "cursor"
    r = api.get(f"/api/v1/stations?limit=2&sort=free&cursor={c}")
    assert r.status_code == 400 and r.json()["param"] == "cursor"
    assert api.get(f"/api/v1/stations?limit=5&cursor={c}").status_code == 200  # limit may change


def test_etag_and_304(api, engine) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations?operator=SGN000001&limit=3")
    etag = r.headers["etag"]
    r2 = api.get("/api/v1/stations?operator=SGN000001&limit=3", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.headers["etag"] == etag and "X-RateLimit-Remaining" in r2.headers
    assert api.get("/api/v1/stations?operator=SGN000001&limit=4").headers["etag"] != etag
    with engine.begin() as conn:
        bump_version(conn)
    r3 = api.get("/api/v1/stations?operator=SGN000001&limit=3", headers={"If-None-Match": etag})
    assert r3.status_code == 200 and r3.headers["etag"] != etag
    for path in ("/api/v1/reference", "/api/v1/stats"):
        e = api.get(path).headers["etag"]
        assert api.get(path, headers={"If-None-Match": e}).status_code == 304


def test_updated_since(api, engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET updated_at = '2020-01-01' WHERE feed_state = 'active'"))
        conn.execute(text("UPDATE stations SET updated_at = '2026-01-02T00:00:00Z' WHERE operator_id = 'SHD000002'"))
        bump_version(conn)
    body = api.get("/api/v1/stations?updated_since=2026-01-01T00:00:00Z&limit=100").json()
    assert body["total"] == 2 and {it["operator_id"] for it in body["items"]} == {"SHD000002"}
    assert api.get("/api/v1/stations?updated_since=2026-01-01&limit=1").json()["total"] == 2


def test_geojson(api) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations.geojson?district=440402&limit=50")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 50
    f = fc["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "Point"
    lng, lat = f["geometry"]["coordinates"]
    assert 113 < lng < 114.5 and 21.5 < lat < 23  # RFC 7946: longitude first
    assert f["properties"]["district"] == 440402
    assert fc["next_cursor"]


def test_csv_streams_every_match(api, engine) -> None:  # noqa: ANN001
    want = {r["id"] for r in all_visible(engine) if r["district_adcode"] == 440403}
    r = api.get("/api/v1/stations.csv?district=440403")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["x-generated-at"] and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {int(x["id"]) for x in rows} == want
    assert all(x["district"] == "440403" for x in rows)


def test_detail(api, search_data) -> None:  # noqa: ANN001
    sid = search_data.hand_ids["斗门井岸站"]
    r = api.get(f"/api/v1/stations/{sid}")
    assert r.status_code == 200
    d = r.json()
    assert d["name"] == "斗门井岸站" and d["scale"] == "medium" and d["pile_count"] == 12
    assert len(d["equipment"]) == 12
    cons = [c for e in d["equipment"] for c in e["connectors"]]
    assert len(cons) == 12 and sum(c["status"] == 1 for c in cons) == 2
    assert cons[0]["status_label"] in ("空闲", "占用（充电中）") and cons[0]["connector_type_label_en"]
    assert d["equipment"][0]["facility_type"] == "dc"
    r = api.get(f"/api/v1/stations/{sid}?crs=gcj02")
    assert r.json()["lng"] != d["lng"]


def test_hidden_station_is_404(api, engine, search_data) -> None:  # noqa: ANN001
    sid = search_data.hand_ids["情侣路驿站"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET feed_state = 'withdrawn' WHERE id = :i"), {"i": sid})
    try:
        assert api.get(f"/api/v1/stations/{sid}").status_code == 404
        assert sid not in [it["id"] for it in api.get("/api/v1/stations?q=情侣").json()["items"]]
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE stations SET feed_state = 'active' WHERE id = :i"), {"i": sid})


def test_reference(api) -> None:  # noqa: ANN001
    ref = api.get("/api/v1/reference").json()
    en = ref["enumerations"]
    for key in ("station_type", "scale", "facility_type", "payment", "availability", "sort", "station_status",
                "equipment_type", "connector_type", "connector_status", "district", "operator"):
        assert en[key], key
        assert {"value", "label", "label_en"} <= set(en[key][0])
    assert {d["value"] for d in en["district"]} >= {440402, 440403, 440404}
    assert ref["parameters"]["scale_bands_piles"]["medium"] == [10, 29]


def test_stats(api, engine) -> None:  # noqa: ANN001
    s = api.get("/api/v1/stats").json()
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT count(*), sum(pile_count), sum(connectors_total), count(DISTINCT operator_id) FROM stations "
            "WHERE feed_state = 'active' AND interconnected")).one()
        kw = conn.execute(text(
            "SELECT sum(e.power_kw)::float8 FROM equipment e JOIN stations s ON s.id = e.station_pk "
            "WHERE s.feed_state = 'active' AND s.interconnected")).scalar()
    t = s["totals"]
    assert (t["stations"], t["piles"], t["connectors"], t["operators"]) == tuple(int(x) for x in row)
    assert t["power_kw"] == pytest.approx(kw, abs=0.5)
    assert sum(r["stations"] for r in s["by_district"]) == t["stations"]
    assert sum(r["stations"] for r in s["by_operator"]) == t["stations"]
    assert sum(r["stations"] for r in s["by_station_type"]) == t["stations"]
    assert any(r["label"] == "香洲区" for r in s["by_district"])


def test_cors_for_get(api) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations?limit=1", headers={"Origin": "https://example.org"})
    assert r.headers.get("access-control-allow-origin") in ("*", "https://example.org")
    pre = api.options("/api/v1/stations", headers={"Origin": "https://example.org",
                                                   "Access-Control-Request-Method": "GET"})
    assert pre.status_code in (200, 204)

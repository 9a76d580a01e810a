"""Station and district tiles against the database: exactly-once, cluster sums, filters, caching,
errors, GCJ-02 and TileJSON."""

from __future__ import annotations

import gzip
import math
from collections import Counter

import pytest
from sqlalchemy import text

from geo.gcj02 import wgs84_to_gcj02
from services.stations.filters import StationFilter
from services.stations.summary import bump_version
from tests.integration.tiles.conftest import ZHUHAI, decode, inside, lnglat_to_tile, tiles_covering, wait_version

MVT = "application/vnd.mapbox-vector-tile"


def get_tile(client, layer: str, z: int, x: int, y: int, query: str = "", **headers: str):  # noqa: ANN001
    r = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{query}" if query else ""),
                   headers={"Accept-Encoding": "identity", **headers})
    return r


def features(client, z: int, query: str = "", box=ZHUHAI) -> list[dict]:  # noqa: ANN001
    """Every feature of the stations layer whose position lies inside its own tile."""
    out = []
    for _, x, y in tiles_covering(box, z):
        r = get_tile(client, "stations", z, x, y, query)
        assert r.status_code == 200, r.text
        layer = decode(r.content).get("stations")
        if layer:
            out.extend(dict(f, tile=(z, x, y)) for f in layer["features"] if inside(f))
    return out


def visible_ids_sql(engine, params: dict) -> set[int]:  # noqa: ANN001
    flt = StationFilter.from_params(params)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT s.id FROM stations s WHERE {flt.where_sql('s')}"), flt.sql_params())
        return {r[0] for r in rows}


# --- points ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("z", [12, 13])
def test_every_visible_station_appears_exactly_once_at_high_zoom(client, seeded, z) -> None:  # noqa: ANN001
    feats = features(client, z)
    counts = Counter(f["id"] for f in feats)
    assert set(counts) == set(seeded.visible)
    assert all(c == 1 for c in counts.values()), [i for i, c in counts.items() if c > 1]
    assert not set(counts) & seeded.hidden


def test_station_properties_match_the_database(client, seeded) -> None:  # noqa: ANN001
    pk, st = next((k, v) for k, v in seeded.visible.items() if v["name"] == "长隆快充站")
    z = 16
    x, y = lnglat_to_tile(st["lng"], st["lat"], z)
    r = get_tile(client, "stations", z, x, y)
    feats = [f for f in decode(r.content)["stations"]["features"] if f["id"] == pk]
    assert len(feats) == 1
    p = feats[0]["properties"]
    assert p["name"] == "长隆快充站"
    assert p["operator"] == st["operator"]
    assert p["operator_name"] in ("一号充电", "测试充电二号公司", "三号")
    assert p["station_type"] == st["station_type"]
    assert p["facility_types"] == ",".join(st["facility_types"])
    assert p["max_power_kw"] == pytest.approx(st["max_power_kw"])
    assert p["connectors_total"] == st["connectors_total"]
    assert p["connectors_free"] == st["connectors_free"]
    assert p["availability"] == st["availability"]
    assert "point_count" not in p
    # position: the station's own pixel at z16 (within rounding)
    n = 1 << z
    ux = ((st["lng"] + 180) / 360 * n - x) * 4096
    uy = ((1 - math.asinh(math.tan(math.radians(st["lat"]))) / math.pi) / 2 * n - y) * 4096
    gx, gy = feats[0]["geometry"]["coordinates"]
    assert abs(gx - ux) <= 1 and abs(gy - uy) <= 1


def test_buffer_holds_neighbours_points_but_they_are_not_counted(client, seeded) -> None:  # noqa: ANN001
    feats_all = []
    for _, x, y in tiles_covering(ZHUHAI, 13):
        layer = decode(get_tile(client, "stations", 13, x, y).content).get("stations")
        if layer:
            feats_all.extend(layer["features"])
    assert len(feats_all) >= len(seeded.visible)  # buffer copies may exist; never fewer


# --- clusters -------------------------------------------------------------------------------------
@pytest.mark.parametrize("z", [6, 8, 10, 11])
def test_cluster_counts_add_up_to_the_stations(client, seeded, engine, z) -> None:  # noqa: ANN001
    feats = features(client, z)
    assert feats and all("point_count" in f["properties"] for f in feats)
    ids = Counter(f["id"] for f in feats)
    assert all(c == 1 for c in ids.values()), "a grid cell must be emitted by one tile only"
    assert sum(f["properties"]["point_count"] for f in feats) == len(seeded.visible)
    with engine.connect() as conn:
        total, free = conn.execute(text(
            "SELECT sum(connectors_total), sum(connectors_free) FROM stations "
            "WHERE feed_state = 'active' AND interconnected")).one()
    assert sum(f["properties"]["connectors_total"] for f in feats) == total
    assert sum(f["properties"]["connectors_free"] for f in feats) == free


def test_stacked_stations_form_one_cluster_that_does_not_jump(client, seeded) -> None:  # noqa: ANN001
    # the two stations at the same spot are one cell at z10; the tile next door agrees on its id
    z = 10
    x, y = lnglat_to_tile(113.5431, 22.2231, z)
    feats = decode(get_tile(client, "stations", z, x, y).content)["stations"]["features"]
    here = [f for f in feats if inside(f) and f["properties"]["point_count"] >= 2]
    assert here
    again = decode(get_tile(client, "stations", z, x, y, "v=2").content)["stations"]["features"]
    assert sorted((f["id"], tuple(f["geometry"]["coordinates"])) for f in feats) == \
        sorted((f["id"], tuple(f["geometry"]["coordinates"])) for f in again)


# --- filters --------------------------------------------------------------------------------------
FILTERS = [
    "operator=MA5GTEST1",
    "operator=MA5GTEST1,MA5GTEST3",
    "station_type=50",
    "scale=large&scale=xlarge",
    "facility_type=dc",
    "facility_type=wireless,acdc",
    "payment=card",
    "available=true",
    "min_power=120",
    "q=长隆",
    "exclude_operator=MA5GTEST2",
    "district=440402",
    "operator=MA5GTEST2&facility_type=ac&available=1",
    "bbox=113.4,22.1,113.6,22.3",
    "lng=113.55&lat=22.25&radius=8000",
]


@pytest.mark.parametrize("query", FILTERS)
def test_filters_select_what_the_search_predicates_select(client, seeded, engine, query) -> None:  # noqa: ANN001
    from urllib.parse import parse_qs

    expected = visible_ids_sql(engine, parse_qs(query))
    got = Counter(f["id"] for f in features(client, 12, query))
    assert set(got) == expected
    assert all(c == 1 for c in got.values())
    clusters = features(client, 9, query)
    assert sum(f["properties"]["point_count"] for f in clusters) == len(expected)


def test_filter_errors_are_400_with_the_parameter(client, seeded) -> None:  # noqa: ANN001
    for query, param in [("facility_type=steam", "facility_type"), ("min_power=abc", "min_power"),
                         ("district=12", "district"), ("crs=bd09", "crs"), ("available=maybe", "available")]:
        r = get_tile(client, "stations", 12, 3337, 1786, query)
        assert r.status_code == 400, query
        body = r.json()
        assert body["param"] == param and body["message"]


# --- HTTP: caching, encoding, errors ---------------------------------------------------------------
def test_etag_304_gzip_and_cache_control(client, seeded, app, engine) -> None:  # noqa: ANN001
    z, (x, y) = 11, lnglat_to_tile(113.55, 22.25, 11)
    url = f"/tiles/stations/{z}/{x}/{y}.mvt"
    r1 = client.get(url, headers={"Accept-Encoding": "identity"})
    assert r1.status_code == 200 and r1.headers["content-type"].startswith(MVT)
    etag = r1.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    cc = r1.headers["cache-control"]
    assert "public" in cc and "max-age=" in cc and "s-maxage=" in cc
    assert "accept-encoding" in r1.headers["vary"].lower()
    assert "content-encoding" not in r1.headers
    decode(r1.content)  # a valid tile

    r2 = client.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["etag"] == etag

    # gzip: compressed exactly once (the app's compression middleware leaves it alone)
    r3 = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r3.status_code == 200
    if len(r1.content) >= 256:
        assert r3.headers["content-encoding"] == "gzip"
        assert r3.content == r1.content  # the client decoded it once and got the same tile
        assert r3.headers["etag"] != etag and r3.headers["etag"].startswith(etag[:-1])
        r4 = client.get(url, headers={"Accept-Encoding": "gzip", "If-None-Match": r3.headers["etag"]})
        assert r4.status_code == 304
    r5 = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r5.headers["x-tile-cache"] == "hit"

    # a data change (a status push bumps the version) changes the ETag; the old one no longer 304s
    with engine.begin() as conn:
        v = bump_version(conn, "stations")
    wait_version(app, "stations", v)
    r6 = client.get(url, headers={"Accept-Encoding": "identity", "If-None-Match": etag})
    assert r6.status_code == 200 and r6.headers["etag"] != etag

    # filters and crs are part of the ETag
    r7 = client.get(url + "?operator=MA5GTEST1", headers={"Accept-Encoding": "identity"})
    r8 = client.get(url + "?crs=gcj02", headers={"Accept-Encoding": "identity"})
    assert len({r6.headers["etag"], r7.headers["etag"], r8.headers["etag"]}) == 3
    # ... but not the order of values or cache-busting parameters
    a = client.get(url + "?operator=MA5GTEST1,MA5GTEST3&v=1").headers["etag"]
    b = client.get(url + "?operator=MA5GTEST3&operator=MA5GTEST1&v=2").headers["etag"]
    assert a == b


def test_304_does_not_touch_the_database(client, seeded, app, monkeypatch) -> None:  # noqa: ANN001
    z, (x, y) = 14, lnglat_to_tile(113.55, 22.25, 14)
    url = f"/tiles/stations/{z}/{x}/{y}.mvt?facility_type=dc"
    etag = client.get(url).headers["etag"]
    svc = app.state.tiles
    svc.cache.clear()

    def boom(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("database touched")

    monkeypatch.setattr(svc.renderer, "query_bytes", boom)
    monkeypatch.setattr(svc.versions, "refresh", boom)
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304


def test_wire_body_is_gzip_once(app, seeded) -> None:  # noqa: ANN001
    """Check the raw bytes on the wire (no client-side decoding)."""
    import asyncio

    async def run() -> tuple[dict, bytes]:
        z, (x, y) = 11, lnglat_to_tile(113.55, 22.25, 11)
        sent: list[dict] = []
        scope = {"type": "http", "method": "GET", "path": f"/tiles/stations/{z}/{x}/{y}.mvt", "raw_path": b"",
                 "query_string": b"", "headers": [(b"accept-encoding", b"gzip, deflate"), (b"host", b"t")],
                 "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("1.2.3.4", 1),
                 "root_path": "", "app": app}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(msg: dict) -> None:
            sent.append(msg)

        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return {k.decode().lower(): v.decode() for k, v in start["headers"]}, body

    from litestar.testing import TestClient

    with TestClient(app):  # runs startup
        headers, body = asyncio.run(run())
    assert headers["content-encoding"] == "gzip"
    assert "stations" in decode(gzip.decompress(body))  # one gunzip gives the tile


@pytest.mark.parametrize("path,status", [
    ("/tiles/stations/a/0/0.mvt", 400),
    ("/tiles/stations/1/0/-1.mvt", 400),
    ("/tiles/stations/1.5/0/0.mvt", 400),
    ("/tiles/stations/23/0/0.mvt", 404),
    ("/tiles/stations/99999999/0/0.mvt", 404),
    ("/tiles/stations/2/4/0.mvt", 404),
    ("/tiles/stations/2/0/4.mvt", 404),
    ("/tiles/stations/2/0/0.png", 404),
    ("/tiles/roads/2/0/0.mvt", 404),
    ("/tiles/roads.json", 404),
    ("/tiles/stations.xml", 404),
])
def test_bad_tile_addresses_are_400_or_404_with_a_message(client, path, status) -> None:  # noqa: ANN001
    r = client.get(path)
    assert r.status_code == status, (path, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["message"]


def test_empty_tile_is_200_and_empty(client, seeded) -> None:  # noqa: ANN001
    r = get_tile(client, "stations", 14, 0, 0)
    assert r.status_code == 200 and r.content == b"" and r.headers["etag"]


# --- GCJ-02 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("lng,lat", [(113.5767, 22.2707), (116.404, 39.915), (87.62, 43.83), (121.47, 31.23),
                                     (139.69, 35.68), (-0.1276, 51.5072), (113.3, 21.95)])
def test_sql_gcj02_shift_matches_geo_gcj02(engine, lng, lat) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        x, y = conn.execute(text("SELECT ST_X(g), ST_Y(g) FROM zh_wgs84_to_gcj02("
                                 "ST_SetSRID(ST_MakePoint(:x, :y), 4326)) g"), {"x": lng, "y": lat}).one()
    ex, ey = wgs84_to_gcj02(lng, lat)
    assert abs(x - ex) < 1e-9 and abs(y - ey) < 1e-9


def test_crs_gcj02_shifts_station_positions(client, seeded) -> None:  # noqa: ANN001
    pk, st = next(iter(seeded.visible.items()))
    glng, glat = wgs84_to_gcj02(st["lng"], st["lat"])
    z = 16
    x, y = lnglat_to_tile(glng, glat, z)
    feats = decode(get_tile(client, "stations", z, x, y, "crs=gcj02").content)["stations"]["features"]
    f = next(f for f in feats if f["id"] == pk)
    n = 1 << z
    ux = ((glng + 180) / 360 * n - x) * 4096
    uy = ((1 - math.asinh(math.tan(math.radians(glat))) / math.pi) / 2 * n - y) * 4096
    gx, gy = f["geometry"]["coordinates"]
    assert abs(gx - ux) <= 1 and abs(gy - uy) <= 1
    # and the plain tile puts it ~500 m away: not in the same z16 tile position
    wx, wy = lnglat_to_tile(st["lng"], st["lat"], z)
    assert (wx, wy) != (x, y) or pk not in {g["id"] for g in decode(
        get_tile(client, "stations", z, x, y).content).get("stations", {"features": []})["features"]
        if abs(g["geometry"]["coordinates"][0] - gx) <= 1}


def test_crs_gcj02_keeps_everything_exactly_once(client, seeded) -> None:  # noqa: ANN001
    feats = features(client, 12, "crs=gcj02")
    counts = Counter(f["id"] for f in feats)
    assert set(counts) == set(seeded.visible) and all(c == 1 for c in counts.values())
    clusters = features(client, 9, "crs=gcj02")
    assert sum(f["properties"]["point_count"] for f in clusters) == len(seeded.visible)


# --- districts and TileJSON -----------------------------------------------------------------------
def test_district_tiles_have_polygons_labels_and_city_outline(client) -> None:  # noqa: ANN001
    names, labels, cities = set(), set(), set()
    for _, x, y in tiles_covering(ZHUHAI, 9):
        r = get_tile(client, "districts", 9, x, y)
        assert r.status_code == 200
        t = decode(r.content)
        for f in t.get("districts", {}).get("features", []):
            assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
            names.add(f["properties"]["name"])
        for f in t.get("district_labels", {}).get("features", []):
            if inside(f):
                labels.add(f["properties"]["name"])
        cities |= {f["properties"]["city_adcode"] for f in t.get("cities", {}).get("features", [])}
    assert {"香洲区", "斗门区", "金湾区"} <= names
    assert {"香洲区", "斗门区", "金湾区"} == labels
    assert cities == {440400}
    # crs=gcj02 works for districts too
    x, y = lnglat_to_tile(113.55, 22.25, 10)
    assert decode(get_tile(client, "districts", 10, x, y, "crs=gcj02").content)["districts"]["features"]


def test_tilejson(client) -> None:  # noqa: ANN001
    r = client.get("/tiles/stations.json?operator=MA5GTEST1&crs=gcj02")
    assert r.status_code == 200
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    url, _, qs = doc["tiles"][0].partition("?")
    assert url.endswith("/tiles/stations/{z}/{x}/{y}.mvt")
    assert sorted(qs.split("&")) == ["crs=gcj02", "operator=MA5GTEST1"]
    assert doc["tiles"][0].startswith("http")
    assert 0 <= doc["minzoom"] < doc["maxzoom"] <= 22
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "stations"
    assert {"id", "name", "operator", "connectors_free", "availability", "point_count"} <= set(layer["fields"])
    d = client.get("/tiles/districts.json").json()
    assert [v["id"] for v in d["vector_layers"]] == ["districts", "district_labels", "cities"]
    assert client.get("/tiles/stations.json?facility_type=nope").status_code == 400

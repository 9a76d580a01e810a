"""Prices in the open API (issue 15, item 5): the tariff of a station and its connectors, the price
now following an injected clock, the estimate across a period boundary, ``max_price``,
``sort=price`` with cursors to the end, and the price now in lists, GeoJSON, CSV and tiles.

Tariffs are stored through ``services.prices.store.store_tariffs`` from ``read_policy`` readings
at a fixed moment; the app's clock (``app.state.clock``) is moved instead of sleeping.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qsl

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from services.prices.store import TariffWrite, store_tariffs, tick_prices
from services.prices.tariff import CHINA_TZ, read_policy
from services.stations.filters import StationFilter
from services.stations.summary import data_version
from tests.integration.search.conftest import HAND_PREFIX, PRICED_AT

pytestmark = pytest.mark.usefixtures("search_data")

T0 = PRICED_AT  # 2026-12-06 09:30 China time
TOU = {"SumPeriod": 3, "PolicyInfos": [  # 0.90 at night, 1.25 by day
    {"StartTime": "000000", "ElecPrice": "0.30", "SevicePrice": "0.60"},
    {"StartTime": "080000", "ElecPrice": "0.65", "SevicePrice": "0.60"},
    {"StartTime": "220000", "ElecPrice": "0.30", "SevicePrice": "0.60"}]}
FLAT = {"SumPeriod": 1, "PolicyInfos": [{"StartTime": "000000", "ElecPrice": "0.50", "SevicePrice": "0.50"}]}
DEAR = {"SumPeriod": 1, "PolicyInfos": [{"StartTime": "000000", "ElecPrice": "0.90", "SevicePrice": "0.60"}]}


def at(hour: int, minute: int = 0, day: int = 6) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=CHINA_TZ)


def connectors_of(engine, station_pk: int) -> dict[str, float]:  # noqa: ANN001
    with engine.connect() as conn:
        return {r.connector_id: float(r.power_kw) for r in conn.execute(text(
            "SELECT connector_id, power_kw FROM connectors WHERE station_pk = :s ORDER BY connector_id"),
            {"s": station_pk})}


@pytest.fixture(scope="module")
def priced(engine, search_data, api_app) -> Iterator[dict]:  # noqa: ANN001
    """长隆 (DC 120 kW on TOU, AC 7 kW flat from fee texts: varies, mixed), 斗门 (12 DC on TOU),
    拱北 (AC flat 1.50), 情侣路 unpriced."""
    ids = search_data.hand_ids
    cl = connectors_of(engine, ids["长隆海洋王国充电站"])
    dc, ac = sorted(cl, key=lambda c: -cl[c])
    dm = connectors_of(engine, ids["斗门井岸站"])
    gb = connectors_of(engine, ids["拱北口岸停车场充电站"])
    tou, flat, dear = read_policy(TOU), read_policy(FLAT), read_policy(DEAR)
    with engine.begin() as conn:
        store_tariffs(conn, f"{HAND_PREFIX}000001", [TariffWrite(dc, tou, "policy", TOU),
                                                     TariffWrite(ac, flat, "fee_text"),
                                                     *[TariffWrite(c, dear, "policy") for c in gb]], now=T0)
        store_tariffs(conn, f"{HAND_PREFIX}000002", [TariffWrite(c, tou, "policy") for c in dm], now=T0)
    api_app.state.clock = lambda: T0
    yield {"ids": ids, "dc": dc, "ac": ac}
    api_app.state.clock = None


def detail(api, pk: int, query: str = "") -> dict:  # noqa: ANN001
    r = api.get(f"/api/v1/stations/{pk}" + (f"?{query}" if query else ""))
    assert r.status_code == 200, r.text
    return r.json()


def connector(d: dict, cid: str) -> dict:
    return next(c for e in d["equipment"] for c in e["connectors"] if c["connector_id"] == cid)


# --- the tariff object --------------------------------------------------------------------------
def test_station_and_connector_tariffs(api, priced) -> None:  # noqa: ANN001
    d = detail(api, priced["ids"]["长隆海洋王国充电站"])
    t = d["tariff"]
    assert set(t) == {"source", "currency", "varies", "updated_at", "checked_at", "periods", "now"}
    assert (t["source"], t["currency"], t["varies"]) == ("mixed", "CNY", True)
    # the cheapest per period: TOU at night, the flat tariff by day
    assert t["periods"] == [
        {"start": "00:00", "end": "08:00", "electricity": "0.3000", "service": "0.6000", "total": "0.9000"},
        {"start": "08:00", "end": "22:00", "electricity": "0.5000", "service": "0.5000", "total": "1.0000"},
        {"start": "22:00", "end": "24:00", "electricity": "0.3000", "service": "0.6000", "total": "0.9000"}]
    assert t["now"] == {"electricity": "0.5000", "service": "0.5000", "total": "1.0000",
                        "until": "2026-12-06T22:00:00+08:00"}
    assert datetime.fromisoformat(t["updated_at"]).utcoffset() == timedelta(hours=8)
    assert t["checked_at"] == "2026-12-06T09:30:00+08:00"
    assert d["price_now"] == "1.0000"

    dc, ac = connector(d, priced["dc"]), connector(d, priced["ac"])
    assert dc["tariff"]["source"] == "policy" and dc["tariff"]["varies"] is False
    assert [p["total"] for p in dc["tariff"]["periods"]] == ["0.9000", "1.2500", "0.9000"]
    assert dc["tariff"]["now"] == {"electricity": "0.6500", "service": "0.6000", "total": "1.2500",
                                   "until": "2026-12-06T22:00:00+08:00"}
    assert dc["tariff"]["updated_at"] == dc["tariff"]["checked_at"] == "2026-12-06T09:30:00+08:00"
    assert ac["tariff"]["source"] == "fee_text"
    assert ac["tariff"]["periods"] == [{"start": "00:00", "end": "24:00", "electricity": "0.5000",
                                        "service": "0.5000", "total": "1.0000"}]
    assert ac["tariff"]["now"]["until"] == "2026-12-07T00:00:00+08:00"
    assert "estimate" not in d and "estimate" not in dc  # only with ?kwh


def test_one_tariff_station_does_not_vary(api, priced) -> None:  # noqa: ANN001
    d = detail(api, priced["ids"]["斗门井岸站"])
    assert (d["tariff"]["source"], d["tariff"]["varies"]) == ("policy", False)
    assert all(c["tariff"]["periods"] == d["tariff"]["periods"] for e in d["equipment"] for c in e["connectors"])


def test_unpriced_station_says_null(api, priced) -> None:  # noqa: ANN001
    d = detail(api, priced["ids"]["情侣路驿站"], "kwh=30")
    assert d["tariff"] is None and d["price_now"] is None and d["estimate"] is None
    c = d["equipment"][0]["connectors"][0]
    assert c["tariff"] is None and c["estimate"] is None


def test_now_follows_the_clock(api, api_app, priced) -> None:  # noqa: ANN001
    pk = priced["ids"]["长隆海洋王国充电站"]
    r0 = api.get(f"/api/v1/stations/{pk}")
    try:
        api_app.state.clock = lambda: at(23, 10)
        d = detail(api, pk)
        assert d["tariff"]["now"] == {"electricity": "0.3000", "service": "0.6000", "total": "0.9000",
                                      "until": "2026-12-07T00:00:00+08:00"}
        assert connector(d, priced["dc"])["tariff"]["now"]["total"] == "0.9000"
        assert d["price_now"] == "0.9000"
        # a new period is a new answer: the old ETag no longer matches
        r = api.get(f"/api/v1/stations/{pk}", headers={"If-None-Match": r0.headers["etag"]})
        assert r.status_code == 200 and r.headers["etag"] != r0.headers["etag"]
        api_app.state.clock = lambda: at(7, 59)
        assert detail(api, pk)["tariff"]["now"]["until"] == "2026-12-06T08:00:00+08:00"
    finally:
        api_app.state.clock = lambda: T0


def test_etag_is_stable_within_a_period_and_minute(api, api_app, priced) -> None:  # noqa: ANN001
    pk = priced["ids"]["长隆海洋王国充电站"]
    for query in ("", "?kwh=30"):
        r1 = api.get(f"/api/v1/stations/{pk}{query}")
        api_app.state.clock = lambda: T0 + timedelta(seconds=40)  # same minute, same period
        try:
            r2 = api.get(f"/api/v1/stations/{pk}{query}", headers={"If-None-Match": r1.headers["etag"]})
        finally:
            api_app.state.clock = lambda: T0
        assert r2.status_code == 304, query
        assert "max-age=0" in r1.headers["cache-control"] and "must-revalidate" in r1.headers["cache-control"]
    assert api.get(f"/api/v1/stations/{pk}").headers["etag"] != api.get(f"/api/v1/stations/{pk}?kwh=30").headers["etag"]


# --- the estimate -------------------------------------------------------------------------------
def test_estimate_across_a_period_boundary(api, api_app, priced) -> None:  # noqa: ANN001
    pk = priced["ids"]["长隆海洋王国充电站"]
    api_app.state.clock = lambda: at(21, 45) + timedelta(seconds=30)
    try:
        d = detail(api, pk, "kwh=60")
    finally:
        api_app.state.clock = lambda: T0
    e = connector(d, priced["dc"])["estimate"]
    # 120 kW from 21:45 (the minute): 30 kWh by day at 1.25, then 30 kWh at night at 0.90
    assert (e["kwh"], e["power_kw"], e["minutes"]) == (60.0, 120.0, 30)
    assert e["start"] == "2026-12-06T21:45:00+08:00" and e["end"] == "2026-12-06T22:15:00+08:00"
    assert [(p["kwh"], p["total"]) for p in e["periods"]] == [(30.0, "1.2500"), (30.0, "0.9000")]
    assert (e["electricity_yuan"], e["service_yuan"], e["yuan"]) == ("28.50", "36.00", "64.50")
    slow = connector(d, priced["ac"])["estimate"]
    assert slow["yuan"] == "60.00" and slow["minutes"] == 514  # 7 kW: 8 h 34 min at the flat 1.00
    # the station: the cheapest connector's estimate, naming it
    assert d["estimate"] == {"connector_id": priced["ac"], **slow}


def test_estimate_of_a_station_with_one_tariff(api, priced) -> None:  # noqa: ANN001
    d = detail(api, priced["ids"]["斗门井岸站"], "kwh=30")
    assert d["estimate"]["yuan"] == "37.50" and d["estimate"]["minutes"] == 30  # 60 kW by day at 1.25
    assert d["estimate"]["connector_id"] == min(c["connector_id"] for e in d["equipment"] for c in e["connectors"])


@pytest.mark.parametrize("query", ["kwh=0", "kwh=-1", "kwh=500.01", "kwh=abc", "kwh=nan", "kwh=inf", "kwh=1e400",
                                   "kwh=30&kwh=40", "kwh=%00", "kwh=" + "9" * 30])
def test_bad_kwh_is_400_naming_it(api, priced, query) -> None:  # noqa: ANN001
    r = api.get(f"/api/v1/stations/{priced['ids']['斗门井岸站']}?{query}")
    assert r.status_code == 400, r.text
    assert r.json()["param"] == "kwh"


def test_detail_parameters(api, priced) -> None:  # noqa: ANN001
    pk = priced["ids"]["斗门井岸站"]
    assert api.get(f"/api/v1/stations/{pk}?kwh=500").status_code == 200
    assert api.get(f"/api/v1/stations/{pk}?kwh=").status_code == 200
    r = api.get(f"/api/v1/stations/{pk}?kwhh=30")
    assert r.status_code == 400 and r.json()["param"] == "kwhh" and "kwh" in r.json()["message"]
    # the map popup's route takes the same parameters and gives the same shape
    m = api.get(f"/map/stations/{pk}.json?kwh=30&lang=en")
    assert m.status_code == 200 and m.json()["estimate"]["yuan"] == "37.50"
    assert api.get(f"/map/stations/{pk}.json?kwh=0").json()["param"] == "kwh"


# --- lists, GeoJSON, CSV --------------------------------------------------------------------------
def test_price_now_in_items_geojson_and_csv(api, priced) -> None:  # noqa: ANN001
    ids = priced["ids"]
    want = {ids["长隆海洋王国充电站"]: "1.0000", ids["斗门井岸站"]: "1.2500", ids["拱北口岸停车场充电站"]: "1.5000",
            ids["情侣路驿站"]: None}
    items = api.get(f"/api/v1/stations?operator={HAND_PREFIX}000001,{HAND_PREFIX}000002&limit=10").json()["items"]
    assert {it["id"]: it["price_now"] for it in items} == want
    fc = api.get(f"/api/v1/stations.geojson?operator={HAND_PREFIX}000001,{HAND_PREFIX}000002").json()
    assert {f["id"]: f["properties"]["price_now"] for f in fc["features"]} == want
    r = api.get(f"/api/v1/stations.csv?operator={HAND_PREFIX}000001,{HAND_PREFIX}000002")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert {int(x["id"]): x["price_now"] or None for x in rows} == want


# --- max_price and sort=price ---------------------------------------------------------------------
def priced_rows(engine) -> list[tuple[int, Decimal | None, str]]:  # noqa: ANN001
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT id, price_now, operator_id FROM stations WHERE feed_state = 'active' AND interconnected"))]


@pytest.mark.parametrize("max_price", ["1.0", "0.9999", "1.2437", "1.5", "0"])
def test_max_price(api, engine, priced, max_price) -> None:  # noqa: ANN001
    want = {i for i, p, _ in priced_rows(engine) if p is not None and p <= Decimal(max_price)}
    body = api.get(f"/api/v1/stations?max_price={max_price}&limit=500").json()
    assert body["total"] == len(want)
    seen = [it["id"] for it in body["items"]]
    cursor = body["next_cursor"]
    while cursor:
        page = api.get(f"/api/v1/stations?max_price={max_price}&limit=500&facets=false&cursor={cursor}").json()
        seen += [it["id"] for it in page["items"]]
        cursor = page["next_cursor"]
    assert set(seen) == want and len(seen) == len(want)
    assert sum(fv["count"] for fv in body["facets"]["operator"]) == len(want)


@pytest.mark.parametrize("value", ["-0.1", "abc", "100.5", "nan", "inf"])
def test_bad_max_price_is_400_naming_it(api, value) -> None:  # noqa: ANN001
    for path in ("/api/v1/stations", "/api/v1/stations.geojson", "/api/v1/stations.csv", "/tiles/stations/12/3340/1786.mvt"):
        r = api.get(f"{path}?max_price={value}")
        assert r.status_code == 400 and r.json()["param"] == "max_price", (path, r.text)


def expected_by_price(engine, query: str) -> list[tuple[int, Decimal | None]]:  # noqa: ANN001
    """(id, price now) of the matches in the order sort=price promises, by brute force on stations."""
    params = dict(parse_qsl(query.lstrip("&")))
    since = params.pop("updated_since", None)
    flt = StationFilter.from_params(params)
    where = flt.where_sql("s") + (" AND s.updated_at >= :since" if since else "")
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            f"SELECT s.id, s.price_now FROM stations s WHERE {where} ORDER BY s.price_now NULLS LAST, s.id"),
            {**flt.sql_params(), "since": since})]


@pytest.mark.parametrize("query", ["", "&max_price=1.3", "&facility_type=dc", "&updated_since=2000-01-01T00:00:00Z",
                                   "&q=cd&operator=SGN000002,SHD000001"])
def test_sort_by_price_pages_to_the_end(api, engine, priced, query) -> None:  # noqa: ANN001
    """Cheapest first, ties by id, unpriced last; cursors walk every match exactly once."""
    want = expected_by_price(engine, query)
    assert want
    if query in ("", "&facility_type=dc"):
        assert want[-1][1] is None and want[0][1] is not None  # both kinds are there
    seen: list[tuple[int, Decimal | None]] = []
    cursor = None
    while True:
        r = api.get(f"/api/v1/stations?sort=price&limit=37&facets=false{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        seen += [(it["id"], Decimal(it["price_now"]) if it["price_now"] else None) for it in body["items"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == want, query  # no duplicates, no gaps, the same order


def test_sort_by_price_cursor_is_bound_to_its_query(api, priced) -> None:  # noqa: ANN001
    c = api.get("/api/v1/stations?sort=price&limit=2&facets=false").json()["next_cursor"]
    assert api.get(f"/api/v1/stations?sort=name&limit=2&cursor={c}").json()["param"] == "cursor"
    assert api.get(f"/api/v1/stations?sort=price&max_price=1&limit=2&cursor={c}").json()["param"] == "cursor"


# --- the price moves at a boundary: search, ETags and tiles follow --------------------------------
def test_tick_moves_price_now_and_everything_follows(api, api_app, engine, priced) -> None:  # noqa: ANN001
    from tests.integration.tiles.conftest import lnglat_to_tile, wait_version

    pk = priced["ids"]["斗门井岸站"]
    url = f"/api/v1/stations?operator={HAND_PREFIX}000002&sort=price&facets=false"
    before = api.get(url)
    assert {it["id"]: it["price_now"] for it in before.json()["items"]}[pk] == "1.2500"
    z = 16
    x, y = lnglat_to_tile(113.2950, 22.2080, z)

    def tile_price() -> float | None:
        r = api.get(f"/tiles/stations/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200
        feats = mapbox_vector_tile.decode(r.content)["stations"]["features"]
        return next(f for f in feats if f["id"] == pk)["properties"].get("price_now")

    assert tile_price() == pytest.approx(1.25)
    try:
        with engine.connect() as conn:
            v0 = data_version(conn)
        assert tick_prices(engine, now=at(22, 0)) > 0
        with engine.connect() as conn:
            v1 = data_version(conn)
        assert v1 > v0
        wait_version(api_app, "stations", v1)
        after = api.get(url, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200
        assert {it["id"]: it["price_now"] for it in after.json()["items"]}[pk] == "0.9000"
        assert api.get(f"/api/v1/stations?max_price=0.9&operator={HAND_PREFIX}000002").json()["total"] == 1
        assert tile_price() == pytest.approx(0.9)  # the tile cache followed the data version
    finally:
        tick_prices(engine, now=at(9, 30, day=7))  # back to the day price (a later day: ticks go forward)
    assert tile_price_after_reset(api, pk, z, x, y, api_app, engine) == pytest.approx(1.25)


def tile_price_after_reset(api, pk, z, x, y, api_app, engine):  # noqa: ANN001, ANN201
    from tests.integration.tiles.conftest import wait_version

    with engine.connect() as conn:
        wait_version(api_app, "stations", data_version(conn))
    r = api.get(f"/tiles/stations/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    return next(f for f in mapbox_vector_tile.decode(r.content)["stations"]["features"]
                if f["id"] == pk)["properties"].get("price_now")


def test_unpriced_stations_carry_no_price_in_tiles(api, priced) -> None:  # noqa: ANN001
    from tests.integration.tiles.conftest import lnglat_to_tile

    z = 16
    x, y = lnglat_to_tile(113.5800, 22.2700, z)  # 情侣路驿站
    r = api.get(f"/tiles/stations/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    f = next(f for f in mapbox_vector_tile.decode(r.content)["stations"]["features"]
             if f["id"] == priced["ids"]["情侣路驿站"])
    assert "price_now" not in f["properties"]
    assert "price_now" in api.get("/tiles/stations.json").json()["vector_layers"][0]["fields"]


def test_reference_and_openapi_document_the_prices(api) -> None:  # noqa: ANN001
    ref = api.get("/api/v1/reference").json()
    assert {"max_price", "kwh", "prices"} <= set(ref["parameters"])
    assert "price" in {s["value"] for s in ref["enumerations"]["sort"]}
    doc = api.get("/api/docs/openapi.json").json()
    detail = doc["paths"]["/api/v1/stations/{station_pk}"]["get"]
    assert "kwh" in {p["name"] for p in detail["parameters"]}
    assert "max_price" in {p["name"] for p in doc["paths"]["/api/v1/stations"]["get"]["parameters"]}
    schemas = doc["components"]["schemas"]
    assert {"tariff", "estimate", "price_now"} <= set(schemas["StationDetail"]["properties"])
    assert {"source", "currency", "varies", "updated_at", "checked_at", "periods", "now"} == set(
        schemas["TariffOut"]["properties"])


@pytest.mark.parametrize("z", [9, 13])
def test_tiles_filter_on_max_price(api, engine, priced, z) -> None:  # noqa: ANN001
    """Clusters (z9, clustered per request: the per-facet cells know no prices) and single stations
    (z13) count exactly the stations whose price now is at most max_price."""
    from tests.integration.tiles.conftest import decode, inside, tiles_covering

    with engine.connect() as conn:
        want = conn.execute(text("SELECT count(*) FROM stations WHERE feed_state = 'active' AND interconnected "
                                 "AND price_now <= 1.1")).scalar_one()
    n = 0
    for _, x, y in tiles_covering((113.0, 21.8, 114.0, 22.6), z):
        r = api.get(f"/tiles/stations/{z}/{x}/{y}.mvt?max_price=1.1", headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200
        for f in decode(r.content).get("stations", {}).get("features", []):
            if inside(f):
                n += f["properties"].get("point_count", 1)
                assert z < 12 or f["properties"]["price_now"] <= 1.1
    assert n == want > 0

"""The public side of measured reliability: each station's 30-day figures on the station (open API
detail, search items, the map's JSON), ``min_uptime`` and ``sort=uptime`` in the search, the week
profile, and the job that keeps the figures fresh.

The history is written by the feed's own store (``ingest.store.store_status_batches``, as a pull
stores it) at chosen moments of May 2026 (its own partition), then aggregated by the rollup; every
expected figure is counted by hand below. The window at NOW (31 May 12:00, China) is 1 May 00:00 to
NOW: 30.5 days, 2,635,200 s per connector, all of it open (the stations are open all day).

* S1, two connectors: c0 faults 10 May 08:00-14:00 and 20 May 08:00 (offline from 10:00) to 12:00,
  so 36,000 s down and 2 faults, the last 20 May 08:00; c1 charges 15 May (a Friday) 18:00-20:00.
  Uptime 5,234,400 / 5,270,400 = 0.99317 → 0.9932.
* S2: offline 25 May 00:00 to 26 May 00:00 (offline is down but not a fault): 0.96721 → 0.9672.
* S3: charging 18:00-19:00 every day (up): 1.0, and busy at 18:00 every day of the week.
* S4: never reported: no uptime (null), no faults.
* S5: a fault 1 May 06:00 to 2 May 06:00: 0.9672 like S2 (ties are ordered by id), 1 fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ingest.store import store_status_batches
from services.prices.tariff import CHINA_TZ
from services.reliability.jobs import maintain
from services.reliability.partitions import make_partition
from services.reliability.rollup import rollup_day
from services.reliability.settings import ReliabilitySettings
from services.reliability.summary import refresh_station_reliability
from services.stations.summary import data_version, refresh_station_summaries
from tests.integration.search.conftest import make_search_app

OP = "RLP000001"
MAY = date(2026, 5, 1)
NOW = datetime(2026, 5, 31, 12, 0, tzinfo=CHINA_TZ)


def at(day: int, hour: float = 0) -> datetime:
    """China time on a day of May 2026."""
    return datetime(2026, 5, day, tzinfo=CHINA_TZ) + timedelta(hours=hour)


@dataclass
class Built:
    ids: dict[str, int]  # S1 .. S5 -> station pk


def _station(conn, sid: str, connectors: int) -> int:  # noqa: ANN001
    pk = conn.execute(text("""
        INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, lat_gcj02,
                              geom, geom_3857, district_adcode, feed_state, interconnected, busine_hours,
                              connectors_total)
        VALUES (:op, :sid, :name, 1, 50, 113.58, 22.27, ST_SetSRID(ST_MakePoint(:lng, 22.273), 4326),
                ST_Transform(ST_SetSRID(ST_MakePoint(:lng, 22.273), 4326), 3857), 440402, 'active', true,
                '00:00-24:00', :n)
        RETURNING id"""), {"op": OP, "sid": sid, "name": f"可用率测试站{sid}", "n": connectors,
                           "lng": 113.56 + int(sid[1:]) * 0.002}).scalar_one()
    for i in range(connectors):
        eq = conn.execute(text("INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, "
                               "power_kw) VALUES (:s, :op, :e, 1, 60) RETURNING id"),
                          {"s": pk, "op": OP, "e": f"{sid}E{i}"}).scalar_one()
        conn.execute(text("INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, "
                          "connector_type, power_kw) VALUES (:e, :s, :op, :c, 4, 60)"),
                     {"e": eq, "s": pk, "op": OP, "c": f"{sid}C{i}"})
    # its StationStatus (50, normal) holds since long before May
    conn.execute(text("UPDATE station_status_history SET at = '2026-01-01T00:00:00+08:00' WHERE station_pk = :s"),
                 {"s": pk})
    return pk


def _events() -> list[tuple[datetime, str, str, int]]:
    """(time, station, connector, status) of every report, as written above."""
    ev = [(at(1), "S1", "S1C0", 1), (at(1), "S1", "S1C1", 1), (at(1), "S2", "S2C0", 1), (at(1), "S3", "S3C0", 1),
          (at(1), "S5", "S5C0", 1),
          (at(10, 8), "S1", "S1C0", 255), (at(10, 14), "S1", "S1C0", 1),
          (at(15, 18), "S1", "S1C1", 3), (at(15, 20), "S1", "S1C1", 1),
          (at(20, 8), "S1", "S1C0", 255), (at(20, 10), "S1", "S1C0", 0), (at(20, 12), "S1", "S1C0", 1),
          (at(25), "S2", "S2C0", 0), (at(26), "S2", "S2C0", 1),
          (at(1, 6), "S5", "S5C0", 255), (at(2, 6), "S5", "S5C0", 1)]
    for d in range(1, 31):
        ev += [(at(d, 18), "S3", "S3C0", 3), (at(d, 19), "S3", "S3C0", 1)]
    return sorted(ev)


def _clear(conn) -> None:  # noqa: ANN001
    conn.execute(text("DELETE FROM stations WHERE operator_id = :op"), {"op": OP})
    conn.execute(text("DELETE FROM connector_status WHERE operator_id = :op"), {"op": OP})
    conn.execute(text("DELETE FROM reliability_days WHERE day BETWEEN '2026-05-01' AND '2026-05-31'"))
    conn.execute(text("DELETE FROM uptime_months WHERE month = '2026-05-01'"))


@pytest.fixture(scope="module")
def built(engine: Engine) -> Iterator[Built]:
    with engine.begin() as conn:
        make_partition(conn, MAY)
        _clear(conn)
        conn.execute(text("INSERT INTO operators (operator_id, name) VALUES (:o, '可用率测试') "
                          "ON CONFLICT DO NOTHING"), {"o": OP})
        ids = {sid: _station(conn, sid, 2 if sid == "S1" else 1) for sid in ("S1", "S2", "S3", "S4", "S5")}
    # the feed's store, one pull per moment, in time order
    events = _events()
    with engine.begin() as conn:
        for t in sorted({e[0] for e in events}):
            infos = [{"StationID": s, "ConnectorStatusInfos": [{"ConnectorID": c, "Status": st}]}
                     for tt, s, c, st in events if tt == t]
            store_status_batches(conn, OP, [(t.astimezone(UTC), infos)], source="pull")
        refresh_station_summaries(conn, ids.values())  # free counts and availability, as the sync does
    with engine.begin() as conn:
        for d in range(1, 31):
            rollup_day(conn, date(2026, 5, d))
        rollup_day(conn, date(2026, 5, 31), NOW)
        refresh_station_reliability(conn, NOW)
    yield Built(ids)
    with engine.begin() as conn:
        _clear(conn)


@pytest.fixture(scope="module")
def papp(db_url, tmp_path_factory, database):  # noqa: ANN001, ANN201
    app = make_search_app(db_url, tmp_path_factory.mktemp("reliability-public"), database)
    app.state.clock = lambda: NOW
    return app


@pytest.fixture()
def api(papp) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(papp, base_url="http://127.0.0.1:8000") as c:
        yield c


S1 = {"uptime_30d": 0.9932, "faults_30d": 2, "last_fault_at": "2026-05-20T00:00:00+00:00"}
S2 = {"uptime_30d": 0.9672, "faults_30d": 0, "last_fault_at": None}
S3 = {"uptime_30d": 1.0, "faults_30d": 0, "last_fault_at": None}
S4 = {"uptime_30d": None, "faults_30d": 0, "last_fault_at": None}
S5 = {"uptime_30d": 0.9672, "faults_30d": 1, "last_fault_at": "2026-04-30T22:00:00+00:00"}


def test_the_figures_are_those_counted_by_hand(engine, built) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT station_pk, up4 FROM station_reliability WHERE station_pk = ANY(:ids)"),
                                 {"ids": list(built.ids.values())}).all())
        narrow = dict(conn.execute(text("SELECT id, up4 FROM station_search WHERE id = ANY(:ids)"),
                                   {"ids": list(built.ids.values())}).all())
        window = conn.execute(text("SELECT since, until FROM station_reliability_window")).one()
    i = built.ids
    assert rows == {i["S1"]: 9932, i["S2"]: 9672, i["S3"]: 10000, i["S5"]: 9672}  # S4: nothing observed
    assert narrow == {**rows, i["S4"]: None}
    assert window == (at(1), NOW)
    assert round(5234400 / 5270400, 4) == 0.9932 and round(2548800 / 2635200, 4) == 0.9672


def test_the_station_detail_and_the_map_json(api, built) -> None:  # noqa: ANN001
    for name, expected in (("S1", S1), ("S2", S2), ("S3", S3), ("S4", S4), ("S5", S5)):
        pk = built.ids[name]
        body = api.get(f"/api/v1/stations/{pk}").json()
        assert body["reliability"] == expected, name
        popup = api.get(f"/map/stations/{pk}.json").json()
        assert popup["reliability"] == expected and popup["occupancy_profile"] == body["occupancy_profile"]
    # the week profile: Monday first, China hours, the 8 weeks before today (1-30 May)
    s1 = api.get(f"/api/v1/stations/{built.ids['S1']}").json()["occupancy_profile"]
    assert len(s1) == 7 and all(len(day) == 24 for day in s1)
    friday = date(2026, 5, 15).weekday()
    assert friday == 4
    # 15 May 18:00-20:00, one of two connectors, on one of five Fridays: 3,600 of 36,000 s in each hour
    assert s1[friday][18] == s1[friday][19] == 0.1
    assert all(v == 0.0 for d in range(7) for h, v in enumerate(s1[d]) if (d, h) not in ((4, 18), (4, 19)))
    s3 = api.get(f"/api/v1/stations/{built.ids['S3']}").json()["occupancy_profile"]
    assert all(day[18] == 1.0 and max(day[:18] + day[19:]) == 0.0 for day in s3)
    s4 = api.get(f"/api/v1/stations/{built.ids['S4']}").json()["occupancy_profile"]
    assert all(v is None for day in s4 for v in day)  # never observed


def _ids(api, **params) -> list[int]:  # noqa: ANN001
    r = api.get("/api/v1/stations", params={"operator": OP, **params})
    assert r.status_code == 200, r.text
    return [it["id"] for it in r.json()["items"]]


def test_min_uptime(api, built) -> None:  # noqa: ANN001
    i = built.ids
    assert _ids(api, min_uptime="0.99") == sorted([i["S1"], i["S3"]])
    assert _ids(api, min_uptime="0.9932") == sorted([i["S1"], i["S3"]])  # as shown: 0.9932 matches 0.9932
    assert _ids(api, min_uptime="0.99321") == [i["S3"]]
    assert _ids(api, min_uptime="0.9672") == sorted([i["S1"], i["S2"], i["S3"], i["S5"]])
    assert _ids(api, min_uptime="0") == sorted([i["S1"], i["S2"], i["S3"], i["S5"]])  # not S4: nothing observed
    assert _ids(api, min_uptime="1") == [i["S3"]]
    body = api.get("/api/v1/stations", params={"operator": OP, "min_uptime": "0.97"}).json()
    assert body["total"] == 2 and {f["value"]: f["count"] for f in body["facets"]["operator"]}[OP] == 2
    item = next(it for it in body["items"] if it["id"] == i["S1"])
    assert item["reliability"] == S1  # the figures on search items too
    # the text search's matches, the wide path (updated_since reads stations) and the GeoJSON agree
    assert _ids(api, min_uptime="0.99", q="可用率测试站") == sorted([i["S1"], i["S3"]])
    assert api.get("/api/v1/stations", params={"q": "可用率测试站", "min_uptime": "0.99"}).json()["total"] == 2
    assert _ids(api, min_uptime="0.99", updated_since="2020-01-01T00:00:00Z") == sorted([i["S1"], i["S3"]])
    geo = api.get("/api/v1/stations.geojson", params={"operator": OP, "min_uptime": "0.99"}).json()
    assert sorted(f["id"] for f in geo["features"]) == sorted([i["S1"], i["S3"]])


def test_min_uptime_on_the_map_tiles_and_the_csv(api, built) -> None:  # noqa: ANN001
    from tests.integration.tiles.conftest import decode, lnglat_to_tile

    i = built.ids
    x, y = lnglat_to_tile(113.566, 22.273, 15)  # S1..S5 lie within 0.01 degrees of it
    shown = set()
    for dx in (-1, 0, 1):
        r = api.get(f"/tiles/stations/15/{x + dx}/{y}.mvt", params={"operator": OP, "min_uptime": "0.99"})
        assert r.status_code == 200, r.text
        shown |= {f["id"] for f in decode(r.content).get("stations", {}).get("features", [])}
    assert shown == {i["S1"], i["S3"]}
    assert api.get(f"/tiles/stations/15/{x}/{y}.mvt", params={"min_uptime": "2"}).status_code == 400
    csv = api.get("/api/v1/stations.csv", params={"operator": OP, "min_uptime": "0.99"}).text.splitlines()
    assert len(csv) == 3 and {line.split(",")[0].lstrip("\ufeff") for line in csv[1:]} == {str(i["S1"]), str(i["S3"])}


def test_sort_by_uptime_across_pages(api, built) -> None:  # noqa: ANN001
    i = built.ids
    expected = [i["S3"], i["S1"], i["S2"], i["S5"], i["S4"]]  # highest first, ties by id, none last
    assert i["S2"] < i["S5"]
    for extra in ({}, {"updated_since": "2020-01-01T00:00:00Z"}, {"q": "可用率测试站"}):
        seen, cursor = [], None
        for _ in range(5):
            params = {"operator": OP, "sort": "uptime", "limit": "2", **extra}
            if cursor:
                params["cursor"] = cursor
            body = api.get("/api/v1/stations", params=params).json()
            seen += [it["id"] for it in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert seen == expected, extra
    # with min_uptime, and the first page's cursor is refused for another filter
    first = api.get("/api/v1/stations", params={"operator": OP, "sort": "uptime", "limit": "1",
                                                "min_uptime": "0.95"}).json()
    assert [it["id"] for it in first["items"]] == [i["S3"]]
    other = api.get("/api/v1/stations", params={"operator": OP, "sort": "uptime", "limit": "1",
                                                "cursor": first["next_cursor"]})
    assert other.status_code == 400 and other.json()["param"] == "cursor"


@pytest.mark.parametrize("value", ["2", "abc", "-0.1", "1.0001", "nan", "inf", ""])
def test_bad_min_uptime_is_a_400(api, built, value) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations", params={"min_uptime": value})
    if value == "":
        assert r.status_code == 200  # empty: no filter, as every numeric filter
        return
    assert r.status_code == 400, r.text
    assert r.json()["param"] == "min_uptime"
    assert api.get("/api/v1/stations?min_uptime=0.5&min_uptime=0.6").json()["param"] == "min_uptime"
    assert api.get("/api/v1/stations", params={"sort": "uptimes"}).json()["param"] == "sort"


def test_the_documents_name_them(api, built) -> None:  # noqa: ANN001
    doc = api.get("/api/docs/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/api/v1/stations"]["get"]["parameters"]}
    assert "min_uptime" in params and "uptime" in params["sort"]["description"]
    ref = api.get("/api/v1/reference").json()
    assert "min_uptime" in ref["parameters"]
    assert "uptime" in {s["value"] for s in ref["enumerations"]["sort"]}


def test_a_station_that_becomes_visible_again_keeps_its_figure(engine, api, built) -> None:  # noqa: ANN001
    pk = built.ids["S1"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET interconnected = false WHERE id = :s"), {"s": pk})
        assert conn.execute(text("SELECT count(*) FROM station_search WHERE id = :s"), {"s": pk}).scalar() == 0
        conn.execute(text("UPDATE stations SET interconnected = true WHERE id = :s"), {"s": pk})
        assert conn.execute(text("SELECT up4 FROM station_search WHERE id = :s"), {"s": pk}).scalar() == 9932
    assert pk in _ids(api, min_uptime="0.99")


def test_the_job_refreshes_hourly_and_moves_the_data_version(engine, api, built) -> None:  # noqa: ANN001
    cfg = ReliabilitySettings(silence_s=10**8, rollup_margin_s=0)  # nothing falls silent at this clock
    with engine.connect() as conn:
        before = data_version(conn)
    # within the hour: nothing to do (no day aggregated: days_per_run=0)
    assert maintain(engine, cfg, now=NOW + timedelta(minutes=30), days_per_run=0).stations_changed is None
    run = maintain(engine, cfg, now=NOW + timedelta(hours=2), days_per_run=0)
    # two more hours up: S2 (2,556,000 of 2,642,400 s) moves to 0.9673, S3 stays at 1
    assert run.ran and run.stations_changed
    with engine.connect() as conn:
        assert data_version(conn) > before
    assert api.get(f"/api/v1/stations/{built.ids['S2']}").json()["reliability"]["uptime_30d"] == 0.9673
    assert api.get(f"/api/v1/stations/{built.ids['S3']}").json()["reliability"] == S3
    assert round(2556000 / 2642400, 4) == 0.9673
    with engine.begin() as conn:  # back to the figures of NOW for the other tests
        refresh_station_reliability(conn, NOW)

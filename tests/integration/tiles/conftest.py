"""Stations inserted by hand for the tile tests: a seeded scatter over Zhuhai with every kind of
value the filters look at, plus stations that must never show (withdrawn, not interconnected)."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import mapbox_vector_tile
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.stations.summary import bump_version
from tests.conftest import truncate

ZHUHAI = (113.10, 21.90, 113.70, 22.45)  # lng/lat box of the scatter
OPERATORS = [("MA5GTEST1", "测试充电一号公司", "一号充电"), ("MA5GTEST2", "测试充电二号公司", None),
             ("MA5GTEST3", "第三运营商", "三号")]
FACILITIES = [["dc"], ["ac"], ["dc", "ac"], ["acdc"], ["wireless"], ["other", "ac"]]
PAYMENTS = [["card"], ["online"], ["card", "online"], ["cash"], [], ["other"]]
AVAIL = ["free", "busy", "offline", "unknown"]


@dataclass
class Seeded:
    visible: dict[int, dict]
    hidden: set[int]


def lnglat_to_tile(lng: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lng + 180.0) / 360.0 * n)
    r = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(r)) / math.pi) / 2.0 * n)
    return min(x, n - 1), min(y, n - 1)


def tiles_covering(box: tuple[float, float, float, float], z: int) -> list[tuple[int, int, int]]:
    x0, y0 = lnglat_to_tile(box[0], box[3], z)
    x1, y1 = lnglat_to_tile(box[2], box[1], z)
    return [(z, x, y) for x in range(x0 - 1, x1 + 2) for y in range(y0 - 1, y1 + 2)]


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True}) if data else {}


def inside(feature: dict) -> bool:
    """Points in the buffer belong to the neighbouring tile: count only [0, 4096)."""
    x, y = feature["geometry"]["coordinates"]
    return 0 <= x < 4096 and 0 <= y < 4096


def insert_station(conn, *, pk_hint: int, lng: float, lat: float, operator: str, **kw) -> int:  # noqa: ANN001
    values = {
        "operator_id": operator, "station_id": f"T{pk_hint:06d}", "name": kw.get("name", f"测试站{pk_hint}"),
        "address": kw.get("address", f"珠海市测试路{pk_hint}号"), "station_type": kw.get("station_type", 1),
        "station_status": 50, "lng": lng, "lat": lat, "feed_state": kw.get("feed_state", "active"),
        "interconnected": kw.get("interconnected", True), "facility_types": kw.get("facility_types", ["dc"]),
        "payments": kw.get("payments", ["online"]), "scale": kw.get("scale", "small"),
        "max_power_kw": kw.get("max_power_kw", 60), "connectors_total": kw.get("connectors_total", 4),
        "connectors_free": kw.get("connectors_free", 2), "availability": kw.get("availability", "free"),
        "search_text": kw.get("name", f"测试站{pk_hint}"), "pile_count": kw.get("pile_count", 2),
        "busine_hours": "00:00-24:00", "payment": "刷卡,微信",
    }
    return conn.execute(text("""
        INSERT INTO stations (operator_id, station_id, name, address, station_type, station_status,
                              lng_gcj02, lat_gcj02, geom, geom_3857, feed_state, interconnected,
                              facility_types, payments, scale, max_power_kw, connectors_total,
                              connectors_free, availability, search_text, pile_count, busine_hours, payment)
        VALUES (:operator_id, :station_id, :name, :address, :station_type, :station_status,
                :lng, :lat, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326),
                ST_Transform(ST_SetSRID(ST_MakePoint(:lng, :lat), 4326), 3857), :feed_state, :interconnected,
                CAST(:facility_types AS varchar[]), CAST(:payments AS varchar[]), :scale, :max_power_kw,
                :connectors_total, :connectors_free, :availability, :search_text, :pile_count,
                :busine_hours, :payment)
        RETURNING id"""), values).scalar_one()


def seed_stations(engine: Engine, n: int = 60, seed: int = 7) -> Seeded:
    truncate(engine, "connector_status", "connectors", "equipment", "stations", "operators")
    rng = random.Random(seed)
    visible: dict[int, dict] = {}
    hidden: set[int] = set()
    with engine.begin() as conn:
        for op_id, name, short in OPERATORS:
            conn.execute(text("INSERT INTO operators (operator_id, name, short_name) VALUES (:o, :n, :s)"),
                         {"o": op_id, "n": name, "s": short})
        # two stations at the same spot, and a tight group, so clusters and stacking are exercised
        spots = [(113.5431, 22.2231), (113.5431, 22.2231)] + [(113.5801 + i * 0.0004, 22.2702) for i in range(5)]
        for i in range(n + 6):
            if i < len(spots):
                lng, lat = spots[i]
            else:
                lng = rng.uniform(ZHUHAI[0], ZHUHAI[2])
                lat = rng.uniform(ZHUHAI[1], ZHUHAI[3])
            kw = dict(
                operator=OPERATORS[i % 3][0], station_type=[1, 1, 50, 100, 255][i % 5],
                facility_types=FACILITIES[i % len(FACILITIES)], payments=PAYMENTS[(i // 2) % len(PAYMENTS)],
                scale=["small", "medium", "large", "xlarge"][i % 4], max_power_kw=[7, 30, 60, 120, 240, 480][i % 6],
                connectors_total=2 + i % 9, connectors_free=(i * 7) % 3, availability=AVAIL[i % 4],
                name=("长隆快充站" if i == 10 else f"测试站{i}"),
            )
            if i >= n:  # six that must never be drawn
                kw.update(feed_state="withdrawn" if i % 2 else "rejected", interconnected=i % 3 != 0)
            if i == n + 5:
                kw.update(feed_state="active", interconnected=False)
            pk = insert_station(conn, pk_hint=i, lng=lng, lat=lat, **kw)
            if i >= n:
                hidden.add(pk)
            else:
                visible[pk] = {"lng": lng, "lat": lat, **kw}
        conn.execute(text("UPDATE stations s SET district_adcode = d.adcode FROM districts d "
                          "WHERE ST_Intersects(d.geom, s.geom)"))
        bump_version(conn, "stations")
    return Seeded(visible, hidden)


def wait_version(app, layer: str, version: int, timeout: float = 5.0) -> None:  # noqa: ANN001
    svc = app.state.tiles
    deadline = time.monotonic() + timeout
    while svc.versions.get(layer) < version:
        if time.monotonic() > deadline:
            raise AssertionError(f"{layer} version {version} never reached the tile server")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> Seeded:
    return seed_stations(engine)

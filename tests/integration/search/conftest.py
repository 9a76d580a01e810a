"""Search test data: generated Zhuhai stations (bench/generate.py) plus hand-made stations with
names chosen for the pinyin and Chinese-substring cases, and an app with generous rate limits."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench.generate import clear_generated, generate_stations, generate_tariffs
from geo.gcj02 import wgs84_to_gcj02
from services.db import Database
from services.prices.tariff import CHINA_TZ
from services.settings import SearchSettings, Settings
from services.stations.summary import bump_version
from services.stations.vocab import normalize_payments, pinyin_of
from tests.conftest import make_settings

#: the moment the generated stations' tariffs were stored (their price_now is the one in force then)
PRICED_AT = datetime(2026, 12, 6, 9, 30, tzinfo=CHINA_TZ)
GEN_PREFIX = "SGN"
HAND_PREFIX = "SHD"
N_GENERATED = 1200

# (operator_id suffix, operator name, short name)
HAND_OPERATORS = [("000001", "星星充电", None), ("000002", "珠海长隆充电服务有限公司", "长隆充电")]
# (operator index, name, address, lng, lat, station_type, piles [(equipment_type, kW)], payment text, free)
HAND_STATIONS = [
    (0, "长隆海洋王国充电站", "横琴新区富祥湾", 113.5500, 22.1020, 1, [(1, 120.0), (2, 7.0)], "微信,支付宝", 1),
    (0, "拱北口岸停车场充电站", "拱北迎宾南路", 113.5490, 22.2150, 1, [(2, 7.0)], "刷卡", 0),
    (1, "斗门井岸站", "斗门区井岸镇", 113.2950, 22.2080, 100, [(1, 60.0)] * 12, "现金", 2),
    (1, "情侣路驿站", "香洲区情侣中路", 113.5800, 22.2700, 1, [(4, 11.0)], "ETC", 0),
]


@dataclass
class SearchData:
    hand_ids: dict[str, int]


def insert_station(conn, operator_id: str, operator_name: str, idx: int, name: str, address: str, lng: float,
                   lat: float, station_type: int, piles: list[tuple[int, float]], payment: str, free: int) -> int:
    """One station with piles and connectors, derived columns computed like the sync does."""
    full, initials = pinyin_of(name)
    op_full, op_init = pinyin_of(operator_name)
    search_text = f"{name} {operator_name} {address} {full} {initials} {op_full} {op_init}"
    codes, unknown = normalize_payments(payment)
    glng, glat = wgs84_to_gcj02(lng, lat)
    fac = sorted({ {1: "dc", 2: "ac", 3: "acdc", 4: "wireless"}.get(t, "other") for t, _ in piles})
    n = len(piles)
    scale = "xlarge" if n >= 100 else "large" if n >= 30 else "medium" if n >= 10 else "small"
    sid = conn.execute(text("""
        INSERT INTO stations (operator_id, station_id, name, address, station_type, station_status, lng_gcj02,
            lat_gcj02, geom, geom_3857, district_adcode, feed_state, interconnected, facility_types, payment, payments,
            payment_unknown, pile_count, scale, max_power_kw, connectors_total, connectors_free, availability,
            name_pinyin, name_initials, search_text, busine_hours, electricity_fee, service_fee, park_fee)
        VALUES (:op, :st, :name, :addr, :stype, 50, :glng, :glat, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326),
            ST_Transform(ST_SetSRID(ST_MakePoint(:lng, :lat), 4326), 3857),
            (SELECT adcode FROM districts WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326))
             ORDER BY level = 'district' DESC LIMIT 1),
            'active', true, :fac, :payment, :codes, :unknown, :n, :scale, :maxp, :n, :free,
            CASE WHEN :free > 0 THEN 'free' ELSE 'busy' END, :full, :initials, :search_text,
            '00:00-24:00', '1.0元/度', '0.8元/度', '免费')
        RETURNING id"""), {
        "op": operator_id, "st": f"{HAND_PREFIX}{idx:06d}", "name": name, "addr": address, "stype": station_type,
        "glng": glng, "glat": glat, "lng": lng, "lat": lat, "fac": fac, "payment": payment, "codes": codes,
        "unknown": unknown, "n": n, "scale": scale, "maxp": max(kw for _, kw in piles), "free": free,
        "full": full, "initials": initials, "search_text": search_text}).scalar_one()
    for j, (etype, kw) in enumerate(piles):
        eid = conn.execute(text(
            "INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, power_kw) "
            "VALUES (:s, :op, :e, :t, :kw) RETURNING id"),
            {"s": sid, "op": operator_id, "e": f"{HAND_PREFIX}{idx:06d}E{j:03d}", "t": etype, "kw": kw}).scalar_one()
        cid = f"{HAND_PREFIX}{idx:06d}E{j:03d}C1"
        conn.execute(text(
            "INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, connector_type, power_kw) "
            "VALUES (:e, :s, :op, :c, 4, :kw)"), {"e": eid, "s": sid, "op": operator_id, "c": cid, "kw": kw})
        conn.execute(text("INSERT INTO connector_status (operator_id, connector_id, status) VALUES (:op, :c, :st) "
                          "ON CONFLICT (operator_id, connector_id) DO UPDATE SET status = EXCLUDED.status"),
                     {"op": operator_id, "c": cid, "st": 1 if j < free else 3})
    return sid


@pytest.fixture(scope="module")
def search_data(engine: Engine) -> Iterator[SearchData]:
    """Fresh generated + hand-made stations for one test module (other modules may have truncated)."""
    with engine.begin() as conn:
        clear_generated(conn, GEN_PREFIX)
        clear_generated(conn, HAND_PREFIX)
        generate_stations(conn, N_GENERATED, region="zhuhai", seed=7, operators=6, prefix=GEN_PREFIX)
        generate_tariffs(conn, GEN_PREFIX, seed=7, now=PRICED_AT)
        hand: dict[str, int] = {}
        for i, (suffix, name, short) in enumerate(HAND_OPERATORS):
            conn.execute(text("INSERT INTO operators (operator_id, name, short_name) VALUES (:o, :n, :s) "
                              "ON CONFLICT (operator_id) DO UPDATE SET name = EXCLUDED.name, "
                              "short_name = EXCLUDED.short_name"),
                         {"o": f"{HAND_PREFIX}{suffix}", "n": name, "s": short})
        for idx, (op_i, name, addr, lng, lat, stype, piles, pay, free) in enumerate(HAND_STATIONS):
            suffix, op_name, _ = HAND_OPERATORS[op_i]
            hand[name] = insert_station(conn, f"{HAND_PREFIX}{suffix}", op_name, idx, name, addr, lng, lat, stype,
                                        piles, pay, free)
        bump_version(conn)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE stations"))
    yield SearchData(hand_ids=hand)


def search_settings(**kw: object) -> SearchSettings:
    base = {"anonymous_rate_per_min": 1_000_000, "key_rate_per_min": 2_000_000}
    base.update(kw)
    return SearchSettings(**base)  # type: ignore[arg-type]


def make_search_app(db_url: str, tmp: Path, database: Database, **search: object):  # noqa: ANN201
    from portal_site.app import create_app

    settings: Settings = make_settings(db_url, tmp)
    settings.search = search_settings(**search)
    return create_app(settings, database=database)


@pytest.fixture(scope="module")
def api_app(db_url: str, tmp_path_factory: pytest.TempPathFactory, database: Database):  # noqa: ANN201
    return make_search_app(db_url, tmp_path_factory.mktemp("search-app"), database)


@pytest.fixture()
def api(api_app) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(api_app, base_url="http://127.0.0.1:8000") as c:
        yield c


def all_visible(engine: Engine) -> list[dict]:
    """Every visible station with the columns the filters look at (brute-force reference)."""
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(
            "SELECT id, operator_id, district_adcode, station_type, scale, facility_types, payments, "
            "connectors_free, max_power_kw::float8 AS max_power_kw, ST_X(geom) AS lng, ST_Y(geom) AS lat, name, "
            "search_text, price_now FROM stations WHERE feed_state = 'active' AND interconnected")).mappings()]

"""The simulated city: deterministic, on land, within protocol limits, plausibly mixed."""

from __future__ import annotations

from collections import Counter

import pytest
from shapely.geometry import Point
from shapely.ops import unary_union

from ingest.protocol import normalize_station_info, validate_station_info
from ingest.simulator.city import (
    _ORG_WEIGHTS,
    _org_value,
    district_polygons,
    generate_city,
    org_code,
)
from ingest.simulator.config import Faults, SimConfig, default_push_secrets


@pytest.fixture(scope="module")
def city():
    return generate_city(seed=1, stations=1500, operators=6)


def _infos(ops):
    return [s.info() for op in ops for s in op.stations]


def test_same_seed_same_city(city):
    again = generate_city(seed=1, stations=1500, operators=6)
    assert _infos(again) == _infos(city)
    assert [(o.operator_id, o.operator_secret, o.data_secret, o.data_iv, o.sig_secret) for o in again] == [
        (o.operator_id, o.operator_secret, o.data_secret, o.data_iv, o.sig_secret) for o in city
    ]
    statuses = [c.status for op in city for s in op.stations for c in s.connectors()]
    assert statuses == [c.status for op in again for s in op.stations for c in s.connectors()]
    assert [s.changed_at for op in city for s in op.stations] == [
        s.changed_at for op in again for s in op.stations
    ]


def test_different_seed_different_city(city):
    other = generate_city(seed=2, stations=1500, operators=6)
    assert [o.operator_id for o in other] != [o.operator_id for o in city]
    assert _infos(other) != _infos(city)


def test_operators_have_org_codes_and_secrets(city):
    assert len(city) == 6
    assert len({o.operator_id for o in city}) == 6
    assert len({o.name for o in city}) == 6
    for op in city:
        oid = op.operator_id
        assert len(oid) == 9 and oid.isalnum() and oid == oid.upper()
        assert org_code(oid[:8]) == oid  # GB 11714 check character
        assert op.name.startswith("珠海") and op.name.endswith("有限公司")
        for secret in (op.operator_secret, op.data_secret, op.data_iv, op.sig_secret):
            assert len(secret) == 16 and secret.isascii() and secret.isalnum()
    assert sum(len(op.stations) for op in city) == 1500


def test_org_code_check_character():
    # Worked example of GB 11714: D2143569 -> check character X.
    assert org_code("D2143569") == "D2143569X"
    body = "MA5ZHCIT"
    c = 11 - sum(w * _org_value(ch) for w, ch in zip(_ORG_WEIGHTS, body)) % 11
    assert org_code(body)[-1] == {10: "X", 11: "0"}.get(c, str(c))


def test_every_station_on_land_in_its_district(city):
    polys = {adcode: geom for adcode, _name, geom, _prep in district_polygons()}
    land = unary_union(list(polys.values()))
    for op in city:
        for s in op.stations:
            f = s.fields
            pt = Point(f["StationLng"], f["StationLat"])
            assert land.contains(pt), s.station_id
            assert polys[f["AreaCode"]].contains(pt), (s.station_id, f["AreaCode"])
            assert round(f["StationLng"], 6) == f["StationLng"]
            for eq in s.equipments:
                assert abs(eq.lng - f["StationLng"]) < 0.001 and abs(eq.lat - f["StationLat"]) < 0.001


def test_station_infos_conform_to_the_protocol(city):
    for info in _infos(city):
        assert validate_station_info(normalize_station_info(info)) == [], info["StationID"]
        for key in ("StationTel", "SiteGuide", "Pictures", "MatchCars", "ParkInfo", "BusineHours",
                    "ElectricityFee", "ServiceFee", "ParkFee", "Payment", "SupportOrder", "Remark"):
            assert key in info
        assert info["CountryCode"] == "CN"
        assert len(info["StationID"]) <= 20 and len(info["Address"]) <= 50
        assert len(info["Payment"]) <= 20 and len(info["ElectricityFee"]) <= 256
        assert "元/度" in info["ElectricityFee"]
        assert all(p.startswith("https://") for p in info["Pictures"])


def test_ids_unique(city):
    stations = [(op.operator_id, s.station_id) for op in city for s in op.stations]
    assert len(set(stations)) == len(stations)
    equipment = [e.equipment_id for op in city for s in op.stations for e in s.equipments]
    assert len(set(equipment)) == len(equipment)
    assert max(len(e) for e in equipment) <= 23
    connectors = [c.connector_id for op in city for s in op.stations for c in s.connectors()]
    assert len(set(connectors)) == len(connectors)
    assert max(len(c) for c in connectors) <= 26


def test_mix_is_plausible(city):
    stations = [s for op in city for s in op.stations]
    connectors = [c for s in stations for c in s.connectors()]
    assert 8 <= len(connectors) / len(stations) <= 13
    piles = sorted(len(s.equipments) for s in stations)
    small = sum(1 for p in piles if p <= 9) / len(piles)
    assert 0.6 < small < 0.9
    assert sum(1 for p in piles if p >= 100) >= 2  # bus depots

    districts = Counter(s.area_code for s in stations)
    assert set(districts) == {"440402", "440403", "440404"}
    assert districts["440402"] > 0.55 * len(stations)  # denser in 香洲区

    types = Counter(s.fields["StationType"] for s in stations)
    assert types[1] > 0.75 * len(stations)
    assert {100, 102, 103, 50} <= set(types)
    status = Counter(s.fields["StationStatus"] for s in stations)
    assert status[50] > 0.9 * len(stations)

    kinds = Counter((e.equipment_type, e.power) for s in stations for e in s.equipments)
    for kind in ((1, 60.0), (1, 120.0), (1, 160.0), (1, 240.0), (2, 7.0), (3, 60.0)):
        assert kinds[kind] > 0, kind
    ctypes = Counter(c.connector_type for c in connectors)
    assert ctypes[4] > 0 and ctypes[3] > ctypes[2] > 0

    cstatus = Counter(c.status for c in connectors)
    assert cstatus[1] > 0.5 * len(connectors)
    assert cstatus[3] > 0.1 * len(connectors)
    assert 0 < cstatus[0] + cstatus[255] < 0.2 * len(connectors)


def test_small_cities_and_many_operators():
    ops = generate_city(seed=7, stations=10, operators=12)
    assert len(ops) == 12 and len({o.operator_id for o in ops}) == 12
    assert sum(len(o.stations) for o in ops) == 10
    with pytest.raises(ValueError):
        generate_city(operators=0)


def test_config_from_dict_and_faults():
    cfg = SimConfig.from_dict({"seed": 3, "stations": 20, "faults": {"fail_next": 2}})
    assert cfg.seed == 3 and cfg.faults.fail_next == 2
    with pytest.raises(ValueError):
        SimConfig.from_dict({"nope": 1})
    f = Faults()
    f.update({"error_rate": "0.5", "bad_signature": 1})
    assert f.error_rate == 0.5 and f.bad_signature is True
    with pytest.raises(ValueError):
        f.update({"error_rate": 2})
    a = default_push_secrets(1, "MA4JURQ20")
    assert a == default_push_secrets(1, "MA4JURQ20") and a.operator_id == "MA4JURQ20"
    assert a != default_push_secrets(2, "MA4JURQ20")

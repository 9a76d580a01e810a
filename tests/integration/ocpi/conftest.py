"""OCPI test data: the search tests' city (1,200 generated stations with tariffs, plus hand-made ones)
and one hand-made operator whose stations exercise every mapping rule; a party with its token; the
OCPI 2.2.1 JSON Schemas of ``tests/schemas/ocpi-2.2.1``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from services.ocpi.parties import add_party
from services.prices.store import TariffWrite, store_tariffs
from services.prices.tariff import read_policy
from services.stations.summary import bump_version
from tests.integration.search.conftest import PRICED_AT, api_app, search_data  # noqa: F401 - fixtures

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "ocpi-2.2.1" / "ocpi-2.2.1.schema.json")
                    .read_text(encoding="utf-8"))
_VALIDATORS: dict[str, Draft202012Validator] = {}

OCPI_OP = "OCPMA5X21"  # last three characters: the party_id it publishes as
OCPI_OP_NAME = "珠海市开放互联充电有限公司"


def validator(name: str) -> Draft202012Validator:
    v = _VALIDATORS.get(name)
    if v is None:
        v = _VALIDATORS[name] = Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"})
    return v


def assert_valid(obj: Any, name: str) -> None:
    errors = sorted(validator(name).iter_errors(obj), key=lambda e: list(e.path))
    assert not errors, f"{name} invalid: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


@dataclass
class World:
    """What the hand-made operator's stations are, by role."""

    stations: dict[str, int]
    invisible: dict[str, int]
    tariff_ids: dict[str, int] = field(default_factory=dict)


def _station(conn: Any, sid: str, name: str, *, lng: float, lat: float, busine_hours: str | None = None,
             construction: int | None = None, park_info: str | None = None, station_status: int = 50,
             address: str | None = "香洲区情侣中路 1 号", feed_state: str = "active", interconnected: bool = True,
             site_guide: str | None = None) -> int:
    return conn.execute(text("""
        INSERT INTO stations (operator_id, station_id, name, address, station_type, station_status, lng_gcj02,
            lat_gcj02, geom, geom_3857, district_adcode, feed_state, interconnected, busine_hours, construction,
            park_info, site_guide, pile_count, connectors_total)
        VALUES (:op, :sid, :name, :addr, 1, :ss, :lng, :lat, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326),
            ST_Transform(ST_SetSRID(ST_MakePoint(:lng, :lat), 4326), 3857), 440402, :fs, :ic, :bh, :cons, :park,
            :guide, 1, 1)
        RETURNING id"""), {"op": OCPI_OP, "sid": sid, "name": name, "addr": address, "ss": station_status,
                           "lng": lng, "lat": lat, "fs": feed_state, "ic": interconnected, "bh": busine_hours,
                           "cons": construction, "park": park_info, "guide": site_guide}).scalar_one()


def _pile(conn: Any, station_pk: int, equipment_id: str, etype: int, power: float,
          connectors: list[tuple[str, int, int | None, int | None, int | None]], *,
          lng: float | None = None, lat: float | None = None) -> None:
    """connectors: (ConnectorID, ConnectorType, VoltageUpperLimits, Current, Status or None)."""
    epk = conn.execute(text(
        "INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, power_kw, geom) "
        "VALUES (:s, :op, :e, :t, :p, CASE WHEN CAST(:lng AS float8) IS NULL THEN NULL "
        "ELSE ST_SetSRID(ST_MakePoint(:lng, :lat), 4326) END) RETURNING id"),
        {"s": station_pk, "op": OCPI_OP, "e": equipment_id, "t": etype, "p": power, "lng": lng, "lat": lat}).scalar_one()
    for cid, ctype, volts, amps, status in connectors:
        conn.execute(text(
            "INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, connector_type, "
            "voltage_upper_limits, current, power_kw) VALUES (:e, :s, :op, :c, :t, :v, :a, :p)"),
            {"e": epk, "s": station_pk, "op": OCPI_OP, "c": cid, "t": ctype, "v": volts, "a": amps, "p": power})
        if status is not None:
            conn.execute(text("INSERT INTO connector_status (operator_id, connector_id, status) VALUES (:op, :c, :st)"),
                         {"op": OCPI_OP, "c": cid, "st": status})


TOU = {"SumPeriod": 3, "PolicyInfos": [{"StartTime": "000000", "ElecPrice": "0.3094", "SevicePrice": "0.6000"},
                                       {"StartTime": "080000", "ElecPrice": "0.6437", "SevicePrice": "0.6000"},
                                       {"StartTime": "220000", "ElecPrice": "0.3094", "SevicePrice": "0.6000"}]}
FLAT = {"SumPeriod": 1, "PolicyInfos": [{"StartTime": "000000", "ElecPrice": "0.8000", "SevicePrice": "0.4000"}]}


def build_world(engine: Engine) -> World:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM connector_status WHERE operator_id = :o"), {"o": OCPI_OP})
        conn.execute(text("DELETE FROM connector_tariffs WHERE operator_id = :o"), {"o": OCPI_OP})
        conn.execute(text("DELETE FROM operators WHERE operator_id = :o"), {"o": OCPI_OP})
        # Other tests' operators have random IDs and are published with everything: one whose ID ends
        # in X21 like ours (1 in 29,791) took that party first now and then. Free it: the world's
        # operator publishes as its own tail, which is what the tests check.
        conn.execute(text("DELETE FROM ocpi_cpo_parties WHERE party_id = :p AND operator_id <> :o"),
                     {"p": OCPI_OP[-3:], "o": OCPI_OP})
        conn.execute(text("INSERT INTO operators (operator_id, name) VALUES (:o, :n)"), {"o": OCPI_OP, "n": OCPI_OP_NAME})
        s = {}
        s["depot"] = _station(conn, "OCPI-DEPOT", "开放互联情侣路快充站", lng=113.5812345678, lat=22.2701234567,
                              busine_hours="00:00-24:00", construction=11, site_guide="从情侣中路入口进入，右转即到",
                              address="珠海市香洲区情侣中路与海滨路交汇处东南角开放互联综合能源服务中心地面停车场一层北侧靠近海边步道入口第三排车位")
        _pile(conn, s["depot"], "4400012301", 1, 120.0, [("440001230101", 4, 750, 250, 1), ("440001230102", 4, 750, 250, 3)],
              lng=113.5813, lat=22.2702)  # a free gun: AVAILABLE
        _pile(conn, s["depot"], "4400012302", 1, 60.0, [("440001230201", 4, None, None, 255)])  # OUTOFORDER
        _pile(conn, s["depot"], "4400012303", 2, 7.0, [("440001230301", 3, 220, 32, 2)])  # BLOCKED
        _pile(conn, s["depot"], "4400012304", 2, 40.0, [("440001230401", 2, 380, 63, 4)])  # RESERVED, AC_3_PHASE
        _pile(conn, s["depot"], "4400012305", 2, 3.5, [("440001230501", 1, 220, 16, 0)])  # household, offline
        _pile(conn, s["depot"], "4400012306", 4, 11.0, [("440001230601", 5, 220, 50, 1)])  # wireless only: no EVSE
        _pile(conn, s["depot"], "桩-7", 2, 7.0, [("充电枪7", 3, 220, 32, None)])  # non-ASCII ids, never reported
        s["weekdays"] = _station(conn, "OCPI-WEEKDAYS", "开放互联写字楼站", lng=113.55, lat=22.25,
                                 busine_hours="周一至周五 08:00-20:00；周六、周日 09:00-18:00", construction=4,
                                 park_info="地下停车场负二层")
        _pile(conn, s["weekdays"], "4400012401", 3, 7.0, [("440001240101", 3, 220, 32, 1)])
        s["maintenance"] = _station(conn, "OCPI-MAINT", "开放互联检修站", lng=113.52, lat=22.24, station_status=6,
                                    busine_hours="节假日另行通知", construction=10)
        _pile(conn, s["maintenance"], "4400012501", 1, 60.0, [("440001250101", 4, 750, 150, 1)])
        inv = {}
        inv["withdrawn"] = _station(conn, "OCPI-GONE", "开放互联撤站", lng=113.51, lat=22.23, feed_state="withdrawn")
        inv["private"] = _station(conn, "OCPI-PRIV", "开放互联未互联站", lng=113.51, lat=22.22, interconnected=False)
        tou, flat = read_policy(TOU), read_policy(FLAT)
        store_tariffs(conn, OCPI_OP, [TariffWrite("440001230101", tou, "policy"), TariffWrite("440001230102", tou, "policy"),
                                      TariffWrite("440001230201", tou, "policy"),
                                      TariffWrite("440001230301", flat, "fee_text"),
                                      TariffWrite("440001240101", flat, "fee_text")], now=PRICED_AT)
        ids = {r.connector_id: r.tariff_id for r in conn.execute(text(
            "SELECT connector_id, tariff_id FROM connector_tariffs WHERE operator_id = :o AND valid_to IS NULL"),
            {"o": OCPI_OP})}
        bump_version(conn)
    return World(stations=s, invisible=inv, tariff_ids={"tou": ids["440001230101"], "flat": ids["440001230301"]})


@pytest.fixture(scope="module")
def world(engine: Engine, search_data) -> World:  # noqa: ANN001, F811
    return build_world(engine)


@pytest.fixture(scope="module")
def token(engine: Engine) -> str:
    with engine.begin() as conn:
        _, tok = add_party(conn, "NL", "TST", "Test eMSP")
    return tok


def auth(token: str) -> dict[str, str]:
    """The OCPI 2.2.1 Authorization header: the token in Base64."""
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


@pytest.fixture()
def ocpi(api_app, token) -> Iterator[TestClient]:  # noqa: ANN001, F811
    """A client that sends the party's credentials on every request."""
    with TestClient(api_app, base_url="http://127.0.0.1:8000") as c:
        c.headers.update(auth(token))
        yield c


def envelope(r: Any, *, status_code: int = 1000, http: int = 200) -> Any:
    """The validated envelope's data, after checking the HTTP and OCPI statuses."""
    assert r.status_code == http, (r.status_code, r.text[:400])
    body = r.json()
    assert_valid(body, "Response")
    assert body["status_code"] == status_code, body
    return body.get("data")


def walk(client: TestClient, path: str, **params: Any) -> tuple[list[dict], list[Any]]:
    """Every object of a paginated list, following ``Link``; returns (objects, responses)."""
    out: list[dict] = []
    responses = []
    url: str | None = path
    first = True
    while url:
        r = client.get(url, params=params if first else None)
        first = False
        responses.append(r)
        out += envelope(r)
        link = r.headers.get("link")
        url = link[1:link.index(">")] if link else None
    return out, responses

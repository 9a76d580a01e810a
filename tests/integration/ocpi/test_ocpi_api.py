"""OCPI 2.2.1 Sender of Locations and Tariffs: every object validated against the 2.2.1 schemas, the
mapping of each rule, object sub-paths, credentials, error codes and pagination headers."""

from __future__ import annotations

import base64
import re
import time
from itertools import islice
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from ingest.store import store_statuses
from services.ocpi.parties import add_party, party_candidates, publishing_parties, revoke_party
from services.prices.store import TariffWrite, store_tariffs
from services.prices.tariff import CHINA_TZ, read_policy
from services.prices.tariff import Tariff as DayTariff
from tests.integration.ocpi.conftest import FLAT, OCPI_OP, OCPI_OP_NAME, assert_valid, auth, envelope, walk
from tests.integration.search.conftest import all_visible

pytestmark = pytest.mark.usefixtures("world")

LOC = "/ocpi/2.2.1/locations"
TAR = "/ocpi/2.2.1/tariffs"


def _location(ocpi: TestClient, pk: int) -> dict:
    loc = envelope(ocpi.get(f"{LOC}/{pk}"))
    assert_valid(loc, "Location")
    return loc


# --- versions -----------------------------------------------------------------------------------
def test_versions_and_version_details(ocpi) -> None:  # noqa: ANN001
    versions = envelope(ocpi.get("/ocpi/versions"))
    assert len(versions) == 1
    assert_valid(versions[0], "Version")
    assert versions[0] == {"version": "2.2.1", "url": "http://127.0.0.1:8000/ocpi/2.2.1"}
    details = envelope(ocpi.get("/ocpi/2.2.1"))
    assert_valid(details, "VersionDetails")
    assert details["version"] == "2.2.1"
    assert {(e["identifier"], e["role"], e["url"]) for e in details["endpoints"]} == {
        ("locations", "SENDER", "http://127.0.0.1:8000/ocpi/2.2.1/locations"),
        ("tariffs", "SENDER", "http://127.0.0.1:8000/ocpi/2.2.1/tariffs")}


# --- credentials --------------------------------------------------------------------------------
def test_credentials_base64_and_raw_accepted_missing_and_wrong_refused(api_app, token, engine) -> None:  # noqa: ANN001
    with TestClient(api_app, base_url="http://127.0.0.1:8000") as c:
        envelope(c.get("/ocpi/versions", headers=auth(token)))  # OCPI 2.2.1: Base64 of the token
        envelope(c.get("/ocpi/versions", headers={"Authorization": f"Token {token}"}))  # 2.1.1 style: the raw token
        envelope(c.get("/ocpi/versions", headers={"Authorization": f"token   {token}  "}))
        for headers in ({}, {"Authorization": "Token"}, {"Authorization": "Token nope"},
                        {"Authorization": f"Bearer {token}"},
                        {"Authorization": "Token " + base64.b64encode(b"nope").decode()},
                        {"Authorization": "Token " + "x" * 5000}):
            for path in ("/ocpi/versions", "/ocpi/2.2.1", LOC, f"{LOC}/1", f"{LOC}/1/2/3", TAR):
                r = c.get(path, headers=headers)
                assert envelope(r, status_code=4001, http=401) is None
                assert r.headers["www-authenticate"].startswith("Token")
        # a new token replaces the old one; a revoked party is shut out
        with engine.begin() as conn:
            _, old = add_party(conn, "DE", "OLD", "Rotating party")
            _, new = add_party(conn, "de", "old", "Rotating party, renamed")
        envelope(c.get(LOC, headers=auth(old)), status_code=4001, http=401)
        envelope(c.get(LOC, headers=auth(new)))
        with engine.begin() as conn:
            revoke_party(conn, "DE", "OLD")
            row = conn.execute(text("SELECT name, last_used_at FROM ocpi_parties WHERE party_id = 'OLD'")).one()
        assert row.name == "Rotating party, renamed" and row.last_used_at is not None
        envelope(c.get(LOC, headers=auth(new)), status_code=4001, http=401)


def test_only_a_hash_of_the_token_is_stored(engine, token) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM ocpi_parties")).mappings().all()
    assert rows and not any(token in str(v) for r in rows for v in r.values())


# --- locations ----------------------------------------------------------------------------------
def test_every_location_validates_and_the_set_is_the_open_apis(ocpi, api_app, engine) -> None:  # noqa: ANN001
    locations, responses = walk(ocpi, LOC, limit=250)
    assert len(responses) > 2
    for loc in locations:
        assert_valid(loc, "Location")
        for evse in loc.get("evses", []):
            assert_valid(evse, "EVSE")
            for c in evse["connectors"]:
                assert_valid(c, "Connector")
    ids = [int(loc["id"]) for loc in locations]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)
    assert set(ids) == {s["id"] for s in all_visible(engine)}
    with TestClient(api_app, base_url="http://127.0.0.1:8000") as api:
        search = api.get("/api/v1/stations", params={"limit": 500, "facets": "false"}).json()
        assert search["total"] == len(ids)
        for item in search["items"][:60]:  # the same truth: names, places, operators
            loc = next(x for x in locations if x["id"] == str(item["id"]))
            assert loc["name"] == item["name"]
            assert (float(loc["coordinates"]["longitude"]), float(loc["coordinates"]["latitude"])) == pytest.approx(
                (item["lng"], item["lat"]), abs=1e-7)
            assert loc["operator"]["name"] == item["operator_name"]
            detail = api.get(f"/api/v1/stations/{item['id']}").json()
            published = {c["connector_id"] for e in detail["equipment"] for c in e["connectors"]
                         if c["connector_type"] in (1, 2, 3, 4)}
            assert {c["id"] for e in loc.get("evses", []) for c in e["connectors"]} == published


def test_the_mapping_of_a_station_its_piles_and_connectors(ocpi, world, engine) -> None:  # noqa: ANN001
    loc = _location(ocpi, world.stations["depot"])
    assert (loc["country_code"], loc["party_id"], loc["publish"], loc["country"], loc["time_zone"]) == (
        "CN", OCPI_OP[-3:], True, "CHN", "Asia/Shanghai")
    assert loc["coordinates"] == {"latitude": "22.2701235", "longitude": "113.5812346"}
    assert loc["address"] == "珠海市香洲区情侣中路与海滨路交汇处东南角开放互联综合能源服务中心地面停车场一层北侧靠近海边"
    assert len(loc["address"]) == 45  # OCPI's string(45): the station's 54 characters cut
    assert loc["city"] == "珠海市" and "postal_code" not in loc
    assert loc["operator"] == {"name": OCPI_OP_NAME}
    assert loc["opening_times"] == {"twentyfourseven": True}
    assert loc["parking_type"] == "ALONG_MOTORWAY" and loc["facilities"] == ["FUEL_STATION", "RESTAURANT"]
    assert loc["directions"] == [{"language": "zh", "text": "从情侣中路入口进入，右转即到"}]
    evses = {e["uid"]: e for e in loc["evses"]}
    # the wireless-only pile has no connector OCPI can name: no EVSE
    assert "4400012306" not in evses and len(evses) == 6
    assert {uid: e["status"] for uid, e in evses.items() if uid.startswith("44")} == {
        "4400012301": "AVAILABLE",  # one gun free, one charging: a car can charge here
        "4400012302": "OUTOFORDER", "4400012303": "BLOCKED", "4400012304": "RESERVED",
        "4400012305": "UNKNOWN"}  # T/CEC 0 offline: OCPI UNKNOWN ("also used when offline")
    dc = evses["4400012301"]
    assert dc["evse_id"] == f"CN*{OCPI_OP[-3:]}*E4400012301"
    assert dc["coordinates"] == {"latitude": "22.2702000", "longitude": "113.5813000"}
    tou = str(world.tariff_ids["tou"])
    assert dc["connectors"][0] == {"id": "440001230101", "standard": "GBT_DC", "format": "CABLE", "power_type": "DC",
                                   "max_voltage": 750, "max_amperage": 250, "max_electric_power": 120000,
                                   "tariff_ids": [tou], "last_updated": dc["connectors"][0]["last_updated"]}
    assert evses["4400012302"]["connectors"][0]["max_amperage"] == 80  # 60 kW at the 750 V default
    ac7 = evses["4400012303"]["connectors"][0]
    assert (ac7["standard"], ac7["format"], ac7["power_type"], ac7["max_voltage"], ac7["max_amperage"]) == (
        "GBT_AC", "CABLE", "AC_1_PHASE", 220, 32)
    assert ac7["tariff_ids"] == [str(world.tariff_ids["flat"])]
    ac40 = evses["4400012304"]["connectors"][0]  # 380 V three-phase: 220 V line to neutral
    assert (ac40["format"], ac40["power_type"], ac40["max_voltage"], ac40["max_amperage"], "tariff_ids" in ac40) == (
        "SOCKET", "AC_3_PHASE", 219, 63, False)
    assert evses["4400012305"]["connectors"][0]["standard"] == "DOMESTIC_I"
    # a pile and connector whose T/CEC ids are not CiStrings: our row ids, no eMI3 id
    odd = next(e for uid, e in evses.items() if not uid.startswith("44"))
    assert re.fullmatch(r"e\d+", odd["uid"]) and "evse_id" not in odd and odd["status"] == "UNKNOWN"
    assert re.fullmatch(r"c\d+", odd["connectors"][0]["id"])


def test_weekday_hours_underground_parking_and_maintenance(ocpi, world) -> None:  # noqa: ANN001
    loc = _location(ocpi, world.stations["weekdays"])
    hours = loc["opening_times"]
    assert hours["twentyfourseven"] is False
    assert [(h["weekday"], h["period_begin"], h["period_end"]) for h in hours["regular_hours"]] == [
        *((d, "08:00", "20:00") for d in range(1, 6)), (6, "09:00", "18:00"), (7, "09:00", "18:00")]
    assert loc["parking_type"] == "UNDERGROUND_GARAGE" and "facilities" not in loc
    maint = _location(ocpi, world.stations["maintenance"])
    assert maint["evses"][0]["status"] == "INOPERATIVE"  # StationStatus 6: under maintenance, its free gun too
    assert "opening_times" not in maint  # "节假日另行通知" cannot be read for sure: left out, not guessed
    assert maint["parking_type"] == "ON_STREET"


def test_object_sub_paths_and_unknown_objects(ocpi, world) -> None:  # noqa: ANN001
    pk = world.stations["depot"]
    loc = _location(ocpi, pk)
    evse = envelope(ocpi.get(f"{LOC}/{pk}/4400012303"))
    assert_valid(evse, "EVSE")
    assert evse == next(e for e in loc["evses"] if e["uid"] == "4400012303")
    conn = envelope(ocpi.get(f"{LOC}/{pk}/4400012301/440001230102/"))
    assert_valid(conn, "Connector")
    assert conn["id"] == "440001230102"
    for path in (f"{LOC}/999999999", f"{LOC}/abc", f"{LOC}/{world.invisible['withdrawn']}",
                 f"{LOC}/{world.invisible['private']}", f"{LOC}/{pk}/4400012306", f"{LOC}/{pk}/nope",
                 f"{LOC}/{pk}/4400012301/nope", f"{LOC}/{pk}/4400012301/440001230102/extra",
                 f"{LOC}/{pk}/%E6%A1%A9-7", f"{LOC}/99999999999999999999999"):
        r = ocpi.get(path)
        assert envelope(r, status_code=2003, http=404) is None, path
    assert envelope(ocpi.get(f"{LOC}/{pk}", params={"x": "1"}), status_code=2001) is None


def test_bad_parameters_are_2001_naming_them(ocpi) -> None:  # noqa: ANN001
    cases = [({"limit": "abc"}, "limit"), ({"limit": "0"}, "limit"), ({"limit": "-1"}, "limit"),
             ({"limit": "1e3"}, "limit"), ({"offset": "-1"}, "offset"), ({"offset": "x"}, "offset"),
             ({"offset": "9" * 30}, "offset"), ({"date_from": "yesterday"}, "date_from"),
             ({"date_from": "2026-12-06"}, "date_from"), ({"date_to": "2026-13-01T00:00:00Z"}, "date_to"),
             ({"date_from": "2026-12-06T00:00:00Z", "date_to": "2026-12-05T00:00:00Z"}, "date_to"),
             ({"date_from": "0001-01-01T00:00:00Z"}, "date_from"), ({"after": "x"}, "after"),
             ({"after": "-5"}, "after"), ({"date_form": "2026-12-06T00:00:00Z"}, "date_form"),
             ([("limit", "1"), ("limit", "2")], "limit")]
    for path in (LOC, TAR):
        for params, name in cases:
            r = ocpi.get(path, params=params)
            envelope(r, status_code=2001)  # reached the OCPI layer: no HTTP error (OCPI 2.2.1, "Status codes")
            assert f"'{name}'" in r.json()["status_message"], (path, params, r.json())
    for path in ("/ocpi/versions", "/ocpi/2.2.1"):
        assert "'limit'" in ocpi.get(path, params={"limit": "1"}).json()["status_message"]
    assert envelope(ocpi.get(TAR, params={"after": "17"}), status_code=2001) is None  # not a tariffs position


def test_pagination_headers(ocpi, engine) -> None:  # noqa: ANN001
    total = len(all_visible(engine))
    r = ocpi.get(LOC, params={"limit": 7})
    assert len(envelope(r)) == 7
    assert r.headers["x-total-count"] == str(total) and r.headers["x-limit"] == "7"
    m = re.fullmatch(r'<(http://127\.0\.0\.1:8000/ocpi/2\.2\.1/locations\?offset=7&limit=7&after=(\d+))>; rel="next"',
                     r.headers["link"])
    assert m, r.headers["link"]
    assert int(m.group(2)) == int(envelope(r)[-1]["id"])
    r = ocpi.get(LOC, params={"limit": 100000})
    assert r.headers["x-limit"] == "500" and len(envelope(r)) == 500  # the server's maximum
    assert ocpi.get(LOC).headers["x-limit"] == "100"  # the default
    last = ocpi.get(LOC, params={"offset": total - 3, "limit": 10})
    assert len(envelope(last)) == 3 and "link" not in last.headers
    beyond = ocpi.get(LOC, params={"offset": total + 10})
    assert envelope(beyond) == [] and beyond.headers["x-total-count"] == str(total)
    # filters travel in the Link
    r = ocpi.get(LOC, params={"limit": 2, "date_from": "2000-01-01T00:00:00Z", "date_to": "2999-01-01T00:00:00"})
    assert "date_from=2000-01-01T00%3A00%3A00Z&date_to=2999-01-01T00%3A00%3A00&offset=2&limit=2&after=" in r.headers["link"]


def _since(engine) -> tuple[datetime, str]:  # noqa: ANN001
    """A moment just past now, and it as an OCPI DateTime."""
    time.sleep(1.1)  # OCPI DateTimes are written to the second
    with engine.connect() as conn:
        mark = conn.execute(text("SELECT date_trunc('second', now())")).scalar_one()
    time.sleep(1.1)
    return mark, mark.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_date_filters_follow_status_tariff_and_operator_changes(ocpi, world, engine) -> None:  # noqa: ANN001
    """A change made by the real writers (a pulled status, a new tariff version, an operator's new name)
    moves the Location's last_updated, which date_from (inclusive) and date_to (exclusive) select on."""
    weekdays, maint = world.stations["weekdays"], world.stations["maintenance"]
    _, since = _since(engine)
    with engine.begin() as conn:
        store_statuses(conn, OCPI_OP, [{"StationID": "OCPI-WEEKDAYS",
                                        "ConnectorStatusInfos": [{"ConnectorID": "440001240101", "Status": 3}]}])
    changed = envelope(ocpi.get(LOC, params={"date_from": since}))
    assert [x["id"] for x in changed] == [str(weekdays)]
    assert changed[0]["evses"][0]["status"] == "CHARGING"
    assert changed[0]["last_updated"] >= since and changed[0]["evses"][0]["last_updated"] >= since
    before = {x["id"] for x in walk(ocpi, LOC, date_to=since, limit=500)[0]}
    assert str(weekdays) not in before and str(maint) in before and len(before) == len(all_visible(engine)) - 1
    assert envelope(ocpi.get(LOC, params={"date_from": since, "date_to": since})) == []
    _, since2 = _since(engine)
    with engine.begin() as conn:  # a new tariff version touches no station row
        store_tariffs(conn, OCPI_OP, [TariffWrite("440001250101", read_policy(FLAT), "fee_text")])
    changed = envelope(ocpi.get(LOC, params={"date_from": since2}))
    assert [x["id"] for x in changed] == [str(maint)]
    assert changed[0]["evses"][0]["connectors"][0]["tariff_ids"] == [str(world.tariff_ids["flat"])]
    assert [x["id"] for x in envelope(ocpi.get(LOC, params={"date_from": since, "date_to": since2}))] == [str(weekdays)]
    # the operator already published that Tariff: the object itself did not change
    assert envelope(ocpi.get(TAR, params={"date_from": since2})) == []
    _, since3 = _since(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE operators SET name = name || '（新）', updated_at = now() WHERE operator_id = :o"),
                     {"o": OCPI_OP})
    try:
        renamed = envelope(ocpi.get(LOC, params={"date_from": since3, "limit": 500}))
        assert {x["id"] for x in renamed} == {str(pk) for pk in world.stations.values()}
        assert {x["operator"]["name"] for x in renamed} == {OCPI_OP_NAME + "（新）"}
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE operators SET name = :n WHERE operator_id = :o"), {"n": OCPI_OP_NAME, "o": OCPI_OP})


# --- tariffs ------------------------------------------------------------------------------------
def _ocpi_price_at(tariff: dict, minute: int) -> Decimal:
    """What a roaming client computes for a kWh at ``minute`` of the day: the first TariffElement whose
    restrictions all hold (start_time inclusive, end_time exclusive, wrapping when end < start), its
    ENERGY component (OCPI 2.2.1, "Tariffs module")."""
    for element in tariff["elements"]:
        r = element.get("restrictions") or {}
        start = int(r["start_time"][:2]) * 60 + int(r["start_time"][3:]) if "start_time" in r else 0
        end = int(r["end_time"][:2]) * 60 + int(r["end_time"][3:]) if "end_time" in r else 1440
        inside = start <= minute < end if start < end else (minute >= start or minute < end)
        if inside:
            energy = [p for p in element["price_components"] if p["type"] == "ENERGY"]
            if energy:
                assert "vat" not in energy[0]  # the price is what the driver pays
                return Decimal(str(energy[0]["price"]))
    raise AssertionError(f"no element for minute {minute}")


def test_every_tariff_validates_and_prices_every_minute_as_we_do(ocpi, engine) -> None:  # noqa: ANN001
    tariffs, responses = walk(ocpi, TAR, limit=5)
    assert len(responses) > 3 and int(responses[0].headers["x-total-count"]) == len(tariffs)
    keys = [(t["party_id"], t["id"]) for t in tariffs]
    assert len(keys) == len(set(keys))
    with engine.connect() as conn:
        periods = {str(r.id): r.periods for r in conn.execute(text("SELECT id, periods FROM tariffs"))}
    for t in tariffs:
        assert_valid(t, "Tariff")
        assert t["currency"] == "CNY" and {d["language"] for d in t["tariff_alt_text"]} == {"zh", "en"}
        ours = DayTariff.from_json(periods[t["id"]])
        for minute in range(0, 1440, 5):
            moment = datetime(2026, 12, 6, minute // 60, minute % 60, tzinfo=CHINA_TZ)
            assert _ocpi_price_at(t, minute) == ours.at(moment).total, (t["id"], minute)


def test_connector_tariff_ids_name_tariffs_of_the_same_party(ocpi, world) -> None:  # noqa: ANN001
    tariffs, _ = walk(ocpi, TAR, limit=500)
    published = {(t["party_id"], t["id"]) for t in tariffs}
    locations, _ = walk(ocpi, LOC, limit=500)
    referenced = {(loc["party_id"], tid) for loc in locations for e in loc.get("evses", []) for c in e["connectors"]
                  for tid in c.get("tariff_ids", [])}
    assert referenced == published
    ours = [t for t in tariffs if t["party_id"] == OCPI_OP[-3:]]
    assert {t["id"] for t in ours} == {str(world.tariff_ids["tou"]), str(world.tariff_ids["flat"])}
    tou = next(t for t in ours if t["id"] == str(world.tariff_ids["tou"]))
    assert [(e["restrictions"]["start_time"], e["restrictions"]["end_time"], e["price_components"][0]["price"])
            for e in tou["elements"]] == [("00:00", "08:00", 0.9094), ("08:00", "22:00", 1.2437), ("22:00", "00:00", 0.9094)]
    assert tou["tariff_alt_text"][0]["text"].endswith("22:00-24:00 0.3094+0.6000=0.9094")


def test_publishing_parties_are_assigned_once_and_unique(engine, ocpi) -> None:  # noqa: ANN001
    walk(ocpi, TAR, limit=500)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT operator_id, party_id FROM ocpi_cpo_parties")).all()
        operators = {r[0] for r in conn.execute(text("SELECT operator_id FROM operators"))}
    parties = dict(rows)
    assert set(parties) == operators
    assert len(set(parties.values())) == len(parties)
    assert parties[OCPI_OP] == OCPI_OP[-3:]
    for op, party in parties.items():  # the tail when it was free, else a candidate from a hash
        assert party in list(islice(party_candidates(op), 20)), (op, party)
    with engine.begin() as conn:  # two operators with the same tail: the first keeps it
        conn.execute(text("DELETE FROM operators WHERE operator_id IN ('PTYAAA777', 'PTYBBB777')"))
        conn.execute(text("DELETE FROM ocpi_cpo_parties WHERE party_id = '777'"))
        conn.execute(text("INSERT INTO operators (operator_id, name) VALUES ('PTYAAA777', '甲'), ('PTYBBB777', '乙')"))
        assigned = publishing_parties(conn, ["PTYBBB777", "PTYAAA777"])
        assert publishing_parties(conn, ["PTYAAA777", "PTYBBB777"]) == assigned  # kept
        conn.execute(text("DELETE FROM operators WHERE operator_id IN ('PTYAAA777', 'PTYBBB777')"))
    assert assigned["PTYAAA777"] == "777"
    assert assigned["PTYBBB777"] == next(c for c in party_candidates("PTYBBB777") if c not in set(parties.values()) | {"777"})

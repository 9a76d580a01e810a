"""zhcharge as data provider: a higher platform registered with ``zhcharge upstream add`` calls our
``/evcs/v20160701/`` queries over real HTTP with a client built from the codec (the feed's own
``FeedClient``), and gets exactly what the public API shows, as the operators reported it."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ingest.client import FeedError
from ingest.protocol import CHINA_TZ, Ret, Secrets, format_query_time, normalize_station_info, sign
from portal_site.cli import main

from .conftest import Caller, add_platform, drop_platforms, public_stations, upstream_client

KEYS = {"operator_id", "operator_secret", "data_secret", "data_iv", "sig_secret"}


def _pull(url: str, creds: dict, page_size: int, last: str = "") -> tuple[list[dict], list[dict]]:
    """Every page, 1..PageCount: (pages, StationInfos)."""
    pages, infos = [], []
    with upstream_client(url, creds) as c:
        for page, stations in c.iter_station_pages(page_size, last):
            pages.append(page)
            infos += stations
    return pages, infos


def _clean(obj: object) -> object:
    """A StationInfo without empty fields, numbers as numbers (the simulator sends some None)."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items() if v is not None and v != []}
    if isinstance(obj, list):
        return [_clean(x) for x in obj]
    return obj


def test_cli_contract(db_url, engine, city) -> None:  # noqa: ANN001
    creds = add_platform(db_url, platform_id="GDPROV001")
    try:
        assert set(creds) == KEYS and creds["operator_id"] == "GDPROV001"
        assert all(len(creds[k]) == 16 for k in KEYS - {"operator_id"})
        again = add_platform(db_url, "--push-base-url", "http://127.0.0.1:9/evcs/v20161110", "--operator-secret",
                             "s" * 16, "--data-secret", "d" * 16, "--data-iv", "i" * 16, "--sig-secret", "g" * 16,
                             platform_id="GDPROV001")
        assert again == creds  # re-registering keeps the inbound credentials
        env = {"ZHCHARGE_DATABASE_URL": db_url}
        listed = CliRunner().invoke(main, ["upstream", "list", "--json"], env=env)
        row = next(p for p in json.loads(listed.output) if p["platform_id"] == "GDPROV001")
        assert row["push_base_url"] == "http://127.0.0.1:9" and row["api_version"] == "v20161110"
        assert creds["sig_secret"] not in listed.output and "g" * 16 not in listed.output
        human = CliRunner().invoke(main, ["upstream", "add", "--platform-id", "GDPROV001", "--name", "省平台"], env=env)
        assert human.exit_code == 0 and creds["data_secret"] in human.output and "no status pushes" in human.output
        bad = [["--platform-id", city.operator_ids[0], "--name", "x"],  # an operator's OperatorID
               ["--platform-id", "GDPROV001", "--name", "x", "--push-base-url", "http://127.0.0.1:9"],  # no secrets
               ["--platform-id", "GDPROV001", "--name", "x", "--sig-secret", "g" * 16],  # secrets without a URL
               ["--platform-id", "GD PROV", "--name", "x"]]
        for args in bad:
            r = CliRunner().invoke(main, ["upstream", "add", *args, "--json"], env=env)
            assert r.exit_code == 1 and r.output.startswith("error: "), (args, r.output)
        c = Caller(city.url, creds)
        c.get_token()
        assert CliRunner().invoke(main, ["upstream", "remove", "--platform-id", "GDPROV001"], env=env).exit_code == 0
        _, r = c.call("query_stations_info", {"PageNo": 1}, secrets=Secrets("", "", "0" * 16, "0" * 16, "0" * 16))
        assert r.ret != 0  # the platform is gone: the receiver does not know that OperatorID
        assert CliRunner().invoke(main, ["upstream", "remove", "--platform-id", "GDPROV001"], env=env).exit_code == 1
    finally:
        drop_platforms(engine, "GDPROV001")


@pytest.mark.parametrize("page_size", [3, 50, 500])
def test_every_station_page_by_page_is_what_the_public_api_shows(city, platform, engine, page_size) -> None:  # noqa: ANN001
    pages, infos = _pull(city.url, platform, page_size)
    api = public_stations(city.url)
    total = len(api)
    assert [p["PageNo"] for p in pages] == list(range(1, max(1, math.ceil(total / page_size)) + 1))
    assert all(p["PageCount"] == math.ceil(total / page_size) and p["ItemSize"] == total for p in pages)
    assert all(len(p["StationInfos"]) == page_size for p in pages[:-1])
    keys = [(s["OperatorID"], s["StationID"]) for s in infos]
    assert len(keys) == len(set(keys)) and set(keys) == set(api)  # every public station, once
    with engine.connect() as conn:
        reported = {(r.operator_id, r.station_id): (r.lng_gcj02, r.lat_gcj02) for r in conn.execute(text(
            "SELECT operator_id, station_id, lng_gcj02, lat_gcj02 FROM stations WHERE feed_state = 'active' "
            "AND interconnected"))}
    for s in infos:
        item = api[(s["OperatorID"], s["StationID"])]
        assert s["StationName"] == item["name"] and s.get("Address") == item["address"]
        assert (s["StationType"], s["StationStatus"]) == (item["station_type"], item["station_status"])
        assert (s.get("ElectricityFee"), s.get("ServiceFee"), s.get("ParkFee")) == tuple(item["fees"].values())
        assert (s.get("BusineHours"), s.get("ParkInfo"), s.get("StationTel")) == \
            (item["hours"], item["park_info"], item["station_tel"])
        # GCJ-02 as reported
        assert (s["StationLng"], s["StationLat"]) == reported[(s["OperatorID"], s["StationID"])]
        if s["OperatorID"] in city.operator_ids:  # (other domains' tests write stations with made-up counts and datums)
            assert len(s["EquipmentInfos"]) == item["pile_count"]
            assert sum(len(e["ConnectorInfos"]) for e in s["EquipmentInfos"]) == item["connectors_total"]
            # the API converts its WGS84 back to GCJ-02 (sub-metre)
            assert abs(s["StationLng"] - item["lng"]) < 2e-6 and abs(s["StationLat"] - item["lat"]) < 2e-6


def test_station_infos_are_what_the_operators_reported(city, platform) -> None:  # noqa: ANN001
    _, infos = _pull(city.url, platform, 100)
    ours = {(s["OperatorID"], s["StationID"]): s for s in infos if s["OperatorID"] in city.operator_ids}
    truth = {(op.operator_id, st.station_id): st.info() for op in city.sim.state.operators.values()
             for st in op.stations}
    assert ours and set(ours) <= set(truth)
    for key, s in ours.items():
        assert _clean(normalize_station_info(s)) == _clean(normalize_station_info(truth[key])), key
    # and the piles and connectors are the detail's
    sample = next(iter(ours.values()))
    with httpx.Client(base_url=city.url) as h:
        item = h.get("/api/v1/stations", params={"operator": sample["OperatorID"], "limit": 500}).json()["items"]
        pk = next(i["id"] for i in item if i["station_id"] == sample["StationID"])
        detail = h.get(f"/api/v1/stations/{pk}").json()
    assert [(e["equipment_id"], [c["connector_id"] for c in e["connectors"]]) for e in detail["equipment"]] == \
        [(e["EquipmentID"], [c["ConnectorID"] for c in e["ConnectorInfos"]]) for e in sample["EquipmentInfos"]]


def _next_second() -> datetime:
    now = datetime.now(CHINA_TZ)
    time.sleep(1.05 - now.microsecond / 1e6)
    return datetime.now(CHINA_TZ).replace(microsecond=0)


def test_incremental_by_last_query_time(city, platform, engine) -> None:  # noqa: ANN001
    op = city.operator_ids[0]
    with engine.connect() as conn:
        target = conn.execute(text(
            "SELECT s.station_id, c.connector_id, cs.status FROM stations s JOIN connectors c ON c.station_pk = s.id "
            "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
            "WHERE s.operator_id = :op AND s.feed_state = 'active' AND cs.status IN (1, 255) ORDER BY s.id LIMIT 1"),
            {"op": op}).one()
    since = _next_second()
    _, none = _pull(city.url, platform, 10, format_query_time(since))
    assert none == []  # nothing changed since
    city.set_status(op, target.connector_id, 4 if target.status == 1 else 1)
    pages, changed = _pull(city.url, platform, 10, format_query_time(since))
    assert [(s["OperatorID"], s["StationID"]) for s in changed] == [(op, target.station_id)]
    assert pages[0]["ItemSize"] == 1 and pages[0]["PageCount"] == 1
    # a StationInfo change (a pushed station, as a pull would store it) counts too; a later LastQueryTime not
    later = _next_second()
    st = next(s for s in city.sim.state.operators[op].stations if s.station_id != target.station_id
              and (op, s.station_id) in {(x["OperatorID"], x["StationID"]) for x in _pull(city.url, platform, 500)[1]})
    st.fields["Remark"] = f"incremental {later:%H%M%S}"
    c = Caller(city.url, city.creds[op])
    c.get_token()
    _, r = c.call("notification_stationInfo", {"StationInfo": st.info()})
    assert r.ret == 0, r
    _, changed = _pull(city.url, platform, 10, format_query_time(later))
    assert [(s["StationID"], s.get("Remark")) for s in changed] == [(st.station_id, st.fields["Remark"])]
    _, changed = _pull(city.url, platform, 10, format_query_time(since))
    assert {s["StationID"] for s in changed} == {target.station_id, st.station_id}


def test_status_of_up_to_50_stations_and_4004_for_51(city, platform, engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT DISTINCT station_id FROM stations WHERE feed_state = 'active' AND interconnected "
            "ORDER BY station_id LIMIT 50"))]
        truth: dict[str, dict] = {}
        for r in conn.execute(text(
                "SELECT s.station_id, c.connector_id, cs.status, cs.park_status, cs.lock_status FROM stations s "
                "JOIN connectors c ON c.station_pk = s.id LEFT JOIN connector_status cs "
                "ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
                "WHERE s.feed_state = 'active' AND s.interconnected AND s.station_id = ANY(:ids)"), {"ids": ids}):
            truth.setdefault(r.station_id, {})[r.connector_id] = (r.status or 0, r.park_status or 0, r.lock_status or 0)
    # StationIDs repeat across operators (the simulated ones count per operator): one StationStatusInfo
    # each, with the connectors of every station that has it
    ids = ids[:45]
    truth = {k: v for k, v in truth.items() if k in ids}
    asked = [*ids, "NO-SUCH-STATION", *ids[:4]]
    with upstream_client(city.url, platform) as c:
        infos = c.station_status(asked)
        assert [i["StationID"] for i in infos] == ids
        got = {i["StationID"]: {x["ConnectorID"]: (x["Status"], x["ParkStatus"], x["LockStatus"])
                                for x in i["ConnectorStatusInfos"]} for i in infos}
        assert got == truth
        raw = c.request("query_station_status", {"StationIDs": ids[:3]})
        assert raw["Total"] == 3 and len(raw["StationStatusInfos"]) == 3
        with pytest.raises(FeedError, match=r"Ret 4004 .*StationIDs.*at most 50"):
            c.request("query_station_status", {"StationIDs": [*ids, *(f"S{i}" for i in range(51 - len(ids)))]})
        with pytest.raises(FeedError, match=r"Ret 4004 .*StationIDs"):
            c.request("query_station_status", {"StationIDs": []})


def test_station_stats_from_the_orders(city, platform, engine) -> None:  # noqa: ANN001
    op = city.operator_ids[1]
    start = (datetime.now(CHINA_TZ) - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    made = city.sim.admin("POST", "/_admin/sessions", json={
        "operator_id": op, "count": 8, "start": format_query_time(start), "minutes": [30, 120], "wait": True,
        "wait_seconds": 30})
    assert made["pushes_settled"] is True, made
    expected: dict[str, dict[str, Decimal]] = {}
    for t in made["orders"]:
        per = expected.setdefault(t["station_id"], {})
        per[t["connector_id"]] = per.get(t["connector_id"], Decimal(0)) + Decimal(str(t["energy_kwh"]))
    with engine.connect() as conn:  # every order was stored and accepted by the receiver
        assert conn.execute(text("SELECT count(*) FROM charge_orders WHERE operator_id = :op AND latest "
                                 "AND confirm_result = 0 AND start_charge_seq = ANY(:s)"),
                            {"op": op, "s": [t["start_charge_seq"] for t in made["orders"]]}).scalar() == 8
    days = sorted({t["order"]["EndTime"][:10] for t in made["orders"]})
    with upstream_client(city.url, platform) as c:
        for station_id, per in expected.items():
            stats = c.station_stats(station_id, datetime.fromisoformat(days[0]).date(),
                                    datetime.fromisoformat(days[-1]).date())
            assert stats["StationID"] == station_id and (stats["StartTime"], stats["EndTime"]) == (days[0], days[-1])
            assert Decimal(str(stats["StationElectricity"])) == sum(per.values())
            conns = {x["ConnectorID"]: Decimal(str(x["ConnectorElectricity"]))
                     for e in stats["EquipmentStatsInfos"] for x in e["ConnectorStatsInfos"]}
            assert {k: v for k, v in conns.items() if v} == per
            for e in stats["EquipmentStatsInfos"]:
                assert Decimal(str(e["EquipmentElectricity"])) == sum(
                    Decimal(str(x["ConnectorElectricity"])) for x in e["ConnectorStatsInfos"])
            # the operator's own answer agrees (its days with orders are counted from the same orders)
            mine = next(s for s in city.sim.state.operators[op].stations if s.station_id == station_id)
            if len(days) == 1:
                theirs = city.sim.state.station_stats(city.sim.state.operators[op], mine,
                                                      datetime.fromisoformat(days[0]).date(),
                                                      datetime.fromisoformat(days[0]).date())
                assert Decimal(str(theirs["StationElectricity"])) == sum(per.values())
        quiet = c.station_stats(next(iter(expected)), datetime(2020, 1, 1).date(), datetime(2020, 1, 2).date())
        assert quiet["StationElectricity"] == 0 and quiet["EquipmentStatsInfos"]
        for data, field in (({"StartTime": days[0], "EndTime": days[0]}, "StationID"),
                            ({"StationID": next(iter(expected)), "EndTime": days[0]}, "StartTime"),
                            ({"StationID": next(iter(expected)), "StartTime": "2024-02-30", "EndTime": days[0]},
                             "StartTime"),
                            ({"StationID": next(iter(expected)), "StartTime": "2024-01-02", "EndTime": "2024-01-01"},
                             "EndTime"),
                            ({"StationID": "NO-SUCH", "StartTime": days[0], "EndTime": days[0]}, "StationID")):
            with pytest.raises(FeedError, match=f"Ret 4004 .*{field}"):
                c.request("query_station_stats", data)


def test_business_policy_is_the_tariff_in_force(city, platform, engine) -> None:  # noqa: ANN001
    op = city.operator_ids[0]
    with engine.connect() as conn:
        cid = conn.execute(text(
            "SELECT v.connector_id FROM connector_tariffs v JOIN connectors c USING (operator_id, connector_id) "
            "WHERE v.operator_id = :op AND v.valid_to IS NULL AND v.source = 'policy' ORDER BY 1 LIMIT 1"),
            {"op": op}).scalar_one()
    truth = city.sim.state.business.query_policy(city.sim.state.operators[op],
                                                 {"EquipBizSeq": f"{op}{1:018d}", "ConnectorID": cid})
    seq = f"{platform['operator_id'][:9]:0<9}{1:018d}"
    with upstream_client(city.url, platform) as c:
        data = c.request("query_equip_business_policy", {"EquipBizSeq": seq, "ConnectorID": cid})
        assert data["EquipBizSeq"] == seq and data["ConnectorID"] == cid
        assert (data["SuccStat"], data["FailReason"]) == (0, 0)
        assert data["SumPeriod"] == len(data["PolicyInfos"]) == truth["SumPeriod"]
        assert [(p["StartTime"], Decimal(str(p["ElecPrice"])), Decimal(str(p["SevicePrice"])))
                for p in data["PolicyInfos"]] == \
            [(p["StartTime"], Decimal(str(p["ElecPrice"])), Decimal(str(p["SevicePrice"]))) for p in truth["PolicyInfos"]]
        unknown = c.request("query_equip_business_policy", {"EquipBizSeq": seq, "ConnectorID": "NO-SUCH-CONNECTOR"})
        assert (unknown["SuccStat"], unknown["FailReason"], unknown["PolicyInfos"]) == (1, 1, [])
        with pytest.raises(FeedError, match="Ret 4004 .*ConnectorID"):
            c.request("query_equip_business_policy", {"EquipBizSeq": seq})
        with pytest.raises(FeedError, match="Ret 4004 .*EquipBizSeq"):
            c.request("query_equip_business_policy", {"ConnectorID": cid})


def test_every_ret_code_of_a_bad_request(city, platform, db_url, engine) -> None:  # noqa: ANN001
    c = Caller(city.url, platform)
    # no token, an unknown one, another platform's, then with a token
    status, r = c.call("query_stations_info", {"PageNo": 1}, token=None)
    assert (status, r.ret) == (200, Ret.TOKEN) and "query_token" in r.msg
    assert c.call("query_stations_info", {"PageNo": 1}, token="0" * 32)[1].ret == Ret.TOKEN
    other = add_platform(db_url)
    try:
        assert c.call("query_stations_info", {"PageNo": 1}, token=Caller(city.url, other).get_token())[1].ret == Ret.TOKEN
    finally:
        drop_platforms(engine, other["operator_id"])
    wrong = c.call("query_token", {"OperatorID": c.s.operator_id, "OperatorSecret": "wrong"})[1]
    assert wrong.ret == 0 and (wrong.data["SuccStat"], wrong.data["FailReason"]) == (1, 2)
    c.get_token()
    _, ok = c.call("query_stations_info", {"PageNo": 1, "PageSize": 2})
    assert ok.ret == 0 and len(ok.data["StationInfos"]) == 2
    # a wrong signature: 4001, whatever the token
    env = c.envelope({"PageNo": 1})
    env["Sig"] = sign("not-the-sig-key!", env["OperatorID"], env["Data"], env["TimeStamp"], env["Seq"])
    assert c.post("query_stations_info", env, token=c.token)[1].ret == Ret.SIGNATURE
    # envelope errors: 4003
    env = c.envelope({"PageNo": 1})
    del env["Seq"]
    status, r = c.post("query_stations_info", env, token=c.token)
    assert (status, r.ret) == (200, Ret.ENVELOPE) and "Seq" in r.msg
    env = c.envelope({"PageNo": 1})
    env["TimeStamp"] = str(int(time.time() * 1000))
    assert c.post("query_stations_info", env, token=c.token)[1].ret == Ret.ENVELOPE
    old = c.envelope({"PageNo": 1}, timestamp=datetime.now(UTC) - timedelta(hours=1))
    assert c.post("query_stations_info", old, token=c.token)[1].ret == Ret.ENVELOPE
    # business parameters: 4004 naming the field, never a 500
    for interface, data, field in (
            ("query_stations_info", {"PageNo": "first"}, "PageNo"),
            ("query_stations_info", {"PageNo": 0}, "PageNo"),
            ("query_stations_info", {"PageSize": -5}, "PageSize"),
            ("query_stations_info", {"PageSize": True}, "PageSize"),
            ("query_stations_info", {"LastQueryTime": "yesterday"}, "LastQueryTime"),
            ("query_stations_info", {"LastQueryTime": 20240101}, "LastQueryTime"),
            ("query_stations_info", ["not", "an", "object"], "Data"),
            ("query_station_status", {"StationIDs": "x" * 30}, "StationIDs"),
            ("query_station_status", {"StationIDs": [{"StationID": "1"}]}, "StationIDs"),
            ("query_station_stats", {"StationID": ["1"], "StartTime": "2024-01-01", "EndTime": "2024-01-01"},
             "StationID"),
            ("query_station_stats", {"StationID": "1", "StartTime": "2020-01-01", "EndTime": "2024-01-01"},
             "StartTime to EndTime"),
            ("query_equip_business_policy", {"EquipBizSeq": "1", "ConnectorID": "x" * 40}, "ConnectorID")):
        status, r = c.call(interface, data)
        assert (status, r.ret) == (200, Ret.BUSINESS) and field in r.msg, (interface, data, r)
    # a big page is lowered to ZHCHARGE_UPSTREAM_MAX_PAGE_SIZE, PageCount following
    _, big = c.call("query_stations_info", {"PageSize": 100000})
    assert big.data["PageCount"] == math.ceil(big.data["ItemSize"] / city.settings.upstream.max_page_size)
    _, beyond = c.call("query_stations_info", {"PageNo": 100000, "PageSize": 10})
    assert beyond.ret == 0 and beyond.data["StationInfos"] == [] and beyond.data["PageNo"] == 100000


def test_operators_still_reach_the_receiver(city, platform) -> None:  # noqa: ANN001
    op = city.operator_ids[0]
    c = Caller(city.url, city.creds[op])
    c.get_token()  # the operator's query_token: the receiver's, with the operator's secrets
    status, r = c.call("query_stations_info", {"PageNo": 1})  # not a platform: the receiver knows no such interface
    assert status == 404 and r.ret == Ret.BUSINESS and "unknown interface" in r.msg
    # a platform's token is no operator's, nor the other way round
    p = Caller(city.url, platform)
    p.get_token()
    assert c.call("notification_stationStatus", {"ConnectorStatusInfo": {"ConnectorID": "X", "Status": 1}},
                  token=p.token)[1].ret == Ret.TOKEN
    assert p.call("query_stations_info", {"PageNo": 1}, token=c.token)[1].ret == Ret.TOKEN

"""The simulator's business side over real HTTP: policies, sessions, orders, reconciliation.

No database. The simulator runs on uvicorn; the tests call it with the codec as a city platform
would, and a stand-in platform (Litestar on loopback, ``parse_request``/``build_response``)
takes the pushes: it records every attempt, answers ``Ret`` and ``ConfirmResult`` as told, and
answers ``check_charge_orders`` with the orders it disagrees with.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from litestar.testing import TestClient

from ingest.protocol import CHINA_TZ, Ret, Secrets, build_response, parse_query_time, parse_request
from ingest.simulator.config import SimConfig
from ingest.simulator.server import build_app
from ingest.simulator.state import Simulator
from services.supervision.fees import parse_fee
from tests.conftest import ServerThread
from tests.integration.test_simulator_server import Caller, _caller, _operators

PUSH = {"operator_secret": "OrderOpSecret001", "data_secret": "OrderDataSecret1",
        "data_iv": "OrderDataIV00001", "sig_secret": "OrderSigSecret01"}
TOU_STARTS = ["000000", "080000", "100000", "120000", "140000", "190000"]
TOU_KIND = ["valley", "flat", "peak", "flat", "peak", "flat"]
ELEC = {"valley": (0.25, 0.35), "flat": (0.60, 0.70), "peak": (1.00, 1.15)}
ORDER_FIELDS = {"StartChargeSeq", "ConnectorID", "StartTime", "EndTime", "TotalPower", "TotalElecMoney",
                "TotalSeviceMoney", "TotalMoney", "StopReason", "SumPeriod", "ChargeDetails"}
DETAIL_FIELDS = {"DetailStartTime", "DetailEndTime", "ElecPrice", "SevicePrice", "DetailPower", "DetailElecMoney",
                 "DetailSeviceMoney"}
CENT = Decimal("0.01")


def D(x: Any) -> Decimal:
    return Decimal(str(x))


# ---------------------------------------------------------------------- the stand-in platform


@dataclass
class Platform:
    """What a city platform does with the pushes, minimally, and what it was sent."""

    secrets: dict[str, Secrets] = field(default_factory=dict)
    pushes: list[tuple[str, str, Any]] = field(default_factory=list)
    """(interface, OperatorID, Data) of every push answered Ret 0."""
    attempts: list[tuple[str, Any, int]] = field(default_factory=list)
    """(interface, StartChargeSeq, Ret) of every order push, answered or not."""
    order_rets: list[int] = field(default_factory=list)
    """Ret for the next order pushes (then 0)."""
    confirm: int = 0
    held: dict[tuple[str, str], dict] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)

    def of(self, interface: str, operator_id: str | None = None) -> list[Any]:
        return [d for i, op, d in list(self.pushes) if i == interface and (operator_id is None or op == operator_id)]

    def orders_of(self, seq: str) -> list[dict]:
        return [d for d in self.of("notification_charge_order_info") if d["StartChargeSeq"] == seq]

    def _check(self, op: str, data: dict) -> dict:
        disputes = []
        for o in data["ChargeOrders"]:
            held = self.held.get((op, o["StartChargeSeq"]))
            reason = 1 if held is None else 2 if D(held["TotalMoney"]) != D(o["TotalMoney"]) else \
                3 if D(held["TotalPower"]) != D(o["TotalPower"]) else 0
            if reason:
                disputes.append({**o, "DisputeReason": reason})
        return {"CheckOrderSeq": data["CheckOrderSeq"], "StartTime": data["StartTime"], "EndTime": data["EndTime"],
                "TotalDisputeOrder": len(disputes),
                "TotalDisputePower": float(sum((D(x["TotalPower"]) for x in disputes), Decimal(0))),
                "TotalDisputeMoney": float(sum((D(x["TotalMoney"]) for x in disputes), Decimal(0))),
                "DisputeOrders": disputes}

    def app(self) -> Litestar:
        rec = self

        @post("/evcs/v20160701/{interface:str}", status_code=200)
        async def handle(request: Request, interface: FromPath[str]) -> Response:
            parsed = parse_request(await request.body(), rec.secrets.get)
            op, s, data = parsed.operator_id, rec.secrets[parsed.operator_id], parsed.data
            if interface == "query_token":
                token = f"T{len(rec.tokens) + 1}"
                rec.tokens.add(token)
                return Response(build_response(0, "", {"OperatorID": op, "SuccStat": 0, "AccessToken": token,
                                                       "TokenAvailableTime": 3600, "FailReason": 0}, s))
            if request.headers.get("authorization", "")[7:] not in rec.tokens:
                return Response(build_response(Ret.TOKEN, "token unknown", None, s))
            answer: dict[str, Any] = {"Status": 0}
            if interface == "notification_charge_order_info":
                ret = rec.order_rets.pop(0) if rec.order_rets else 0
                rec.attempts.append((interface, data["StartChargeSeq"], ret))
                if ret != 0:
                    return Response(build_response(ret, "busy (stand-in)", None, s))
                rec.held[(op, data["StartChargeSeq"])] = data
                answer = {"StartChargeSeq": data["StartChargeSeq"], "ConnectorID": data["ConnectorID"],
                          "ConfirmResult": rec.confirm}
            elif interface == "check_charge_orders":
                answer = rec._check(op, data)
            rec.pushes.append((interface, op, data))
            return Response(build_response(0, "", answer, s))

        return Litestar([handle])


@pytest.fixture(scope="module")
def platform():
    p = Platform()
    with ServerThread(p.app()) as server:
        yield p, server.url


def _point_pushes_at(sim_url: str, platform: Platform, platform_url: str) -> list[str]:
    ops = [op["operator_id"] for op in _operators_at(sim_url)]
    for op_id in ops:
        platform.secrets[op_id] = Secrets(op_id, **PUSH)
    r = httpx.post(f"{sim_url}/_admin/push-targets", json={"operator_id": "*", "base_url": platform_url, **PUSH})
    assert r.status_code == 200, r.text
    return ops


def _operators_at(url: str) -> list[dict]:
    return httpx.get(f"{url}/_admin/operators").json()


@pytest.fixture(scope="module")
def sim(platform):
    cfg = SimConfig(seed=25, stations=60, operators=3, token_ttl=600, push_orders=True, push_backoff_seconds=0.02,
                    order_retry_backoff_seconds=0.2, order_retry_max_seconds=1.0)
    with ServerThread(build_app(cfg)) as server:
        _point_pushes_at(server.url, platform[0], platform[1])
        yield server


@pytest.fixture(autouse=True)
def _clean(request):
    yield
    if "sim" in request.fixturenames:
        httpx.post(f"{request.getfixturevalue('sim').url}/_admin/faults", json={"reset": True})
    if "platform" in request.fixturenames:
        p = request.getfixturevalue("platform")[0]
        p.order_rets.clear()
        p.confirm = 0


def admin(sim, method: str, path: str, **kw: Any) -> Any:
    r = httpx.request(method, f"{sim.url}/_admin{path}", timeout=60, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def _ops(sim) -> list[str]:
    return [op["operator_id"] for op in _operators(sim)]


def _sessions(sim, **body: Any) -> list[dict]:
    out = admin(sim, "POST", "/sessions", json={"wait": True, "wait_seconds": 20, **body})
    assert out["made"] == body.get("count", 1) and out["pushes_settled"] is True, out
    return out["orders"]


def _policy(c: Caller, connector_id: str, n: int = 1) -> Any:
    _, resp = c.call("query_equip_business_policy", {"EquipBizSeq": f"{c.operator_id}{n:018d}",
                                                     "ConnectorID": connector_id})
    return resp


def _t(text: str) -> datetime:
    return parse_query_time(text)


# ---------------------------------------------------------------------- order checks


def arithmetic_problems(o: dict) -> list[str]:
    """What does not add up in an order (money within 0.01 yuan)."""
    problems = []
    details = o["ChargeDetails"]
    if o["SumPeriod"] != len(details):
        problems.append("SumPeriod")
    for i, d in enumerate(details):
        for price, money in (("ElecPrice", "DetailElecMoney"), ("SevicePrice", "DetailSeviceMoney")):
            if abs(D(d[price]) * D(d["DetailPower"]) - D(d[money])) > CENT:
                problems.append(f"ChargeDetails[{i}].{money}")
    for total, part in (("TotalPower", "DetailPower"), ("TotalElecMoney", "DetailElecMoney"),
                        ("TotalSeviceMoney", "DetailSeviceMoney")):
        if abs(sum(D(d[part]) for d in details) - D(o[total])) > CENT:
            problems.append(total)
    if abs(D(o["TotalElecMoney"]) + D(o["TotalSeviceMoney"]) - D(o["TotalMoney"])) > CENT:
        problems.append("TotalMoney")
    return problems


def assert_sound_shape(o: dict, power: float, now: datetime, tou: bool) -> None:
    """Fields, formats, times and physics of a pushed order (faults never touch these)."""
    assert set(o) == ORDER_FIELDS and all(set(d) == DETAIL_FIELDS for d in o["ChargeDetails"])
    seq = o["StartChargeSeq"]
    assert len(seq) == 27 and seq[9:].isdigit()
    start, end = _t(o["StartTime"]), _t(o["EndTime"])
    assert start < end <= now
    assert o["StopReason"] in (0, 1, 2, 3, 4)
    assert o["ChargeDetails"][0]["DetailStartTime"] == o["StartTime"]
    assert o["ChargeDetails"][-1]["DetailEndTime"] == o["EndTime"]
    boundaries = {"00:00:00", *(["08:00:00", "10:00:00", "12:00:00", "14:00:00", "19:00:00"] if tou else [])}
    for a, b in zip(o["ChargeDetails"], o["ChargeDetails"][1:]):
        assert a["DetailEndTime"] == b["DetailStartTime"] and b["DetailStartTime"][11:] in boundaries
    for d in o["ChargeDetails"]:
        hours = D((_t(d["DetailEndTime"]) - _t(d["DetailStartTime"])).total_seconds()) / 3600
        assert D(d["DetailPower"]) <= D(power) * hours
        for k in ("DetailPower", "DetailElecMoney", "DetailSeviceMoney"):
            assert D(d[k]) == D(d[k]).quantize(CENT) and D(d[k]) >= 0
        for k in ("ElecPrice", "SevicePrice"):
            assert D(d[k]) == D(d[k]).quantize(Decimal("0.0001"))
    hours = D((end - start).total_seconds()) / 3600
    assert sum(D(d["DetailPower"]) for d in o["ChargeDetails"]) <= D(power) * hours


def billed_off_tariff(o: dict, truth: dict) -> list[int]:
    """Details whose prices are not the tariff in force (per the ground truth)."""
    return [i for i, (d, e) in enumerate(zip(o["ChargeDetails"], truth["expected"]))
            if (D(d["ElecPrice"]), D(d["SevicePrice"])) != (D(e["ElecPrice"]), D(e["SevicePrice"]))]


# ---------------------------------------------------------------------- policies


def _stations(c: Caller) -> list[dict]:
    return c.all_pages(100)


def test_policies_follow_the_delta_periods_and_the_fee_texts(sim):
    flat_ops, noted, differ = [], 0, set()
    for index, op_id in enumerate(_ops(sim)):
        c = _caller(sim, index)
        op_prices = set()
        for st in _stations(c)[:8]:
            elec, service = parse_fee(st["ElectricityFee"]), parse_fee(st["ServiceFee"])
            assert elec.complete and service.complete, st["StationID"]
            note = "交流桩服务费每度低" in st["ServiceFee"]
            noted += note
            less = D(st["ServiceFee"].split("每度低")[1].rstrip("元")) if note else Decimal(0)
            for eq in st["EquipmentInfos"]:
                for conn in eq["ConnectorInfos"]:
                    resp = _policy(c, conn["ConnectorID"])
                    assert resp.ret == Ret.OK
                    p = resp.data
                    assert p["EquipBizSeq"] == f"{op_id}{1:018d}" and p["ConnectorID"] == conn["ConnectorID"]
                    assert (p["SuccStat"], p["FailReason"]) == (0, 0)
                    infos = p["PolicyInfos"]
                    assert p["SumPeriod"] == len(infos)
                    starts = [x["StartTime"] for x in infos]
                    assert starts in (TOU_STARTS, ["000000"])
                    if starts == ["000000"]:
                        flat_ops.append(op_id)
                    dc = conn["ConnectorType"] == 4
                    for i, x in enumerate(infos):
                        e, v = D(x["ElecPrice"]), D(x["SevicePrice"])
                        if len(infos) == 6:
                            low, high = ELEC[TOU_KIND[i]]
                            assert D(low) <= e <= D(high)
                        assert D("0.40") <= v <= D("0.90") and e + v < 2
                        minute = int(x["StartTime"][:2]) * 60
                        # The texts say exactly what the policy says (AC piles: less the note's amount).
                        assert D(elec.price_at(minute)) == e
                        assert D(service.price_at(minute)) - (0 if dc else less) == v
                        op_prices.add((st["StationID"], e))
                    differ.add((op_id, tuple(x["SevicePrice"] for x in infos)))
        assert len({e for _, e in op_prices}) > 1  # stations differ
    assert len(set(flat_ops)) == 1 and flat_ops[0] == _ops(sim)[2]  # every third operator bills flat
    assert noted > 0  # some stations' AC piles bill a lower service fee than their DC piles
    assert len({op for op, _ in differ}) == 3 and len(differ) > 6


def test_policy_bad_requests_and_unknown_connector(sim):
    c = _caller(sim, 0)
    _, short = c.call("query_equip_business_policy", {"EquipBizSeq": "123", "ConnectorID": "X"})
    assert short.ret == Ret.BUSINESS and "EquipBizSeq" in short.msg
    _, missing = c.call("query_equip_business_policy", {"EquipBizSeq": f"{c.operator_id}{1:018d}"})
    assert missing.ret == Ret.BUSINESS and "ConnectorID" in missing.msg
    unknown = _policy(c, "NOPE0000000000")
    assert unknown.ret == Ret.OK and (unknown.data["SuccStat"], unknown.data["FailReason"]) == (1, 1)
    assert unknown.data["PolicyInfos"] == [] and unknown.data["SumPeriod"] == 0


def test_policy_unsupported_fail_and_missing(sim):
    ops = _ops(sim)
    c0, c1 = _caller(sim, 0), _caller(sim, 1)
    cid0 = _stations(c0)[0]["EquipmentInfos"][0]["ConnectorInfos"][0]["ConnectorID"]
    cid1 = _stations(c1)[0]["EquipmentInfos"][0]["ConnectorInfos"][0]["ConnectorID"]
    faults = admin(sim, "POST", "/faults", json={"policy_unsupported": {ops[0]: "fail", ops[1]: "missing"}})
    assert faults["policy_unsupported"] == {ops[0]: "fail", ops[1]: "missing"}
    failed = _policy(c0, cid0)
    assert failed.ret == Ret.OK and failed.data["SuccStat"] == 1 and failed.data["FailReason"] == 2
    status, missing = c1.call("query_equip_business_policy", {"EquipBizSeq": f"{ops[1]}{1:018d}", "ConnectorID": cid1})
    assert status == 404 and missing.ret == Ret.BUSINESS and "unknown interface" in missing.msg
    # The other interfaces of that operator still work.
    _, page = c1.call("query_stations_info", {"PageSize": 1})
    assert page.ret == Ret.OK
    bad = httpx.post(f"{sim.url}/_admin/faults", json={"policy_unsupported": {ops[0]: "sometimes"}})
    assert bad.status_code == 400
    assert httpx.post(f"{sim.url}/_admin/faults", json={"policy_over_cap": {"NOPE00000": 1}}).status_code == 400
    admin(sim, "POST", "/faults", json={"reset": True})
    assert _policy(c1, cid1).data["SuccStat"] == 0


def _before_announcement(sim, platform, index: int) -> tuple[Platform, str, Caller, str, int]:
    """The platform, the index-th operator, a caller, a LastQueryTime after every earlier change
    and how many StationInfo pushes that operator made so far."""
    p, _ = platform
    op_id = _ops(sim)[index]
    time.sleep(1.05)
    since = datetime.now(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
    return p, op_id, _caller(sim, index), since, len(p.of("notification_stationInfo", op_id))


def test_policy_over_cap_is_announced_and_restored(sim, platform):
    p, op_id, c, since, before = _before_announcement(sim, platform, 1)
    admin(sim, "POST", "/faults", json={"policy_over_cap": [op_id]})
    over = [x for x in admin(sim, "GET", "/policies", params={"operator_id": op_id}) if x["current"]["over_cap"]]
    assert len(over) == 1 and over[0]["current"]["reason"] == "over_cap"
    station = over[0]
    assert station["ServiceFee"] == "00:00-24:00 3.50元/度"
    assert {x["SevicePrice"] for k in ("AC", "DC") for x in station["current"][k]} == {3.5}
    changed = c.all_pages(50, since)
    assert [s["StationID"] for s in changed] == [station["station_id"]]
    assert changed[0]["ServiceFee"] == station["ServiceFee"]
    cid = changed[0]["EquipmentInfos"][0]["ConnectorInfos"][0]["ConnectorID"]
    assert {x["SevicePrice"] for x in _policy(c, cid).data["PolicyInfos"]} == {3.5}
    _wait_for(lambda: len(p.of("notification_stationInfo", op_id)) > before)
    assert p.of("notification_stationInfo", op_id)[-1]["ServiceFee"] == "00:00-24:00 3.50元/度"
    # Reset: the station gets its last normal prices back, as a new version.
    admin(sim, "POST", "/faults", json={"reset": True})
    hist = admin(sim, "GET", "/policies", params={"operator_id": op_id, "station_id": station["station_id"]})[0]
    reasons = [v["reason"] for v in hist["versions"]]
    assert reasons[-2:] == ["over_cap", "restore"] and not hist["current"]["over_cap"]
    assert hist["versions"][-1]["DC"] == hist["versions"][-3]["DC"]
    assert "3.50" not in hist["ServiceFee"]


def test_policy_change_is_served_and_pushed_as_station_info(sim, platform):
    p, op_id, c, since, before = _before_announcement(sim, platform, 0)
    old = {x["station_id"]: x for x in admin(sim, "GET", "/policies", params={"operator_id": op_id})}
    changed = admin(sim, "POST", "/policies", json={"operator_id": op_id, "stations": 2})["changed"]
    assert len(changed) == 2
    ids = {x["station_id"] for x in changed}
    for x in changed:
        assert x["current"]["reason"] == "change" and x["current"]["since"] >= since
        assert x["current"]["DC"] != old[x["station_id"]]["current"]["DC"]
        assert x["ElectricityFee"] != old[x["station_id"]]["ElectricityFee"]
    pulled = {s["StationID"]: s for s in c.all_pages(50, since)}
    assert set(pulled) == ids
    for x in changed:
        st = pulled[x["station_id"]]
        assert st["ElectricityFee"] == x["ElectricityFee"] and st["ServiceFee"] == x["ServiceFee"]
        conn = st["EquipmentInfos"][0]["ConnectorInfos"][0]
        kind = "DC" if conn["ConnectorType"] == 4 else "AC"
        assert _policy(c, conn["ConnectorID"]).data["PolicyInfos"] == x["current"][kind]
    _wait_for(lambda: len(p.of("notification_stationInfo", op_id)) >= before + 2)
    pushed = {d["StationID"]: d for d in p.of("notification_stationInfo", op_id)[before:]}
    assert set(pushed) == ids and all(pushed[s]["ElectricityFee"] == pulled[s]["ElectricityFee"] for s in ids)


def _wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---------------------------------------------------------------------- orders


def test_backdated_sessions_make_sound_orders_at_the_tariff(sim, platform):
    p, _ = platform
    ops = _ops(sim)
    made = _sessions(sim, operator_id=ops[0], count=12, minutes=[30, 300])
    made += _sessions(sim, operator_id=ops[2], count=4, minutes=[30, 300])
    now = datetime.now(CHINA_TZ)
    for truth in made:
        o = truth["order"]
        assert truth["faults"] == {} and len(truth["versions"]) == 1
        assert o["StartChargeSeq"].startswith(truth["operator_id"])
        assert_sound_shape(o, truth["connector_power"], now, tou=truth["operator_id"] != ops[2])
        assert arithmetic_problems(o) == [] and billed_off_tariff(o, truth) == []
        assert now - _t(o["StartTime"]) <= timedelta(hours=24, seconds=5)
        assert p.orders_of(o["StartChargeSeq"]) == [o]  # pushed once, as the truth says
        assert truth["deliveries"] == [{"kind": "order", "version": 1, "outcome": "acknowledged", "acknowledged": True,
                                        "confirm_result": 0, "attempts": 1, "last_error": None}]
        # The tariff the truth names is the one served for this connector (no change since).
        if [t["version"] for t in truth["tariff"]] == [1] and truth["operator_id"] == ops[2]:
            c = _caller(sim, 2)
            assert _policy(c, truth["connector_id"]).data["PolicyInfos"] == truth["tariff"][0]["PolicyInfos"]
    assert len({t["start_charge_seq"] for t in made}) == len(made)
    listed = {t["start_charge_seq"] for t in admin(sim, "GET", "/orders", params={"operator_id": ops[0]})}
    assert {t["start_charge_seq"] for t in made if t["operator_id"] == ops[0]} <= listed


def test_sessions_cross_periods_and_never_end_in_the_future(sim):
    ops = _ops(sim)
    yesterday = (datetime.now(CHINA_TZ) - timedelta(days=1)).date()
    crossing = _sessions(sim, operator_id=ops[0], count=3, start=f"{yesterday} 07:30:00", minutes=[180, 180])
    for truth in crossing:
        o = truth["order"]
        assert [(d["DetailStartTime"][11:], d["DetailEndTime"][11:]) for d in o["ChargeDetails"]] == [
            ("07:30:00", "08:00:00"), ("08:00:00", "10:00:00"), ("10:00:00", "10:30:00")]
        assert o["SumPeriod"] == 3 and [d["ElecPrice"] for d in o["ChargeDetails"]] == [
            truth["tariff"][0]["PolicyInfos"][i]["ElecPrice"] for i in (0, 1, 2)]
    # across the midnight before yesterday: over whatever the time of day (after 00:00 a session from
    # yesterday 23:00 would still be running at 01:00 and end now)
    before = yesterday - timedelta(days=1)
    flat = _sessions(sim, operator_id=ops[2], count=1, start=f"{before} 23:00:00", minutes=[120, 120])[0]["order"]
    assert [d["DetailEndTime"][11:] for d in flat["ChargeDetails"]] == ["00:00:00", "01:00:00"]  # midnight splits
    recent = (datetime.now(CHINA_TZ) - timedelta(minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    clipped = _sessions(sim, operator_id=ops[0], count=2, start=recent, minutes=[120, 120])
    for truth in clipped:
        assert _t(truth["order"]["EndTime"]) <= datetime.now(CHINA_TZ)
    future = (datetime.now(CHINA_TZ) + timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    assert httpx.post(f"{sim.url}/_admin/sessions", json={"count": 1, "start": future}).status_code == 400
    assert httpx.post(f"{sim.url}/_admin/sessions", json={"count": 1, "minutes": [5, 1]}).status_code == 400


def test_faults_appear_exactly_where_the_truth_says(sim, platform):
    p, _ = platform
    op_id = _ops(sim)[0]
    before = admin(sim, "GET", "/pushes")["operators"][op_id]["orders"]
    admin(sim, "POST", "/faults", json={"order_overcharge_rate": 0.3, "order_arithmetic_rate": 0.3,
                                        "order_duplicate_rate": 0.3, "order_revise_rate": 0.3})
    made = _sessions(sim, operator_id=op_id, count=40, minutes=[30, 240])
    now = datetime.now(CHINA_TZ)
    seen = {"overcharge": 0, "arithmetic": 0, "duplicate": 0, "revised": 0}
    for truth in made:
        faults, v1 = truth["faults"], truth["versions"][0]["order"]
        for name in seen:
            seen[name] += name in faults
        assert_sound_shape(v1, truth["connector_power"], now, tou=True)
        # Price execution: off the tariff in exactly one detail, by +0.20 service, iff overcharged.
        off = billed_off_tariff(v1, truth)
        if "overcharge" in faults:
            i = faults["overcharge"]["detail"]
            assert off == [i]
            d, e = v1["ChargeDetails"][i], truth["expected"][i]
            assert D(d["SevicePrice"]) - D(e["SevicePrice"]) == D("0.2") and d["ElecPrice"] == e["ElecPrice"]
            energy = D(d["DetailPower"])
            assert D(faults["overcharge"]["overcharge_yuan"]) == (
                (D(d["SevicePrice"]) * energy).quantize(CENT, ROUND_HALF_UP)
                - (D(e["SevicePrice"]) * energy).quantize(CENT, ROUND_HALF_UP))
        else:
            assert off == []
        # Arithmetic: broken iff the truth says so (an overcharge alone is arithmetic-clean).
        assert bool(arithmetic_problems(v1)) == ("arithmetic" in faults), (faults, arithmetic_problems(v1))
        pushed = p.orders_of(v1["StartChargeSeq"])
        expected = [v1] + ([v1] if "duplicate" in faults else []) + \
            ([truth["versions"][1]["order"]] if "revised" in faults else [])
        assert pushed == expected
        assert [d["kind"] for d in truth["deliveries"]] == ["order"] + ["duplicate"] * ("duplicate" in faults) + \
            ["revision"] * ("revised" in faults)
        assert all(d["outcome"] == "acknowledged" for d in truth["deliveries"])
        if "revised" in faults:
            v2 = truth["versions"][1]["order"]
            assert truth["order"] == v2 and arithmetic_problems(v2) == []
            assert D(v2["TotalPower"]) < D(v1["TotalPower"]) or D(v2["TotalMoney"]) != D(v1["TotalMoney"])
            assert (v2["StartTime"], v2["EndTime"]) == (v1["StartTime"], v1["EndTime"])
            assert bool(billed_off_tariff(v2, truth)) == ("overcharge" in faults)
    assert all(n > 0 for n in seen.values()), seen
    after = admin(sim, "GET", "/pushes")["operators"][op_id]["orders"]
    assert after["duplicates"] - before["duplicates"] == seen["duplicate"]
    assert after["revisions"] - before["revisions"] == seen["revised"]
    assert after["pending"] == 0


def test_order_push_is_retried_until_ret_0_and_a_dispute_is_not_resent(sim, platform):
    p, _ = platform
    op_id = _ops(sim)[1]
    before = admin(sim, "GET", "/pushes")["operators"][op_id]["orders"]
    p.order_rets[:] = [-1, 500]
    truth = _sessions(sim, operator_id=op_id, count=1)[0]
    seq = truth["start_charge_seq"]
    assert [ret for i, s, ret in p.attempts if s == seq] == [-1, 500, 0]
    assert p.orders_of(seq) == [truth["order"]]
    d = truth["deliveries"][0]
    assert (d["outcome"], d["attempts"], d["confirm_result"]) == ("acknowledged", 3, 0)
    assert d["last_error"].startswith("Ret 500")
    after = admin(sim, "GET", "/pushes")["operators"][op_id]["orders"]
    assert after["retries"] - before["retries"] == 2 and after["sent"] - before["sent"] == 3
    # ConfirmResult 1: disputed, an answer all the same: never resent.
    p.confirm = 1
    disputed = _sessions(sim, operator_id=op_id, count=1)[0]
    time.sleep(0.5)
    assert len(p.orders_of(disputed["start_charge_seq"])) == 1
    d = disputed["deliveries"][0]
    assert (d["outcome"], d["acknowledged"], d["confirm_result"], d["attempts"]) == ("disputed", True, 1, 1)
    truth_now = {t["start_charge_seq"]: t for t in admin(sim, "GET", "/orders", params={"operator_id": op_id})}
    assert truth_now[disputed["start_charge_seq"]]["deliveries"][0]["outcome"] == "disputed"


def test_reconciliation_lists_the_days_orders_less_the_omitted(sim, platform):
    p, _ = platform
    op_id = _ops(sim)[1]
    day = "2024-03-05"
    admin(sim, "POST", "/faults", json={"reconcile_omit_rate": 0.25, "order_revise_rate": 0.3})
    made = _sessions(sim, operator_id=op_id, count=16, start=f"{day} 09:00:00", minutes=[30, 200])
    made += _sessions(sim, operator_id=op_id, count=1, start="2024-03-04 23:00:00", minutes=[90, 90])  # ends that day
    _sessions(sim, operator_id=op_id, count=2, start="2024-03-06 09:00:00", minutes=[30, 60])  # another day
    truth = {t["start_charge_seq"]: t for t in admin(sim, "GET", "/orders", params={"operator_id": op_id, "day": day})}
    assert set(truth) == {t["start_charge_seq"] for t in made}
    omitted = {s for s, t in truth.items() if t["faults"].get("reconcile_omit")}
    assert 0 < len(omitted) < len(truth) and any(t["faults"].get("revised") for t in truth.values())
    lost = sorted(set(truth) - omitted)[0]  # the platform lost one order: it will dispute it
    del p.held[(op_id, lost)]
    out = admin(sim, "POST", "/reconcile", json={"operator_id": op_id, "day": day, "wait": True})
    assert out["pushes_settled"] is True
    run = out["reconciliations"][0]
    sent = p.of("check_charge_orders", op_id)[-1]
    assert sent == run["request"] and len(sent["CheckOrderSeq"]) == 27 and sent["CheckOrderSeq"].startswith(op_id)
    assert (sent["StartTime"], sent["EndTime"]) == (f"{day} 00:00:00", f"{day} 23:59:59")
    listed = {o["StartChargeSeq"]: o for o in sent["ChargeOrders"]}
    assert set(listed) == set(truth) - omitted and set(run["omitted"]) == omitted
    assert sent["OrderCount"] == len(listed)
    for seq, o in listed.items():  # the latest version of each order
        latest = truth[seq]["order"]
        assert (o["TotalPower"], o["TotalMoney"]) == (latest["TotalPower"], latest["TotalMoney"])
    assert D(sent["TotalOrderPower"]) == sum(D(o["TotalPower"]) for o in listed.values())
    assert D(sent["TotalOrderMoney"]) == sum(D(o["TotalMoney"]) for o in listed.values())
    # The platform's answer is kept and returned.
    answer = run["answer"]
    assert answer["TotalDisputeOrder"] == 1 and answer["DisputeOrders"][0]["StartChargeSeq"] == lost
    assert answer["DisputeOrders"][0]["DisputeReason"] == 1 and run["delivery"]["outcome"] == "acknowledged"
    stored = admin(sim, "GET", "/reconciliations", params={"operator_id": op_id, "day": day})
    assert stored == [run]
    assert httpx.post(f"{sim.url}/_admin/reconcile", json={"day": "05/03/2024"}).status_code == 400


# ---------------------------------------------------------------------- live sessions


def _free_connector(sim, op_id: str) -> tuple[str, str]:
    for s in admin(sim, "GET", f"/stations/{op_id}"):
        truth = admin(sim, "GET", f"/stations/{op_id}/{s['StationID']}")
        if truth["StationInfo"]["StationStatus"] != 50:
            continue
        for c in truth["StationStatusInfo"]["ConnectorStatusInfos"]:
            if c["Status"] == 1:
                return s["StationID"], c["ConnectorID"]
    raise AssertionError("no free connector")


def test_live_session_keeps_status_3_and_pushes_its_order_when_it_ends(sim, platform):
    p, _ = platform
    op_id = _ops(sim)[0]
    c = _caller(sim, 0)
    station_id, cid = _free_connector(sim, op_id)
    started = admin(sim, "POST", "/connector-status", json={"operator_id": op_id, "connector_id": cid, "status": 3,
                                                            "wait": True})
    session = started["session"]
    assert session["connector_id"] == cid and started["change"]["StartChargeSeq"] == session["start_charge_seq"]
    assert started["order"] is None
    _, st = c.call("query_station_status", {"StationIDs": [station_id]})
    status = {x["ConnectorID"]: x["Status"] for x in st.data["StationStatusInfos"][0]["ConnectorStatusInfos"]}
    assert status[cid] == 3
    assert session in admin(sim, "GET", "/sessions", params={"operator_id": op_id})
    assert p.orders_of(session["start_charge_seq"]) == []
    time.sleep(1.1)
    ended = admin(sim, "POST", "/connector-status", json={"operator_id": op_id, "connector_id": cid, "status": 1,
                                                          "wait": True})
    assert ended["pushes_settled"] is True and ended["session"] is None
    order = ended["order"]["order"]
    assert p.orders_of(session["start_charge_seq"]) == [order]
    assert order["ConnectorID"] == cid and order["StartTime"] == session["start"]
    assert _t(order["StartTime"]) < _t(order["EndTime"]) <= datetime.now(CHINA_TZ)
    assert order["StopReason"] in (0, 1, 4) and arithmetic_problems(order) == []
    assert session not in admin(sim, "GET", "/sessions", params={"operator_id": op_id})


def test_status_3_exactly_while_a_session_runs(sim, platform):
    p, _ = platform
    op_id = _ops(sim)[2]
    c = _caller(sim, 2)
    tick = admin(sim, "POST", "/tick", json={"changes": 150, "operator_id": op_id, "wait": True})
    ended = [x["StartChargeSeq"] for x in tick["changed"] if x["OldStatus"] == 3 and x["Status"] != 3]
    assert ended
    ids = [s["StationID"] for s in admin(sim, "GET", f"/stations/{op_id}")]
    charging = set()
    for i in range(0, len(ids), 50):
        _, st = c.call("query_station_status", {"StationIDs": ids[i:i + 50]})
        charging |= {x["ConnectorID"] for s in st.data["StationStatusInfos"] for x in s["ConnectorStatusInfos"]
                     if x["Status"] == 3}
    running = {s["connector_id"] for s in admin(sim, "GET", "/sessions", params={"operator_id": op_id})}
    assert running == charging
    _wait_for(lambda: all(p.orders_of(seq) for seq in ended))


def test_station_stats_agree_with_the_orders(sim):
    op_id = _ops(sim)[0]
    c = _caller(sim, 0)
    made = _sessions(sim, operator_id=op_id, count=10, start="2024-04-10 09:00:00", minutes=[30, 240])
    by_station: dict[str, dict[str, Decimal]] = {}
    for t in made:
        per = by_station.setdefault(t["station_id"], {})
        per[t["connector_id"]] = per.get(t["connector_id"], Decimal(0)) + D(t["energy_kwh"])
    fresh = Simulator(SimConfig(seed=25, stations=60, operators=3))  # the same city, without orders
    for station_id, per in by_station.items():
        _, one = c.call("query_station_stats", {"StationID": station_id, "StartTime": "2024-04-10",
                                                "EndTime": "2024-04-10"})
        stats = one.data["StationStats"]
        assert D(stats["StationElectricity"]) == sum(per.values())
        conns = {x["ConnectorID"]: D(x["ConnectorElectricity"]) for e in stats["EquipmentStatsInfos"]
                 for x in e["ConnectorStatsInfos"]}
        assert {k: v for k, v in conns.items() if v} == per
        # The next day has no orders: synthetic, as a city without any orders would say.
        _, two = c.call("query_station_stats", {"StationID": station_id, "StartTime": "2024-04-10",
                                                "EndTime": "2024-04-11"})
        op = fresh.operators[op_id]
        synthetic = fresh.station_stats(op, op.station(station_id), date(2024, 4, 11), date(2024, 4, 11))
        assert abs(D(two.data["StationStats"]["StationElectricity"]) -
                   (sum(per.values()) + D(synthetic["StationElectricity"]))) <= CENT * len(conns)


# ---------------------------------------------------------------------- live mode


def test_live_mode_changes_prices_pushes_orders_and_reconciles_after_midnight(platform):
    p, platform_url = platform
    # reconcile_delay_seconds 0: yesterday is due at once, whatever the time of day (with the default
    # 10 minutes it is not due in the first 10 minutes after China midnight)
    cfg = SimConfig(seed=31, stations=30, operators=2, changes_per_second=120, policy_change_probability=0.02,
                    push_orders=True, push_backoff_seconds=0.02, order_retry_backoff_seconds=0.2,
                    reconcile_delay_seconds=0)
    app = build_app(cfg)
    with ServerThread(app) as server:
        ops = _point_pushes_at(server.url, p, platform_url)
        yesterday = (datetime.now(CHINA_TZ) - timedelta(days=1)).date()
        sim = app.state.sim
        sim.business.reconciled_through = yesterday - timedelta(days=1)  # as if midnight just passed
        _wait_for(lambda: all(any(d["StartTime"] == f"{yesterday} 00:00:00" for d in p.of("check_charge_orders", op))
                              for op in ops))
        _wait_for(lambda: len(p.of("notification_stationInfo", ops[0])) + len(p.of("notification_stationInfo", ops[1])) > 0)
        _wait_for(lambda: any(p.of("notification_charge_order_info", op) for op in ops))
        httpx.post(f"{server.url}/_admin/live", json={"changes_per_second": 0})
        changed = [x for op in ops for x in httpx.get(f"{server.url}/_admin/policies", params={"operator_id": op}).json()
                   if x["current"]["reason"] == "change"]
        assert changed
        for op in ops:
            for o in p.of("notification_charge_order_info", op):
                assert arithmetic_problems(o) == []


def test_admin_live_switches_order_pushes():
    with TestClient(build_app(SimConfig(seed=3, stations=10, operators=1))) as client:
        assert client.post("/_admin/live", json={}).json()["push_orders"] is False
        assert client.post("/_admin/live", json={"push_orders": True, "policy_change_probability": 0.1}).json() == {
            "changes_per_second": 0.0, "info_change_probability": 0.01, "policy_change_probability": 0.1,
            "push_orders": True}
        made = client.post("/_admin/sessions", json={"count": 2}).json()
        # No push target: made and recorded, not pushed.
        assert made["made"] == 2 and all(o["deliveries"][0]["outcome"] == "not_pushed" for o in made["orders"])
        pushes = client.get("/_admin/pushes").json()
        assert pushes["orders"]["not_pushed"] == 2 and pushes["orders"]["orders"] == 2

"""The operator simulator over real HTTP: uvicorn on a loopback port, called with the codec.

No database needed. A tiny platform receiver (Litestar, also on uvicorn) records the pushed
``notification_stationStatus`` envelopes after verifying them with ``parse_request``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from litestar.testing import TestClient

from ingest.protocol import (
    CHINA_TZ,
    ProtocolError,
    Ret,
    Secrets,
    build_request,
    build_response,
    format_query_time,
    parse_request,
    parse_response,
)
from ingest.simulator.cli import config_from_options, simulate_operator
from ingest.simulator.config import SimConfig
from ingest.simulator.server import build_app
from tests.conftest import ServerThread, free_port
_free_port = free_port

PLATFORM = "MA5ZHCITY"


@pytest.fixture(scope="module")
def sim():
    cfg = SimConfig(seed=5, stations=80, operators=3, token_ttl=600, push_backoff_seconds=0.02)
    with ServerThread(build_app(cfg)) as server:
        yield server


@pytest.fixture(autouse=True)
def _clean_faults(request):
    yield
    if "sim" in request.fixturenames:
        server = request.getfixturevalue("sim")
        httpx.post(f"{server.url}/_admin/faults", json={"reset": True})
        httpx.post(f"{server.url}/_admin/push-targets", json={"operator_id": "*", "base_url": None})


@dataclass
class Caller:
    """The city platform's side of one operator partnership."""

    base_url: str
    operator_id: str
    secrets: Secrets
    token: str | None = None
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=20))

    def call(self, interface: str, data: Any, *, token: str | None | bool = True, secrets: Secrets | None = None,
             caller_id: str | None = None) -> tuple[int, Any]:
        s = secrets or self.secrets
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if token is True:
            token = self.token or self.get_token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        env = build_request(caller_id or s.operator_id, data, s)
        r = self.http.post(f"{self.base_url}/evcs/v20160701/{interface}", json=env, headers=headers)
        return r.status_code, parse_response(r.content, self.secrets)

    def get_token(self) -> str:
        status, resp = self.call(
            "query_token", {"OperatorID": PLATFORM, "OperatorSecret": self.secrets.operator_secret}, token=None
        )
        assert status == 200 and resp.ret == Ret.OK and resp.data["SuccStat"] == 0, resp
        self.token = resp.data["AccessToken"]
        return self.token

    def all_pages(self, page_size: int, last: str = "") -> list[dict]:
        out, page = [], 1
        while True:
            _, resp = self.call("query_stations_info", {"LastQueryTime": last, "PageNo": page, "PageSize": page_size})
            assert resp.ret == Ret.OK, resp
            out += resp.data["StationInfos"]
            if page >= resp.data["PageCount"]:
                return out
            page += 1


def _operators(server: ServerThread) -> list[dict]:
    return httpx.get(f"{server.url}/_admin/operators").json()


def _caller(server: ServerThread, index: int = 0) -> Caller:
    op = _operators(server)[index]
    assert op["platform_operator_id"] == PLATFORM
    s = Secrets(op["platform_operator_id"], op["operator_secret"], op["data_secret"], op["data_iv"], op["sig_secret"])
    assert op["base_url"] == f"{server.url}/{op['operator_id']}"
    return Caller(op["base_url"], op["operator_id"], s)


# ---------------------------------------------------------------------- admin


def test_admin_operators_lists_credentials_and_counts(sim):
    ops = _operators(sim)
    assert len(ops) == 3
    assert sum(op["stations"] for op in ops) >= 80
    for op in ops:
        assert len(op["operator_id"]) == 9 and op["name"].startswith("珠海")
        assert op["connectors"] >= op["equipments"] >= op["stations"] > 0
        assert all(len(op[k]) == 16 for k in ("operator_secret", "data_secret", "data_iv", "sig_secret"))
    assert httpx.get(f"{sim.url}/_admin/stations/NOPE00000/X").status_code == 404


# ---------------------------------------------------------------------- token


def test_token_flow(sim):
    c = _caller(sim)
    status, resp = c.call("query_token", {"OperatorID": PLATFORM, "OperatorSecret": c.secrets.operator_secret}, token=None)
    assert status == 200 and resp.ret == Ret.OK
    assert resp.data["SuccStat"] == 0 and resp.data["FailReason"] == 0
    assert resp.data["TokenAvailableTime"] == 600 and resp.data["AccessToken"]
    c.token = resp.data["AccessToken"]
    _, page = c.call("query_stations_info", {"PageNo": 1, "PageSize": 5})
    assert page.ret == Ret.OK and len(page.data["StationInfos"]) == 5


def test_wrong_secret_and_unknown_operator(sim):
    c = _caller(sim)
    _, resp = c.call("query_token", {"OperatorID": PLATFORM, "OperatorSecret": "x" * 16}, token=None)
    assert resp.ret == Ret.OK and resp.data["SuccStat"] == 1 and resp.data["FailReason"] == 2
    assert not resp.data["AccessToken"]
    stranger = Secrets("MA0000001", *[getattr(c.secrets, k) for k in ("operator_secret", "data_secret", "data_iv", "sig_secret")])
    _, resp = c.call("query_token", {"OperatorID": "MA0000001", "OperatorSecret": c.secrets.operator_secret},
                     token=None, secrets=stranger)
    assert resp.data["SuccStat"] == 1 and resp.data["FailReason"] == 1


def test_missing_unknown_token_and_bad_envelopes(sim):
    c = _caller(sim)
    _, resp = c.call("query_stations_info", {}, token=None)
    assert resp.ret == Ret.TOKEN
    _, resp = c.call("query_stations_info", {}, token="DEADBEEF")
    assert resp.ret == Ret.TOKEN
    # A token of another operator is not valid here.
    other = _caller(sim, 1)
    _, resp = c.call("query_stations_info", {}, token=other.get_token())
    assert resp.ret == Ret.TOKEN
    # Wrong signature key -> 4001; unknown caller -> 4003.
    bad = Secrets(PLATFORM, c.secrets.operator_secret, c.secrets.data_secret, c.secrets.data_iv, "k" * 16)
    _, resp = c.call("query_stations_info", {}, secrets=bad)
    assert resp.ret == Ret.SIGNATURE
    _, resp = c.call("query_stations_info", {}, caller_id="MA0000001")
    assert resp.ret == Ret.ENVELOPE
    r = httpx.post(f"{c.base_url}/evcs/v20160701/query_stations_info", content=b"not json")
    assert parse_response(r.content, c.secrets).ret == Ret.ENVELOPE


# ---------------------------------------------------------------------- stations


def test_paging_covers_every_station_once(sim):
    c = _caller(sim)
    ids = [s["StationID"] for s in httpx.get(f"{sim.url}/_admin/stations/{c.operator_id}").json()]
    _, first = c.call("query_stations_info", {"LastQueryTime": "", "PageNo": 1, "PageSize": 7})
    assert first.data["ItemSize"] == len(ids)
    assert first.data["PageCount"] == -(-len(ids) // 7)
    got = c.all_pages(7)
    assert [s["StationID"] for s in got] == sorted(ids)
    assert all(s["OperatorID"] == c.operator_id and s["EquipmentInfos"] for s in got)
    # Defaults: PageNo 1, PageSize 10; a page past the end is empty.
    _, d = c.call("query_stations_info", {})
    assert d.data["PageNo"] == 1 and len(d.data["StationInfos"]) == min(10, len(ids))
    _, past = c.call("query_stations_info", {"PageNo": 999})
    assert past.ret == Ret.OK and past.data["StationInfos"] == []
    _, bad = c.call("query_stations_info", {"PageNo": "x"})
    assert bad.ret == Ret.BUSINESS
    _, bad = c.call("query_stations_info", {"LastQueryTime": "yesterday"})
    assert bad.ret == Ret.BUSINESS


def test_incremental_returns_only_changed_stations(sim):
    c = _caller(sim)
    time.sleep(1.05)  # earlier tests' changes fall in an earlier second
    since = format_query_time(datetime.now(CHINA_TZ))
    tick = httpx.post(f"{sim.url}/_admin/tick",
                      json={"changes": 4, "operator_id": c.operator_id, "info_changes": 1}).json()
    changed = {x["StationID"] for x in tick["changed"]} | {x["StationID"] for x in tick["info_changed"]}
    assert len(tick["changed"]) == 4 and tick["info_changed"]
    got = c.all_pages(50, since)
    assert {s["StationID"] for s in got} == changed
    # What the feed says is the admin truth.
    for info in got:
        truth = httpx.get(f"{sim.url}/_admin/stations/{c.operator_id}/{info['StationID']}").json()
        assert truth["StationInfo"] == info
        assert truth["ChangedAt"] >= since
    # Status of the changed connectors.
    _, st = c.call("query_station_status", {"StationIDs": sorted(changed)})
    statuses = {x["ConnectorID"]: x for s in st.data["StationStatusInfos"] for x in s["ConnectorStatusInfos"]}
    last = {}
    for x in tick["changed"]:
        last[x["ConnectorID"]] = x
    for cid, x in last.items():
        assert statuses[cid]["Status"] == x["Status"]
        assert statuses[cid]["ParkStatus"] == x["ParkStatus"]


def test_station_status_batches(sim):
    c = _caller(sim)
    ids = [s["StationID"] for s in httpx.get(f"{sim.url}/_admin/stations/{c.operator_id}").json()]
    _, ok = c.call("query_station_status", {"StationIDs": ids[:3] + ["NOPE"]})
    assert ok.ret == Ret.OK and [s["StationID"] for s in ok.data["StationStatusInfos"]] == ids[:3]
    for s in ok.data["StationStatusInfos"]:
        truth = httpx.get(f"{sim.url}/_admin/stations/{c.operator_id}/{s['StationID']}").json()
        assert truth["StationStatusInfo"] == s
    _, too_many = c.call("query_station_status", {"StationIDs": [f"S{i}" for i in range(51)]})
    assert too_many.ret == Ret.BUSINESS
    _, empty = c.call("query_station_status", {"StationIDs": []})
    assert empty.ret == Ret.BUSINESS


def test_station_stats_deterministic(sim):
    c = _caller(sim)
    sid = httpx.get(f"{sim.url}/_admin/stations/{c.operator_id}").json()[0]["StationID"]
    req = {"StationID": sid, "StartTime": "2024-03-01", "EndTime": "2024-03-07"}
    _, a = c.call("query_station_stats", req)
    _, b = c.call("query_station_stats", req)
    assert a.ret == Ret.OK and a.data == b.data
    stats = a.data["StationStats"]
    assert stats["StationID"] == sid and stats["StartTime"] == "2024-03-01"
    eq_sum = sum(e["EquipmentElectricity"] for e in stats["EquipmentStatsInfos"])
    assert abs(stats["StationElectricity"] - eq_sum) < 0.05
    for e in stats["EquipmentStatsInfos"]:
        assert abs(e["EquipmentElectricity"] - sum(x["ConnectorElectricity"] for x in e["ConnectorStatsInfos"])) < 0.05
    _, one_day = c.call("query_station_stats", {**req, "EndTime": "2024-03-01"})
    assert one_day.data["StationStats"]["StationElectricity"] <= stats["StationElectricity"]
    _, bad = c.call("query_station_stats", {**req, "EndTime": "2024-02-01"})
    assert bad.ret == Ret.BUSINESS
    _, unknown = c.call("query_station_stats", {**req, "StationID": "NOPE"})
    assert unknown.ret == Ret.BUSINESS


# ---------------------------------------------------------------------- faults


def _faults(sim, **kw):
    r = httpx.post(f"{sim.url}/_admin/faults", json=kw)
    assert r.status_code == 200, r.text
    return r.json()


def test_fault_slow(sim):
    c = _caller(sim)
    c.get_token()
    _faults(sim, slow_seconds=0.4)
    t0 = time.monotonic()
    _, resp = c.call("query_stations_info", {"PageSize": 2})
    assert resp.ret == Ret.OK and time.monotonic() - t0 >= 0.4


def test_fault_error_rate(sim):
    c = _caller(sim)
    c.get_token()
    _faults(sim, error_rate=1.0)
    status, resp = c.call("query_stations_info", {})
    assert status == 500 and resp.ret == Ret.SYSTEM
    _faults(sim, error_rate=0.5)
    codes = [c.call("query_station_status", {"StationIDs": ["X"]})[0] for _ in range(40)]
    assert 5 <= codes.count(500) <= 35 and codes.count(200) + codes.count(500) == 40


def test_fault_bad_signature(sim):
    c = _caller(sim)
    c.get_token()
    _faults(sim, bad_signature=True)
    with pytest.raises(ProtocolError) as exc:
        c.call("query_stations_info", {})
    assert exc.value.ret == Ret.SIGNATURE


def test_fault_expire_tokens(sim):
    c = _caller(sim)
    _faults(sim, expire_tokens=True)
    c.get_token()
    _, first = c.call("query_stations_info", {})
    assert first.ret == Ret.OK
    _, second = c.call("query_stations_info", {})
    assert second.ret == Ret.TOKEN
    c.get_token()  # a fresh token works once again
    _, third = c.call("query_stations_info", {})
    assert third.ret == Ret.OK


def test_fault_mutate_during_sync(sim):
    c = _caller(sim, 2)
    _faults(sim, mutate_during_sync=True)
    _, p1 = c.call("query_stations_info", {"PageNo": 1, "PageSize": 5})
    _, p2 = c.call("query_stations_info", {"PageNo": 2, "PageSize": 5})
    assert p2.data["ItemSize"] == p1.data["ItemSize"] + 1


def test_fault_fail_next(sim):
    c = _caller(sim)
    c.get_token()
    assert _faults(sim, fail_next=2)["fail_next"] == 2
    rets = [c.call("query_stations_info", {"PageSize": 1})[1].ret for _ in range(3)]
    assert rets == [Ret.BUSY, Ret.BUSY, Ret.OK]
    assert httpx.post(f"{sim.url}/_admin/faults", json={"bogus": 1}).status_code == 400


# ---------------------------------------------------------------------- pushes


@dataclass
class Receiver:
    """A minimal city platform: query_token + notification_stationStatus, with failure knobs."""

    secrets: dict[str, Secrets] = field(default_factory=dict)
    received: list[dict] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    token_calls: int = 0
    reject_token_once: bool = False
    http_fail: int = 0
    discard: bool = False

    def app(self) -> Litestar:
        rec = self

        @post("/evcs/v20160701/{interface:str}", status_code=200)
        async def handle(request: Request, interface: FromPath[str]) -> Response:
            body = await request.body()
            if rec.http_fail > 0:
                rec.http_fail -= 1
                return Response({"error": "down"}, status_code=503)
            parsed = parse_request(body, rec.secrets.get)
            s = rec.secrets[parsed.operator_id]
            if interface == "query_token":
                rec.token_calls += 1
                assert parsed.data == {"OperatorID": s.operator_id, "OperatorSecret": s.operator_secret}
                token = f"T{rec.token_calls}"
                rec.tokens.add(token)
                data = {"OperatorID": s.operator_id, "SuccStat": 0, "AccessToken": token,
                        "TokenAvailableTime": 3600, "FailReason": 0}
                return Response(build_response(0, "", data, s))
            token = request.headers.get("authorization", "")[7:]
            if token not in rec.tokens or rec.reject_token_once:
                rec.reject_token_once = False
                return Response(build_response(Ret.TOKEN, "token expired", None, s))
            rec.received.append({"operator_id": parsed.operator_id, "data": parsed.data, "raw": parsed.raw})
            return Response(build_response(0, "", {"Status": 1 if rec.discard else 0}, s))

        return Litestar([handle])


@pytest.fixture()
def receiver():
    rec = Receiver()
    with ServerThread(rec.app()) as server:
        yield rec, server


def _push_to(sim, receiver_url: str, op_id: str) -> Secrets:
    secrets = {"operator_secret": "PushOpSecret0001", "data_secret": "PushDataSecret01",
               "data_iv": "PushDataIV000001", "sig_secret": "PushSigSecret001"}
    r = httpx.post(f"{sim.url}/_admin/push-targets", json={"operator_id": op_id, "base_url": receiver_url, **secrets})
    assert r.status_code == 200 and r.json()[op_id]["base_url"] == receiver_url
    return Secrets(op_id, **secrets)


def _pushes(sim, op_id):
    return httpx.get(f"{sim.url}/_admin/pushes").json()["operators"][op_id]


def test_pushes_are_signed_and_match_the_changes(sim, receiver):
    rec, server = receiver
    op_id = _operators(sim)[0]["operator_id"]
    rec.secrets[op_id] = _push_to(sim, server.url, op_id)
    before = _pushes(sim, op_id)
    tick = httpx.post(f"{sim.url}/_admin/tick", json={"changes": 5, "operator_id": op_id, "wait": True}, timeout=30).json()
    assert tick["pushes_drained"] is True
    assert len(rec.received) == 5
    for got, change in zip(rec.received, tick["changed"]):
        assert got["operator_id"] == op_id and got["raw"]["OperatorID"] == op_id
        info = got["data"]["ConnectorStatusInfo"]
        assert info == {k: change[k] for k in ("ConnectorID", "Status", "ParkStatus", "LockStatus")}
    after = _pushes(sim, op_id)
    assert after["acknowledged"] - before["acknowledged"] == 5
    assert after["failed"] == before["failed"]
    assert rec.token_calls == 1  # cached between pushes


def test_push_renews_token_once_on_4002(sim, receiver):
    rec, server = receiver
    op_id = _operators(sim)[1]["operator_id"]
    rec.secrets[op_id] = _push_to(sim, server.url, op_id)
    httpx.post(f"{sim.url}/_admin/tick", json={"changes": 1, "operator_id": op_id, "wait": True}, timeout=30)
    rec.reject_token_once = True
    httpx.post(f"{sim.url}/_admin/tick", json={"changes": 1, "operator_id": op_id, "wait": True}, timeout=30)
    assert len(rec.received) == 2 and rec.token_calls == 2


def test_push_retries_then_gives_up(sim, receiver):
    rec, server = receiver
    op_id = _operators(sim)[2]["operator_id"]
    rec.secrets[op_id] = _push_to(sim, server.url, op_id)
    before = _pushes(sim, op_id)
    rec.http_fail = 2  # two failed attempts, third succeeds
    httpx.post(f"{sim.url}/_admin/tick", json={"changes": 1, "operator_id": op_id, "wait": True}, timeout=30)
    mid = _pushes(sim, op_id)
    assert len(rec.received) == 1
    assert mid["retries"] - before["retries"] == 2 and mid["failed"] == before["failed"]
    rec.http_fail = 100  # never answers: 1 try + 3 retries, then failed
    httpx.post(f"{sim.url}/_admin/tick", json={"changes": 1, "operator_id": op_id, "wait": True}, timeout=30)
    after = _pushes(sim, op_id)
    assert after["failed"] == mid["failed"] + 1
    assert after["retries"] - mid["retries"] == 3
    assert len(rec.received) == 1 and rec.http_fail == 96  # token cached: 4 notification posts


def test_discarded_pushes_are_not_resent(sim, receiver):
    rec, server = receiver
    op_id = _operators(sim)[0]["operator_id"]
    rec.secrets[op_id] = _push_to(sim, server.url, op_id)
    rec.discard = True
    before = _pushes(sim, op_id)
    httpx.post(f"{sim.url}/_admin/tick", json={"changes": 2, "operator_id": op_id, "wait": True}, timeout=30)
    after = _pushes(sim, op_id)
    assert after["discarded"] - before["discarded"] == 2 and len(rec.received) == 2
    assert after["retries"] == before["retries"]


# ---------------------------------------------------------------------- live + CLI


def test_background_changes_and_push_url_defaults(tmp_path):
    cfg = SimConfig(seed=9, stations=30, operators=2, changes_per_second=40, push_url="http://127.0.0.1:9/x")
    app = build_app(cfg)
    with TestClient(app) as client:
        ops = client.get("/_admin/operators").json()
        assert all(op["push"]["base_url"] == "http://127.0.0.1:9/x" for op in ops)
        assert ops[0]["push"]["operator_id"] == ops[0]["operator_id"]
        started = format_query_time(datetime.now(CHINA_TZ))
        time.sleep(1.2)
        recent = [s for op in ops for s in client.get(f"/_admin/stations/{op['operator_id']}").json()
                  if s["ChangedAt"] >= started]
        assert recent  # the city lives
        client.post("/_admin/live", json={"changes_per_second": 0})


def test_cli_options_and_config_file(tmp_path):
    f = tmp_path / "sim.json"
    f.write_text('{"seed": 4, "stations": 12, "token_ttl": 60, "faults": {"slow_seconds": 0.1}}')
    cfg = config_from_options(config_file=str(f), stations=20, push_url="http://127.0.0.1:8000")
    assert (cfg.seed, cfg.stations, cfg.token_ttl, cfg.faults.slow_seconds) == (4, 20, 60, 0.1)
    assert cfg.push_url == "http://127.0.0.1:8000"
    from click.testing import CliRunner

    out = CliRunner().invoke(simulate_operator, ["--help"])
    assert out.exit_code == 0
    for opt in ("--seed", "--stations", "--operators", "--host", "--port", "--config", "--token-ttl",
                "--changes-per-second", "--push-url"):
        assert opt in out.output


def test_admin_answers_loopback_only():
    from types import SimpleNamespace

    from litestar.exceptions import PermissionDeniedException

    from ingest.simulator.server import _loopback_only

    app = build_app(SimConfig(stations=5, operators=1))
    remote = SimpleNamespace(app=app, client=SimpleNamespace(host="10.0.0.5"))
    with pytest.raises(PermissionDeniedException):
        _loopback_only(remote, None)
    _loopback_only(SimpleNamespace(app=app, client=SimpleNamespace(host="127.0.0.1")), None)
    app.state.sim.config.admin_remote = True
    _loopback_only(remote, None)

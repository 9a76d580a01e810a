"""The push receiver: tokens, status and station pushes, every Ret code, replay protection, and
the simulator pushing to the app over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from ingest.protocol import Ret, sign
from ingest.sync import sync_all
from services.stations.summary import data_version
from tests import pushing

from .conftest import ServerThread, forget_operators, make_sim, register_sim


_secrets = pushing.secrets_of  # test_group_commit's


class Pusher(pushing.Pusher):
    """The shared :class:`tests.pushing.Pusher` bound to a test client, called ``Pusher(tc, creds)``
    (so here and by test_status_history); :meth:`post` takes the client first and sends the Pusher's
    token unless told ``token=`` (None: none)."""

    def __init__(self, client, creds: dict, version: str = "v20160701") -> None:  # noqa: ANN001
        super().__init__(creds, client=client, version=version)


@pytest.fixture()
def synced(engine, sim, registered, fsettings):  # noqa: ANN001, ANN201
    assert all(r.ok for r in sync_all(engine, fsettings, full=True))
    return registered


@pytest.fixture()
def tc(app):  # noqa: ANN001, ANN201
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def _free_connector(engine, sim):  # noqa: ANN001, ANN202
    op = sim.state.operators[sim.operator_ids[0]]
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT c.connector_id, s.id, s.station_id FROM connectors c JOIN stations s ON s.id = c.station_pk "
            "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
            "WHERE s.operator_id = :op AND s.feed_state = 'active' AND s.station_status = 50 AND cs.status = 1 "
            "AND s.connectors_free = 1 LIMIT 1"), {"op": op.operator_id}).first()
        if row is None:
            row = conn.execute(text(
                "SELECT c.connector_id, s.id, s.station_id FROM connectors c JOIN stations s ON s.id = c.station_pk "
                "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
                "WHERE s.operator_id = :op AND s.feed_state = 'active' AND s.station_status = 50 AND cs.status = 1 "
                "LIMIT 1"), {"op": op.operator_id}).first()
    return op.operator_id, row.connector_id, row.id


def _station(engine, pk):  # noqa: ANN001, ANN202
    with engine.connect() as conn:
        return conn.execute(text("SELECT connectors_free, availability, status_changed_at FROM stations WHERE id = :id"),
                            {"id": pk}).mappings().one()


def _status(engine, op, cid):  # noqa: ANN001, ANN202
    with engine.connect() as conn:
        return conn.execute(text("SELECT status, source, status_since, updated_at FROM connector_status "
                                 "WHERE operator_id = :op AND connector_id = :c"), {"op": op, "c": cid}).mappings().one()


def test_token_and_status_push_update_the_station(engine, sim, synced, tc) -> None:
    op, cid, pk = _free_connector(engine, sim)
    p = Pusher(tc, synced[op])
    p.get_token()
    before = _station(engine, pk)
    with engine.connect() as conn:
        v0 = data_version(conn)
    resp, r = p.status(cid, 3)
    assert resp.status_code == 200 and r.ret == 0 and r.data == {"Status": 0}
    after = _station(engine, pk)
    assert after["connectors_free"] == before["connectors_free"] - 1
    st = _status(engine, op, cid)
    assert st["status"] == 3 and st["source"] == "push"
    with engine.connect() as conn:
        assert data_version(conn) > v0
        assert conn.execute(text("SELECT last_push_at FROM feed_endpoints WHERE operator_id = :op"),
                            {"op": op}).scalar() is not None
    # the same status again: report time moves, status_since does not
    time.sleep(0.05)
    resp, r = p.status(cid, 3)
    assert r.ret == 0
    again = _status(engine, op, cid)
    assert again["status_since"] == st["status_since"] and again["updated_at"] > st["updated_at"]
    # another version segment is accepted too
    p2 = Pusher(tc, synced[op], version="v20161110")
    p2.token = p.token
    resp, r = p2.status(cid, 1)
    assert r.ret == 0
    assert _station(engine, pk)["connectors_free"] == before["connectors_free"]


def test_token_refusals(engine, sim, synced, tc) -> None:
    op = sim.operator_ids[0]
    p = Pusher(tc, synced[op])
    _, r = p.post(tc, "query_token", p.envelope({"OperatorID": op, "OperatorSecret": "wrong-secret-123"}))
    assert r.ret == 0 and r.data["SuccStat"] == 1 and r.data["FailReason"] == 2 and not r.data["AccessToken"]
    _, r = p.post(tc, "query_token", p.envelope({"OperatorID": "MA0000000", "OperatorSecret": p.s.operator_secret}))
    assert r.data["SuccStat"] == 1 and r.data["FailReason"] == 1


def test_ret_codes(engine, sim, synced, tc) -> None:
    op, cid, _ = _free_connector(engine, sim)
    p = Pusher(tc, synced[op])
    token = p.get_token()
    # 4001: signature
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    env["Sig"] = sign("not-the-right-key", env["OperatorID"], env["Data"], env["TimeStamp"], env["Seq"])
    _, r = p.post(tc, "notification_stationStatus", env)
    assert r.ret == Ret.SIGNATURE
    # 4002: token missing, unknown, expired, issued to someone else
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    assert p.post(tc, "notification_stationStatus", env, token=None)[1].ret == Ret.TOKEN
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    assert p.post(tc, "notification_stationStatus", env, token="F" * 32)[1].ret == Ret.TOKEN
    with engine.begin() as conn:
        import hashlib

        conn.execute(text("INSERT INTO feed_tokens (token_hash, operator_id, expires_at) VALUES (:h, :op, :e)"),
                     {"h": hashlib.sha256(b"EXPIRED" * 4).hexdigest(), "op": op,
                      "e": datetime.now(UTC) - timedelta(seconds=1)})
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    _, r = p.post(tc, "notification_stationStatus", env, token="EXPIRED" * 4)
    assert r.ret == Ret.TOKEN and "expired" in r.msg
    other = Pusher(tc, synced[sim.operator_ids[1]])
    env = other.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    assert other.post(tc, "notification_stationStatus", env, token=token)[1].ret == Ret.TOKEN
    # 4003: envelope
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    del env["Seq"]
    _, r = p.post(tc, "notification_stationStatus", env)
    assert r.ret == Ret.ENVELOPE and "Seq" in r.msg
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}})
    env["TimeStamp"] = str(int(time.time() * 1000))
    _, r = p.post(tc, "notification_stationStatus", env)
    assert r.ret == Ret.ENVELOPE and "millisecond" in r.msg
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}},
                     ts=datetime.now(UTC) - timedelta(hours=2))
    _, r = p.post(tc, "notification_stationStatus", env)
    assert r.ret == Ret.ENVELOPE and "away from the server clock" in r.msg
    resp = tc.post("/evcs/v20160701/notification_stationStatus", content=b"not json",
                   headers={"Authorization": f"Bearer {token}"})
    assert resp.json()["Ret"] == Ret.ENVELOPE
    resp = tc.post("/evcs/v20160701/notification_stationStatus", json={**env, "OperatorID": "MAUNKNOWN"})
    assert resp.json()["Ret"] == Ret.ENVELOPE and "unknown OperatorID" in resp.json()["Msg"]
    # 4004: business data
    _, r = p.post(tc, "notification_stationStatus", p.envelope({"Nothing": 1}))
    assert r.ret == Ret.BUSINESS
    _, r = p.status(cid, 42)
    assert r.ret == Ret.BUSINESS and "Status" in r.msg
    # nothing of the above was stored
    assert _status(engine, op, cid)["source"] == "pull"


def test_replay_protection(engine, sim, synced, tc) -> None:
    op, cid, pk = _free_connector(engine, sim)
    p = Pusher(tc, synced[op])
    p.get_token()
    ts = datetime.now(UTC)
    env = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 3}}, seq=7, ts=ts)
    _, r = p.post(tc, "notification_stationStatus", env)
    assert r.ret == 0
    first = _status(engine, op, cid)
    free = _station(engine, pk)["connectors_free"]
    # the very same envelope again (a retry whose answer was lost): acknowledged, nothing changes
    _, r = p.post(tc, "notification_stationStatus", env)
    assert r.ret == 0 and r.data == {"Status": 0}
    assert _status(engine, op, cid) == first and _station(engine, pk)["connectors_free"] == free
    # a different notification reusing the operator + second + Seq: refused, not stored
    env2 = p.envelope({"ConnectorStatusInfo": {"ConnectorID": cid, "Status": 1}}, seq=7, ts=ts)
    _, r = p.post(tc, "notification_stationStatus", env2)
    assert r.ret == Ret.ENVELOPE and "Seq 0007" in r.msg
    assert _status(engine, op, cid)["status"] == 3


def test_station_info_push(engine, sim, synced, tc) -> None:
    op_id = sim.operator_ids[0]
    op = sim.state.operators[op_id]
    p = Pusher(tc, synced[op_id])
    p.get_token()
    info = op.stations[0].info()
    info["StationName"] = "推送更新的充电站"
    _, r = p.post(tc, "notification_stationInfo", p.envelope({"StationInfo": info}))
    assert r.ret == 0 and r.data == {"Status": 0}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM stations WHERE operator_id = :op AND station_id = :sid"),
                            {"op": op_id, "sid": info["StationID"]}).scalar() == "推送更新的充电站"
    bad = dict(info, StationID="PUSHED0001", StationLng="not a number")
    _, r = p.post(tc, "notification_stationInfo", p.envelope(bad))
    assert r.ret == Ret.BUSINESS and "stored as rejected" in r.msg
    with engine.connect() as conn:
        row = conn.execute(text("SELECT feed_state, reject_reason FROM stations WHERE operator_id = :op "
                                "AND station_id = 'PUSHED0001'"), {"op": op_id}).one()
    assert row.feed_state == "rejected" and "StationLng" in row.reject_reason


def test_simulator_pushes_to_the_app_over_http(engine, database, settings, db_url) -> None:
    from portal_site.app import create_app

    sim = make_sim(stations=40, operators=2)
    with sim.server, ServerThread(create_app(settings, database=database)) as web:
        creds = register_sim(engine, sim)
        try:
            from .conftest import feed_settings

            assert all(r.ok for r in sync_all(engine, feed_settings(db_url, settings.app.upload_dir), full=True))
            sim.admin("POST", "/_admin/push-targets", json=[
                {"operator_id": op, "base_url": web.url, **{k: v for k, v in c.items() if k != "operator_id"}}
                for op, c in creds.items()])
            # The simulator numbers every push Seq 0001, so pushes of one operator within one second
            # collide (Ret 4003) and are resent a moment later: a small burst drains in a few seconds.
            out = sim.admin("POST", "/_admin/tick", json={"changes": 8, "wait": True, "wait_seconds": 30})
            assert out["pushes_drained"] is True
            stats = sim.admin("GET", "/_admin/pushes")
            assert stats["failed"] == 0 and stats["acknowledged"] >= 1
            with engine.connect() as conn:
                got = dict(((r[0], r[1]), r[2]) for r in conn.execute(text(
                    "SELECT operator_id, connector_id, status FROM connector_status WHERE operator_id = ANY(:ids)"),
                    {"ids": sim.operator_ids}))
            for c in out["changed"]:
                truth = sim.state.operators[c["OperatorID"]].station(c["StationID"])
                con = next(x for x in truth.connectors() if x.connector_id == c["ConnectorID"])
                assert got[(c["OperatorID"], c["ConnectorID"])] == con.status
        finally:
            forget_operators(engine, sim.operator_ids)

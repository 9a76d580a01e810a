"""Prices, charge orders and price execution through the real protocol (issue 15): the simulator
serves business policies and pushes orders and reconciliations to the real receiver; we compare
what is stored with the simulator's ground truth.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ingest.policies import pull_policies_all
from ingest.protocol import Ret, Secrets, build_request, parse_response
from ingest.sync import sync_all
from services.prices.tariff import CHINA_TZ

from .conftest import ServerThread, forget_operators, make_sim, register_sim


@pytest.fixture()
def world(engine, fsettings, database):  # noqa: ANN001, ANN201
    """One simulated operator with order pushes on, registered, synced, priced, pushing to the app."""
    from portal_site.app import create_app

    sim = make_sim(stations=25, operators=1, push_orders=True, order_retry_backoff_seconds=0.2)
    app = create_app(fsettings, database=database)
    with sim.server, ServerThread(app) as web:
        creds = register_sim(engine, sim)
        op_id = sim.operator_ids[0]
        assert all(r.ok for r in sync_all(engine, fsettings, operator_id=op_id, full=True))
        c = creds[op_id]
        sim.admin("POST", "/_admin/push-targets", json={"operator_id": op_id, "base_url": web.url,
                                                        **{k: v for k, v in c.items() if k != "operator_id"}})
        yield sim, op_id, web, creds[op_id]
        forget_operators(engine, [op_id])


def _q(engine, sql: str, **params):  # noqa: ANN001, ANN202
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def _stats(op_id: str, db_url: str, **window: str) -> dict:
    from portal_site.cli import main

    args = ["orders", "stats", "--operator-id", op_id, "--json"]
    for k, v in window.items():
        args += [f"--{k}", v]
    result = CliRunner(env={"ZHCHARGE_DATABASE_URL": db_url}).invoke(main, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_policies_are_pulled_and_versioned(engine, fsettings, world, db_url) -> None:  # noqa: ANN001
    sim, op_id, _, _ = world
    [result] = pull_policies_all(engine, fsettings, operator_id=op_id)
    n = sum(len(s.connectors()) for s in sim.state.operators[op_id].stations)
    assert result.ok and result.policies == n and result.counts["new"] == n, result.as_dict()
    # the stored tariff of every connector equals the simulator's policy
    truth = {(p["station_id"]): p for p in sim.admin("GET", "/_admin/policies", params={"operator_id": op_id})}
    assert truth
    rows = _q(engine, "SELECT c.connector_id, s.station_id, t.periods, v.source, v.problems FROM connector_tariffs v "
                      "JOIN tariffs t ON t.id = v.tariff_id JOIN connectors c ON c.operator_id = v.operator_id "
                      "AND c.connector_id = v.connector_id JOIN stations s ON s.id = c.station_pk "
                      "WHERE v.operator_id = :op AND v.valid_to IS NULL", op=op_id)
    assert len(rows) == n and all(r.source == "policy" and not r.problems for r in rows)
    assert _q(engine, "SELECT count(*) FROM stations WHERE operator_id = :op AND feed_state = 'active' "
                      "AND price_now IS NULL", op=op_id)[0][0] == 0
    # a second pull changes nothing; a price change makes one new version per connector of the station
    [again] = pull_policies_all(engine, fsettings, operator_id=op_id)
    assert again.counts["unchanged"] == n and again.counts["new"] == again.counts["changed"] == 0
    changed = sim.admin("POST", "/_admin/policies", json={"operator_id": op_id, "stations": 1})["changed"]
    station_id = changed[0]["station_id"] if isinstance(changed[0], dict) else changed[0]
    [third] = pull_policies_all(engine, fsettings, operator_id=op_id)
    per_station = _q(engine, "SELECT count(*) FROM connectors c JOIN stations s ON s.id = c.station_pk "
                             "WHERE s.operator_id = :op AND s.station_id = :sid", op=op_id, sid=station_id)[0][0]
    assert third.counts["changed"] == per_station, third.as_dict()
    closed = _q(engine, "SELECT count(*) FROM connector_tariffs WHERE operator_id = :op AND valid_to IS NOT NULL",
                op=op_id)[0][0]
    assert closed == per_station


def test_orders_are_checked_stored_once_and_counted(engine, fsettings, world, db_url) -> None:  # noqa: ANN001
    sim, op_id, _, _ = world
    pull_policies_all(engine, fsettings, operator_id=op_id)
    clean = sim.admin("POST", "/_admin/sessions", json={"operator_id": op_id, "count": 12, "wait": True,
                                                        "wait_seconds": 30, "minutes": [20, 200]})
    assert clean["made"] == 12 and clean["pushes_settled"]
    sim.faults(order_overcharge_rate=1.0)
    over = sim.admin("POST", "/_admin/sessions", json={"operator_id": op_id, "count": 5, "wait": True,
                                                       "wait_seconds": 30})
    sim.faults(reset=True, order_arithmetic_rate=1.0)
    wrong = sim.admin("POST", "/_admin/sessions", json={"operator_id": op_id, "count": 3, "wait": True,
                                                        "wait_seconds": 30})
    sim.faults(reset=True)
    rows = {r.start_charge_seq: r for r in _q(
        engine, "SELECT start_charge_seq, confirm_result, at_tariff, overcharge_yuan, findings FROM charge_orders "
                "WHERE operator_id = :op AND latest", op=op_id)}
    assert len(rows) == 20
    for o in clean["orders"]:
        r = rows[o["start_charge_seq"]]
        assert r.confirm_result == 0 and r.at_tariff is True and r.overcharge_yuan == 0, r.findings
    truth_over = Decimal(0)
    for o in over["orders"]:
        r = rows[o["start_charge_seq"]]
        assert r.confirm_result == 1 and r.at_tariff is False, r.findings
        assert {f["code"] for f in r.findings if f["severity"] == "error"} == {"over_tariff"}
        truth_over += Decimal(str(o["faults"]["overcharge"]["overcharge_yuan"]))
        assert abs(r.overcharge_yuan - Decimal(str(o["faults"]["overcharge"]["overcharge_yuan"]))) <= Decimal("0.01")
    for o in wrong["orders"]:
        r = rows[o["start_charge_seq"]]
        assert r.confirm_result == 1 and any(f["check"] == "arithmetic" for f in r.findings), r.findings
    # the simulator saw the same ConfirmResults
    outcomes = {o["start_charge_seq"]: o["deliveries"][0] for o in sim.admin("GET", "/_admin/orders", params={"operator_id": op_id})}
    assert all(outcomes[s]["confirm_result"] == rows[s].confirm_result for s in rows)
    stats = _stats(op_id, db_url)
    energy = sum(Decimal(str(o["order"]["TotalPower"])) for o in clean["orders"] + over["orders"] + wrong["orders"])
    assert stats["orders"] == 20 and stats["disputed"] == 8 and stats["overcharged"] == 5
    assert Decimal(str(stats["energy_kwh"])) == energy
    assert abs(Decimal(str(stats["overcharge_yuan"])) - truth_over) <= Decimal("0.01") * 5


def test_duplicates_and_revisions(engine, fsettings, world, db_url) -> None:  # noqa: ANN001
    sim, op_id, _, _ = world
    pull_policies_all(engine, fsettings, operator_id=op_id)
    sim.faults(order_duplicate_rate=1.0)
    dup = sim.admin("POST", "/_admin/sessions", json={"operator_id": op_id, "count": 3, "wait": True,
                                                      "wait_seconds": 30})
    sim.faults(reset=True, order_revise_rate=1.0)
    rev = sim.admin("POST", "/_admin/sessions", json={"operator_id": op_id, "count": 2, "wait": True,
                                                      "wait_seconds": 30})
    sim.faults(reset=True)
    sim.admin("POST", "/_admin/tick", json={"changes": 0, "wait": True})
    deadline = datetime.now() + timedelta(seconds=20)
    while datetime.now() < deadline:
        truth = sim.admin("GET", "/_admin/orders", params={"operator_id": op_id})
        if all(d["outcome"] != "pending" for o in truth for d in o["deliveries"]):
            break
    versions = {r.start_charge_seq: r.n for r in _q(
        engine, "SELECT start_charge_seq, count(*) AS n FROM charge_orders WHERE operator_id = :op "
                "GROUP BY start_charge_seq", op=op_id)}
    assert all(versions[o["start_charge_seq"]] == 1 for o in dup["orders"])  # the same content again: stored once
    assert all(versions[o["start_charge_seq"]] == 2 for o in rev["orders"])  # different figures: both versions kept
    latest = {r.start_charge_seq: r for r in _q(
        engine, "SELECT start_charge_seq, version, total_power, findings FROM charge_orders WHERE operator_id = :op "
                "AND latest", op=op_id)}
    truth = {o["start_charge_seq"]: o for o in sim.admin("GET", "/_admin/orders", params={"operator_id": op_id})}
    for o in rev["orders"]:
        r = latest[o["start_charge_seq"]]
        assert r.version == 2 and any(f["code"] == "revised" for f in r.findings)
        assert Decimal(str(truth[o["start_charge_seq"]]["order"]["TotalPower"])) == r.total_power
    assert _stats(op_id, db_url)["orders"] == 5


def test_reconciliation_answers_the_disputes(engine, fsettings, world) -> None:  # noqa: ANN001
    sim, op_id, _, _ = world
    pull_policies_all(engine, fsettings, operator_id=op_id)
    yesterday = (datetime.now(CHINA_TZ) - timedelta(days=1)).date()
    start = f"{yesterday} 08:00:00"
    sim.faults(reconcile_omit_rate=0.3)
    made = sim.admin("POST", "/_admin/sessions", json={"operator_id": op_id, "count": 10, "start": start,
                                                       "minutes": [10, 30], "wait": True, "wait_seconds": 30})
    sim.faults(reset=True)
    omitted = {o["start_charge_seq"] for o in made["orders"] if o["faults"].get("reconcile_omit")}
    # one order of ours is changed behind the operator's back: its money now differs from their list
    changed_seq = next(o["start_charge_seq"] for o in made["orders"] if o["start_charge_seq"] not in omitted)
    with engine.begin() as conn:
        conn.execute(text("UPDATE charge_orders SET total_money = total_money + 1 WHERE operator_id = :op "
                          "AND start_charge_seq = :s"), {"op": op_id, "s": changed_seq})
    done = sim.admin("POST", "/_admin/reconcile", json={"operator_id": op_id, "day": yesterday.isoformat(),
                                                        "wait": True, "wait_seconds": 30})
    [rec] = done["reconciliations"]
    answer = rec["answer"]
    assert answer["TotalDisputeOrder"] == 1 and answer["DisputeOrders"][0]["StartChargeSeq"] == changed_seq
    assert answer["DisputeOrders"][0]["DisputeReason"] == 2
    [check] = _q(engine, "SELECT unlisted, dispute_count FROM order_checks WHERE operator_id = :op", op=op_id)
    assert {u["StartChargeSeq"] for u in check.unlisted} == omitted
    states = dict(_q(engine, "SELECT start_charge_seq, reconcile_state FROM charge_orders WHERE operator_id = :op "
                             "AND latest", op=op_id))
    assert states[changed_seq] == "disputed"
    assert {s for s, st in states.items() if st == "unlisted"} == omitted
    assert sum(st == "agreed" for st in states.values()) == 10 - 1 - len(omitted)


def _push(web, creds: dict, interface: str, data: dict) -> tuple[int, object]:  # noqa: ANN001
    secrets = Secrets(creds["operator_id"], creds["operator_secret"], creds["data_secret"], creds["data_iv"],
                      creds["sig_secret"])
    with httpx.Client(base_url=web.url, timeout=10) as client:
        env = build_request(secrets.operator_id, {"OperatorID": secrets.operator_id,
                                                  "OperatorSecret": secrets.operator_secret}, secrets)
        tok = parse_response(client.post("/evcs/v20160701/query_token", json=env).content, secrets).data["AccessToken"]
        env = build_request(secrets.operator_id, data, secrets)
        r = client.post(f"/evcs/v20160701/{interface}", json=env, headers={"Authorization": f"Bearer {tok}"})
    parsed = parse_response(r.content, secrets)
    return int(parsed.ret), parsed


@pytest.mark.parametrize("change, field", [
    (lambda o: o.update(TotalPower="十度"), "TotalPower"),
    (lambda o: o.pop("StartChargeSeq"), "StartChargeSeq"),
    (lambda o: o["ChargeDetails"][0].update(ElecPrice="x"), "ChargeDetails[0].ElecPrice"),
    (lambda o: o.update(EndTime="2026/12/01"), "EndTime"),
])
def test_unreadable_orders_get_4004_naming_the_field_and_nothing_is_stored(engine, world, change, field) -> None:  # noqa: ANN001
    _, op_id, web, creds = world
    order = {"StartChargeSeq": f"{op_id}000000000000000009", "ConnectorID": "X", "StartTime": "2026-12-01 08:00:00",
             "EndTime": "2026-12-01 09:00:00", "TotalPower": 10, "TotalElecMoney": 5, "TotalSeviceMoney": 5,
             "TotalMoney": 10, "ChargeDetails": [{"DetailStartTime": "2026-12-01 08:00:00",
                                                  "DetailEndTime": "2026-12-01 09:00:00", "ElecPrice": 0.5,
                                                  "SevicePrice": 0.5, "DetailPower": 10, "DetailElecMoney": 5,
                                                  "DetailSeviceMoney": 5}]}
    change(order)
    ret, parsed = _push(web, creds, "notification_charge_order_info", order)
    assert ret == Ret.BUSINESS and field in parsed.msg, parsed.msg
    assert _q(engine, "SELECT count(*) FROM charge_orders WHERE operator_id = :op", op=op_id)[0][0] == 0


def test_an_unknown_connector_is_stored_and_disputed(engine, world) -> None:  # noqa: ANN001
    _, op_id, web, creds = world
    order = {"StartChargeSeq": f"{op_id}000000000000000010", "ConnectorID": "NOPE", "StartTime": "2026-12-01 08:00:00",
             "EndTime": "2026-12-01 09:00:00", "TotalPower": 10, "TotalElecMoney": 5, "TotalSeviceMoney": 5,
             "TotalMoney": 10, "ChargeDetails": [{"DetailStartTime": "2026-12-01 08:00:00",
                                                  "DetailEndTime": "2026-12-01 09:00:00", "ElecPrice": 0.5,
                                                  "SevicePrice": 0.5, "DetailPower": 10, "DetailElecMoney": 5,
                                                  "DetailSeviceMoney": 5}]}
    ret, parsed = _push(web, creds, "notification_charge_order_info", order)
    assert ret == Ret.OK and parsed.data["ConfirmResult"] == 1 and parsed.data["StartChargeSeq"] == order["StartChargeSeq"]
    [row] = _q(engine, "SELECT confirm_result, findings FROM charge_orders WHERE operator_id = :op", op=op_id)
    assert row.confirm_result == 1 and any(f["code"] == "connector" for f in row.findings)
    # the same again: the same answer, still one row
    ret, parsed = _push(web, creds, "notification_charge_order_info", order)
    assert ret == Ret.OK and parsed.data["ConfirmResult"] == 1
    assert _q(engine, "SELECT count(*) FROM charge_orders WHERE operator_id = :op", op=op_id)[0][0] == 1


@pytest.mark.parametrize("mode, source", [("missing", "fee_text"), ("fail", "fee_text")])
def test_operators_without_policies_fall_back_to_fee_texts(engine, fsettings, world, mode, source) -> None:  # noqa: ANN001
    sim, op_id, _, _ = world
    sim.faults(policy_unsupported={op_id: mode})
    [result] = pull_policies_all(engine, fsettings, operator_id=op_id)
    assert result.ok and result.policies == 0 and result.fallback == result.connectors
    if mode == "missing":
        assert result.unsupported and "query_equip_business_policy" in result.unsupported
    rows = _q(engine, "SELECT source, tariff_id, problems FROM connector_tariffs WHERE operator_id = :op "
                      "AND valid_to IS NULL", op=op_id)
    assert rows and all(r.source == source and r.problems for r in rows)
    assert sum(r.tariff_id is not None for r in rows) >= len(rows) * 0.9  # the fee texts read as tariffs


def test_a_policy_over_the_cap_is_kept_with_the_reason(engine, fsettings, world) -> None:  # noqa: ANN001
    sim, op_id, _, _ = world
    sim.faults(policy_over_cap={op_id: 1})
    pull_policies_all(engine, fsettings, operator_id=op_id)
    rows = _q(engine, "SELECT problems FROM connector_tariffs WHERE operator_id = :op AND valid_to IS NULL "
                      "AND array_length(problems, 1) > 0", op=op_id)
    assert rows and all(any("cap" in p for p in r.problems) for r in rows)


def test_a_pushed_station_change_pulls_that_stations_policies(engine, fsettings, world) -> None:  # noqa: ANN001
    import time

    from ingest.policies import pull_station_policies

    sim, op_id, web, _ = world
    pull_policies_all(engine, fsettings, operator_id=op_id)
    receiver = web.app.state["feed_receiver"]
    seen: list[tuple[str, list[int]]] = []

    def changed(op: str, pks: list[int]) -> None:
        seen.append((op, pks))
        pull_station_policies(engine, fsettings, op, pks)

    receiver.on_stations_changed = changed
    [change] = sim.admin("POST", "/_admin/policies", json={"operator_id": op_id, "stations": 1})["changed"]
    sim.admin("POST", "/_admin/tick", json={"changes": 0, "wait": True})
    station_id = change["station_id"] if isinstance(change, dict) else change
    [(pk,)] = _q(engine, "SELECT id FROM stations WHERE operator_id = :op AND station_id = :s", op=op_id, s=station_id)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        n = _q(engine, "SELECT count(*) FROM connector_tariffs v JOIN connectors c ON c.operator_id = v.operator_id "
                       "AND c.connector_id = v.connector_id WHERE c.station_pk = :pk AND v.valid_to IS NOT NULL", pk=pk)
        if n[0][0]:
            break
        time.sleep(0.2)
    assert seen and seen[0][0] == op_id and pk in seen[0][1]
    assert n[0][0] > 0  # the station's connectors got a new version; nobody else's did
    assert _q(engine, "SELECT count(*) FROM connector_tariffs v JOIN connectors c ON c.operator_id = v.operator_id "
                      "AND c.connector_id = v.connector_id WHERE c.station_pk <> :pk AND v.valid_to IS NOT NULL "
                      "AND v.operator_id = :op", pk=pk, op=op_id)[0][0] == 0

"""Pull sync against the simulator over real HTTP: full, incremental, idempotence, withdrawals,
rejections, AreaCode mismatches, every injected fault, the circuit and the operator lock."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text

from geo.gcj02 import gcj02_to_wgs84
from ingest.simulator.state import now_china
from ingest.sync import load_endpoints, sync_all, sync_operator
from services.stations.summary import data_version

from .conftest import counts, feed_settings, forget_operators, make_sim, register_sim, sim_truth


def _ep(engine, op_id):  # noqa: ANN001, ANN202
    with engine.connect() as conn:
        return load_endpoints(conn, op_id)[0]


def _stored_ids(engine, op_ids):  # noqa: ANN001, ANN202
    with engine.connect() as conn:
        return {(r[0], r[1]): r[2] for r in conn.execute(text(
            "SELECT operator_id, station_id, feed_state FROM stations WHERE operator_id = ANY(:ids)"), {"ids": op_ids})}


def test_full_incremental_idempotent(engine, sim, registered, fsettings) -> None:
    ops = sim.operator_ids
    results = sync_all(engine, fsettings, full=True)
    assert all(r.ok for r in results), [r.error for r in results]
    truth = sim_truth(sim)
    c = counts(engine, ops)
    assert c["active"] + c["rejected"] == truth["stations"]
    assert sum(r.inserted + r.rejected for r in results) == truth["stations"]
    # every StationID of the simulator is stored exactly once
    stored = _stored_ids(engine, ops)
    assert set(stored) == {(op.operator_id, s.station_id) for op in sim.state.operators.values() for s in op.stations}

    # coordinates: converted to WGS84, reported GCJ-02 kept; district by point in polygon
    op = sim.state.operators[ops[0]]
    st = op.stations[0]
    with engine.connect() as conn:
        row = conn.execute(text("SELECT ST_X(geom) x, ST_Y(geom) y, ST_X(ST_Transform(geom_3857, 4326)) x2, "
                                "lng_gcj02, lat_gcj02, district_adcode, area_code, area_code_mismatch, name_pinyin, "
                                "search_text, payments, interconnected, pile_count, connectors_total, availability "
                                "FROM stations WHERE operator_id = :op AND station_id = :sid"),
                           {"op": op.operator_id, "sid": st.station_id}).mappings().one()
    w = gcj02_to_wgs84(st.fields["StationLng"], st.fields["StationLat"])
    assert abs(row["x"] - w[0]) < 1e-9 and abs(row["y"] - w[1]) < 1e-9 and abs(row["x2"] - w[0]) < 1e-6
    assert (row["lng_gcj02"], row["lat_gcj02"]) == (st.fields["StationLng"], st.fields["StationLat"])
    assert row["interconnected"] is True and row["name_pinyin"] and op.name in row["search_text"]
    assert row["pile_count"] == len(st.equipments) and row["connectors_total"] == len(st.connectors())
    assert row["availability"] in ("free", "busy", "offline")

    # live status as pulled, for every connector of every active station
    with engine.connect() as conn:
        got = dict(conn.execute(text("SELECT connector_id, status FROM connector_status WHERE operator_id = :op "
                                     "AND source = 'pull'"), {"op": op.operator_id}).all())
    for s in op.stations:
        if stored[(op.operator_id, s.station_id)] == "active":
            for con in s.connectors():
                assert got[con.connector_id] == con.status

    # a second full sync changes nothing and does not bump the data version
    with engine.connect() as conn:
        v0 = data_version(conn)
    again = sync_all(engine, fsettings, full=True)
    assert all(r.ok and r.inserted == 0 and r.updated == 0 and r.withdrawn == 0 for r in again)
    assert sum(r.unchanged + r.rejected for r in again) == truth["stations"]
    assert counts(engine, ops) == c
    with engine.connect() as conn:
        assert data_version(conn) == v0

    # incremental: only what changed since the last pull (minus the overlap)
    changed = sim.state.apply_info_change(ops[0])
    added = sim.state.add_station(ops[0])
    with engine.connect() as conn:  # pretend the previous pull was a while ago, after the base city
        conn.execute(text("UPDATE feed_endpoints SET last_query_time = :t WHERE operator_id = ANY(:ids)"),
                     {"t": now_china() - timedelta(seconds=30), "ids": ops})
        conn.commit()
    inc = {r.operator_id: r for r in sync_all(engine, fsettings)}
    r0 = inc[ops[0]]
    assert r0.ok and r0.mode == "incremental"
    assert r0.received < truth["stations"]
    # exactly the changed station and the new one, both written (or rejected, never dropped)
    assert changed and r0.received == 2 and r0.inserted + r0.updated + r0.rejected == 2 and r0.unchanged == 0
    assert (ops[0], added["StationID"]) in _stored_ids(engine, ops)
    assert inc[ops[1]].received == 0
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT mode, ok, pages, inserted, updated, unchanged, duration_ms FROM sync_runs "
                                 "WHERE operator_id = :op ORDER BY id"), {"op": ops[0]}).all()
        lqt = conn.execute(text("SELECT last_query_time FROM feed_endpoints WHERE operator_id = :op"),
                           {"op": ops[0]}).scalar()
    assert [r.mode for r in runs] == ["full", "full", "incremental"] and all(r.ok for r in runs)
    assert runs[0].pages >= 1 and runs[0].inserted > 0 and runs[1].unchanged > 0
    assert lqt > now_china() - timedelta(seconds=fsettings.feed.overlap_s + 30)


def test_withdrawn_on_full_sync_and_return(engine, sim, registered, fsettings) -> None:
    op = sim.state.operators[sim.operator_ids[0]]
    assert all(r.ok for r in sync_all(engine, fsettings, full=True))
    gone = op.stations[3]
    op.stations.remove(gone)
    inc = sync_operator(engine, fsettings, _ep(engine, op.operator_id))  # incremental never withdraws
    assert inc.ok and inc.withdrawn == 0
    r = sync_operator(engine, fsettings, _ep(engine, op.operator_id), full=True)
    assert r.ok and r.withdrawn == 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT feed_state, withdrawn_at, pile_count, "
                                "(SELECT count(*) FROM equipment e WHERE e.station_pk = s.id) AS piles "
                                "FROM stations s WHERE operator_id = :op AND station_id = :sid"),
                           {"op": op.operator_id, "sid": gone.station_id}).mappings().one()
    assert row["feed_state"] == "withdrawn" and row["withdrawn_at"] is not None and row["piles"] > 0
    op.stations.append(gone)
    op.stations.sort(key=lambda s: s.station_id)
    r = sync_operator(engine, fsettings, _ep(engine, op.operator_id), full=True)
    assert r.ok and r.withdrawn == 0 and r.updated == 1
    with engine.connect() as conn:
        row = conn.execute(text("SELECT feed_state, withdrawn_at FROM stations WHERE operator_id = :op "
                                "AND station_id = :sid"), {"op": op.operator_id, "sid": gone.station_id}).one()
    assert tuple(row) == ("active", None)


def test_rejected_with_reasons_and_area_code_mismatch(engine, sim, registered, fsettings) -> None:
    op = sim.state.operators[sim.operator_ids[0]]
    s_range, s_outside, s_missing, s_power, s_mismatch, s_pile = op.stations[:6]
    s_range.fields["StationLng"] = 213.5
    s_outside.fields["StationLng"], s_outside.fields["StationLat"] = 116.40, 39.91  # Beijing
    del s_missing.fields["StationName"]
    s_power.equipments[0].power = -60.0
    other = {"440402": "440403", "440403": "440404", "440404": "440402"}[s_mismatch.fields["AreaCode"]]
    s_mismatch.fields["AreaCode"] = other
    removed_pile = s_pile.equipments.pop()
    r = sync_operator(engine, fsettings, _ep(engine, op.operator_id), full=True)
    assert r.ok and r.rejected >= 4
    with engine.connect() as conn:
        rows = {x.station_id: x for x in conn.execute(text(
            "SELECT station_id, feed_state, reject_reason, area_code, district_adcode, area_code_mismatch, geom, raw "
            "FROM stations WHERE operator_id = :op"), {"op": op.operator_id})}
        piles = {x[0] for x in conn.execute(text("SELECT equipment_id FROM equipment WHERE operator_id = :op"),
                                            {"op": op.operator_id})}
    assert rows[s_range.station_id].feed_state == "rejected"
    assert "StationLng 213.5 is outside" in rows[s_range.station_id].reject_reason
    assert rows[s_range.station_id].geom is None and rows[s_range.station_id].raw["StationLng"] == 213.5
    assert rows[s_outside.station_id].feed_state == "rejected"
    assert "outside the city" in rows[s_outside.station_id].reject_reason
    assert rows[s_outside.station_id].geom is not None  # converted point kept for review
    assert "required field StationName is missing" in rows[s_missing.station_id].reject_reason
    assert "Power -60.0 kW is impossible" in rows[s_power.station_id].reject_reason
    mm = rows[s_mismatch.station_id]
    assert mm.feed_state == "active" and mm.area_code_mismatch is True and mm.area_code == other
    assert str(mm.district_adcode) != other
    # a pile no longer reported is deleted, with its connectors
    assert removed_pile.equipment_id not in piles
    # rejected stations are stored with the reason, never lost, and are counted every time
    again = sync_operator(engine, fsettings, _ep(engine, op.operator_id), full=True)
    assert again.ok and again.rejected == r.rejected and again.updated == 0 and again.inserted == 0


def test_slow_pages_time_out_and_retry(engine, sim, registered, db_url, tmp_path) -> None:
    sim.faults(slow_seconds=0.6)
    fast = feed_settings(db_url, tmp_path, timeout_s=0.25, retries=1)
    r = sync_operator(engine, fast, _ep(engine, sim.operator_ids[0]), full=True)
    assert not r.ok and "timed out" in r.error and "2 attempts" in r.error
    with engine.connect() as conn:
        ep = conn.execute(text("SELECT circuit_failures, circuit_state, last_error FROM feed_endpoints "
                               "WHERE operator_id = :op"), {"op": sim.operator_ids[0]}).one()
        run = conn.execute(text("SELECT ok, error FROM sync_runs WHERE operator_id = :op ORDER BY id DESC LIMIT 1"),
                           {"op": sim.operator_ids[0]}).one()
    assert ep.circuit_failures == 1 and ep.circuit_state == "closed" and "timed out" in ep.last_error
    assert run.ok is False and "timed out" in run.error
    sim.faults(slow_seconds=0.1)  # slow but within the timeout
    r = sync_operator(engine, feed_settings(db_url, tmp_path, timeout_s=2.0), _ep(engine, sim.operator_ids[0]),
                      full=True)
    assert r.ok, r.error


def test_server_errors_and_busy_are_retried(engine, sim, registered, db_url, tmp_path) -> None:
    sim.faults(error_rate=0.2, fail_next=2)
    s = feed_settings(db_url, tmp_path, retries=6)
    results = sync_all(engine, s, full=True)
    assert all(r.ok for r in results), [r.error for r in results]
    assert counts(engine, sim.operator_ids)["active"] + counts(engine, sim.operator_ids)["rejected"] \
        == sim_truth(sim)["stations"]
    sim.faults(reset=True, error_rate=1.0)
    r = sync_operator(engine, feed_settings(db_url, tmp_path, retries=1), _ep(engine, sim.operator_ids[0]))
    assert not r.ok and "HTTP 500" in r.error


def test_bad_signatures_fail_cleanly_and_open_the_circuit(engine, sim, registered, fsettings) -> None:
    op_id = sim.operator_ids[0]
    sim.faults(bad_signature=True)
    for i in range(fsettings.feed.circuit_failures):
        r = sync_operator(engine, fsettings, _ep(engine, op_id), full=True)
        assert not r.ok and "Sig does not match" in r.error
    assert counts(engine, [op_id])["active"] == 0
    ep = _ep(engine, op_id)
    assert ep.circuit_state == "open" and ep.circuit_failures == fsettings.feed.circuit_failures
    skipped = sync_operator(engine, fsettings, ep, respect_circuit=True)  # the scheduler's way
    assert skipped.skipped and "circuit open" in skipped.skipped
    with engine.begin() as conn:  # the pause is over: one trial pull, which fails: open again
        conn.execute(text("UPDATE feed_endpoints SET circuit_opened_at = now() - interval '1 hour' "
                          "WHERE operator_id = :op"), {"op": op_id})
    trial = sync_operator(engine, fsettings, _ep(engine, op_id), respect_circuit=True)
    assert not trial.skipped and not trial.ok
    ep = _ep(engine, op_id)
    assert ep.circuit_state == "open" and ep.circuit_opened_at > now_china() - timedelta(minutes=1)
    sim.faults(reset=True)
    r = sync_operator(engine, fsettings, ep, full=True)  # a manual pull still tries, and closes it
    assert r.ok
    ep = _ep(engine, op_id)
    assert ep.circuit_state == "closed" and ep.circuit_failures == 0


def test_expired_tokens_are_renewed_once(engine, sim, registered, fsettings) -> None:
    sim.faults(expire_tokens=True)
    before = len(sim.state.tokens)
    results = sync_all(engine, fsettings, full=True)
    assert all(r.ok for r in results), [r.error for r in results]
    assert len(sim.state.tokens) - before > 2  # renewed on the way


def test_pages_changing_during_a_sync(engine, sim, registered, fsettings) -> None:
    op_id = sim.operator_ids[0]
    op = sim.state.operators[op_id]
    original = {s.station_id for s in op.stations}
    sim.faults(mutate_during_sync=True)
    r = sync_operator(engine, fsettings, _ep(engine, op_id), full=True)
    assert r.ok, r.error
    assert r.withdrawn == 0 and any("moved" in n for n in r.notes)
    stored = {sid for (_, sid), state in _stored_ids(engine, [op_id]).items()}
    assert original <= stored  # nothing lost
    sim.faults(reset=True)
    r2 = sync_operator(engine, fsettings, _ep(engine, op_id), full=True)
    assert r2.ok and r2.withdrawn == 0
    assert {sid for (_, sid) in _stored_ids(engine, [op_id])} == {s.station_id for s in op.stations}


def test_a_broken_operator_does_not_stall_the_others(engine, db_url, tmp_path) -> None:
    good, bad = make_sim(stations=40, operators=2), make_sim(stations=20, operators=1)
    with good.server, bad.server:
        register_sim(engine, good)
        register_sim(engine, bad)
        try:
            bad.faults(slow_seconds=3.0)
            s = feed_settings(db_url, tmp_path, timeout_s=1.0, retries=2, backoff_s=0.2)
            done: list[tuple[str, float]] = []
            t0 = time.monotonic()
            results = sync_all(engine, s, full=True,
                               on_result=lambda r: done.append((r.operator_id, time.monotonic() - t0)))
            by_id = {r.operator_id: r for r in results}
            assert all(by_id[o].ok for o in good.operator_ids)
            assert not by_id[bad.operator_ids[0]].ok
            assert done[-1][0] == bad.operator_ids[0]
            assert max(t for o, t in done if o in good.operator_ids) < 2.5
        finally:
            forget_operators(engine, good.operator_ids + bad.operator_ids)


def test_one_pull_per_operator_at_a_time(engine, sim, registered, fsettings) -> None:
    sim.faults(slow_seconds=0.3)
    ep = _ep(engine, sim.operator_ids[0])
    out = []
    threads = [threading.Thread(target=lambda: out.append(sync_operator(engine, fsettings, ep, full=True)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(bool(r.skipped) for r in out) == [False, True]
    assert "another process" in next(r.skipped for r in out if r.skipped)


def test_query_station_stats(engine, sim, registered, fsettings) -> None:
    from datetime import date

    from ingest.sync import _client_for

    op = sim.state.operators[sim.operator_ids[0]]
    ep = _ep(engine, op.operator_id)
    with _client_for(ep, fsettings, time.monotonic() + 30) as client:
        stats = client.station_stats(op.stations[0].station_id, date(2024, 5, 1), date(2024, 5, 7))
        status = client.station_status([s.station_id for s in op.stations[:50]])
    assert stats["StationID"] == op.stations[0].station_id and stats["StationElectricity"] >= 0
    assert len(stats["EquipmentStatsInfos"]) == len(op.stations[0].equipments)
    assert len(status) == min(50, len(op.stations))
    with pytest.raises(ValueError):
        with _client_for(ep, fsettings, time.monotonic() + 30) as client:
            client.station_status(["S%d" % i for i in range(51)])

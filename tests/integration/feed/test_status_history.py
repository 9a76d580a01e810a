"""Status history and freshness through the real feed (issue 16): the simulator pulled by the sync,
pushes through the receiver; history rows for both, an out-of-order push in its place, a late
pull that leaves a newer push alone, and silence shown as unknown in the API, search and tiles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from ingest.store import store_statuses
from ingest.sync import pull_statuses
from ingest.endpoints import load_endpoints
from services.reliability.freshness import mark_silent
from services.stations.summary import data_version
from tests.integration.tiles.conftest import decode, lnglat_to_tile, wait_version

from .test_receiver import Pusher, synced, tc  # noqa: F401 (fixtures: a synced simulated city, a test client)


def _history(engine, op: str, cid: str) -> list[tuple]:  # noqa: ANN001
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT h.at, h.status, h.source FROM connector_status_history h JOIN connector_status cs "
            "ON cs.id = h.connector_key WHERE cs.operator_id = :op AND cs.connector_id = :c ORDER BY h.at"),
            {"op": op, "c": cid})]


def _current(engine, op: str, cid: str) -> dict:  # noqa: ANN001
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT status, source, status_since, reported_at FROM connector_status "
            "WHERE operator_id = :op AND connector_id = :c"), {"op": op, "c": cid}).mappings().one())


def _a_connector(engine, sim, status: int = 1) -> tuple[str, str, int]:  # noqa: ANN001
    op = sim.operator_ids[0]
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT c.connector_id, s.id FROM connectors c JOIN stations s ON s.id = c.station_pk "
            "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
            "WHERE s.operator_id = :op AND s.feed_state = 'active' AND s.interconnected AND s.station_status = 50 "
            "AND cs.status = :st ORDER BY s.id, c.connector_id LIMIT 1"), {"op": op, "st": status}).one()
    return op, row.connector_id, row.id


def test_pulls_and_pushes_write_changes_only(engine, sim, synced, tc, fsettings) -> None:  # noqa: ANN001
    ops = sim.operator_ids
    with engine.connect() as conn:
        counts = conn.execute(text(
            "SELECT count(*), count(DISTINCT h.connector_key), bool_and(h.source = 'l') "
            "FROM connector_status_history h JOIN connector_status cs ON cs.id = h.connector_key "
            "WHERE cs.operator_id = ANY(:ops)"), {"ops": ops}).one()
        statuses = conn.execute(text("SELECT count(*) FROM connector_status WHERE operator_id = ANY(:ops)"),
                                {"ops": ops}).scalar()
    assert counts[0] == counts[1] == statuses and counts[2]  # the first report of each, from the pull

    op, cid, _ = _a_connector(engine, sim)
    p = Pusher(tc, synced[op])
    p.get_token()
    assert p.status(cid, 3)[1].ret == 0
    assert p.status(cid, 3)[1].ret == 0  # the same again: no change
    rows = _history(engine, op, cid)
    assert [(s, src) for _, s, src in rows] == [(1, "l"), (3, "p")]
    assert _current(engine, op, cid)["status_since"] == rows[-1][0]

    # a pull that finds statuses changed writes those changes, and only those
    sim.admin("POST", "/_admin/tick", json={"changes": 40})
    with engine.connect() as conn:
        ep = load_endpoints(conn, op)[0]
    before, rows_before = _snapshot(engine, op)
    assert pull_statuses(engine, fsettings, ep, respect_circuit=False).ok
    after, rows_after = _snapshot(engine, op)
    changed = {c for c in after if after[c] != before.get(c)}
    assert changed and rows_after - rows_before == len(changed)


def _snapshot(engine, op: str) -> tuple[dict[str, int], int]:  # noqa: ANN001
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT connector_id, status FROM connector_status WHERE operator_id = :op"),
                                     {"op": op}).all())
        rows = conn.execute(text("SELECT count(*) FROM connector_status_history h JOIN connector_status cs "
                                 "ON cs.id = h.connector_key WHERE cs.operator_id = :op"), {"op": op}).scalar()
    return statuses, rows


def test_an_older_push_lands_in_place_and_leaves_the_newer_status(engine, sim, synced, tc) -> None:  # noqa: ANN001
    op, cid, pk = _a_connector(engine, sim)
    pulled = _current(engine, op, cid)
    p = Pusher(tc, synced[op])
    p.get_token()
    older = pulled["reported_at"] - timedelta(seconds=30)
    resp, r = p.status(cid, 255, ts=older)
    assert resp.status_code == 200 and r.ret == 0 and r.data == {"Status": 0}
    assert _current(engine, op, cid) == pulled  # the pull's newer status stays
    assert [(t, s, src) for t, s, src in _history(engine, op, cid)] == [
        (older.replace(microsecond=0), 255, "p"), (pulled["status_since"], 1, "l")]
    # the status history shows it in its place
    body = tc.get(f"/api/v1/stations/{pk}/status-history",
                  params={"from": (older - timedelta(minutes=1)).isoformat()}).json()
    mine = next(c for c in body["connectors"] if c["connector_id"] == cid)
    assert [i["status"] for i in mine["intervals"]] == [255, 1] and mine["intervals"][-1]["to"] is None

    # a newer push after it still moves the current status forward
    assert p.status(cid, 3)[1].ret == 0
    assert _current(engine, op, cid)["status"] == 3


def test_a_late_pull_leaves_a_newer_push(engine, sim, synced, tc) -> None:  # noqa: ANN001
    op, cid, _ = _a_connector(engine, sim)
    p = Pusher(tc, synced[op])
    p.get_token()
    assert p.status(cid, 3)[1].ret == 0
    pushed = _current(engine, op, cid)
    asked = pushed["reported_at"] - timedelta(seconds=20)  # the pull asked before the push was made
    with engine.begin() as conn:
        store_statuses(conn, op, [{"StationID": "x", "ConnectorStatusInfos": [
            {"ConnectorID": cid, "Status": 0, "ParkStatus": 10, "LockStatus": 10}]}], at=asked)
    assert _current(engine, op, cid) == pushed
    rows = _history(engine, op, cid)
    assert (asked, 0, "l") in rows and rows[-1][1:] == (3, "p")
    # the same pull after the push is newer: it moves the status
    with engine.begin() as conn:
        store_statuses(conn, op, [{"StationID": "x", "ConnectorStatusInfos": [
            {"ConnectorID": cid, "Status": 1, "ParkStatus": 10, "LockStatus": 10}]}],
            at=pushed["reported_at"] + timedelta(seconds=1))
    now = _current(engine, op, cid)
    assert now["status"] == 1 and now["source"] == "pull"


def _tile_feature(tc, engine, pk: int) -> dict:  # noqa: ANN001
    with engine.connect() as conn:
        lng, lat = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE id = :id"), {"id": pk}).one()
    x, y = lnglat_to_tile(lng, lat, 15)
    layer = decode(tc.get(f"/tiles/stations/15/{x}/{y}.mvt").content)["stations"]
    return next(f["properties"] for f in layer["features"] if f["id"] == pk)


def test_silence_is_unknown_everywhere_until_the_next_report(engine, sim, synced, tc, app) -> None:  # noqa: ANN001
    op, cid, pk = _a_connector(engine, sim)
    with engine.connect() as conn:
        cids = list(conn.execute(text("SELECT connector_id FROM connectors WHERE station_pk = :s ORDER BY 1"),
                                 {"s": pk}).scalars())
        v0 = data_version(conn)
    assert tc.get(f"/api/v1/stations/{pk}").json()["connectors_free"] >= 1
    # the station's connectors have not reported for ten days (a silence limit no other test's rows reach)
    with engine.begin() as conn:
        conn.execute(text("UPDATE connector_status SET updated_at = now() - interval '10 days' "
                          "WHERE operator_id = :op AND connector_id = ANY(:c)"), {"op": op, "c": cids})
        changed = mark_silent(conn, 5 * 86400)
    assert pk in changed
    with engine.connect() as conn:
        st = conn.execute(text("SELECT connectors_free, availability, silent_since FROM stations WHERE id = :id"),
                          {"id": pk}).mappings().one()
        v1 = data_version(conn)
    assert st["connectors_free"] == 0 and st["availability"] == "unknown" and st["silent_since"] is not None
    assert v1 > v0
    assert all(_current(engine, op, c)["status"] is None for c in cids)
    assert [s for _, s, src in _history(engine, op, cid)][-1] is None
    # the open API, its search counts and the map say so
    detail = tc.get(f"/api/v1/stations/{pk}").json()
    assert detail["connectors_free"] == 0 and detail["availability"] == "unknown"
    assert all(c["status"] is None for e in detail["equipment"] for c in e["connectors"])
    found = tc.get("/api/v1/stations", params={"operator": op, "available": "true", "limit": 500}).json()
    assert pk not in {i["id"] for i in found["items"]}
    wait_version(app, "stations", v1)
    assert _tile_feature(tc, engine, pk)["availability"] == "unknown"
    intervals = next(c for c in tc.get(f"/api/v1/stations/{pk}/status-history").json()["connectors"]
                     if c["connector_id"] == cid)["intervals"]
    assert intervals[-1]["status"] is None and intervals[-1]["to"] is None

    # the next report ends it
    p = Pusher(tc, synced[op])
    p.get_token()
    assert p.status(cid, 1)[1].ret == 0
    with engine.connect() as conn:
        st = conn.execute(text("SELECT connectors_free, availability, silent_since FROM stations WHERE id = :id"),
                          {"id": pk}).mappings().one()
        v2 = data_version(conn)
    assert st == {"connectors_free": 1, "availability": "free", "silent_since": None}
    assert [s for _, s, _ in _history(engine, op, cid)][-2:] == [None, 1]
    wait_version(app, "stations", v2)
    assert _tile_feature(tc, engine, pk)["availability"] == "free"
    assert pk in {i["id"] for i in tc.get("/api/v1/stations", params={
        "operator": op, "available": "true", "limit": 500}).json()["items"]}
    assert datetime.now(UTC) - _current(engine, op, cid)["status_since"] < timedelta(minutes=5)

"""B5 against the operator simulator over loopback: docking data, our credentials shown once,
station association, live joint debugging of each interface, a real status push to our receiver,
the system check (full pull compared with the archives): a clean pass, and a failing check with
a moved station and a missing pile, each reported."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from ingest import debugging
from ingest.simulator.config import SimConfig
from ingest.simulator.server import build_app
from services.archives import facilities as fac
from services.archives import interconnection as ic
from services.archives import stations as sta
from tests.integration.archives.conftest import REG_ACTOR, Operator, make_report
from tests.conftest import ServerThread, free_port
_free_port = free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sim() -> Iterator[ServerThread]:
    cfg = SimConfig(seed=11, stations=60, operators=3, token_ttl=600, push_backoff_seconds=0.05)
    with ServerThread(build_app(cfg)) as server:
        yield server


@pytest.fixture(scope="module")
def platform(settings, database) -> Iterator[ServerThread]:  # noqa: ANN001
    """Our own app over HTTP, so the simulator's pushes reach the real receiver."""
    from portal_site.app import create_app

    with ServerThread(create_app(settings, database=database)) as server:
        yield server


@pytest.fixture()
def sync_checks(app, database, settings) -> Iterator[None]:  # noqa: ANN001
    """Run the step-3 job in the request (not a thread), with the sync after a pass."""
    app.state["ic_check_starter"] = lambda db, s, pk: debugging.run_check(db, s, pk, after_pass=debugging._sync_now(db, s))
    yield
    app.state.pop("ic_check_starter", None)


def _summary(sim: ServerThread, index: int) -> dict[str, Any]:
    ops = httpx.get(f"{sim.url}/_admin/operators").json()
    return sorted(ops, key=lambda o: o["operator_id"])[index]


def _truth(sim: ServerThread, op_id: str, n: int) -> list[dict[str, Any]]:
    ids = [s["StationID"] for s in httpx.get(f"{sim.url}/_admin/stations/{op_id}").json()]
    out = []
    for sid in ids:
        info = httpx.get(f"{sim.url}/_admin/stations/{op_id}/{sid}").json()["StationInfo"]
        if 1 <= len(info["EquipmentInfos"]) <= 6 and info["StationStatus"] == 50:
            out.append(info)
        if len(out) == n:
            break
    assert len(out) == n
    return out


def _archive(database, o: Operator, infos: list[dict[str, Any]], settings) -> dict[str, int]:  # noqa: ANN001
    """Approved station and facility archives exactly as the simulator reports them."""
    r_pk = make_report(database, o, f"R-{o.operator_id}", settings.app.upload_dir)
    pks: dict[str, int] = {}
    with database.session() as s:
        for info in infos:
            form = {"station_id": info["StationID"], "name": info["StationName"], "district_adcode": info["AreaCode"],
                    "address": info["Address"], "lng_gcj02": info["StationLng"], "lat_gcj02": info["StationLat"],
                    "station_type": info["StationType"], "station_status": info["StationStatus"],
                    "construction": info["Construction"], "service_tel": info["ServiceTel"],
                    "station_tel": info.get("StationTel"), "park_nums": info["ParkNums"],
                    "busine_hours": info.get("BusineHours")}
            st = sta.create_or_update(s, o.actor, form, submit=True)
            sta.transition(s, REG_ACTOR, st.id, "approve")
            pks[info["StationID"]] = st.id
            rows = [{"equipment_id": e["EquipmentID"], "equipment_type": e["EquipmentType"], "power_kw": e["Power"],
                     "connector_count": len(e["ConnectorInfos"]), "connector_type": e["ConnectorInfos"][0]["ConnectorType"],
                     "manufacturer_name": e["ManufacturerName"][:30], "equipment_model": e["EquipmentModel"][:20],
                     "production_date": e["ProductionDate"], "lng_gcj02": e["EquipmentLng"], "lat_gcj02": e["EquipmentLat"],
                     "report_archive_pk": r_pk} for e in info["EquipmentInfos"]]
            for fa in fac.create_many(s, o.actor, st.id, rows, submit=True):
                fac.transition(s, REG_ACTOR, fa.id, "approve")
    return pks


def _configure_and_debug(o: Operator, sim: ServerThread, platform: ServerThread, summary: dict[str, Any],
                         station_pks: list[int], engine) -> None:  # noqa: ANN001
    # step 1: docking data; our credentials are shown in full this once
    r = o.post("/backoffice/interconnection/docking", {
        "base_url": summary["base_url"], "api_version": "v20160701",
        "platform_operator_id": summary["platform_operator_id"], "operator_secret": summary["operator_secret"],
        "data_secret": summary["data_secret"], "data_iv": summary["data_iv"], "sig_secret": summary["sig_secret"]})
    assert r.status_code == 200, r.text[:800]
    with engine.connect() as conn:
        inbound = conn.execute(text("SELECT inbound_operator_secret, inbound_data_secret, inbound_data_iv, "
                                    "inbound_sig_secret, interconnected FROM feed_endpoints WHERE operator_id = :o"),
                               {"o": o.operator_id}).one()
    assert not inbound.interconnected
    assert "只显示这一次" in r.text and inbound.inbound_sig_secret in r.text
    again = o.get("/backoffice/interconnection?step=1").text
    assert inbound.inbound_sig_secret not in again and inbound.inbound_data_secret not in again
    assert "/evcs/v20160701/notification_stationStatus" in again
    r = o.post("/backoffice/interconnection/stations", {"stations": [str(p) for p in station_pks]})
    assert r.status_code == 303
    # step 2: each interface live, decrypted, with Ret and pass/fail
    for name in ic.DEBUG_INTERFACES:
        r = o.post(f"/backoffice/interconnection/debug/{name}", headers={"accept": "text/html", "hx-request": "true"})
        assert r.status_code == 200, (name, r.text[:500])
        assert 'data-ok="true"' in r.text, (name, r.text[:2000])
        assert "Ret: <strong>0</strong>" in r.text
    page = o.get("/backoffice/interconnection?step=2").text
    assert "StationIDs" in page and "OperatorSecret" in page  # decrypted requests are shown
    assert 'id="submit-check" disabled' in page  # no push received yet
    r = o.post("/backoffice/interconnection/submit")
    assert r.status_code == 409 and "notification_stationStatus" in r.text
    # the operator pushes a status change to us with the credentials we issued
    httpx.post(f"{sim.url}/_admin/push-targets", json={
        "operator_id": o.operator_id, "base_url": platform.url, "operator_secret": inbound.inbound_operator_secret,
        "data_secret": inbound.inbound_data_secret, "data_iv": inbound.inbound_data_iv,
        "sig_secret": inbound.inbound_sig_secret}).raise_for_status()
    wait_for_push(sim, engine, o.operator_id)
    page = o.get("/backoffice/interconnection?step=2").text
    assert 'id="submit-check" disabled' not in page


def wait_for_push(sim: ServerThread, engine, operator_id: str, timeout_s: float = 45.0) -> None:  # noqa: ANN001
    """Have the simulator push status changes until our receiver has recorded one (loaded machines are slow)."""
    deadline = time.monotonic() + timeout_s
    while True:
        httpx.post(f"{sim.url}/_admin/tick", json={"changes": 2, "operator_id": operator_id, "wait": True,
                                                   "wait_seconds": 10}, timeout=30).raise_for_status()
        with engine.connect() as conn:
            if conn.execute(text("SELECT last_push_at FROM feed_endpoints WHERE operator_id = :o"),
                            {"o": operator_id}).scalar():
                return
        if time.monotonic() > deadline:
            pytest.fail(f"no push reached the platform: {httpx.get(f'{sim.url}/_admin/pushes').json()}")
        time.sleep(0.2)


def test_clean_pass(sim, platform, sync_checks, engine, database, settings, app) -> None:  # noqa: ANN001
    summary = _summary(sim, 0)
    o = Operator(engine, app, operator_id=summary["operator_id"], name=summary["name"])
    try:
        infos = _truth(sim, o.operator_id, 2)
        pks = _archive(database, o, infos, settings)
        _configure_and_debug(o, sim, platform, summary, list(pks.values()), engine)
        before = engine.connect().execute(text("SELECT coalesce(max(version), 1) FROM data_versions "
                                               "WHERE layer = 'stations'")).scalar()
        r = o.post("/backoffice/interconnection/submit")
        assert r.status_code == 303
        page = o.get("/backoffice/interconnection?step=3").text
        assert "核对通过" in page, page[-3000:]
        with engine.connect() as conn:
            app_row = conn.execute(text("SELECT state, check_report FROM interconnection_applications "
                                        "WHERE operator_pk = :p"), {"p": o.pk}).one()
            ep = conn.execute(text("SELECT interconnected FROM feed_endpoints WHERE operator_id = :o"),
                              {"o": o.operator_id}).scalar()
            shown = conn.execute(text("SELECT count(*) FILTER (WHERE interconnected), count(*) FROM stations "
                                      "WHERE operator_id = :o"), {"o": o.operator_id}).one()
            after = conn.execute(text("SELECT max(version) FROM data_versions WHERE layer = 'stations'")).scalar()
        assert app_row.state == "passed" and app_row.check_report["passed"] is True
        assert app_row.check_report["differences"] == []
        assert app_row.check_report["stations_checked"] == 2
        assert ep is True
        assert shown[1] > 0 and shown[0] == shown[1]  # every synced station of the operator shows on the map
        assert after > before
        # the facilities may now apply for interconnection
        with engine.connect() as conn:
            ids = [str(i) for i in conn.execute(text("SELECT id FROM facility_archives WHERE operator_pk = :p"),
                                                {"p": o.pk}).scalars()]
        assert o.post("/backoffice/facilities/batch/apply_ic", {"ids": ids}).status_code == 303
    finally:
        o.close()


def test_failing_check_reports_a_moved_station_and_a_missing_pile(sim, platform, sync_checks, engine, database,
                                                                     settings, app, reg) -> None:  # noqa: ANN001
    summary = _summary(sim, 1)
    o = Operator(engine, app, operator_id=summary["operator_id"], name=summary["name"])
    try:
        infos = _truth(sim, o.operator_id, 3)
        pks = _archive(database, o, infos, settings)
        moved, broken = infos[0]["StationID"], infos[1]["StationID"]
        state = sim.app.state.sim
        state.operators[o.operator_id].station(moved).fields["StationLng"] += 0.01  # about 1 km east
        gone = state.operators[o.operator_id].station(broken).equipments.pop()
        _configure_and_debug(o, sim, platform, summary, list(pks.values()), engine)
        assert o.post("/backoffice/interconnection/submit").status_code == 303
        page = o.get("/backoffice/interconnection?step=3").text
        assert "核对未通过" in page
        with engine.connect() as conn:
            row = conn.execute(text("SELECT state, check_report FROM interconnection_applications WHERE operator_pk = :p"),
                               {"p": o.pk}).one()
            ep = conn.execute(text("SELECT interconnected FROM feed_endpoints WHERE operator_id = :o"),
                              {"o": o.operator_id}).scalar()
        assert row.state == "failed" and ep is False
        diffs = row.check_report["differences"]
        kinds = {(d["kind"], d.get("station_id"), d.get("equipment_id")) for d in diffs}
        assert ("station_position", moved, None) in kinds, diffs
        assert ("missing_equipment", broken, gone.equipment_id) in kinds, diffs
        assert len(diffs) == 2, diffs
        moved_diff = next(d for d in diffs if d["kind"] == "station_position")
        assert 900 < moved_diff["distance_m"] < 1200
        assert moved in page and gone.equipment_id in page and re.search(r"相差 \d+ 米", page)
        # nothing may apply for interconnection; the regulator sees the report
        with engine.connect() as conn:
            one = conn.execute(text("SELECT id FROM facility_archives WHERE operator_pk = :p LIMIT 1"), {"p": o.pk}).scalar()
        assert o.post(f"/backoffice/facilities/{one}/apply_ic").status_code == 409
        assert "核对未通过" in reg.get(f"/admin/interconnection/{o.pk}").text
        # the operator may resubmit once fixed
        assert "修正后重新提交" in page
    finally:
        o.close()


def test_background_check_records_an_unreachable_system(engine, database, settings, app) -> None:  # noqa: ANN001
    """The step-3 job in its own thread: a system that cannot be reached fails with a report saying so."""
    o = Operator(engine, app)
    try:
        from tests.integration.archives.conftest import make_station

        pk = make_station(database, o, "BG-1", "approved")
        with engine.begin() as conn:
            conn.execute(text("""
                INSERT INTO feed_endpoints (operator_id, base_url, platform_operator_id, operator_secret, data_secret,
                    data_iv, sig_secret, inbound_operator_secret, inbound_data_secret, inbound_data_iv, inbound_sig_secret)
                VALUES (:o, 'http://127.0.0.1:9', 'MA5ZHCITY', 'x', '1234567890abcdef', '1234567890abcdef', 'k', 'a', 'b',
                        'c', 'd')"""), {"o": o.operator_id})
            conn.execute(text("UPDATE station_archives SET associated_for_interconnection = true WHERE id = :i"), {"i": pk})
            conn.execute(text("INSERT INTO interconnection_applications (operator_pk, state, step) VALUES (:p, 'checking', 3)"),
                         {"p": o.pk})
        debugging.start_check(database, settings, o.pk, sync_after=False).join(60)
        with engine.connect() as conn:
            state, report = conn.execute(text("SELECT state, check_report FROM interconnection_applications "
                                              "WHERE operator_pk = :p"), {"p": o.pk}).one()
        assert state == "failed"
        assert report["differences"][0]["kind"] == "pull_failed"
        page = o.get("/backoffice/interconnection?step=3").text
        assert "无法拉取运营商系统的全部数据" in page
    finally:
        o.close()


def test_docking_validation_and_regenerated_credentials(engine, app) -> None:  # noqa: ANN001
    o = Operator(engine, app)
    try:
        form = {"base_url": "http://127.0.0.1:9/OP", "platform_operator_id": "MA5ZHCITY", "operator_secret": "s" * 16,
                "data_secret": "short", "data_iv": "1234567890abcdef", "sig_secret": "k" * 16}
        r = o.post("/backoffice/interconnection/docking", form)
        assert r.status_code == 400 and "16" in r.text
        r = o.post("/backoffice/interconnection/docking", {**form, "base_url": ""})
        assert r.status_code == 400
        r = o.post("/backoffice/interconnection/docking", {**form, "data_secret": "1234567890abcdef"})
        assert r.status_code == 200 and "只显示这一次" in r.text

        def inbound() -> tuple:
            with engine.connect() as conn:
                return tuple(conn.execute(text("SELECT inbound_operator_secret, inbound_data_secret, inbound_data_iv, "
                                               "inbound_sig_secret FROM feed_endpoints WHERE operator_id = :o"),
                                          {"o": o.operator_id}).one())

        first = inbound()
        # saving again (secrets left blank keep the stored ones) does not show or change our credentials
        r = o.post("/backoffice/interconnection/docking", {**form, "data_secret": "", "operator_secret": "",
                                                           "data_iv": "", "sig_secret": ""})
        assert r.status_code == 200 and "只显示这一次" not in r.text and inbound() == first
        r = o.post("/backoffice/interconnection/regenerate")
        assert r.status_code == 200 and "只显示这一次" in r.text
        second = inbound()
        assert all(a != b for a, b in zip(first, second)) and all(len(x) == 16 for x in second)
        assert second[3] in r.text
        assert second[3] not in o.get("/backoffice/interconnection?step=1").text
    finally:
        o.close()

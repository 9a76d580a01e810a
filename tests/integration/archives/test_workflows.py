"""Every transition table both ways: each allowed move works (state, event row), every other move
of a known action is a 409 naming the current state. Done through the services on real rows, and
over HTTP for the operators' and regulators' buttons."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.archives import facilities as fac
from services.archives import interconnection as ic
from services.archives import stations as sta
from services.archives.common import SYSTEM_ACTOR
from services.archives.workflows import FACILITY, INTERCONNECTION, STATION
from services.errors import Conflict
from services.workflow import Workflow
from tests.integration.archives.conftest import (
    REG_ACTOR,
    make_facility,
    make_report,
    make_station,
    set_interconnected,
)

ROLE_ACTOR = {"operator": None, "regulator": REG_ACTOR, "admin": REG_ACTOR, "system": SYSTEM_ACTOR}
STATE_ACTIONS = {  # actions that move a state (edit/delete are checked separately)
    "station_archive": ["submit", "withdraw", "approve", "reject"],
    "facility_archive": ["submit", "withdraw", "approve", "reject", "apply_ic", "approve_ic", "reject_ic"],
}


def _pairs(wf: Workflow) -> list[tuple[str, str]]:
    states = [s for s in wf.states if s != "deleted"]
    return [(s, a) for s in states for a in sorted(wf.actions())]


def _role_for(wf: Workflow, state: str, action: str) -> str:
    move = wf.transitions.get((state, action))
    if move is None:
        return "regulator" if action in ("approve", "reject", "approve_ic", "reject_ic") else (
            "system" if action in ("pass", "fail") else "operator")
    return sorted(move[1])[0] if "operator" not in move[1] else "operator"


def _events(engine, wf: Workflow, pk: int) -> list[tuple]:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT action, from_state, to_state, reason FROM workflow_events "
                                 "WHERE workflow = :w AND entity_id = :e ORDER BY id"),
                            {"w": wf.name, "e": str(pk)}).all()


def test_tables_are_closed() -> None:
    """Every target state is a known state and every role is one of ours."""
    for wf in (STATION, FACILITY, INTERCONNECTION):
        for (state, action), (nxt, roles) in wf.transitions.items():
            assert state in wf.states and nxt in wf.states, (wf.name, state, action)
            assert set(roles) <= {"operator", "regulator", "admin", "system"}
            assert action in wf.action_labels


@pytest.mark.parametrize("state,action", _pairs(STATION))
def test_station_archive_moves(database, engine, app, op, state, action) -> None:  # noqa: ANN001
    pk = make_station(database, op, f"WS{abs(hash((state, action))) % 10**8}", state)
    role = _role_for(STATION, state, action)
    actor = op.actor if role == "operator" else ROLE_ACTOR[role]
    allowed = (state, action) in STATION.transitions
    with database.session() as s:
        before = len(_events(engine, STATION, pk))
        if action in ("edit",):
            if allowed:
                STATION.next_state(state, action, role)
            else:
                with pytest.raises(Conflict, match=STATION.label(state)):
                    STATION.next_state(state, action, role)
            return
        if action == "delete":
            if allowed:
                sta.delete(s, actor, pk)
            else:
                with pytest.raises(Conflict) as exc:
                    sta.delete(s, actor, pk)
                assert STATION.label(state) in exc.value.message
            return
        if allowed:
            sta.transition(s, actor, pk, action, "原因" if action == "reject" else None)
        else:
            with pytest.raises(Conflict) as exc:
                sta.transition(s, actor, pk, action, "原因")
            assert exc.value.status_code == 409
            assert STATION.label(state) in exc.value.message
    with database.session() as s:
        st = s.get(sta.StationArchive, pk)
        if allowed:
            assert st.state == STATION.transitions[(state, action)][0]
            ev = _events(engine, STATION, pk)
            assert len(ev) == before + 1 and ev[-1][0] == action and ev[-1][1] == state
        else:
            assert st.state == state


@pytest.mark.parametrize("state,action", _pairs(FACILITY))
def test_facility_archive_moves(database, engine, app, op, settings, state, action) -> None:  # noqa: ANN001
    key = abs(hash((state, action))) % 10**8
    st_pk = make_station(database, op, f"WF{key}", "approved")
    r_pk = make_report(database, op, f"R{key}", settings.app.upload_dir)
    pk = make_facility(database, engine, op, st_pk, r_pk, f"EQ{key}", state)
    set_interconnected(engine, op, True)
    role = _role_for(FACILITY, state, action)
    actor = op.actor if role == "operator" else ROLE_ACTOR[role]
    allowed = (state, action) in FACILITY.transitions
    with database.session() as s:
        if action == "edit":
            if allowed:
                fac.update(s, actor, pk, st_pk, {"equipment_id": f"EQ{key}", "power_kw": "61", "report_archive_pk": r_pk})
            else:
                with pytest.raises(Conflict, match=FACILITY.label(state)):
                    fac.update(s, actor, pk, st_pk, {"equipment_id": f"EQ{key}"})
            return
        if action == "delete":
            if allowed:
                fac.delete(s, actor, pk)
            else:
                with pytest.raises(Conflict, match=FACILITY.label(state)):
                    fac.delete(s, actor, pk)
            return
        if allowed:
            fac.transition(s, actor, pk, action, "原因" if action.startswith("reject") else None)
        else:
            with pytest.raises(Conflict) as exc:
                fac.transition(s, actor, pk, action, "原因")
            assert exc.value.status_code == 409 and FACILITY.label(state) in exc.value.message
    with database.session() as s:
        fa = s.get(fac.FacilityArchive, pk)
        expected = FACILITY.transitions[(state, action)][0] if allowed else state
        assert fa.state == expected
        if allowed and action == "approve":
            assert fa.ever_approved
        if allowed and action.startswith("reject"):
            assert fa.rejection_reason == "原因"


@pytest.mark.parametrize("state,action", _pairs(INTERCONNECTION))
def test_interconnection_moves(database, engine, op, state, action) -> None:  # noqa: ANN001
    role = _role_for(INTERCONNECTION, state, action)
    actor = op.actor if role == "operator" else ROLE_ACTOR[role]
    with database.session() as s:
        app_row = ic.application(s, op.pk)
        app_row.state = state
    from services.archives.common import move

    allowed = (state, action) in INTERCONNECTION.transitions
    with database.session() as s:
        app_row = ic.application(s, op.pk)
        if allowed:
            move(s, INTERCONNECTION, app_row, action, actor)
            assert app_row.state == INTERCONNECTION.transitions[(state, action)][0]
        else:
            with pytest.raises(Conflict, match=INTERCONNECTION.label(state)):
                move(s, INTERCONNECTION, app_row, action, actor)


def test_operator_may_not_take_regulator_moves(database, engine, op) -> None:  # noqa: ANN001
    from services.errors import Forbidden

    pk = make_station(database, op, "ROLE1", "under_review")
    with database.session() as s, pytest.raises(Forbidden):
        sta.transition(s, op.actor, pk, "approve")


def test_illegal_move_over_http_is_409_naming_the_state(database, op, reg) -> None:  # noqa: ANN001
    pk = make_station(database, op, "HTTP409", "approved")
    r = op.post(f"/backoffice/stations/{pk}/withdraw", headers={"accept": "application/json"})
    assert r.status_code == 409
    assert "档案申请通过" in r.text
    r = op.post(f"/backoffice/stations/{pk}/withdraw")  # a page this time, same status
    assert r.status_code == 409 and "档案申请通过" in r.text
    r = reg.post(f"/admin/stations/{pk}/approve", headers={"accept": "application/json"})
    assert r.status_code == 409 and "档案申请通过" in r.text


def test_withdraw_steps_back_one_state(database, engine, op, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "WD1", "approved")
    r = make_report(database, op, "WD-R1", settings.app.upload_dir)
    a = make_facility(database, engine, op, st, r, "WDA", "under_review")
    b = make_facility(database, engine, op, st, r, "WDB", "ic_review")
    assert op.post(f"/backoffice/facilities/{a}/withdraw").status_code == 303
    assert op.post(f"/backoffice/facilities/{b}/withdraw").status_code == 303
    with database.session() as s:
        assert s.get(fac.FacilityArchive, a).state == "pending"
        assert s.get(fac.FacilityArchive, b).state == "approved"


"""Registration review decisions also reach the operator's B8 inbox, in the decision's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.accounts import registration as reg
from services.accounts.service import CurrentUser
from tests.accounts_helpers import create_operator_user, create_regulator, csrf_from, login

HTML = {"accept": "text/html"}


def _inbox(engine, operator_pk: int) -> list:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT m.kind, m.title, m.body, m.link, r.read_at FROM messages m "
            "JOIN message_recipients r ON r.message_id = m.id WHERE r.operator_pk = :pk ORDER BY m.id"),
            {"pk": operator_pk}).all()


def _state(engine, operator_pk: int) -> str:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT registration_state FROM operators WHERE id = :pk"), {"pk": operator_pk}).scalar()


def test_reject_then_approve_arrive_in_the_inbox(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine, approved=False)
    regulator = create_regulator(engine)
    login(client, regulator["account_name"])
    token = csrf_from(client, f"/admin/registrations/{op['operator_pk']}")

    # a rejection without a reason is refused and tells nobody anything
    r = client.post(f"/admin/registrations/{op['operator_pk']}/reject", data={"_csrf": token, "reason": " "},
                    headers=HTML, follow_redirects=False)
    assert r.status_code == 400
    assert _inbox(engine, op["operator_pk"]) == [] and _state(engine, op["operator_pk"]) == "submitted"

    r = client.post(f"/admin/registrations/{op['operator_pk']}/reject",
                    data={"_csrf": token, "reason": "营业执照<b>模糊</b>"}, headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303)
    [msg] = _inbox(engine, op["operator_pk"])
    assert (msg.kind, msg.title, msg.link, msg.read_at) == ("workflow", "注册审核未通过", "/backoffice/registration", None)
    assert "营业执照<b>模糊</b>" in msg.body and _state(engine, op["operator_pk"]) == "rejected"

    with engine.begin() as conn:  # the operator resubmits
        conn.execute(text("UPDATE operators SET registration_state = 'submitted' WHERE id = :pk"), {"pk": op["operator_pk"]})
    r = client.post(f"/admin/registrations/{op['operator_pk']}/approve", data={"_csrf": token}, headers=HTML,
                    follow_redirects=False)
    assert r.status_code in (302, 303)
    msgs = _inbox(engine, op["operator_pk"])
    assert [m.title for m in msgs] == ["注册审核未通过", "注册审核通过"]
    assert msgs[1].link == "/backoffice/" and _state(engine, op["operator_pk"]) == "approved"

    # another operator's inbox got nothing
    other = create_operator_user(engine, approved=False)
    assert _inbox(engine, other["operator_pk"]) == []


def test_the_notice_commits_or_rolls_back_with_the_decision(database, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine, approved=False)
    regulator = create_regulator(engine)
    actor = CurrentUser(id=regulator["user_id"], account_name=regulator["account_name"], role="regulator",
                        operator_pk=None, operator_id=None, operator_name=None, approved=True)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), database.session() as s:
        reg.decide(s, op["operator_pk"], "approve", actor)
        assert len(s.execute(text("SELECT 1 FROM message_recipients WHERE operator_pk = :pk"),
                             {"pk": op["operator_pk"]}).all()) == 1  # written in this transaction ...
        raise Boom
    assert _inbox(engine, op["operator_pk"]) == [] and _state(engine, op["operator_pk"]) == "submitted"  # ... and undone

    with database.session() as s:
        assert reg.decide(s, op["operator_pk"], "approve", actor) == "approved"
    assert [m.title for m in _inbox(engine, op["operator_pk"])] == ["注册审核通过"]

"""B8 end to end: a regulator's notice asking for confirmation, read marks, replies, agree /
disagree with a reason, the regulator's view of who read, replied and confirmed; scoping."""

from __future__ import annotations

import re

from sqlalchemy import text

from services.db import Database
from services.messaging.notify import notify_operator
from tests.accounts_helpers import create_operator_user, create_regulator

HTML = {"accept": "text/html"}


def _msg_id(location: str) -> int:
    m = re.search(r"/admin/messages/(\d+)", location)
    assert m, location
    return int(m.group(1))


def test_notice_confirmation_flow_end_to_end(make_client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    a, b, c = create_operator_user(engine), create_operator_user(engine), create_operator_user(engine)
    rc = make_client(reg)
    r = rc.post("/admin/messages", data={"_csrf": rc.csrf, "title": "关于开展充电设施安全检查的通知",
                                         "body": "请于本月底前完成自查并确认。", "audience": "some",
                                         "operators": [str(a["operator_pk"]), str(b["operator_pk"])],
                                         "requires_confirmation": "1"}, headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303), r.text[:500]
    mid = _msg_id(r.headers["location"])

    ac = make_client(a)
    page = ac.get("/backoffice/messages", headers=HTML)
    assert page.status_code == 200 and "关于开展充电设施安全检查的通知" in page.text
    assert 'class="dot"' in page.text  # unread mark
    assert ac.get("/backoffice/messages/unread").json()["unread"] >= 1
    page = ac.get(f"/backoffice/messages/{mid}", headers=HTML)
    assert "请于本月底前完成自查并确认" in page.text and 'name="choice"' in page.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT read_at IS NOT NULL FROM message_recipients WHERE message_id = :m "
                                 "AND operator_pk = :o"), {"m": mid, "o": a["operator_pk"]}).scalar()

    # disagree without a reason is refused, with the message in the page
    r = ac.post(f"/backoffice/messages/{mid}/respond", data={"_csrf": ac.csrf, "choice": "disagree", "reason": " "},
                headers=HTML, follow_redirects=False)
    assert r.status_code == 400 and "原因" in r.text
    r = ac.post(f"/backoffice/messages/{mid}/respond",
                data={"_csrf": ac.csrf, "choice": "disagree", "reason": "检查时间过紧，申请延期一周",
                      "body": "我司已收到通知。"}, headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303)
    # confirming twice is a conflict
    r = ac.post(f"/backoffice/messages/{mid}/respond", data={"_csrf": ac.csrf, "choice": "agree"}, headers=HTML,
                follow_redirects=False)
    assert r.status_code == 409

    bc = make_client(b)
    r = bc.post(f"/backoffice/messages/{mid}/respond", data={"_csrf": bc.csrf, "choice": "agree"}, headers=HTML,
                follow_redirects=False)
    assert r.status_code in (302, 303)  # agreeing needs no reason

    # c was not addressed: 404 for reading, responding
    cc = make_client(c)
    assert cc.get(f"/backoffice/messages/{mid}", headers=HTML).status_code == 404
    r = cc.post(f"/backoffice/messages/{mid}/respond", data={"_csrf": cc.csrf, "body": "hi"}, headers=HTML,
                follow_redirects=False)
    assert r.status_code == 404
    assert "关于开展充电设施安全检查的通知" not in cc.get("/backoffice/messages", headers=HTML).text

    # the regulator sees who read, replied and confirmed
    detail = rc.get(f"/admin/messages/{mid}", headers=HTML)
    assert detail.status_code == 200
    assert "检查时间过紧，申请延期一周" in detail.text and "我司已收到通知。" in detail.text
    listing = rc.get("/admin/messages", headers=HTML).text
    assert "2/2" in listing  # read 2 of 2, confirmed 2 of 2
    r = rc.post(f"/admin/messages/{mid}/reply", data={"_csrf": rc.csrf, "operator_pk": str(a["operator_pk"]),
                                                       "body": "同意延期至下月 7 日。"}, follow_redirects=False)
    assert r.status_code in (302, 303)
    assert "同意延期至下月 7 日。" in ac.get(f"/backoffice/messages/{mid}", headers=HTML).text
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT operator_pk, confirmation, confirmation_reason FROM message_recipients "
                                 "WHERE message_id = :m ORDER BY operator_pk"), {"m": mid}).all()
    assert {(r.operator_pk, r.confirmation) for r in rows} == {(a["operator_pk"], "disagree"), (b["operator_pk"], "agree")}


def test_send_to_all_and_workflow_notifications_arrive(make_client, engine, database: Database) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    a = create_operator_user(engine)
    rc = make_client(reg)
    r = rc.post("/admin/messages", data={"_csrf": rc.csrf, "title": "全体通知", "body": "平台将于周六维护。",
                                         "audience": "all"}, headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303)
    with database.session() as s:
        notify_operator(s, a["operator_pk"], "站点档案审核通过", "档案 ZH-1 已通过。", link="/backoffice/stations/1")
    ac = make_client(a)
    page = ac.get("/backoffice/messages", headers=HTML).text
    assert "全体通知" in page and "站点档案审核通过" in page
    # no recipients is refused
    r = rc.post("/admin/messages", data={"_csrf": rc.csrf, "title": "x", "body": "y", "audience": "some"},
                headers=HTML, follow_redirects=False)
    assert r.status_code == 400


def test_operators_cannot_use_regulator_pages(make_client, engine) -> None:  # noqa: ANN001
    a = create_operator_user(engine)
    ac = make_client(a)
    assert ac.get("/admin/messages", headers=HTML).status_code == 403
    r = ac.post("/admin/messages", data={"_csrf": ac.csrf, "title": "x", "body": "y", "audience": "all"},
                follow_redirects=False)
    assert r.status_code == 403

"""B9 feedback from the public form through assignment to processed (and the ticket lookup);
B13 a task with file proof, returned and accepted; every list scoped to its operator."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.accounts_helpers import create_operator_user, create_regulator

HTML = {"accept": "text/html"}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _station(engine, operator_id: str) -> int:  # noqa: ANN001
    with engine.begin() as conn:
        return conn.execute(text(
            "INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, lat_gcj02, "
            "geom, geom_3857, address) VALUES (:o, :s, '情侣路充电站', 1, 50, 113.58, 22.27, "
            "ST_SetSRID(ST_MakePoint(113.575, 22.273), 4326), ST_Transform(ST_SetSRID(ST_MakePoint(113.575, 22.273), 4326), 3857), "
            "'珠海市香洲区情侣中路') RETURNING id"), {"o": operator_id, "s": "FBT" + operator_id}).scalar_one()


def _public_submit(c, data: dict, files=None):  # noqa: ANN001, ANN202
    from tests.accounts_helpers import csrf_from

    token = csrf_from(c, "/feedback")
    return c.post("/feedback", data={"_csrf": token, **data}, files=files, headers=HTML, follow_redirects=False)


def test_feedback_without_operator_assigned_then_processed(make_client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    a, b = create_operator_user(engine), create_operator_user(engine)
    with engine.connect() as conn:  # other tests may have reused feedback ids (TRUNCATE ... RESTART IDENTITY)
        first_event = conn.execute(text("SELECT coalesce(max(id), 0) FROM workflow_events")).scalar()
    citizen = make_client()
    r = _public_submit(citizen, {"kind": "suggestion", "body": "建议在拱北口岸附近增加快充站。", "contact": "13900000000"},
                       files=[("photos", ("p.jpg", JPEG, "image/jpeg"))])
    assert r.status_code in (302, 303), r.text[:300]
    ticket = r.headers["location"].split("/feedback/")[1].split("?")[0]
    page = citizen.get(r.headers["location"], headers=HTML)
    assert ticket in page.text and "已提交" in page.text

    rc = make_client(reg)
    listing = rc.get("/admin/feedback?unassigned=1", headers=HTML).text
    assert ticket in listing
    fid = int(re.search(r'/admin/feedback/(\d+)">' + ticket, listing).group(1))
    ac, bc = make_client(a), make_client(b)
    assert ticket not in ac.get("/backoffice/feedback", headers=HTML).text  # nobody's yet
    r = rc.post(f"/admin/feedback/{fid}/assign", data={"_csrf": rc.csrf, "operator_pk": str(a["operator_pk"])},
                follow_redirects=False)
    assert r.status_code in (302, 303)

    assert ticket in ac.get("/backoffice/feedback", headers=HTML).text
    assert ticket not in bc.get("/backoffice/feedback", headers=HTML).text
    assert bc.get(f"/backoffice/feedback/{fid}", headers=HTML).status_code == 404
    r = bc.post(f"/backoffice/feedback/{fid}/process", data={"_csrf": bc.csrf, "reply": "x"}, follow_redirects=False)
    assert r.status_code == 404
    detail = ac.get(f"/backoffice/feedback/{fid}", headers=HTML)
    assert detail.status_code == 200 and "已分配" in detail.text
    pid = int(re.search(rf"/backoffice/feedback/{fid}/photos/(\d+)", detail.text).group(1))
    photo = ac.get(f"/backoffice/feedback/{fid}/photos/{pid}")
    assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/jpeg")
    assert bc.get(f"/backoffice/feedback/{fid}/photos/{pid}").status_code == 404
    assert "新的建议" in ac.get("/backoffice/messages", headers=HTML).text  # the notification arrived

    r = ac.post(f"/backoffice/feedback/{fid}/process", data={"_csrf": ac.csrf, "reply": "已纳入明年建设计划，感谢建议。"},
                follow_redirects=False)
    assert r.status_code in (302, 303)
    r = ac.post(f"/backoffice/feedback/{fid}/process", data={"_csrf": ac.csrf, "reply": "again"}, headers=HTML,
                follow_redirects=False)
    assert r.status_code == 409
    out = citizen.get(f"/feedback/lookup?ticket={ticket.lower()}", follow_redirects=True, headers=HTML).text
    assert "已处理" in out and "已纳入明年建设计划，感谢建议。" in out
    assert "13900000000" not in out  # the contact is not public
    assert citizen.get("/feedback/ZH20000101AAAAAA", headers=HTML).status_code == 404
    with engine.connect() as conn:
        moves = conn.execute(text("SELECT action FROM workflow_events WHERE workflow = 'feedback' AND entity_id = :i "
                                  "AND id > :first ORDER BY id"), {"i": str(fid), "first": first_event}).scalars().all()
    assert moves == ["submit", "assign", "process"]


def test_feedback_for_a_station_goes_to_its_operator_and_spam_controls(make_client, engine, app) -> None:  # noqa: ANN001
    a = create_operator_user(engine)
    st = _station(engine, a["operator_id"])
    citizen = make_client()
    form = citizen.get(f"/feedback?station={st}", headers=HTML).text
    assert "情侣路充电站" in form
    r = _public_submit(citizen, {"kind": "repair", "body": "2号枪无法启动充电。", "station": str(st)})
    assert r.status_code in (302, 303)
    ac = make_client(a)
    assert "2号枪无法启动充电" in ac.get("/backoffice/feedback", headers=HTML).text
    # not an image
    r = _public_submit(citizen, {"kind": "repair", "body": "图片测试一下", "station": str(st)},
                       files=[("photos", ("x.jpg", b"<script>alert(1)</script>", "image/jpeg"))])
    assert r.status_code == 400
    r = _public_submit(citizen, {"kind": "repair", "body": "短"})
    assert r.status_code == 400
    # rate limit per address (5 an hour; other tests from this address count too)
    codes = [_public_submit(citizen, {"kind": "suggestion", "body": f"第{i}条测试建议内容"}).status_code for i in range(6)]
    assert 429 in codes and all(c in (302, 303) for c in codes[:codes.index(429)]), codes
    assert set(codes[codes.index(429):]) == {429}


def test_task_with_file_proof_returned_then_accepted(make_client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    a, b = create_operator_user(engine), create_operator_user(engine)
    rc = make_client(reg)
    r = rc.post("/admin/tasks", data={"_csrf": rc.csrf, "title": "消防设施自查", "description": "上传灭火器照片与自查表。",
                                      "deadline": "2099-12-31", "audience": "some",
                                      "operators": [str(a["operator_pk"])]}, follow_redirects=False)
    assert r.status_code in (302, 303), r.text[:300]
    tid = int(r.headers["location"].split("/admin/tasks/")[1].split("?")[0])
    ac, bc = make_client(a), make_client(b)
    listing = ac.get("/backoffice/tasks", headers=HTML).text
    assert "消防设施自查" in listing
    assert "消防设施自查" not in bc.get("/backoffice/tasks", headers=HTML).text
    aid = int(re.search(r"/backoffice/tasks/(\d+)", listing).group(1))
    assert bc.get(f"/backoffice/tasks/{aid}", headers=HTML).status_code == 404
    # submitting without proof is refused
    r = ac.post(f"/backoffice/tasks/{aid}/submit", data={"_csrf": ac.csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 400
    r = ac.post(f"/backoffice/tasks/{aid}/proofs", data={"_csrf": ac.csrf},
                files=[("file", ("evil.pdf", b"MZ\x90\x00", "application/pdf"))], headers=HTML, follow_redirects=False)
    assert r.status_code == 400
    r = ac.post(f"/backoffice/tasks/{aid}/proofs", data={"_csrf": ac.csrf},
                files=[("file", ("自查表.pdf", PDF, "application/pdf"))], follow_redirects=False)
    assert r.status_code in (302, 303)
    r = bc.post(f"/backoffice/tasks/{aid}/proofs", data={"_csrf": bc.csrf},
                files=[("file", ("x.pdf", PDF, "application/pdf"))], follow_redirects=False)
    assert r.status_code == 404
    r = ac.post(f"/backoffice/tasks/{aid}/submit", data={"_csrf": ac.csrf, "note": "已完成自查"}, follow_redirects=False)
    assert r.status_code in (302, 303)

    detail = rc.get(f"/admin/tasks/{tid}", headers=HTML).text
    assert "自查表.pdf" in detail and "已完成自查" in detail
    pid = int(re.search(r"/admin/tasks/proofs/(\d+)", detail).group(1))
    f = rc.get(f"/admin/tasks/proofs/{pid}")
    assert f.status_code == 200 and f.content == PDF
    assert bc.get(f"/backoffice/tasks/proofs/{pid}").status_code == 404
    assert ac.get(f"/backoffice/tasks/proofs/{pid}").status_code == 200
    r = rc.post(f"/admin/tasks/assignments/{aid}/return", data={"_csrf": rc.csrf, "reason": ""}, headers=HTML,
                follow_redirects=False)
    assert r.status_code == 400  # a reason is required
    r = rc.post(f"/admin/tasks/assignments/{aid}/return", data={"_csrf": rc.csrf, "reason": "缺少灭火器照片"},
                follow_redirects=False)
    assert r.status_code in (302, 303)
    assert "缺少灭火器照片" in ac.get(f"/backoffice/tasks/{aid}", headers=HTML).text
    r = ac.post(f"/backoffice/tasks/{aid}/proofs", data={"_csrf": ac.csrf},
                files=[("file", ("灭火器.jpg", JPEG, "image/jpeg"))], follow_redirects=False)
    assert r.status_code in (302, 303)
    assert ac.post(f"/backoffice/tasks/{aid}/submit", data={"_csrf": ac.csrf}, follow_redirects=False).status_code in (302, 303)
    assert rc.post(f"/admin/tasks/assignments/{aid}/accept", data={"_csrf": rc.csrf},
                   follow_redirects=False).status_code in (302, 303)
    # accepted: no more uploads, no second accept
    r = ac.post(f"/backoffice/tasks/{aid}/proofs", data={"_csrf": ac.csrf},
                files=[("file", ("x.pdf", PDF, "application/pdf"))], headers=HTML, follow_redirects=False)
    assert r.status_code == 409
    assert rc.post(f"/admin/tasks/assignments/{aid}/accept", data={"_csrf": rc.csrf}, headers=HTML,
                   follow_redirects=False).status_code == 409
    inbox = ac.get("/backoffice/messages", headers=HTML).text
    assert "新的监管任务：消防设施自查" in inbox and "监管任务已通过：消防设施自查" in inbox

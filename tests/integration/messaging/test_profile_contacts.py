"""B6 profile edits (plain fields at once, key fields through review, all audited) and B7 contacts
scoped to their operator; the regulators' searchable address book."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.accounts_helpers import create_operator_user, create_regulator, random_operator_id, valid_credit_code

HTML = {"accept": "text/html"}


def test_profile_edit_and_key_field_review(make_client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    a = create_operator_user(engine)
    ac, rc = make_client(a), make_client(reg)
    page = ac.get("/backoffice/profile?edit=1", headers=HTML)
    assert page.status_code == 200 and 'name="credit_code"' in page.text
    new_code = None
    while new_code is None:
        new_code = valid_credit_code(random_operator_id())
    r = ac.post("/backoffice/profile", data={"_csrf": ac.csrf, "name": "珠海新能源充电有限公司", "credit_code": new_code,
                                             "address": "珠海市横琴新区环岛东路 1 号", "service_tel": "0756-1234567"},
                follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].endswith("ok=p")
    with engine.connect() as conn:
        op = conn.execute(text("SELECT name, credit_code, address FROM operators WHERE id = :i"),
                          {"i": a["operator_pk"]}).one()
        actions = conn.execute(text("SELECT action FROM audit_log WHERE target_type = 'operator' AND target_id = :i "
                                    "ORDER BY id"), {"i": str(a["operator_pk"])}).scalars().all()
    assert op.address == "珠海市横琴新区环岛东路 1 号"  # plain field: at once
    assert op.name != "珠海新能源充电有限公司" and op.credit_code != new_code  # key fields: pending
    assert "profile.update" in actions and "profile.change_requested" in actions
    # a bad credit code is refused with the field marked
    r = ac.post("/backoffice/profile", data={"_csrf": ac.csrf, "credit_code": "123"}, headers=HTML,
                follow_redirects=False)
    assert r.status_code in (400, 409)

    listing = rc.get("/admin/profile-changes", headers=HTML).text
    cid = int(re.search(r'id="change-(\d+)"', listing).group(1))
    assert "珠海新能源充电有限公司" in listing
    r = rc.post(f"/admin/profile-changes/{cid}/approve", data={"_csrf": rc.csrf}, follow_redirects=False)
    assert r.status_code in (302, 303)
    with engine.connect() as conn:
        op = conn.execute(text("SELECT name, credit_code FROM operators WHERE id = :i"), {"i": a["operator_pk"]}).one()
    assert (op.name, op.credit_code) == ("珠海新能源充电有限公司", new_code)
    assert "企业信息变更已通过" in ac.get("/backoffice/messages", headers=HTML).text
    assert rc.post(f"/admin/profile-changes/{cid}/approve", data={"_csrf": rc.csrf}, headers=HTML,
                   follow_redirects=False).status_code == 409
    assert ac.get("/admin/profile-changes", headers=HTML).status_code == 403


def test_contacts_scoped_and_searchable(make_client, engine) -> None:  # noqa: ANN001
    reg = create_regulator(engine)
    a, b = create_operator_user(engine), create_operator_user(engine)
    ac, bc, rc = make_client(a), make_client(b), make_client(reg)
    r = ac.post("/backoffice/contacts", data={"_csrf": ac.csrf, "name": "王运维", "role": "运维主管",
                                              "phone": "13800001111", "email": "wang@example.com"},
                follow_redirects=False)
    assert r.status_code in (302, 303)
    assert ac.post("/backoffice/contacts", data={"_csrf": ac.csrf, "name": "无联系方式"}, headers=HTML,
                   follow_redirects=False).status_code == 400
    with engine.connect() as conn:
        cid = conn.execute(text("SELECT id FROM operator_contacts WHERE operator_pk = :o"),
                           {"o": a["operator_pk"]}).scalar_one()
    assert "王运维" in ac.get("/backoffice/contacts", headers=HTML).text
    assert "王运维" not in bc.get("/backoffice/contacts", headers=HTML).text
    assert bc.get(f"/backoffice/contacts?edit={cid}", headers=HTML).status_code == 404
    assert bc.post(f"/backoffice/contacts/{cid}", data={"_csrf": bc.csrf, "name": "x", "phone": "1"},
                   follow_redirects=False).status_code == 404
    assert bc.post(f"/backoffice/contacts/{cid}/delete", data={"_csrf": bc.csrf},
                   follow_redirects=False).status_code == 404
    r = ac.post(f"/backoffice/contacts/{cid}", data={"_csrf": ac.csrf, "name": "王运维", "role": "运维经理",
                                                     "phone": "13800001111"}, follow_redirects=False)
    assert r.status_code in (302, 303)
    found = rc.get("/admin/contacts?q=运维经理", headers=HTML).text
    assert "王运维" in found and "13800001111" in found
    assert "王运维" not in rc.get("/admin/contacts?q=nobody-matches-this", headers=HTML).text
    assert ac.post(f"/backoffice/contacts/{cid}/delete", data={"_csrf": ac.csrf},
                   follow_redirects=False).status_code in (302, 303)
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action LIKE 'contact.%' AND target_id = :i"),
                         {"i": str(a["operator_pk"])}).scalar()
    assert n == 3

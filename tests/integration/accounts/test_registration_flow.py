"""P8 → review → P9 over HTTP, with the e-mails going through a real SMTP server on loopback."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import text

from tests.accounts_helpers import create_regulator, csrf_from, login, logout, random_operator_id, valid_credit_code

HTML = {"accept": "text/html"}


def register(client, inbox, *, email: str, account_name: str, credit_code: str, phone: str,  # noqa: ANN001
             company: str = "珠海测试充电科技有限公司", password: str = "Str0ng!pass") -> str:
    token = csrf_from(client, "/register")
    r = client.post("/register/code", data={"_csrf": token, "email": email})
    assert r.status_code == 200, r.text
    assert "验证码已发送" in r.text
    code = inbox.code_for(email)
    r = client.post("/register", data={"_csrf": token, "email": email, "code": code, "agree": "1"},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/register/details", r.text[:500]
    page = client.get("/register/details", headers=HTML)
    assert email in page.text
    r = client.post("/register/details", data={
        "_csrf": token, "company_name": company, "credit_code": credit_code, "address": "珠海市香洲区情侣路1号",
        "legal_representative": "王五", "contact_name": "赵六", "phone": phone, "account_name": account_name,
        "password": password, "password2": password})
    assert r.status_code == 200, r.text[:2000]
    return r.text


def test_register_review_login_with_real_mail(mail_client, inbox, engine) -> None:  # noqa: ANN001
    op_id = random_operator_id()
    credit = valid_credit_code(op_id)
    email = f"ops-{secrets.token_hex(3)}@example.com"
    account = f"zh_{secrets.token_hex(3)}"
    phone = "137" + "".join(secrets.choice("0123456789") for _ in range(8))
    done = register(mail_client, inbox, email=email, account_name=account, credit_code=credit, phone=phone)
    assert account in done and op_id in done and "注册申请已提交" in done

    # the code is single-use: the details page now sends the browser back to step 1
    r = mail_client.get("/register/details", headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303)

    # the operator can log in (by phone), sees only the overview, and other pages refuse
    login(mail_client, phone, "Str0ng!pass")
    page = mail_client.get("/backoffice/", headers=HTML)
    assert page.status_code == 200 and "审核中" in page.text
    assert "/backoffice/stations" not in page.text
    assert mail_client.get("/backoffice/registration", headers=HTML).status_code == 200
    logout(mail_client)

    # a regulator rejects with a reason; the operator is told by mail
    reg = create_regulator(engine)
    login(mail_client, reg["account_name"])
    listing = mail_client.get("/admin/registrations", headers=HTML)
    assert "珠海测试充电科技有限公司" in listing.text
    with engine.connect() as conn:
        pk = conn.execute(text("SELECT id FROM operators WHERE operator_id = :o"), {"o": op_id}).scalar_one()
    token = csrf_from(mail_client, f"/admin/registrations/{pk}")
    r = mail_client.post(f"/admin/registrations/{pk}/reject", data={"_csrf": token, "reason": ""})
    assert r.status_code == 400  # a rejection needs a reason
    r = mail_client.post(f"/admin/registrations/{pk}/reject", data={"_csrf": token, "reason": "营业执照地址与填写不一致"},
                         follow_redirects=False)
    assert r.status_code in (302, 303)
    assert "营业执照地址与填写不一致" in inbox.last_to(email).get_content()
    r = mail_client.post(f"/admin/registrations/{pk}/approve", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code == 409  # not from "rejected"
    logout(mail_client)

    # the operator sees the reason and resubmits through "modify registration"
    login(mail_client, account, "Str0ng!pass")
    page = mail_client.get("/backoffice/", headers=HTML)
    assert "营业执照地址与填写不一致" in page.text and "/backoffice/registration" in page.text
    token = csrf_from(mail_client, "/backoffice/registration")
    r = mail_client.post("/backoffice/registration", data={
        "_csrf": token, "company_name": "珠海测试充电科技有限公司", "credit_code": credit, "address": "珠海市香洲区情侣中路2号",
        "legal_representative": "王五", "contact_name": "赵六", "phone": phone}, follow_redirects=False)
    assert r.status_code in (302, 303), r.text[:1000]
    assert "审核中" in mail_client.get("/backoffice/", headers=HTML).text
    logout(mail_client)

    # approved: the operator gets a mail and the full menu
    login(mail_client, reg["account_name"])
    token = csrf_from(mail_client, f"/admin/registrations/{pk}")
    r = mail_client.post(f"/admin/registrations/{pk}/approve", data={"_csrf": token}, follow_redirects=False)
    assert r.status_code in (302, 303)
    assert "审核通过" in inbox.last_to(email)["Subject"]
    detail = mail_client.get(f"/admin/registrations/{pk}", headers=HTML).text
    assert detail.count("<li>") >= 4  # submit, reject, resubmit, approve
    logout(mail_client)
    login(mail_client, account, "Str0ng!pass")
    page = mail_client.get("/backoffice/", headers=HTML)
    assert "注册成功" in page.text and "/backoffice/stations" in page.text
    with engine.connect() as conn:
        row = conn.execute(text("SELECT registration_state, address, reviewed_by FROM operators WHERE id = :pk"),
                           {"pk": pk}).one()
    assert row.registration_state == "approved" and row.address == "珠海市香洲区情侣中路2号" and row.reviewed_by == reg["user_id"]


def test_registration_form_validation(mail_client, inbox) -> None:  # noqa: ANN001
    email = f"v-{secrets.token_hex(3)}@example.com"
    token = csrf_from(mail_client, "/register")
    mail_client.post("/register/code", data={"_csrf": token, "email": email})
    # without the agreement there is no step 2
    r = mail_client.post("/register", data={"_csrf": token, "email": email, "code": inbox.code_for(email)},
                         follow_redirects=False)
    assert r.status_code == 400 and "协议" in r.text
    r = mail_client.post("/register", data={"_csrf": token, "email": email, "code": inbox.code_for(email), "agree": "1"},
                         follow_redirects=False)
    assert r.status_code == 303
    bad = valid_credit_code(random_operator_id())
    bad = bad[:17] + ("0" if bad[17] != "0" else "1")
    r = mail_client.post("/register/details", data={
        "_csrf": token, "company_name": "<b>X</b> 公司", "credit_code": bad, "address": "珠海市", "legal_representative": "王五",
        "contact_name": "赵六", "phone": "12345678901", "account_name": "9bad", "password": "weak", "password2": "weak"})
    assert r.status_code == 400
    for needle in ("校验位", "手机号", "账户名", "密码"):
        assert needle in r.text, needle
    assert "&lt;b&gt;X&lt;/b&gt; 公司" in r.text and "<b>X</b>" not in r.text


def test_step2_needs_a_verified_email_of_this_session(mail_client, inbox, app) -> None:  # noqa: ANN001
    from litestar.testing import TestClient

    email = f"s-{secrets.token_hex(3)}@example.com"
    token = csrf_from(mail_client, "/register")
    mail_client.post("/register/code", data={"_csrf": token, "email": email})
    code = inbox.code_for(email)
    # another browser session cannot use this code
    with TestClient(mail_client.app, base_url="http://127.0.0.1:8000") as other:
        t2 = csrf_from(other, "/register")
        r = other.post("/register", data={"_csrf": t2, "email": email, "code": code, "agree": "1"}, follow_redirects=False)
        assert r.status_code == 400
        assert other.get("/register/details", headers=HTML, follow_redirects=False).status_code in (302, 303)


def test_wrong_codes_over_http_count_and_exhaust(mail_client, inbox, engine) -> None:  # noqa: ANN001
    email = f"w-{secrets.token_hex(3)}@example.com"
    token = csrf_from(mail_client, "/register")
    mail_client.post("/register/code", data={"_csrf": token, "email": email})
    code = inbox.code_for(email)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        r = mail_client.post("/register", data={"_csrf": token, "email": email, "code": wrong, "agree": "1"})
        assert r.status_code == 400
    with engine.connect() as conn:
        assert conn.execute(text("SELECT attempts FROM verification_codes WHERE recipient = :r"), {"r": email}).scalar() == 5
    r = mail_client.post("/register", data={"_csrf": token, "email": email, "code": code, "agree": "1"},
                         follow_redirects=False)
    assert r.status_code == 400 and "重新获取" in r.text
    # and a resend within the minute is refused with a clear message
    r = mail_client.post("/register/code", data={"_csrf": token, "email": email})
    assert r.status_code == 429 and "秒后" in r.text


def test_mail_failure_is_reported(db_url, database, tmp_path) -> None:  # noqa: ANN001
    import socket

    from litestar.testing import TestClient

    from portal_site.app import create_app
    from services.settings import AppSettings, DatabaseSettings, MailSettings, Settings

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(db=DatabaseSettings(database_url=db_url), app=AppSettings(env="test", upload_dir=tmp_path),
                        mail=MailSettings(smtp_host="127.0.0.1", smtp_port=port))
    with TestClient(create_app(settings, database=database)) as c:
        token = csrf_from(c, "/register")
        email = f"f-{secrets.token_hex(3)}@example.com"
        r = c.post("/register/code", data={"_csrf": token, "email": email})
    assert r.status_code == 503 and "发送失败" in r.text
    with database.engine.connect() as conn:
        err = conn.execute(text("SELECT error FROM outbox WHERE recipient = :r"), {"r": email}).scalar()
    assert err

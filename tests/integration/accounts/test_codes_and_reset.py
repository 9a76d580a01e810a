"""One-time codes: expiry, attempt limit, resend interval; forgot password by SMS (outbox)."""

from __future__ import annotations

import re
import secrets

import pytest
from sqlalchemy import text

from services.accounts.service import issue_code, verify_code
from services.errors import BadRequest, RateLimited
from services.settings import AccountSettings
from tests.accounts_helpers import create_operator_user, csrf_from, login

HTML = {"accept": "text/html"}


def _recipient() -> str:
    return f"c-{secrets.token_hex(4)}@example.com"


def test_code_expires_after_ten_minutes(engine) -> None:  # noqa: ANN001
    to = _recipient()
    with engine.begin() as conn:
        code = issue_code(conn, "register", "email", to)
        ttl = conn.execute(text("SELECT extract(epoch FROM expires_at - created_at) FROM verification_codes "
                                "WHERE recipient = :r"), {"r": to}).scalar_one()
        assert 599 <= float(ttl) <= 601
        conn.execute(text("UPDATE verification_codes SET expires_at = now() - interval '1 second' WHERE recipient = :r"),
                     {"r": to})
    with engine.begin() as conn, pytest.raises(BadRequest, match="过期"):
        verify_code(conn, "register", to, code)


def test_five_attempts_then_even_the_right_code_fails(engine) -> None:  # noqa: ANN001
    to = _recipient()
    with engine.begin() as conn:
        code = issue_code(conn, "register", "email", to)
    wrong = "000000" if code != "000000" else "111111"
    for i in range(5):
        with engine.begin() as conn, pytest.raises(BadRequest):
            verify_code(conn, "register", to, wrong)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT attempts FROM verification_codes WHERE recipient = :r"), {"r": to}).scalar() == 5
    with engine.begin() as conn, pytest.raises(BadRequest, match="过多"):
        verify_code(conn, "register", to, code)


def test_resend_once_a_minute(engine) -> None:  # noqa: ANN001
    to = _recipient()
    with engine.begin() as conn:
        issue_code(conn, "register", "email", to)
    with engine.begin() as conn, pytest.raises(RateLimited):
        issue_code(conn, "register", "email", to)
    with engine.begin() as conn:
        conn.execute(text("UPDATE verification_codes SET created_at = created_at - interval '61 seconds' WHERE recipient = :r"),
                     {"r": to})
        first = issue_code(conn, "register", "email", to)
    # a new code retires the old one
    with engine.begin() as conn:
        n = conn.execute(text("SELECT count(*) FROM verification_codes WHERE recipient = :r AND consumed_at IS NULL"),
                         {"r": to}).scalar()
    assert n == 1 and first


def test_settings_drive_the_limits(engine) -> None:  # noqa: ANN001
    to = _recipient()
    s = AccountSettings(code_attempts=2, code_resend_s=0)
    with engine.begin() as conn:
        code = issue_code(conn, "register", "email", to, s)
    for _ in range(2):
        with engine.begin() as conn, pytest.raises(BadRequest):
            verify_code(conn, "register", to, "999999" if code != "999999" else "888888", s)
    with engine.begin() as conn, pytest.raises(BadRequest):
        verify_code(conn, "register", to, code, s)


def _sms_code(engine, phone: str) -> str | None:  # noqa: ANN001
    with engine.connect() as conn:
        body = conn.execute(text("SELECT body FROM outbox WHERE channel = 'sms' AND recipient = :p ORDER BY id DESC LIMIT 1"),
                            {"p": phone}).scalar()
    m = re.search(r"\b(\d{6})\b", body or "")
    return m.group(1) if m else None


def test_forgot_password_by_sms_code(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    with engine.connect() as conn:
        phone = conn.execute(text("SELECT phone FROM users WHERE id = :id"), {"id": op["user_id"]}).scalar_one()
    token = csrf_from(client, "/forgot-password")
    r = client.post("/forgot-password/code", data={"_csrf": token, "phone": phone})
    assert r.status_code == 200 and "如果该手机号已注册" in r.text
    code = _sms_code(engine, phone)
    assert code
    # an immediate second request is refused (once a minute)
    r = client.post("/forgot-password/code", data={"_csrf": token, "phone": phone})
    assert r.status_code == 429
    # the passwords must match and be strong
    r = client.post("/forgot-password", data={"_csrf": token, "phone": phone, "code": code, "password": "NewPassw0rd!",
                                              "password2": "NewPassw0rd?"})
    assert r.status_code == 400
    r = client.post("/forgot-password", data={"_csrf": token, "phone": phone, "code": code, "password": "NewPassw0rd!",
                                              "password2": "NewPassw0rd!"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # the code is single use; the old password no longer works, the new one does
    r = client.post("/forgot-password", data={"_csrf": csrf_from(client, "/forgot-password"), "phone": phone, "code": code,
                                              "password": "Other0ne!pass", "password2": "Other0ne!pass"})
    assert r.status_code == 400
    token = csrf_from(client, "/login")
    r = client.post("/login", data={"_csrf": token, "login": op["account_name"], "password": op["password"]})
    assert r.status_code == 400
    login(client, phone, "NewPassw0rd!")


def test_forgot_password_does_not_reveal_unknown_phones(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    with engine.connect() as conn:
        known = conn.execute(text("SELECT phone FROM users WHERE id = :id"), {"id": op["user_id"]}).scalar_one()
    unknown = "166" + "".join(secrets.choice("0123456789") for _ in range(8))
    token = csrf_from(client, "/forgot-password")
    a = client.post("/forgot-password/code", data={"_csrf": token, "phone": known})
    b = client.post("/forgot-password/code", data={"_csrf": token, "phone": unknown})
    assert a.status_code == b.status_code == 200
    strip = lambda html: html.replace(known, "PHONE").replace(unknown, "PHONE")  # noqa: E731
    assert strip(a.text) == strip(b.text)
    assert _sms_code(engine, unknown) is None  # nothing was sent

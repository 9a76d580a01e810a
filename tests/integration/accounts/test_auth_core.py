"""Sessions, login, CSRF, lockout and guards over HTTP against a real PostGIS."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from tests.accounts_helpers import DEFAULT_PASSWORD, create_operator_user, create_regulator, csrf_from, login

HTML = {"accept": "text/html"}


def _cookie(client):  # noqa: ANN001, ANN202
    return client.cookies.get("zh_session")


def test_login_by_account_name_and_phone_and_session_rotation(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    client.get("/login", headers=HTML)
    before = _cookie(client)
    assert before
    login(client, op["account_name"])
    after = _cookie(client)
    assert after and after != before, "the session id must change at login (session fixation)"
    with engine.connect() as conn:
        phone = conn.execute(text("SELECT phone FROM users WHERE id = :id"), {"id": op["user_id"]}).scalar_one()
        n = conn.execute(text("SELECT count(*) FROM user_sessions WHERE user_id = :id"), {"id": op["user_id"]}).scalar()
    assert n == 1
    # log out, then in by phone
    r = client.post("/logout", data={"_csrf": csrf_from(client, "/logout")}, follow_redirects=False)
    assert r.status_code in (302, 303)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM user_sessions WHERE user_id = :id"), {"id": op["user_id"]}).scalar() == 0
    login(client, phone)


def test_old_cookie_is_useless_after_logout(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    login(client, op["account_name"])
    stolen = _cookie(client)
    token = csrf_from(client, "/logout")
    client.post("/logout", data={"_csrf": token}, follow_redirects=False)
    client.cookies.clear()
    client.cookies.set("zh_session", stolen)
    r = client.get("/backoffice/", headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")


def test_csrf_required_on_posts(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    client.get("/login", headers=HTML)
    r = client.post("/login", data={"login": op["account_name"], "password": DEFAULT_PASSWORD}, follow_redirects=False)
    assert r.status_code == 403
    r = client.post("/login", data={"login": op["account_name"], "password": DEFAULT_PASSWORD, "_csrf": "forged"},
                    follow_redirects=False)
    assert r.status_code == 403
    # a token from another session does not work either
    from litestar.testing import TestClient

    with TestClient(client.app, base_url="http://127.0.0.1:8000") as other:
        foreign = csrf_from(other, "/login")
    r = client.post("/login", data={"login": op["account_name"], "password": DEFAULT_PASSWORD, "_csrf": foreign},
                    follow_redirects=False)
    assert r.status_code == 403
    # the header works as well as the field
    token = csrf_from(client, "/login")
    r = client.post("/login", data={"login": op["account_name"], "password": DEFAULT_PASSWORD},
                    headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert r.status_code in (302, 303)


def test_guards_redirect_anonymous_and_refuse_wrong_roles(client, engine) -> None:  # noqa: ANN001
    r = client.get("/backoffice/", headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    r = client.get("/admin/registrations", headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")
    op = create_operator_user(engine)
    login(client, op["account_name"])
    assert client.get("/admin/registrations", headers=HTML).status_code == 403
    reg = create_regulator(engine)
    client.cookies.clear()
    login(client, reg["account_name"])
    assert client.get("/admin/registrations", headers=HTML).status_code == 200


def test_machine_paths_get_no_session_cookie(client) -> None:  # noqa: ANN001
    for path in ("/healthz", "/static/site.css"):
        r = client.get(path)
        assert "zh_session" not in r.headers.get("set-cookie", ""), path
    r = client.get("/login", headers=HTML)
    assert "zh_session=" in r.headers.get("set-cookie", "")
    assert "HttpOnly" in r.headers["set-cookie"] and "SameSite=lax" in r.headers["set-cookie"]


def test_csrf_exempt_prefixes_are_not_checked(client) -> None:  # noqa: ANN001
    # /api/ and /evcs/ authenticate otherwise (keys, protocol signatures): no 403 from the CSRF check
    for path in ("/api/v1/nothing-here", "/evcs/v20160701/nothing-here"):
        r = client.post(path, json={})
        assert r.status_code != 403 or "CSRF" not in r.text, path


def test_session_cookie_signature_is_checked(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    login(client, op["account_name"])
    value = client.cookies.get("zh_session")
    sid, _, sig = value.rpartition(".")
    client.cookies.set("zh_session", f"{sid}.{'A' * len(sig)}")
    r = client.get("/backoffice/", headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303)

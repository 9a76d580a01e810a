"""Per-client-IP limits on login attempts and on code sending, kept in the database (``auth_rate``).

Each test client here comes from its own made-up IP address (an ASGI wrapper sets the scope's
client), so the limits of one test never touch another.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import create_engine, text

from services.accounts import ratelimit
from services.db import Database
from tests.accounts_helpers import create_operator_user, csrf_from

HTML = {"accept": "text/html"}


def _ip() -> str:
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


class FromIP:
    """The app as seen from ``ip`` (what a proxy-aware server puts into the ASGI scope)."""

    def __init__(self, app: Any, ip: str) -> None:
        self._app = app
        self.ip = ip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "client": (self.ip, 40000)}
        await self._app(scope, receive, send)


@contextmanager
def client_from(app: Any, ip: str) -> Iterator[TestClient]:
    with TestClient(FromIP(app, ip), base_url="http://127.0.0.1:8000") as c:  # type: ignore[arg-type]
        yield c


def _clear_of_window_end(engine: Any, window_s: int, margin_s: int = 20) -> None:
    """Fixed windows: start the test well inside one so it does not straddle a reset."""
    with engine.connect() as conn:
        now = conn.execute(text("SELECT extract(epoch FROM clock_timestamp())")).scalar()
    left = window_s - float(now) % window_s
    if left < margin_s:
        time.sleep(left + 0.5)


def _login(c: TestClient, login: str, password: str) -> Any:
    token = csrf_from(c, "/login")
    return c.post("/login", data={"_csrf": token, "login": login, "password": password}, headers=HTML,
                  follow_redirects=False)


def test_login_is_limited_per_ip_with_429_and_retry_after(app, engine) -> None:  # noqa: ANN001
    limit = ratelimit.limit_for("login", app.state["settings"])
    op = create_operator_user(engine)
    _clear_of_window_end(engine, limit.window_s)
    with client_from(app, _ip()) as c:
        for i in range(limit.hits):  # different (unknown) accounts: the per-account lockout never triggers
            r = _login(c, f"nobody_{secrets.token_hex(3)}", "Wrong!pass1")
            assert r.status_code == 400, (i, r.status_code)
        r = _login(c, f"nobody_{secrets.token_hex(3)}", "Wrong!pass1")
        assert r.status_code == 429
        assert 1 <= int(r.headers["retry-after"]) <= limit.window_s
        assert "登录尝试过于频繁" in r.text and "too many login attempts" in r.text
        # while limited, even the right password is refused (before it is checked)
        r = _login(c, op["account_name"], op["password"])
        assert r.status_code == 429 and "retry-after" in r.headers
    with client_from(app, _ip()) as other:  # another address is not affected
        r = _login(other, op["account_name"], op["password"])
        assert r.status_code in (302, 303)


def test_successful_logins_do_not_use_up_the_limit(app, engine) -> None:  # noqa: ANN001
    limit = ratelimit.limit_for("login", app.state["settings"])
    op = create_operator_user(engine)
    _clear_of_window_end(engine, limit.window_s)
    ip = _ip()
    for _ in range(limit.hits + 2):
        with client_from(app, ip) as c:
            assert _login(c, op["account_name"], op["password"]).status_code in (302, 303)
    with engine.connect() as conn:
        hits = conn.execute(text("SELECT coalesce(sum(hits), 0) FROM auth_rate WHERE bucket = :b"),
                            {"b": f"login:{ip}"}).scalar()
    assert hits == 0


def test_code_sending_is_limited_per_ip(mail_app, engine, inbox) -> None:  # noqa: ANN001
    limit = ratelimit.limit_for("code", mail_app.state["settings"])
    _clear_of_window_end(engine, limit.window_s)
    ip = _ip()
    with client_from(mail_app, ip) as c:
        token = csrf_from(c, "/register")
        for i in range(limit.hits - 1):  # each to a new address: the per-recipient minute never applies
            r = c.post("/register/code", data={"_csrf": token, "email": f"rl{i}-{secrets.token_hex(3)}@example.com"})
            assert r.status_code == 200, (i, r.text[:300])
        r = c.post("/forgot-password/code", data={"_csrf": token, "phone": "13912345678"})
        assert r.status_code == 200  # the two endpoints share the IP's budget ...
        to = f"rl-over-{secrets.token_hex(3)}@example.com"
        r = c.post("/register/code", data={"_csrf": token, "email": to})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= limit.window_s
        assert "获取验证码过于频繁" in r.text
        r = c.post("/forgot-password/code", data={"_csrf": token, "phone": "13912345679"})
        assert r.status_code == 429 and "retry-after" in r.headers
    with engine.connect() as conn:  # refused requests issue no code and send nothing
        assert conn.execute(text("SELECT count(*) FROM verification_codes WHERE recipient IN (:e, '13912345679')"),
                            {"e": to}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM outbox WHERE recipient = :e"), {"e": to}).scalar() == 0
    with client_from(mail_app, _ip()) as other:
        token = csrf_from(other, "/register")
        r = other.post("/register/code", data={"_csrf": token, "email": to})
        assert r.status_code == 200


def test_the_per_recipient_resend_interval_also_answers_retry_after(mail_app, inbox) -> None:  # noqa: ANN001
    with client_from(mail_app, _ip()) as c:
        token = csrf_from(c, "/register")
        to = f"again-{secrets.token_hex(3)}@example.com"
        assert c.post("/register/code", data={"_csrf": token, "email": to}).status_code == 200
        r = c.post("/register/code", data={"_csrf": token, "email": to})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 60


def test_the_windows_are_shared_by_processes(db_url, engine) -> None:  # noqa: ANN001
    """Two engines (as two app processes would have) count into the same window."""
    small = ratelimit.Limit("login", 3, 3600)
    _clear_of_window_end(engine, small.window_s, margin_s=5)
    ip = _ip()
    a, b = Database(create_engine(db_url, pool_size=1)), Database(create_engine(db_url, pool_size=1))
    try:
        decisions = []
        for db in (a, b, a, b):
            with db.session() as s:
                decisions.append(ratelimit.hit(s, small, ip))
        assert [d.hits for d in decisions] == [1, 2, 3, 4]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert all(1 <= d.retry_after <= 3600 for d in decisions)
    finally:
        a.dispose()
        b.dispose()

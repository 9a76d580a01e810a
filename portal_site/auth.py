"""Who is asking: sessions, guards and CSRF. The contract the other page modules use.

Session
    ``SessionMiddleware`` (installed by ``create_app``) reads the cookie ``zh_session`` (signed
    with ``settings.app.secret_key``, HttpOnly, SameSite=Lax, Secure in production or when the public URL
    is https).
    Every visitor has one: anonymous visitors get a random secret (nothing is stored), a login
    stores the SHA-256 of a *new* secret in ``user_sessions`` (the id rotates at login, against
    session fixation). The middleware sets

    - ``request.state.user``: a frozen :class:`CurrentUser` ``(id, account_name, role,
      operator_pk, operator_id, operator_name, approved)`` or ``None``;
    - ``request.state.csrf``: the CSRF token of this session.

    Handlers usually call :func:`current_user(request) <current_user>` (never None behind a guard).

Guards (``guards=[...]`` on a handler, router or controller)
    ``require_login``, ``require_operator`` (an operator user whose registration is APPROVED),
    ``require_operator_any`` (any operator user: the B1 overview), ``require_regulator``
    (regulator or admin), ``require_admin``. Anonymous → ``NotAuthorizedException`` (HTML
    requests are redirected to ``/login?next=…``); wrong role → ``PermissionDeniedException`` (403).
    Guards check the role only: each handler must still scope its queries to
    ``user.operator_id`` / ``user.operator_pk`` and answer 404 for another operator's ids.
    Every /backoffice/ route except the overview must refuse unapproved operators
    (``require_operator``); a deliberate exception says so with ``opt={"open_before_approval": True}``
    (``tests/integration/accounts/test_access.py`` walks every route and checks all of this).

CSRF
    Every POST/PUT/PATCH/DELETE outside ``/api/`` and ``/evcs/`` must carry the session's token in
    the form field ``_csrf`` or the header ``X-CSRF-Token``; otherwise 403. Templates use
    ``{{ csrf_field() }}`` inside forms or ``{{ csrf_token() }}``; ``base.html`` sets
    ``hx-headers`` on ``<body>`` so htmx requests carry it. JSON ``fetch`` calls add the header.

Login / logout (used by ``portal_site.routes.accounts``)
    ``login_user(request, user) -> Cookie`` (a user id or an object with ``.id``) creates the
    server-side session with a fresh id;
    ``logout(request) -> Cookie`` deletes it. Attach the cookie to the response.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

import anyio.to_thread
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from markupsafe import Markup, escape
from jinja2 import pass_context

from portal_site.routing import is_public_read
from services.accounts.service import CurrentUser, create_session, delete_session, load_current_user
from services.errors import DatabaseUnavailable

__all__ = [
    "COOKIE_NAME",
    "CSRF_EXEMPT_PREFIXES",
    "CurrentUser",
    "SessionMiddleware",
    "csrf_token_for",
    "current_user",
    "login_user",
    "logout",
    "register_templates",
    "require_admin",
    "require_login",
    "require_operator",
    "require_operator_any",
    "require_regulator",
    "session_secret",
]

COOKIE_NAME = "zh_session"
CSRF_FIELD = "_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_EXEMPT_PREFIXES = ("/api/", "/evcs/")
# No session at all here: machine endpoints, cacheable responses (tiles answer 304 without the database).
NO_SESSION_PREFIXES = ("/static/", "/tiles/", "/evcs/", "/healthz")
# A session is read when the cookie is there, but never started (no Set-Cookie on API responses).
NO_NEW_SESSION_PREFIXES = ("/api/",)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


# --- signing ---------------------------------------------------------------------------------
def _mac(secret_key: str, purpose: str, value: str) -> str:
    digest = hmac.new(secret_key.encode(), f"{purpose}|{value}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_sid(secret_key: str, sid: str) -> str:
    return f"{sid}.{_mac(secret_key, 'sid', sid)}"


def unsign_sid(secret_key: str, value: str | None) -> str | None:
    if not value or "." not in value:
        return None
    sid, _, sig = value.rpartition(".")
    return sid if sid and hmac.compare_digest(sig, _mac(secret_key, "sid", sid)) else None


def csrf_token_for(secret_key: str, sid: str) -> str:
    """The CSRF token of a session: an HMAC of its secret, so it changes whenever the session does."""
    return _mac(secret_key, "csrf", sid)


def _settings(scope_or_conn: Any) -> Any:
    app = scope_or_conn["app"] if isinstance(scope_or_conn, dict) else scope_or_conn.app
    return app.state["settings"]


def _cookie(settings: Any, sid: str | None) -> Cookie:
    # Secure in production whatever the public URL says (TLS ends at the balancer), and whenever we are https
    secure = settings.app.env == "prod" or str(settings.app.public_url).startswith("https://")
    if sid is None:
        return Cookie(key=COOKIE_NAME, value="", max_age=0, expires=0, path="/", httponly=True, samesite="lax",
                      secure=secure)
    return Cookie(key=COOKIE_NAME, value=sign_sid(settings.app.secret_key, sid), path="/", httponly=True,
                  samesite="lax", secure=secure, max_age=settings.accounts.session_days * 86400)


# --- the middleware ----------------------------------------------------------------------------
class SessionMiddleware(ASGIMiddleware):
    """Loads ``request.state.user`` and enforces CSRF on state-changing requests."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] != "http" or scope["path"].startswith(NO_SESSION_PREFIXES):
            await next_app(scope, receive, send)
            return
        settings = _settings(scope)
        db = scope["app"].state["db"]
        request: Request = Request(scope, receive)
        sid = unsign_sid(settings.app.secret_key, request.cookies.get(COOKIE_NAME))
        new_cookie: Cookie | None = None
        user: CurrentUser | None = None
        if sid is None:
            sid = secrets.token_urlsafe(32)
            if not scope["path"].startswith(NO_NEW_SESSION_PREFIXES):
                new_cookie = _cookie(settings, sid)
        else:
            def _load() -> CurrentUser | None:
                with db.session() as s:
                    return load_current_user(s, sid)

            try:
                user = await anyio.to_thread.run_sync(_load)
            except DatabaseUnavailable:
                # sessions live on the primary; while it is down and a replica serves the public
                # reads, answer those as to a visitor rather than not at all
                router = scope["app"].state.get("router")
                if not (router is not None and router.replica_usable()
                        and is_public_read(scope["method"], scope["path"])):
                    raise
        state = scope.setdefault("state", {})
        state["user"] = user
        state["sid"] = sid
        state["csrf"] = csrf_token_for(settings.app.secret_key, sid)

        if scope["method"] not in SAFE_METHODS and not scope["path"].startswith(CSRF_EXEMPT_PREFIXES):
            sent = request.headers.get(CSRF_HEADER)
            if not sent:
                content_type = request.headers.get("content-type", "")
                if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
                    form = await request.form()
                    sent = form.get(CSRF_FIELD)
            # without a valid cookie the session secret is brand new, so no token can match it
            if not sent or not hmac.compare_digest(str(sent), state["csrf"]):
                raise PermissionDeniedException(
                    "表单已过期或缺少安全令牌，请刷新页面后重试 / missing or stale CSRF token: reload the page and retry")

        if new_cookie is None:
            await next_app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                # a handler that sets the session cookie itself (login/logout) wins
                if not any(v.startswith(f"{COOKIE_NAME}=") for v in headers.getall("set-cookie", [])):
                    headers.add("set-cookie", new_cookie.to_header(header=""))
            await send(message)

        await next_app(scope, receive, send_with_cookie)


# --- access from handlers ----------------------------------------------------------------------
def current_user(connection: ASGIConnection) -> CurrentUser | None:
    return connection.scope.get("state", {}).get("user")


def session_secret(connection: ASGIConnection) -> str:
    return connection.scope.get("state", {}).get("sid", "")


def login_user(request: Request, user: int | Any) -> Cookie:
    """Start a session for ``user`` (a user id, or anything with ``.id``) with a fresh session id
    (the old one, if any, is deleted: no session fixation). Attach the returned cookie."""
    user_id = user if isinstance(user, int) else user.id
    settings = _settings(request)
    db = request.app.state["db"]
    old = session_secret(request)
    with db.session() as s:
        if old:
            delete_session(s, old)
        sid = create_session(s, user_id, days=settings.accounts.session_days, ip=request.client.host if request.client else None,
                             user_agent=request.headers.get("user-agent"))
    with db.session() as s:
        current = load_current_user(s, sid)
    state = request.scope.setdefault("state", {})
    state.update(user=current, sid=sid, csrf=csrf_token_for(settings.app.secret_key, sid))
    return _cookie(settings, sid)


def logout(request: Request) -> Cookie:
    """End the session; the returned cookie starts a new anonymous one."""
    settings = _settings(request)
    old = session_secret(request)
    if old:
        with request.app.state["db"].session() as s:
            delete_session(s, old)
    sid = secrets.token_urlsafe(32)
    state = request.scope.setdefault("state", {})
    state.update(user=None, sid=sid, csrf=csrf_token_for(settings.app.secret_key, sid))
    return _cookie(settings, sid)


# --- guards ------------------------------------------------------------------------------------
def _need_user(connection: ASGIConnection) -> CurrentUser:
    user = current_user(connection)
    if user is None:
        raise NotAuthorizedException("请先登录 / please log in")
    return user


def require_login(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    _need_user(connection)


def require_operator_any(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    """Any operator user, approved or not (the B1 overview)."""
    if not _need_user(connection).is_operator:
        raise PermissionDeniedException("仅限运营商用户 / operator users only")


def require_operator(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    """An operator user whose company's registration is approved."""
    user = _need_user(connection)
    if not user.is_operator:
        raise PermissionDeniedException("仅限运营商用户 / operator users only")
    if not user.approved:
        raise PermissionDeniedException("注册审核通过后才能使用此功能 / available once the registration is approved")


def require_regulator(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    if not _need_user(connection).is_regulator:
        raise PermissionDeniedException("仅限监管人员 / regulators only")


def require_admin(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    if not _need_user(connection).is_admin:
        raise PermissionDeniedException("仅限管理员 / administrators only")


# --- templates ---------------------------------------------------------------------------------
@pass_context
def _csrf_token(ctx: Any) -> str:
    request = ctx.get("request")
    return request.scope.get("state", {}).get("csrf", "") if request is not None else ""


@pass_context
def _csrf_field(ctx: Any) -> Markup:
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, escape(_csrf_token(ctx)))


def register_templates(env: Any) -> None:
    """Jinja globals: ``csrf_token()``, ``csrf_field()`` and ``backoffice_menu(request)``."""
    from portal_site.backoffice_menu import backoffice_menu

    env.globals["csrf_token"] = _csrf_token
    env.globals["csrf_field"] = _csrf_field
    env.globals["backoffice_menu"] = backoffice_menu

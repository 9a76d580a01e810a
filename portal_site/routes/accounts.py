"""Log in, log out, register (P8, three steps), forgot password, and the dev outbox page.

Forms are plain HTML posts with the CSRF field; errors re-render the form with the message and
the values typed (escaped by Jinja's autoescape).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.response import Redirect, Template

from portal_site import auth
from services.accounts import registration as reg
from services.accounts.messaging import messenger_for
from services.accounts.service import authenticate
from services.db import Database
from services.errors import AppError
from services.settings import Settings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _safe_next(value: str | None, default: str) -> str:
    """Only local paths: ``/x`` but never ``//host`` or ``/\\host``."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return default


def _home_of(user: auth.CurrentUser | None) -> str:
    if user is None:
        return "/"
    return "/admin/" if user.is_regulator else "/backoffice/"


def _page(name: str, status: int = 200, **context: Any) -> Template:
    return Template(template_name=name, context=context, status_code=status)


# --- login / logout ----------------------------------------------------------------------------
@get("/login", sync_to_thread=False, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Template | Redirect:  # noqa: A002
    user = auth.current_user(request)
    if user is not None:
        return Redirect(_safe_next(next, _home_of(user)))
    return _page("accounts/login.html", next=_safe_next(next, ""), login="")


@post("/login", sync_to_thread=True, include_in_schema=False)
def login_submit(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    login = (data.get("login") or "").strip()
    password = data.get("password") or ""
    nxt = _safe_next(data.get("next"), "")
    try:
        with db.session() as s:
            user_id = authenticate(s, login, password, settings.accounts)
    except AppError as exc:
        return _page("accounts/login.html", status=400, error=exc.message, login=login, next=nxt)
    cookie = auth.login_user(request, user_id)
    return Redirect(nxt or _home_of(auth.current_user(request)), cookies=[cookie])


@post("/logout", sync_to_thread=True, include_in_schema=False)
def logout_submit(request: Request, db: Database) -> Redirect:
    return Redirect("/", cookies=[auth.logout(request)])


@get("/logout", sync_to_thread=False, include_in_schema=False)
def logout_page(request: Request) -> Template | Redirect:
    """A confirmation form: logging out changes state, so it is a POST with the CSRF token."""
    if auth.current_user(request) is None:
        return Redirect("/")
    return _page("accounts/logout.html")


# GET before POST on a shared path: Litestar 2.25 mis-wires a POST returning a Redirect that is
# registered before the GET of the same path (the coroutine is never awaited).
ROUTES: list[Any] = [login_page, login_submit, logout_page, logout_submit]

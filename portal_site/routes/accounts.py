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
from sqlalchemy import text

from portal_site import auth
from services.accounts import ratelimit
from services.accounts import registration as reg
from services.accounts.messaging import messenger_for
from services.accounts.lockout import LoginLocked, account_key, clear_all
from services.accounts.service import (CODE_INVALID, authenticate, change_password, consume_code, find_login,
                                      issue_code, session_key, verified_code, verify_code)
from services.accounts.validation import is_valid_email, is_valid_phone, password_problem
from services.db import Database
from services.errors import AppError, BadRequest, RateLimited
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


def _page(name: str, status: int = 200, *, retry_after: int | None = None, **context: Any) -> Template:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return Template(template_name=name, context=context, status_code=status, headers=headers)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _retry_after(exc: AppError) -> int | None:
    return getattr(exc, "retry_after", None) if isinstance(exc, RateLimited) else None


# --- login / logout ----------------------------------------------------------------------------
@get("/login", sync_to_thread=False, include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Template | Redirect:  # noqa: A002
    user = auth.current_user(request)
    if user is not None:
        return Redirect(_safe_next(next, _home_of(user)))
    notice = ("密码已重置，请使用新密码登录 / password reset: log in with the new one" if request.query_params.get("reset")
              else "账户已解锁，请登录 / the account is unlocked: log in" if request.query_params.get("unlocked")
              else None)
    return _page("accounts/login.html", next=_safe_next(next, ""), login="", notice=notice)


@post("/login", sync_to_thread=True, include_in_schema=False)
def login_submit(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    login = (data.get("login") or "").strip()
    password = data.get("password") or ""
    nxt = _safe_next(data.get("next"), "")
    ip, limit = _client_ip(request), ratelimit.limit_for("login", settings)
    try:
        ratelimit.check(db, limit, ip)  # per client IP, before the password is even looked at
        with db.session() as s:
            user_id = authenticate(s, login, password, settings.accounts, client=ip)
            ratelimit.refund(s, limit, ip)  # only failed attempts count against the IP
    except AppError as exc:
        return _page("accounts/login.html", status=exc.status_code, retry_after=_retry_after(exc), error=exc.message,
                     login=login, next=nxt, locked=isinstance(exc, LoginLocked))
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


# --- registration (P8) ------------------------------------------------------------------------
def _sk(request: Request) -> str:
    """This browser session's key: binds the e-mail code to the session that asked for it."""
    return session_key(auth.session_secret(request))


def _step1(status: int = 200, *, retry_after: int | None = None, **ctx: Any) -> Template:
    ctx.setdefault("email", "")
    return _page("accounts/register_step1.html", status=status, retry_after=retry_after, step=1, **ctx)


@get("/register", sync_to_thread=False, include_in_schema=False)
def register_page(request: Request) -> Template:
    return _step1()


@post("/register/code", sync_to_thread=True, include_in_schema=False)
def register_send_code(request: Request, db: Database, settings: Settings, data: Form) -> Template:
    """Step 1a: send a 6-digit code to the enterprise e-mail."""
    email = (data.get("email") or "").strip()
    agreed = bool(data.get("agree"))
    if not is_valid_email(email):
        return _step1(400, email=email, agreed=agreed, error="请输入有效的企业邮箱 / enter a valid e-mail address")
    try:
        ratelimit.check(db, ratelimit.limit_for("code", settings), _client_ip(request))
        # the code and the e-mail's outbox row commit together; the e-mail is sent after the commit
        with db.session() as s:
            code = issue_code(s, "register", "email", email, settings.accounts, session_key=_sk(request))
            minutes = settings.accounts.code_ttl_s // 60
            delivered = messenger_for(settings.mail).email(
                s, email, "珠海市充电基础设施智慧管理服务平台 注册验证码",
                f"您的注册验证码是 {code}，{minutes} 分钟内有效。如非本人操作，请忽略本邮件。\n"
                f"Your registration code is {code}; it is valid for {minutes} minutes.")
    except AppError as exc:
        return _step1(exc.status_code, retry_after=_retry_after(exc), email=email, agreed=agreed, error=exc.message)
    if not delivered:  # the send (after the commit) failed: the outbox row keeps the message and the error
        return _step1(503, email=email, agreed=agreed,
                      error="邮件发送失败，请稍后（1 分钟后）重试 / the e-mail could not be sent: retry in a minute")
    return _step1(email=email, agreed=agreed, code_sent=True,
                  notice=f"验证码已发送至 {email}，10 分钟内有效 / a code was sent to {email}")


@post("/register", sync_to_thread=True, include_in_schema=False)
def register_verify(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    """Step 1b: the code and the agreement → step 2."""
    email = (data.get("email") or "").strip()
    agreed = bool(data.get("agree"))
    if not agreed:
        return _step1(400, email=email, code_sent=True, error="请阅读并同意注册协议 / accept the agreement to continue")
    try:
        with db.session() as s:
            verify_code(s, "register", email, data.get("code") or "", settings.accounts, session_key=_sk(request))
    except AppError as exc:
        return _step1(exc.status_code, email=email, agreed=agreed, code_sent=True, error=exc.message)
    return Redirect("/register/details", status_code=303)


def _verified_email(db: Database, request: Request) -> tuple[int, str] | None:
    with db.session() as s:
        row = verified_code(s, "register", _sk(request))
    return (row.id, row.recipient) if row else None


@get("/register/details", sync_to_thread=True, include_in_schema=False)
def register_details(request: Request, db: Database) -> Template | Redirect:
    verified = _verified_email(db, request)
    if verified is None:
        return Redirect("/register")
    return _page("accounts/register_step2.html", step=2, email=verified[1], form={}, errors={})


@post("/register/details", sync_to_thread=True, include_in_schema=False)
def register_submit(request: Request, db: Database, data: Form) -> Template | Redirect:
    """Step 2 → step 3: create the operator and its first account, pending review."""
    verified = _verified_email(db, request)
    if verified is None:
        return Redirect("/register", status_code=303)
    code_id, email = verified
    form = reg.RegistrationForm.from_form(data)
    errors = form.errors()
    if not errors:
        try:
            with db.session() as s:
                result = reg.submit_registration(s, form, email)
                consume_code(s, code_id)
        except AppError as exc:
            errors = exc.details if isinstance(exc.details, dict) else {exc.param or "_": exc.message}
    if errors:
        return _page("accounts/register_step2.html", status=400, step=2, email=email, form=data, errors=errors,
                     error=next(iter(errors.values())))
    return _page("accounts/register_step3.html", step=3, account_name=form.account_name, phone=form.phone,
                 company_name=form.company_name, operator_id=result["operator_id"])


# --- forgot password (P9) --------------------------------------------------------------------------
NEUTRAL_SENT = ("如果该手机号已注册，验证码已通过短信发送，10 分钟内有效 / "
                "if this phone is registered, a code was sent to it by SMS (valid for 10 minutes)")


@get("/forgot-password", sync_to_thread=False, include_in_schema=False)
def forgot_page(request: Request) -> Template:
    return _page("accounts/forgot_password.html", phone="")


@post("/forgot-password/code", sync_to_thread=True, include_in_schema=False)
def forgot_send_code(request: Request, db: Database, settings: Settings, data: Form) -> Template:
    """Send an SMS code; the answer is the same whether or not the phone has an account."""
    phone = (data.get("phone") or "").strip()
    if not is_valid_phone(phone):
        return _page("accounts/forgot_password.html", status=400, phone=phone,
                     error="请输入有效的 11 位手机号 / enter a valid 11-digit mobile number")
    try:
        ratelimit.check(db, ratelimit.limit_for("code", settings), _client_ip(request))
        with db.session() as s:
            # a code is issued (and rate-limited) for unknown phones too, but only sent to real ones;
            # the SMS goes out after the commit
            code = issue_code(s, "reset_password", "sms", phone, settings.accounts)
            known = s.execute(text("SELECT 1 FROM users WHERE phone = :p AND is_active"), {"p": phone}).first()
            if known:
                messenger_for(settings.mail).sms(
                    s, phone, f"【珠海充电】您正在重置密码，验证码 {code}，{settings.accounts.code_ttl_s // 60} 分钟内有效。")
    except AppError as exc:
        return _page("accounts/forgot_password.html", status=exc.status_code, retry_after=_retry_after(exc),
                     phone=phone, code_sent=True, error=exc.message)
    return _page("accounts/forgot_password.html", phone=phone, code_sent=True, notice=NEUTRAL_SENT)


@post("/forgot-password", sync_to_thread=True, include_in_schema=False)
def forgot_submit(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    phone = (data.get("phone") or "").strip()
    password = data.get("password") or ""

    def again(message: str, status: int = 400) -> Template:
        return _page("accounts/forgot_password.html", status=status, phone=phone, code_sent=True, error=message)

    if problem := password_problem(password):
        return again(problem)
    if password != (data.get("password2") or ""):
        return again("两次输入的密码不一致 / the passwords differ")
    try:
        with db.session() as s:
            code_id = verify_code(s, "reset_password", phone, data.get("code") or "", settings.accounts)
            user_id = s.execute(text("SELECT id FROM users WHERE phone = :p AND is_active"), {"p": phone}).scalar()
            if user_id is None:  # cannot happen without the code, which only real phones receive
                raise BadRequest("验证码错误或已过期 / the code is wrong or has expired", param="code")
            change_password(s, user_id, password)
            consume_code(s, code_id)
    except AppError as exc:
        return again(exc.message, exc.status_code)
    return Redirect("/login?reset=1", status_code=303)


# --- unlock (the owner of a locked account, at once) ----------------------------------------------
UNLOCK_SENT = ("如果该账户存在，解锁验证码已发送到其手机和邮箱，10 分钟内有效 / "
               "if this account exists, an unlock code was sent to its phone and e-mail (valid for 10 minutes)")


def _unlock_recipient(user_id: int) -> str:
    return f"user:{user_id}"


@get("/login/unlock", sync_to_thread=False, include_in_schema=False)
def unlock_page(request: Request, login: str | None = None) -> Template:
    return _page("accounts/unlock.html", login=(login or "")[:100])


@post("/login/unlock/code", sync_to_thread=True, include_in_schema=False)
def unlock_send_code(request: Request, db: Database, settings: Settings, data: Form) -> Template:
    """Send an unlock code to the account's verified phone and e-mail; the same answer for any name."""
    login = (data.get("login") or "").strip()[:100]
    if not login:
        return _page("accounts/unlock.html", status=400, login=login,
                     error="请输入账户名或手机号 / enter the account name or phone")
    try:
        ratelimit.check(db, ratelimit.limit_for("code", settings), _client_ip(request))
        with db.session() as s:
            user = find_login(s, login)
            if user is not None:
                code = issue_code(s, "unlock", "sms" if user.phone else "email", _unlock_recipient(user.id),
                                  settings.accounts)
                minutes = settings.accounts.code_ttl_s // 60
                messenger = messenger_for(settings.mail)
                if user.phone:
                    messenger.sms(s, user.phone, f"【珠海充电】您的账户解锁验证码 {code}，{minutes} 分钟内有效。"
                                                 "如非本人操作，请忽略并留意账户安全。")
                if user.email:
                    messenger.email(s, user.email, "珠海充电：账户解锁验证码 / unlock code",
                                   f"您的账户 {user.account_name} 因多次密码错误被锁定。解锁验证码：{code}"
                                   f"（{minutes} 分钟内有效）。\n\nYour account {user.account_name} was locked after "
                                   f"failed logins. Unlock code: {code} (valid for {minutes} minutes).\n\n"
                                   "如非本人操作，说明有人在尝试您的密码，请考虑修改密码。/ If this was not you, "
                                   "someone is trying your password: consider changing it.")
    except AppError as exc:
        return _page("accounts/unlock.html", status=exc.status_code, retry_after=_retry_after(exc), login=login,
                     code_sent=True, error=exc.message)
    return _page("accounts/unlock.html", login=login, code_sent=True, notice=UNLOCK_SENT)


@post("/login/unlock", sync_to_thread=True, include_in_schema=False)
def unlock_submit(request: Request, db: Database, settings: Settings, data: Form) -> Template | Redirect:
    login = (data.get("login") or "").strip()[:100]
    try:
        with db.session() as s:
            user = find_login(s, login)
            # an unknown name has no code: verify_code answers exactly as for a wrong code
            recipient = _unlock_recipient(user.id) if user is not None else f"name:{login.lower()}"
            code_id = verify_code(s, "unlock", recipient, data.get("code") or "", settings.accounts)
            if user is None:  # cannot happen: no code is ever issued to a name
                raise BadRequest(CODE_INVALID, param="code")
            clear_all(s, account_key(user.id, login))
            consume_code(s, code_id)
    except AppError as exc:
        return _page("accounts/unlock.html", status=exc.status_code, login=login, code_sent=True, error=exc.message)
    return Redirect("/login?unlocked=1", status_code=303)


# --- the developer's outbox --------------------------------------------------------------------------
LOOPBACK = ("127.", "::1", "localhost", "testclient")


@get("/dev/outbox", sync_to_thread=True, include_in_schema=False, opt={"dev_only": True})
def dev_outbox(request: Request, db: Database, settings: Settings) -> Template:
    """Every e-mail and SMS, newest first: only mounted when ZHCHARGE_ENV=dev, and only for clients on
    this machine (the codes it shows would let anyone take over any account)."""
    if settings.app.env != "dev" or not _client_ip(request).startswith(LOOPBACK):
        raise NotFoundException(f"no such page: {request.url.path}")
    from services.accounts.messaging import list_outbox

    with db.session() as s:
        rows = list_outbox(s, limit=100)
    return _page("accounts/dev_outbox.html", rows=rows)


ROUTES: list[Any] = [login_page, login_submit, logout_page, logout_submit,
                     register_page, register_verify, register_send_code, register_details, register_submit,
                     forgot_page, forgot_send_code, forgot_submit, unlock_page, unlock_send_code, unlock_submit,
                     dev_outbox]

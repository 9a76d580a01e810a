"""Users, passwords, sessions, one-time codes and the lockout rule.

Functions take a SQLAlchemy ``Connection`` or ``Session`` (both ``execute`` Core statements) so
the web handlers (``db.session()``) and scripts (``engine.begin()``) share them. Messages about
failed logins and codes never say whether an account exists.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, insert, or_, select, update

from services.accounts import lockout
from services.errors import BadRequest, Conflict, RateLimited
from services.models.accounts import User, UserSession, VerificationCode
from services.models.core import Operator
from services.settings import AccountSettings

__all__ = [
    "CurrentUser",
    "LOGIN_FAILED",
    "LoginFailed",
    "authenticate",
    "change_password",
    "create_session",
    "create_user",
    "delete_session",
    "delete_user_sessions",
    "hash_password",
    "issue_code",
    "load_current_user",
    "session_key",
    "verify_code",
    "verify_password",
]

USERS = User.__table__
SESSIONS = UserSession.__table__
CODES = VerificationCode.__table__
OPERATORS = Operator.__table__

# Argon2id (argon2-cffi's default type) with its RFC 9106 "low memory" parameters.
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("zhcharge-dummy-password")

LOGIN_FAILED = "账户名/手机号或密码错误 / wrong account, phone or password"
CODE_INVALID = "验证码错误或已过期 / the code is wrong or has expired"
CODE_EXHAUSTED = "验证码错误次数过多，请重新获取 / too many wrong attempts: request a new code"


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True, slots=True)
class CurrentUser:
    """Who is logged in; what ``request.state.user`` holds (None when anonymous)."""

    id: int
    account_name: str
    role: str
    operator_pk: int | None
    operator_id: str | None
    operator_name: str | None
    approved: bool

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_regulator(self) -> bool:
        """Regulators and administrators both supervise."""
        return self.role in ("regulator", "admin")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class LoginFailed(BadRequest):
    status_code = 400


# --- passwords -------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- users -----------------------------------------------------------------------------------
def create_user(conn: Any, *, account_name: str, password: str, role: str, phone: str | None = None,
                email: str | None = None, operator_pk: int | None = None, display_name: str | None = None) -> int:
    """Insert a user; a duplicate account name or phone is a :class:`Conflict`."""
    taken = conn.execute(select(USERS.c.account_name, USERS.c.phone).where(or_(
        func.lower(USERS.c.account_name) == account_name.lower(),
        USERS.c.phone == phone if phone else False))).first()
    if taken is not None:
        if taken.account_name.lower() == account_name.lower():
            raise Conflict("账户名已被使用 / this account name is taken", param="account_name")
        raise Conflict("该手机号已注册 / this phone number is already registered", param="phone")
    return conn.execute(insert(USERS).values(
        account_name=account_name, password_hash=hash_password(password), role=role, phone=phone, email=email,
        operator_pk=operator_pk, display_name=display_name).returning(USERS.c.id)).scalar_one()


def authenticate(conn: Any, login: str, password: str, settings: AccountSettings | None = None,
                 client: str | None = None) -> int:
    """The user id for an account name or phone and its password, or :class:`LoginFailed`.

    Failures count per account *and* client address (:mod:`services.accounts.lockout`): slowed
    down, then locked for that address, never for the owner elsewhere; the answers are the same
    whether or not the account exists.
    """
    settings = settings or AccountSettings()
    login = (login or "").strip()
    row = conn.execute(select(USERS).where(or_(func.lower(USERS.c.account_name) == login.lower(),
                                                USERS.c.phone == login))).first()
    key = lockout.account_key(row.id if row is not None else None, login)
    lockout.check(conn, key, client, settings)
    if row is None or not verify_password(row.password_hash, password) or not row.is_active:
        if row is None:
            verify_password(_DUMMY_HASH, password)  # same work as for a real account
        lockout.record_failure(conn, key, client, settings)
        # the failure must persist even though the caller's transaction ends in an error
        _commit_if_session(conn)
        raise LoginFailed(LOGIN_FAILED)
    lockout.clear(conn, key, client)
    values: dict[str, Any] = {"last_login_at": now()}
    if _HASHER.check_needs_rehash(row.password_hash):
        values["password_hash"] = hash_password(password)
    conn.execute(update(USERS).where(USERS.c.id == row.id).values(**values))
    return row.id


def find_login(conn: Any, login: str) -> Any:
    """The active user whose account name or phone is ``login``, or ``None``."""
    login = (login or "").strip()
    if not login:
        return None
    return conn.execute(select(USERS).where(or_(func.lower(USERS.c.account_name) == login.lower(),
                                                 USERS.c.phone == login), USERS.c.is_active)).first()


def _commit_if_session(conn: Any) -> None:
    commit = getattr(conn, "commit", None)
    if commit is not None:
        commit()


def change_password(conn: Any, user_id: int, new_password: str) -> None:
    """Set a new password, unlock the account and end every session of the user."""
    conn.execute(update(USERS).where(USERS.c.id == user_id).values(password_hash=hash_password(new_password)))
    lockout.clear_all(conn, lockout.account_key(user_id, ""))
    delete_user_sessions(conn, user_id)


# --- sessions --------------------------------------------------------------------------------
def session_key(sid: str) -> str:
    """What the database keeps of a session secret: its SHA-256, so a table dump logs nobody in."""
    return hashlib.sha256(sid.encode()).hexdigest()


def create_session(conn: Any, user_id: int, *, days: int = 7, ip: str | None = None,
                   user_agent: str | None = None) -> str:
    """A new session for ``user_id``; returns the secret that goes (signed) into the cookie."""
    sid = secrets.token_urlsafe(32)
    conn.execute(insert(SESSIONS).values(id=session_key(sid), user_id=user_id,
                                         expires_at=now() + timedelta(days=days),
                                         ip=(ip or "")[:45] or None, user_agent=(user_agent or "")[:200] or None))
    conn.execute(delete(SESSIONS).where(SESSIONS.c.expires_at < now()))
    return sid


def delete_session(conn: Any, sid: str) -> None:
    conn.execute(delete(SESSIONS).where(SESSIONS.c.id == session_key(sid)))


def delete_user_sessions(conn: Any, user_id: int) -> None:
    conn.execute(delete(SESSIONS).where(SESSIONS.c.user_id == user_id))


def load_current_user(conn: Any, sid: str) -> CurrentUser | None:
    """The user of a live session (touching ``last_seen_at`` at most every 5 minutes)."""
    row = conn.execute(
        select(SESSIONS.c.id.label("sk"), SESSIONS.c.last_seen_at, USERS.c.id, USERS.c.account_name, USERS.c.role,
               USERS.c.operator_pk, USERS.c.is_active, OPERATORS.c.operator_id, OPERATORS.c.name.label("operator_name"),
               OPERATORS.c.registration_state)
        .select_from(SESSIONS.join(USERS, USERS.c.id == SESSIONS.c.user_id)
                     .outerjoin(OPERATORS, OPERATORS.c.id == USERS.c.operator_pk))
        .where(SESSIONS.c.id == session_key(sid), SESSIONS.c.expires_at > func.now())).first()
    if row is None or not row.is_active:
        return None
    if row.last_seen_at < now() - timedelta(minutes=5):
        conn.execute(update(SESSIONS).where(SESSIONS.c.id == row.sk).values(last_seen_at=func.now()))
    return CurrentUser(id=row.id, account_name=row.account_name, role=row.role, operator_pk=row.operator_pk,
                       operator_id=row.operator_id, operator_name=row.operator_name,
                       approved=row.role != "operator" or row.registration_state == "approved")


# --- one-time codes ----------------------------------------------------------------------------
def _code_hash(purpose: str, recipient: str, code: str) -> str:
    return hashlib.sha256(f"{purpose}:{recipient.lower()}:{code}".encode()).hexdigest()


def issue_code(conn: Any, purpose: str, channel: str, recipient: str, settings: AccountSettings | None = None,
               *, session_key: str | None = None) -> str:
    """A new 6-digit code for ``recipient`` (the caller sends it); :class:`RateLimited` within a minute
    of the previous one. Issuing a code retires the earlier ones."""
    settings = settings or AccountSettings()
    t = now()
    last = conn.execute(select(func.max(CODES.c.created_at)).where(
        CODES.c.purpose == purpose, func.lower(CODES.c.recipient) == recipient.lower())).scalar()
    if last is not None and (t - last).total_seconds() < settings.code_resend_s:
        wait = int(settings.code_resend_s - (t - last).total_seconds()) + 1
        raise RateLimited(f"请 {wait} 秒后再获取验证码 / please wait {wait} s before requesting another code",
                          retry_after=wait)
    conn.execute(update(CODES).where(CODES.c.purpose == purpose, func.lower(CODES.c.recipient) == recipient.lower(),
                                     CODES.c.consumed_at.is_(None)).values(consumed_at=t))
    code = f"{secrets.randbelow(1_000_000):06d}"
    conn.execute(insert(CODES).values(purpose=purpose, channel=channel, recipient=recipient,
                                      code_hash=_code_hash(purpose, recipient, code),
                                      expires_at=t + timedelta(seconds=settings.code_ttl_s), session_key=session_key))
    return code


def verify_code(conn: Any, purpose: str, recipient: str, code: str, settings: AccountSettings | None = None,
                *, session_key: str | None = None) -> int:
    """Check a code; returns the code row's id (marked verified), or raises :class:`BadRequest`.

    A code is good for 10 minutes and 5 attempts (settings); a wrong attempt counts even though
    the request fails, so it is committed at once when ``conn`` is a Session.
    """
    settings = settings or AccountSettings()
    t = now()
    row = conn.execute(select(CODES).where(
        CODES.c.purpose == purpose, func.lower(CODES.c.recipient) == (recipient or "").lower(),
        CODES.c.consumed_at.is_(None), CODES.c.verified_at.is_(None)).order_by(CODES.c.created_at.desc())
        .limit(1).with_for_update()).first()
    if row is None or row.expires_at <= t:
        raise BadRequest(CODE_INVALID, param="code")
    if row.attempts >= settings.code_attempts:
        raise BadRequest(CODE_EXHAUSTED, param="code")
    if session_key is not None and row.session_key not in (None, session_key):
        raise BadRequest(CODE_INVALID, param="code")
    good = hmac.compare_digest(row.code_hash, _code_hash(purpose, recipient, (code or "").strip()))
    if not good:
        conn.execute(update(CODES).where(CODES.c.id == row.id).values(attempts=row.attempts + 1))
        _commit_if_session(conn)
        if row.attempts + 1 >= settings.code_attempts:
            raise BadRequest(CODE_EXHAUSTED, param="code")
        raise BadRequest(CODE_INVALID, param="code")
    conn.execute(update(CODES).where(CODES.c.id == row.id).values(
        attempts=row.attempts + 1, verified_at=t, session_key=session_key or row.session_key))
    return row.id


def verified_code(conn: Any, purpose: str, session_key: str, max_age_s: int = 1800) -> Any:
    """The most recent code this session verified (e.g. the registration e-mail), unconsumed."""
    return conn.execute(select(CODES).where(
        CODES.c.purpose == purpose, CODES.c.session_key == session_key, CODES.c.verified_at.is_not(None),
        CODES.c.consumed_at.is_(None), CODES.c.verified_at > now() - timedelta(seconds=max_age_s))
        .order_by(CODES.c.verified_at.desc()).limit(1)).first()


def consume_code(conn: Any, code_id: int) -> None:
    conn.execute(update(CODES).where(CODES.c.id == code_id).values(consumed_at=now()))

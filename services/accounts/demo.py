"""Demo accounts and portal content for ``zhcharge demo load`` (idempotent).

    from services.accounts.demo import ensure_demo_accounts
    with engine.begin() as conn:
        accounts = ensure_demo_accounts(conn, [("MA5DEMO01", "珠海示范充电有限公司"), ...])
    for a in accounts:
        print(a["role"], a["account_name"], a["password"], a.get("operator_name", ""))

Creates, when missing: one approved operator company per ``(operator_id, name)`` with an
operator user, the regulator ``regulator`` and the administrator ``admin``, plus the default
page texts and a few news items. Running it again changes nothing except restoring the demo
passwords (so the printed credentials always work).
"""

from __future__ import annotations

import zlib
from typing import Any

from sqlalchemy import func, insert, select, update

from services.accounts.service import create_user, hash_password, verify_password
from services.accounts.validation import CREDIT_CODE_CHARS, credit_code_check_char
from services.models.accounts import News, SitePage, User
from services.models.core import Operator
from services.portal import defaults

__all__ = ["DEMO_PASSWORD", "ensure_demo_accounts", "ensure_demo_content"]

DEMO_PASSWORD = "Zhcharge!2026"
USERS = User.__table__
OPERATORS = Operator.__table__


def _credit_code(operator_id: str) -> str | None:
    first17 = "91440400" + operator_id
    if len(first17) != 17 or any(c not in CREDIT_CODE_CHARS for c in first17):
        return None
    return first17 + credit_code_check_char(first17)


def _free_phone(conn: Any, seed: str) -> str:
    n = zlib.crc32(seed.encode()) % 100_000_000
    while True:
        phone = f"138{n:08d}"
        if conn.execute(select(USERS.c.id).where(USERS.c.phone == phone)).first() is None:
            return phone
        n = (n + 1) % 100_000_000


def _ensure_user(conn: Any, *, account_name: str, role: str, operator_pk: int | None, display_name: str,
                 email: str | None = None) -> None:
    row = conn.execute(select(USERS.c.id, USERS.c.password_hash).where(USERS.c.account_name == account_name)).first()
    if row is None:
        create_user(conn, account_name=account_name, password=DEMO_PASSWORD, role=role, operator_pk=operator_pk,
                    phone=_free_phone(conn, account_name), email=email, display_name=display_name)
    elif not verify_password(row.password_hash, DEMO_PASSWORD):
        conn.execute(update(USERS).where(USERS.c.id == row.id).values(
            password_hash=hash_password(DEMO_PASSWORD)))


def ensure_demo_accounts(conn: Any, operators: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """One approved operator user per operator, ``regulator`` and ``admin``; returns how to log in."""
    out: list[dict[str, Any]] = []
    for operator_id, name in operators:
        pk = conn.execute(select(OPERATORS.c.id).where(OPERATORS.c.operator_id == operator_id)).scalar()
        if pk is None:
            pk = conn.execute(insert(OPERATORS).values(
                operator_id=operator_id, name=name, credit_code=_credit_code(operator_id),
                registration_state="approved", submitted_at=func.now(), reviewed_at=func.now(),
                contact_name="演示联系人", address="广东省珠海市香洲区", legal_representative="演示法人",
                email=f"{operator_id.lower()}@demo.zhcharge.local").returning(OPERATORS.c.id)).scalar_one()
        else:
            conn.execute(update(OPERATORS).where(OPERATORS.c.id == pk, OPERATORS.c.registration_state.is_distinct_from("approved"))
                         .values(registration_state="approved", reviewed_at=func.now(), rejection_reason=None,
                                 submitted_at=func.coalesce(OPERATORS.c.submitted_at, func.now())))
        account = f"op_{operator_id.lower()}"
        _ensure_user(conn, account_name=account, role="operator", operator_pk=pk, display_name=name,
                     email=f"{operator_id.lower()}@demo.zhcharge.local")
        out.append({"role": "operator", "account_name": account, "password": DEMO_PASSWORD,
                    "operator_id": operator_id, "operator_name": name})
    for account, role, display in (("regulator", "regulator", "演示监管员"), ("admin", "admin", "演示管理员")):
        _ensure_user(conn, account_name=account, role=role, operator_pk=None, display_name=display)
        out.append({"role": role, "account_name": account, "password": DEMO_PASSWORD})
    ensure_demo_content(conn)
    return out


def ensure_demo_content(conn: Any) -> None:
    """Default page texts (when not saved yet) and the demo news (when there is no news at all)."""
    pages = SitePage.__table__
    for slug, page in defaults.PAGES.items():
        if conn.execute(select(pages.c.slug).where(pages.c.slug == slug)).first() is None:
            conn.execute(insert(pages).values(slug=slug, state="published", **page))
    news = News.__table__
    if conn.execute(select(func.count()).select_from(news)).scalar() == 0:
        for i, item in enumerate(defaults.NEWS):
            conn.execute(insert(news).values(state="published",
                                             published_at=func.now() - func.make_interval(0, 0, 0, i * 3), **item))

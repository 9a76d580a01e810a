"""What the subsidy modules share: who acts, China's calendar day, UTC time stamps and the
operator's notice of a decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

__all__ = ["CHINA_TZ", "Actor", "china_today", "notify", "utc_now"]

CHINA_TZ = ZoneInfo("Asia/Shanghai")


def china_today() -> date:
    """Today in China: application periods and "entered service" are China's calendar days."""
    return datetime.now(CHINA_TZ).date()


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    """Who acts: the user's id, name and role (``operator`` / ``regulator`` / ``admin``)."""

    user_id: int | None
    name: str | None
    role: str
    operator_pk: int | None = None

    @classmethod
    def of(cls, user: Any) -> Actor:
        return cls(user.id, user.account_name, user.role, getattr(user, "operator_pk", None))


def notify(session: Session, operator_pk: int, title: str, body: str, link: str | None) -> None:
    """A workflow message in the operator's B8 inbox."""
    from services.messaging.notify import notify_operator

    notify_operator(session, operator_pk, title, body, kind="workflow", link=link)


"""The one function other domains call to tell an operator something: a message in its B8 inbox.

Archives, subsidy applications, feedback and tasks call :func:`notify_operator` when a state
changes; the message appears at ``/backoffice/messages`` with an unread mark. The caller's
session and transaction are used, so the notice is committed (or rolled back) with the change
that caused it.

    from services.messaging.notify import notify_operator
    notify_operator(session, operator_pk, "档案审核通过", "站点档案 ZH001 已通过审核。",
                    link="/backoffice/archives/12")
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.orm import Session

from services.models.messaging import Message, MessageRecipient

__all__ = ["KINDS", "notify_operator", "notify_operators"]

KINDS = ("notice", "workflow", "feedback", "task", "system")


def notify_operators(session: Session, operator_pks: Iterable[int], title: str, body: str, *, kind: str = "workflow",
                     link: str | None = None, requires_confirmation: bool = False, sender_user_id: int | None = None,
                     sender_name: str | None = None) -> int:
    """Create one message addressed to each of ``operator_pks`` (duplicates ignored). Returns the message id."""
    if kind not in KINDS:
        raise ValueError(f"unknown message kind {kind!r}")
    pks = sorted({int(pk) for pk in operator_pks})
    if not pks:
        raise ValueError("a message needs at least one recipient")
    title = (title or "").strip()[:200] or "(无标题)"
    msg = Message(kind=kind, title=title, body=body or "", link=link, requires_confirmation=requires_confirmation,
                  sender_user_id=sender_user_id, sender_name=sender_name or ("系统" if kind != "notice" else None))
    session.add(msg)
    session.flush()
    session.execute(insert(MessageRecipient), [{"message_id": msg.id, "operator_pk": pk} for pk in pks])
    return msg.id


def notify_operator(session: Session, operator_pk: int, title: str, body: str, *, kind: str = "workflow",
                    link: str | None = None) -> int:
    """Create a message addressed to ``operator_pk`` (unread in its inbox). Returns the message id."""
    return notify_operators(session, [operator_pk], title, body, kind=kind, link=link)

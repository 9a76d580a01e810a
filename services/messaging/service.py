"""Messages (B8): the operator's inbox, replies and confirmations; the regulators' notices.

Every query an operator reaches is scoped by ``operator_pk``: a message not addressed to that
operator is "not found" (404), never "forbidden", so ids reveal nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from services.accounts.service import CurrentUser
from services.errors import BadRequest, Conflict, NotFound
from services.messaging.notify import notify_operators
from services.models.core import AuditLog, Operator
from services.models.messaging import Message, MessageRecipient, MessageReply

__all__ = ["CONFIRMATIONS", "confirm", "inbox", "mark_read", "message_for_operator", "notice_detail", "reply",
           "send_notice", "sent_notices", "unread_count", "approved_operators"]

M, R, RP = Message.__table__, MessageRecipient.__table__, MessageReply.__table__
CONFIRMATIONS = {"agree": ("同意", "agree"), "disagree": ("不同意", "disagree")}
KIND_LABELS = {"notice": ("通知", "notice"), "workflow": ("审核进度", "workflow"), "feedback": ("意见反馈", "feedback"),
               "task": ("监管任务", "task"), "system": ("系统", "system")}
MAX_BODY = 5000


def unread_count(s: Session, operator_pk: int) -> int:
    return s.execute(select(func.count()).select_from(R).where(R.c.operator_pk == operator_pk,
                                                               R.c.read_at.is_(None))).scalar_one()


def inbox(s: Session, operator_pk: int, *, only: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """The operator's messages, newest first, with ``unread`` and ``needs_confirmation`` flags."""
    q = (select(M.c.id, M.c.kind, M.c.title, M.c.created_at, M.c.sender_name, M.c.requires_confirmation,
                R.c.read_at, R.c.confirmation)
         .join(R, R.c.message_id == M.c.id).where(R.c.operator_pk == operator_pk))
    if only == "unread":
        q = q.where(R.c.read_at.is_(None))
    elif only == "confirm":
        q = q.where(M.c.requires_confirmation, R.c.confirmation.is_(None))
    rows = s.execute(q.order_by(M.c.created_at.desc(), M.c.id.desc()).limit(limit)).mappings().all()
    return [dict(r, unread=r["read_at"] is None,
                 needs_confirmation=r["requires_confirmation"] and r["confirmation"] is None) for r in rows]


def message_for_operator(s: Session, operator_pk: int, message_id: int) -> dict[str, Any]:
    """One message as its recipient sees it, with the thread of replies. 404 unless addressed to it."""
    row = s.execute(select(M, R.c.read_at, R.c.confirmation, R.c.confirmation_reason, R.c.confirmed_at)
                    .join(R, R.c.message_id == M.c.id)
                    .where(M.c.id == message_id, R.c.operator_pk == operator_pk)).mappings().first()
    if row is None:
        raise NotFound("没有这条消息 / no such message")
    out = dict(row)
    out["replies"] = _thread(s, message_id, operator_pk)
    return out


def _thread(s: Session, message_id: int, operator_pk: int) -> list[dict[str, Any]]:
    return [dict(r) for r in s.execute(select(RP).where(RP.c.message_id == message_id, RP.c.operator_pk == operator_pk)
                                       .order_by(RP.c.created_at, RP.c.id)).mappings()]


def mark_read(s: Session, operator_pk: int, message_id: int, user_id: int) -> bool:
    """Mark read (once; the first reader is kept). Returns whether this call marked it."""
    res = s.execute(update(R).where(R.c.message_id == message_id, R.c.operator_pk == operator_pk,
                                    R.c.read_at.is_(None)).values(read_at=func.now(), read_by=user_id))
    return res.rowcount > 0


def _clean(body: str | None, what: str = "回复内容 / the reply") -> str:
    body = (body or "").strip()
    if not body:
        raise BadRequest(f"{what}不能为空 / {what.split(' / ')[-1]} is empty", param="body")
    if len(body) > MAX_BODY:
        raise BadRequest(f"内容过长（最多 {MAX_BODY} 字）/ at most {MAX_BODY} characters", param="body")
    return body


def reply(s: Session, user: CurrentUser, message_id: int, body: str, *, operator_pk: int | None = None) -> int:
    """A text reply in the thread of ``operator_pk`` (the user's own company for operators)."""
    if user.is_operator:
        operator_pk = user.operator_pk
        message_for_operator(s, operator_pk, message_id)  # 404 when not addressed to it
    else:
        if operator_pk is None or s.execute(select(R.c.id).where(R.c.message_id == message_id,
                                                                 R.c.operator_pk == operator_pk)).first() is None:
            raise NotFound("没有这条消息 / no such message")
    body = _clean(body)
    rid = s.execute(insert(RP).values(message_id=message_id, operator_pk=operator_pk, author_user_id=user.id,
                                      author_role=user.role, author_name=user.operator_name or user.account_name,
                                      body=body).returning(RP.c.id)).scalar_one()
    if user.is_operator:
        mark_read(s, operator_pk, message_id, user.id)
    return rid


def confirm(s: Session, user: CurrentUser, message_id: int, choice: str, reason: str | None) -> None:
    """Agree or disagree with a message that asks for it; a reason is required to disagree (manual 3.8)."""
    msg = message_for_operator(s, user.operator_pk, message_id)
    if not msg["requires_confirmation"]:
        raise Conflict("这条消息不需要确认 / this message does not ask for a confirmation")
    if msg["confirmation"] is not None:
        raise Conflict("已经确认过 / already confirmed")
    if choice not in CONFIRMATIONS:
        raise BadRequest("请选择同意或不同意 / choose agree or disagree", param="choice")
    reason = (reason or "").strip() or None
    if choice == "disagree" and not reason:
        raise BadRequest("选择不同意时须填写原因 / a reason is required to disagree", param="reason")
    if reason and len(reason) > MAX_BODY:
        raise BadRequest(f"原因过长（最多 {MAX_BODY} 字）/ at most {MAX_BODY} characters", param="reason")
    s.execute(update(R).where(R.c.message_id == message_id, R.c.operator_pk == user.operator_pk,
                              R.c.confirmation.is_(None))
              .values(confirmation=choice, confirmation_reason=reason, confirmed_at=func.now(), confirmed_by=user.id,
                      read_at=func.coalesce(R.c.read_at, func.now()), read_by=func.coalesce(R.c.read_by, user.id)))
    s.add(AuditLog(actor_user_id=user.id, actor=user.account_name, action=f"message.{choice}", target_type="message",
                   target_id=str(message_id), details={"operator_pk": user.operator_pk, "reason": reason}))


# --- regulators ---------------------------------------------------------------------------------
def approved_operators(s: Session) -> list[dict[str, Any]]:
    """Operators a notice can go to: those whose registration is approved (they have back-office users)."""
    rows = s.execute(select(Operator.id, Operator.operator_id, Operator.name)
                     .where(Operator.registration_state == "approved").order_by(Operator.name)).mappings().all()
    return [dict(r) for r in rows]


def send_notice(s: Session, user: CurrentUser, title: str, body: str, operator_pks: Iterable[int] | str, *,
                requires_confirmation: bool = False) -> int:
    """A regulator's notice to one, several or ``"all"`` operators. Returns the message id."""
    title = (title or "").strip()
    if not title:
        raise BadRequest("标题不能为空 / the title is empty", param="title")
    if len(title) > 200:
        raise BadRequest("标题最多 200 字 / at most 200 characters", param="title")
    body = _clean(body, "正文 / the body")
    if operator_pks == "all":
        pks = [r["id"] for r in approved_operators(s)]
    else:
        pks = sorted({int(p) for p in operator_pks})
        known = set(s.execute(select(Operator.id).where(Operator.id.in_(pks))).scalars()) if pks else set()
        if set(pks) - known:
            raise BadRequest("收件运营商不存在 / unknown recipient", param="operators")
    if not pks:
        raise BadRequest("请选择至少一个运营商 / choose at least one operator", param="operators")
    mid = notify_operators(s, pks, title, body, kind="notice", requires_confirmation=requires_confirmation,
                           sender_user_id=user.id, sender_name=user.account_name)
    s.add(AuditLog(actor_user_id=user.id, actor=user.account_name, action="message.send", target_type="message",
                   target_id=str(mid), details={"recipients": len(pks), "requires_confirmation": requires_confirmation}))
    return mid


_SENT = text("""
SELECT m.id, m.kind, m.title, m.created_at, m.sender_name, m.requires_confirmation,
       count(r.id) AS recipients,
       count(r.read_at) AS read,
       count(DISTINCT rp.operator_pk) AS replied,
       count(r.confirmation) AS confirmed,
       count(*) FILTER (WHERE r.confirmation = 'agree') AS agreed,
       count(*) FILTER (WHERE r.confirmation = 'disagree') AS disagreed
FROM messages m
JOIN message_recipients r ON r.message_id = m.id
LEFT JOIN (SELECT DISTINCT message_id, operator_pk FROM message_replies WHERE author_role = 'operator') rp
       ON rp.message_id = m.id AND rp.operator_pk = r.operator_pk
WHERE (:kind IS NULL OR m.kind = :kind)
GROUP BY m.id
ORDER BY m.created_at DESC, m.id DESC
LIMIT :limit
""")


def sent_notices(s: Session, *, kind: str | None = "notice", limit: int = 200) -> list[dict[str, Any]]:
    """Messages with read / replied / confirmed counts (regulators' list)."""
    return [dict(r) for r in s.execute(_SENT, {"kind": kind, "limit": limit}).mappings()]


def notice_detail(s: Session, message_id: int) -> dict[str, Any]:
    """A message with one row per recipient: read, replied, confirmation; and every thread."""
    msg = s.execute(select(M).where(M.c.id == message_id)).mappings().first()
    if msg is None:
        raise NotFound("没有这条消息 / no such message")
    recips = s.execute(text("""
        SELECT r.operator_pk, o.name AS operator_name, o.operator_id, r.read_at, r.confirmation,
               r.confirmation_reason, r.confirmed_at,
               (SELECT count(*) FROM message_replies p WHERE p.message_id = r.message_id
                  AND p.operator_pk = r.operator_pk AND p.author_role = 'operator') AS replies
        FROM message_recipients r JOIN operators o ON o.id = r.operator_pk
        WHERE r.message_id = :id ORDER BY o.name"""), {"id": message_id}).mappings().all()
    out = dict(msg)
    out["recipients"] = [dict(r, thread=_thread(s, message_id, r["operator_pk"])) for r in recips]
    return out

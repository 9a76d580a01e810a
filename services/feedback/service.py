"""Feedback (B9): a citizen submits a suggestion or a repair report, with the station (hence the
operator) when known and optional photos, and gets a ticket number.

States (manual 3.9): ``submitted`` (the citizen submitted it; the operator is known or not yet),
``assigned`` (it came without an operator and a regulator routed it), ``processed`` (the operator
replied and processed it). Moves go through the ``feedback`` workflow table and write
``workflow_events``; the operator gets a B8 message whenever one lands on its desk.

Spam controls: at most ``feedback_per_ip_per_hour`` submissions per client address (a keyed
hash is stored, not the address), text and photo size limits, photo types sniffed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from services.accounts.service import CurrentUser
from services.errors import BadRequest, NotFound, RateLimited
from services.messaging.files import IMAGE_TYPES, Upload, check_upload
from services.messaging.notify import notify_operator
from services.models.core import Operator
from services.models.feed import Station
from services.models.messaging import Feedback, FeedbackPhoto
from services.settings import SupervisionSettings
from services.workflow import Workflow, apply, events_for

__all__ = ["FEEDBACK", "KINDS", "assign", "get", "list_feedback", "lookup", "photo", "process", "submit"]

F, P = Feedback.__table__, FeedbackPhoto.__table__
KINDS = {"repair": ("报修", "repair report"), "suggestion": ("建议", "suggestion")}
REGULATORS = frozenset({"regulator", "admin"})
FEEDBACK = Workflow(
    "feedback",
    {"submitted": ("已提交", "submitted"), "assigned": ("已分配", "assigned"), "processed": ("已处理", "processed")},
    {
        ("submitted", "assign"): ("assigned", REGULATORS),
        ("assigned", "assign"): ("assigned", REGULATORS),
        ("submitted", "process"): ("processed", frozenset({"operator"})),
        ("assigned", "process"): ("processed", frozenset({"operator"})),
    },
    action_labels={"assign": ("分配", "assign"), "process": ("回复并处理", "reply and process")},
    reason_required=frozenset({"process"}),
)
_TICKET_CHARS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L


def new_ticket(now: datetime | None = None) -> str:
    """``ZH`` + date + 6 random characters: short enough to read out, too many to guess.

    >>> t = new_ticket(datetime(2026, 11, 24)); t[:10], len(t)
    ('ZH20261124', 16)
    """
    now = now or datetime.now(timezone(timedelta(hours=8)))  # the date people in Zhuhai see
    return f"ZH{now:%Y%m%d}" + "".join(secrets.choice(_TICKET_CHARS) for _ in range(6))


def normalize_ticket(ticket: str | None) -> str:
    """Upper case, letters and digits only: what people type or paste back.

    >>> normalize_ticket(' zh20261124-k7q3xm ')
    'ZH20261124K7Q3XM'
    """
    return "".join(ch for ch in (ticket or "").upper() if ch.isalnum())[:20]


def ip_key(secret: str, ip: str | None) -> str | None:
    if not ip:
        return None
    return hmac.new(secret.encode(), f"feedback|{ip}".encode(), hashlib.sha256).hexdigest()


def station_info(s: Session, station_pk: int) -> dict[str, Any] | None:
    row = s.execute(select(Station.id, Station.name, Station.address, Station.station_id, Operator.id.label("operator_pk"),
                           Operator.name.label("operator_name"))
                    .join(Operator, Operator.operator_id == Station.operator_id)
                    .where(Station.id == station_pk, Station.feed_state == "active")).mappings().first()
    return dict(row) if row else None


def submit(s: Session, cfg: SupervisionSettings, *, kind: str, body: str, contact: str | None = None,
           station_pk: int | None = None, operator_pk: int | None = None, photos: Sequence[tuple[str | None, bytes]] = (),
           ip_hash: str | None = None) -> str:
    """Record a citizen's feedback; returns its ticket number."""
    if kind not in KINDS:
        raise BadRequest("请选择反馈类型 / choose suggestion or repair report", param="kind")
    body = (body or "").strip()
    if len(body) < 5:
        raise BadRequest("请至少写 5 个字说明问题 / describe the problem in at least 5 characters", param="body")
    if len(body) > cfg.feedback_max_chars:
        raise BadRequest(f"内容过长（最多 {cfg.feedback_max_chars} 字）/ at most {cfg.feedback_max_chars} characters",
                         param="body")
    contact = (contact or "").strip() or None
    if contact and len(contact) > 100:
        raise BadRequest("联系方式过长 / the contact is too long", param="contact")
    if len(photos) > cfg.feedback_max_photos:
        raise BadRequest(f"最多 {cfg.feedback_max_photos} 张照片 / at most {cfg.feedback_max_photos} photos",
                         param="photos")
    checked: list[Upload] = [check_upload(name, data, allowed=IMAGE_TYPES, max_bytes=cfg.feedback_photo_max_bytes,
                                          what="照片 / photo") for name, data in photos]
    if station_pk is not None:
        st = station_info(s, station_pk)
        if st is None:
            raise BadRequest("站点不存在 / unknown station", param="station")
        operator_pk = st["operator_pk"]
    elif operator_pk is not None and s.get(Operator, operator_pk) is None:
        raise BadRequest("运营商不存在 / unknown operator", param="operator")
    if ip_hash is not None:
        # serialise submissions from one address so the count below cannot be raced
        s.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": "feedback:" + ip_hash})
        recent = s.execute(select(func.count()).select_from(F).where(
            F.c.ip_hash == ip_hash, F.c.created_at > func.now() - text("interval '1 hour'"))).scalar_one()
        if recent >= cfg.feedback_per_ip_per_hour:
            raise RateLimited("提交过于频繁，请稍后再试 / too many submissions from your address; try again later",
                              retry_after=600)
    ticket = new_ticket()
    fid = s.execute(insert(F).values(ticket=ticket, kind=kind, state="submitted", station_pk=station_pk,
                                     operator_pk=operator_pk, body=body, contact=contact, ip_hash=ip_hash)
                    .returning(F.c.id)).scalar_one()
    if checked:
        s.execute(insert(P), [{"feedback_id": fid, "content_type": u.content_type, "size": len(u.data), "data": u.data}
                              for u in checked])
    from services.workflow import WorkflowEvent

    s.add(WorkflowEvent(workflow=FEEDBACK.name, entity_id=str(fid), action="submit", from_state=None,
                        to_state="submitted", actor_role="citizen", actor_name="citizen"))
    if operator_pk is not None:
        _notify_new(s, operator_pk, fid, ticket, kind)
    return ticket


def _notify_new(s: Session, operator_pk: int, fid: int, ticket: str, kind: str) -> None:
    notify_operator(s, operator_pk, f"新的{KINDS[kind][0]}：{ticket}",
                    f"收到一条用户{KINDS[kind][0]}（编号 {ticket}），请在“意见反馈”中及时回复处理。",
                    kind="feedback", link=f"/backoffice/feedback/{fid}")


_LIST = """
SELECT f.id, f.ticket, f.kind, f.state, f.body, f.created_at, f.updated_at, f.processed_at, f.operator_pk,
       o.name AS operator_name, st.name AS station_name, st.id AS station_pk,
       (SELECT count(*) FROM feedback_photos p WHERE p.feedback_id = f.id) AS photos
FROM feedback f
LEFT JOIN operators o ON o.id = f.operator_pk
LEFT JOIN stations st ON st.id = f.station_pk
WHERE (CAST(:op AS integer) IS NULL OR f.operator_pk = :op)
  AND (CAST(:state AS text) IS NULL OR f.state = :state)
  AND (NOT :unassigned OR f.operator_pk IS NULL)
ORDER BY f.created_at DESC, f.id DESC
LIMIT :limit
"""


def list_feedback(s: Session, *, operator_pk: int | None, state: str | None = None, unassigned: bool = False,
                  limit: int = 500) -> list[dict[str, Any]]:
    """Operators pass their own ``operator_pk``; regulators pass None for everything."""
    return [dict(r) for r in s.execute(text(_LIST), {"op": operator_pk, "state": state, "unassigned": unassigned,
                                                      "limit": limit}).mappings()]


def get(s: Session, feedback_id: int, *, operator_pk: int | None = None) -> dict[str, Any]:
    """One feedback with photos' ids and history; scoped to ``operator_pk`` when given (404 otherwise)."""
    row = s.execute(text("""
        SELECT f.*, o.name AS operator_name, st.name AS station_name, st.address AS station_address,
               st.station_id
        FROM feedback f LEFT JOIN operators o ON o.id = f.operator_pk LEFT JOIN stations st ON st.id = f.station_pk
        WHERE f.id = :id"""), {"id": feedback_id}).mappings().first()
    if row is None or (operator_pk is not None and row["operator_pk"] != operator_pk):
        raise NotFound("没有这条反馈 / no such feedback")
    out = dict(row)
    out.pop("ip_hash", None)
    out["photo_ids"] = list(s.execute(select(P.c.id).where(P.c.feedback_id == feedback_id).order_by(P.c.id)).scalars())
    out["history"] = events_for(s, FEEDBACK, [feedback_id])
    return out


def lookup(s: Session, ticket: str) -> dict[str, Any] | None:
    """What the citizen may see by ticket number: no contact, no internal ids beyond the station."""
    row = s.execute(text("""
        SELECT f.ticket, f.kind, f.state, f.body, f.reply, f.created_at, f.replied_at, f.processed_at,
               st.name AS station_name, o.name AS operator_name
        FROM feedback f LEFT JOIN operators o ON o.id = f.operator_pk LEFT JOIN stations st ON st.id = f.station_pk
        WHERE f.ticket = :t"""), {"t": normalize_ticket(ticket)}).mappings().first()
    return dict(row) if row else None


def _load_for_update(s: Session, feedback_id: int) -> Feedback:
    fb = s.get(Feedback, feedback_id, with_for_update=True)
    if fb is None:
        raise NotFound("没有这条反馈 / no such feedback")
    return fb


def assign(s: Session, user: CurrentUser, feedback_id: int, operator_pk: int) -> None:
    """A regulator routes feedback to an operator (first time or re-routing)."""
    fb = _load_for_update(s, feedback_id)
    op = s.get(Operator, operator_pk)
    if op is None:
        raise BadRequest("运营商不存在 / unknown operator", param="operator")
    apply(s, FEEDBACK, fb, "assign", role=user.role, actor_user_id=user.id, actor_name=user.account_name,
          reason=f"→ {op.name}")
    fb.operator_pk = operator_pk
    _notify_new(s, operator_pk, fb.id, fb.ticket, fb.kind)


def process(s: Session, user: CurrentUser, feedback_id: int, reply: str) -> None:
    """The operator replies and processes; the reply is what the citizen reads under the ticket."""
    fb = _load_for_update(s, feedback_id)
    if fb.operator_pk != user.operator_pk:
        raise NotFound("没有这条反馈 / no such feedback")
    reply = (reply or "").strip()
    if len(reply) > 2000:
        raise BadRequest("回复最多 2000 字 / at most 2000 characters", param="reply")
    apply(s, FEEDBACK, fb, "process", role=user.role, actor_user_id=user.id, actor_name=user.operator_name,
          reason=reply)
    fb.reply = reply
    fb.replied_at = fb.processed_at = datetime.now(timezone.utc)


def photo(s: Session, feedback_id: int, photo_id: int, *, operator_pk: int | None) -> tuple[str, bytes]:
    get(s, feedback_id, operator_pk=operator_pk)  # scope check
    row = s.execute(select(P.c.content_type, P.c.data).where(P.c.id == photo_id, P.c.feedback_id == feedback_id)).first()
    if row is None:
        raise NotFound("没有这张照片 / no such photo")
    return row.content_type, bytes(row.data)


def counts(s: Session, operator_pk: int | None = None) -> dict[str, int]:
    q = select(F.c.state, func.count()).group_by(F.c.state)
    if operator_pk is not None:
        q = q.where(F.c.operator_pk == operator_pk)
    return {k: v for k, v in s.execute(q).all()}

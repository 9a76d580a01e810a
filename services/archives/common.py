"""What every archive service shares: who is acting, scoping to the operator, state moves with
their side effects (timestamps, reasons, messages), batches that are all-or-nothing, and paging.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from services import workflow
from services.errors import BadRequest, Conflict, Forbidden, NotFound
from services.messaging.notify import notify_operator
from services.workflow import Workflow
from services.params import MAX_PAGE, int_param

__all__ = ["Actor", "Page", "batch_move", "move", "now", "page_of", "query_int", "scoped_get"]


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (``CurrentUser`` fits) or the system's background check."""

    id: int | None
    account_name: str
    role: str
    operator_pk: int | None = None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def is_regulator(self) -> bool:
        return self.role in ("regulator", "admin")

    @classmethod
    def of(cls, user: Any) -> Actor:
        if isinstance(user, Actor):
            return user
        return cls(user.id, user.account_name, user.role, getattr(user, "operator_pk", None))


SYSTEM_ACTOR = Actor(None, "system", "system")


def query_int(q: Any, name: str) -> int | None:
    """An optional integer list filter from the query string; empty means "not set", anything that
    is not a bigint-sized whole number is a 400 naming the parameter."""
    return int_param(q.get(name), name, lo=0)


def now() -> datetime:
    return datetime.now(UTC)


def not_found_text(what: str) -> str:
    """"没有这个站点档案 / no such station archive" from ``what`` = "站点档案 / station archive".

    >>> not_found_text("站点档案 / station archive"), not_found_text("record")
    ('没有这个站点档案 / no such station archive', '没有这条记录 / no such record')
    """
    zh, sep, en = what.partition(" / ")
    if not sep:
        return f"没有这条记录 / no such {what}"
    return f"没有这个{zh} / no such {en}"


def scoped_get(session: Session, model: type, pk: int, actor: Actor, *, what: str = "record",
               lock: bool = False) -> Any:
    """The row ``pk`` if ``actor`` may see it: operators only their own (else 404, never 403).

    ``lock`` takes the row lock first, so two reviewers deciding at once cannot both move it."""
    row = session.get(model, pk, with_for_update=lock or None)
    if row is None or (actor.is_operator and row.operator_pk != actor.operator_pk):
        raise NotFound(not_found_text(what))
    if not (actor.is_operator or actor.is_regulator or actor.role == "system"):
        raise Forbidden("not allowed")
    return row


# Side effects of moves, by action: the columns a move sets besides the state.
def _effects(entity: Any, action: str, actor: Actor, reason: str | None) -> None:
    t = now()
    if action in ("submit", "apply_ic"):
        entity.submitted_at = t
        if hasattr(entity, "rejection_reason"):
            entity.rejection_reason = None
    elif action in ("approve", "approve_ic", "reject", "reject_ic"):
        entity.reviewed_at = t
        entity.reviewed_by = actor.id
        if action in ("reject", "reject_ic"):
            entity.rejection_reason = (reason or "").strip()
        else:
            entity.rejection_reason = None
        if action == "approve" and hasattr(entity, "ever_approved"):
            entity.ever_approved = True


_DECISIONS = {"approve", "reject", "approve_ic", "reject_ic"}


def move(session: Session, wf: Workflow, entity: Any, action: str, actor: Actor, *, reason: str | None = None,
         describe: Callable[[Any], str] | None = None, link: str | None = None) -> str:
    """Apply ``action`` to ``entity`` by ``wf``'s table, set what goes with it, write the event, and
    tell the operator about a regulator's decision. Returns the new state."""
    if actor.is_operator and getattr(entity, "operator_pk", actor.operator_pk) != actor.operator_pk:
        raise NotFound("no such record")
    before = entity.state
    nxt = workflow.apply(session, wf, entity, action, role=actor.role, actor_user_id=actor.id,
                         actor_name=actor.account_name, reason=reason)
    _effects(entity, action, actor, reason)
    if action in _DECISIONS:
        what = describe(entity) if describe else f"#{entity.id}"
        label = wf.action_labels.get(action, (action, action))[0]
        body = f"{what}：{wf.label(before)} → {wf.label(nxt)}（{label}）"
        if reason:
            body += f"\n原因：{reason}"
        notify_operator(session, entity.operator_pk, f"{what} {label}", body, kind="workflow", link=link)
    return nxt


def batch_move(session: Session, wf: Workflow, entities: Sequence[Any], action: str, actor: Actor, *,
               name_of: Callable[[Any], str], reason: str | None = None,
               describe: Callable[[Any], str] | None = None, link: str | None = None,
               precheck: Callable[[Any], str | None] | None = None) -> list[str]:
    """All or nothing: when any selected record may not take ``action``, nothing moves and the 409
    names every offender with its state. ``precheck`` may add a reason per record."""
    if not entities:
        raise BadRequest("请至少选择一条记录 / select at least one record", param="ids")
    offenders: list[dict[str, str]] = []
    for e in entities:
        problem = None
        if action not in wf.allowed(e.state, actor.role):
            problem = f"状态为“{wf.label(e.state)}” / state is {wf.label(e.state, 'en')}"
        elif precheck is not None:
            problem = precheck(e)
        if problem:
            offenders.append({"id": str(e.id), "name": name_of(e), "state": e.state, "problem": problem})
    if offenders:
        label = wf.action_labels.get(action, (action, action))
        names = "；".join(f"{o['name']}（{o['problem'].split(' / ')[0]}）" for o in offenders)
        raise Conflict(f"以下记录不能{label[0]}，未提交任何记录：{names} / nothing was done: "
                       f"{len(offenders)} selected record(s) cannot {label[1]}", details={"offenders": offenders})
    return [move(session, wf, e, action, actor, reason=reason, describe=describe, link=link) for e in entities]


@dataclass
class Page:
    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def page_of(session: Session, stmt: Any, page: int, per_page: int) -> Page:
    from sqlalchemy import func, select

    total = session.execute(select(func.count()).select_from(stmt.order_by(None).subquery())).scalar_one()
    page = max(1, min(page, MAX_PAGE))
    per_page = max(1, min(per_page, 200))
    items = list(session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).scalars())
    return Page(items, total, page, per_page)

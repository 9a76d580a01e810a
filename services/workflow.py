"""Review workflows as data: a table ``(state, action) -> (next state, roles)`` per kind of object.

One :func:`apply` checks the move against the table, changes the state, and writes an event row
(actor, action, from, to, reason, time) to ``workflow_events``; pages render only
:meth:`Workflow.allowed` actions. An illegal move is a 409 naming the current state.

>>> wf = Workflow("demo", {"draft": ("待提交", "draft"), "review": ("审核中", "under review")},
...               {("draft", "submit"): ("review", {"operator"}), ("review", "withdraw"): ("draft", {"operator"})})
>>> wf.next_state("draft", "submit", "operator")
'review'
>>> wf.allowed("review", "operator")
['withdraw']
>>> wf.next_state("draft", "withdraw", "operator")
Traceback (most recent call last):
...
services.errors.Conflict: cannot withdraw: the record is 待提交 (draft)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Identity, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.errors import Conflict, Forbidden
from services.models.base import Base

__all__ = ["Workflow", "WorkflowEvent", "apply", "events_for"]


class WorkflowEvent(Base):
    """Every state change of every reviewed object (append-only)."""

    __tablename__ = "workflow_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    workflow: Mapped[str] = mapped_column(String(40), nullable=False)
    entity_id: Mapped[str] = mapped_column(String(80), nullable=False)
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40), nullable=False)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_role: Mapped[str | None] = mapped_column(String(20))
    actor_name: Mapped[str | None] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())

    __table_args__ = (Index("ix_workflow_events_entity", "workflow", "entity_id", "at"),)


@dataclass(frozen=True)
class Workflow:
    """``states`` maps a state to its (Chinese, English) label; ``transitions`` maps
    (state, action) to (next state, roles allowed to take it)."""

    name: str
    states: Mapping[str, tuple[str, str]]
    transitions: Mapping[tuple[str, str], tuple[str, frozenset[str] | set[str]]]
    action_labels: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    reason_required: frozenset[str] = frozenset()

    def label(self, state: str, lang: str = "zh") -> str:
        zh, en = self.states.get(state, (state, state))
        return en if lang == "en" else zh

    def actions(self) -> set[str]:
        return {a for _, a in self.transitions}

    def allowed(self, state: str, role: str) -> list[str]:
        """Actions ``role`` may take from ``state``, in table order."""
        return [a for (s, a), (_, roles) in self.transitions.items() if s == state and role in roles]

    def next_state(self, state: str, action: str, role: str) -> str:
        move = self.transitions.get((state, action))
        if move is None:
            raise Conflict(f"cannot {action}: the record is {self.label(state)} ({self.label(state, 'en')})",
                           details={"state": state, "action": action})
        nxt, roles = move
        if role not in roles:
            raise Forbidden(f"a {role} may not {action} a record that is {self.label(state, 'en')}")
        return nxt


def apply(session: Session, wf: Workflow, entity: Any, action: str, *, role: str, actor_user_id: int | None = None,
          actor_name: str | None = None, reason: str | None = None, state_attr: str = "state",
          entity_id: str | None = None) -> str:
    """Move ``entity`` (any object with a state attribute) by ``action``; write the event. Returns the new state."""
    current = getattr(entity, state_attr)
    nxt = wf.next_state(current, action, role)
    if action in wf.reason_required and not (reason and reason.strip()):
        from services.errors import BadRequest

        raise BadRequest(f"a reason is required to {action}", param="reason")
    setattr(entity, state_attr, nxt)
    session.add(WorkflowEvent(workflow=wf.name, entity_id=str(entity_id if entity_id is not None else entity.id),
                              action=action, from_state=current, to_state=nxt, actor_user_id=actor_user_id,
                              actor_role=role, actor_name=actor_name, reason=(reason or None)))
    return nxt


def events_for(session: Session, wf: Workflow | str, entity_ids: Iterable[Any]) -> list[WorkflowEvent]:
    name = wf if isinstance(wf, str) else wf.name
    ids = [str(i) for i in entity_ids]
    return list(session.query(WorkflowEvent).filter(WorkflowEvent.workflow == name,
                                                    WorkflowEvent.entity_id.in_(ids)).order_by(WorkflowEvent.at,
                                                                                               WorkflowEvent.id))



"""Lists and figures of subsidy applications: the B11 search (also its export), each published
rule with an operator's counts, statistics of a list, and a rule's figures against its budget."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from services.models.subsidy import SubsidyApplication, SubsidyApplicationFacility, SubsidyRule
from services.subsidy.amounts import ZERO
from services.subsidy.rules import list_rules
from services.subsidy.shared import china_today
from services.subsidy.states import APPLICATION_WORKFLOW as WF
from services.subsidy.states import IN_PROCESS, NEEDS_ACTION

__all__ = ["ApplicationQuery", "line_summary", "list_applications", "rule_totals", "rule_tree", "statistics"]

@dataclass(frozen=True)
class ApplicationQuery:
    """The current search of B11 (and of its export)."""

    rule_id: int | None = None
    state: str | None = None
    q: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, Any]) -> ApplicationQuery:
        rule = str(params.get("rule") or "").strip()
        state = str(params.get("state") or "").strip()
        return cls(int(rule) if rule.isdigit() else None, state if state in WF.states else None,
                   (str(params.get("q") or "").strip() or None))

    def as_params(self) -> dict[str, str]:
        return {k: str(v) for k, v in (("rule", self.rule_id), ("state", self.state), ("q", self.q)) if v}


def list_applications(session: Session, query: ApplicationQuery, *, operator_pk: int | None) -> list[SubsidyApplication]:
    q = select(SubsidyApplication)
    if operator_pk is not None:
        q = q.where(SubsidyApplication.operator_pk == operator_pk)
    if query.rule_id:
        q = q.where(SubsidyApplication.rule_id == query.rule_id)
    if query.state:
        q = q.where(SubsidyApplication.state == query.state)
    if query.q:
        like = "%" + query.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        q = q.where(SubsidyApplication.station_name.ilike(like) | SubsidyApplication.station_id.ilike(like))
    return list(session.scalars(q.order_by(SubsidyApplication.id.desc())))


def line_summary(session: Session, app_ids: Sequence[int]) -> dict[int, tuple[int, Decimal]]:
    """Per application: (number of facilities, total rated power)."""
    if not app_ids:
        return {}
    rows = session.execute(select(SubsidyApplicationFacility.application_id, func.count(),
                                  func.coalesce(func.sum(SubsidyApplicationFacility.power_kw), 0))
                           .where(SubsidyApplicationFacility.application_id.in_(list(app_ids)))
                           .group_by(SubsidyApplicationFacility.application_id))
    return {a: (n, Decimal(p)) for a, n, p in rows}


def rule_tree(session: Session, operator_pk: int, *, today: date | None = None) -> list[dict[str, Any]]:
    """Every published rule with this operator's (all / needing action) counts and a done mark:
    done when nothing of the operator's is still on its way (pending, returned, submitted,
    approved) and either it has applications or the application period is over."""
    today = today or china_today()
    rules = list_rules(session, published_only=True)
    counts: dict[int, dict[str, int]] = {}
    for rule_id, state, n in session.execute(select(SubsidyApplication.rule_id, SubsidyApplication.state, func.count())
                                             .where(SubsidyApplication.operator_pk == operator_pk)
                                             .group_by(SubsidyApplication.rule_id, SubsidyApplication.state)):
        counts.setdefault(rule_id, {})[state] = n
    out = []
    for r in rules:
        c = counts.get(r.id, {})
        total = sum(c.values())
        action = sum(c.get(s, 0) for s in NEEDS_ACTION)
        open_ = sum(c.get(s, 0) for s in ("pending", "returned", "submitted", "approved"))
        done = open_ == 0 and (total > 0 or today > r.apply_end)
        out.append({"rule": r, "total": total, "action": action, "done": done})
    return out


def statistics(apps: Sequence[SubsidyApplication]) -> dict[str, Any]:
    by_state = {s: 0 for s in WF.states if s != "deleted"}
    for a in apps:
        by_state[a.state] = by_state.get(a.state, 0) + 1
    return {"count": len(apps), "by_state": by_state,
            "expected": sum((a.expected_amount or ZERO for a in apps), ZERO),
            "accounted": sum((a.accounted_amount or ZERO for a in apps if a.state in ("accounted", "paid")), ZERO)}


def rule_totals(session: Session, rule: SubsidyRule) -> dict[str, Any]:
    """A rule's figures against its budget (regulators)."""
    rows = dict(session.execute(select(SubsidyApplication.state, func.count()).where(
        SubsidyApplication.rule_id == rule.id).group_by(SubsidyApplication.state)).all())
    sums = dict(session.execute(select(SubsidyApplication.state, func.coalesce(func.sum(SubsidyApplication.expected_amount), 0))
                                .where(SubsidyApplication.rule_id == rule.id).group_by(SubsidyApplication.state)).all())
    accounted = Decimal(session.scalar(select(func.coalesce(func.sum(SubsidyApplication.accounted_amount), 0)).where(
        SubsidyApplication.rule_id == rule.id, SubsidyApplication.state.in_(("accounted", "paid")))) or 0)
    paid = Decimal(session.scalar(select(func.coalesce(func.sum(SubsidyApplication.accounted_amount), 0)).where(
        SubsidyApplication.rule_id == rule.id, SubsidyApplication.state == "paid")) or 0)
    requested = sum((Decimal(v) for s, v in sums.items() if s in IN_PROCESS), ZERO)
    awaiting = Decimal(sums.get("approved", 0))
    return {"counts": rows, "requested": requested, "awaiting_accounting": awaiting, "accounted": accounted,
            "paid": paid, "budget": rule.budget, "remaining": rule.budget - accounted,
            "over_requested": requested > rule.budget}

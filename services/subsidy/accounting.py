"""Accounting (B12, the regulators' side): every approved application of a rule accounted in
application order under the per-station, per-operator and budget caps, and payment."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.errors import Conflict
from services.models.subsidy import SubsidyAccountingRun, SubsidyApplication
from services.subsidy.amounts import ZERO, Caps, Claim, allocate
from services.subsidy.applications import get_application
from services.subsidy.rules import get_rule
from services.subsidy.shared import Actor, notify, utc_now
from services.subsidy.states import APPLICATION_WORKFLOW as WF
from services.subsidy.states import role_of
from services.workflow import apply

__all__ = ["account_rule", "mark_paid"]

def account_rule(session: Session, actor: Actor, rule_id: int) -> SubsidyAccountingRun:
    """Account every approved application of the rule in application order, under the caps.

    The rule row is locked for the run, so two runs (or a run and a payment) never interleave;
    what earlier runs accounted is the starting point of the headrooms.
    """
    rule = get_rule(session, rule_id, lock=True)
    done = ("accounted", "paid")
    prior = list(session.execute(select(SubsidyApplication.station_archive_pk, SubsidyApplication.operator_pk,
                                        SubsidyApplication.accounted_amount)
                                 .where(SubsidyApplication.rule_id == rule.id, SubsidyApplication.state.in_(done))))
    by_station: dict[Any, Decimal] = {}
    by_operator: dict[Any, Decimal] = {}
    total = ZERO
    for st, op, amount in prior:
        amount = Decimal(amount or 0)
        by_station[st] = by_station.get(st, ZERO) + amount
        by_operator[op] = by_operator.get(op, ZERO) + amount
        total += amount
    apps = list(session.scalars(select(SubsidyApplication).where(SubsidyApplication.rule_id == rule.id,
                                                                 SubsidyApplication.state == "approved")
                                .order_by(SubsidyApplication.first_submitted_at.asc().nulls_last(),
                                          SubsidyApplication.id).with_for_update()))
    if not apps:
        raise Conflict("该规则下没有待核算的已审核通过申请 / no approved application of this rule awaits accounting")
    allocations = allocate([Claim(a.id, a.station_archive_pk, a.operator_pk, a.expected_amount) for a in apps],
                           Caps(rule.cap_station, rule.cap_operator, rule.budget),
                           already_station=by_station, already_operator=by_operator, already_total=total)
    run = SubsidyAccountingRun(rule_id=rule.id, actor_user_id=actor.user_id, actor_name=actor.name,
                               applications=len(apps), total=sum((x.amount for x in allocations), ZERO))
    session.add(run)
    session.flush()
    now = utc_now()
    for app, alloc in zip(apps, allocations, strict=True):
        apply(session, WF, app, "account", role=role_of(actor.role), actor_user_id=actor.user_id,
              actor_name=actor.name, reason=(f"limited by the {alloc.limited_by} cap" if alloc.limited_by else None))
        app.accounted_amount = alloc.amount
        app.limited_by = alloc.limited_by
        app.accounted_at = now
        app.accounting_run_id = run.id
        note = {"station": "单站补贴上限", "operator": "单运营商补贴上限", "budget": "补贴预算"}.get(alloc.limited_by or "")
        notify(session, app.operator_pk, "补贴申请已核算",
               f"您在“{rule.name}”下的补贴申请 #{app.id} 已完成财务核算，核算金额 {alloc.amount} 元"
               + (f"（受{note}限制，申请金额 {alloc.gross} 元）" if note else "") + "。",
               "/backoffice/subsidy/accounting")
    session.flush()
    return run


def mark_paid(session: Session, actor: Actor, app_id: int) -> SubsidyApplication:
    app = get_application(session, app_id, lock=True)
    apply(session, WF, app, "pay", role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name)
    app.paid_at = utc_now()
    notify(session, app.operator_pk, "补贴已支付", f"补贴申请 #{app.id} 的补贴 {app.accounted_amount} 元已支付。",
           "/backoffice/subsidy/accounting")
    return app

"""Subsidy applications (B11): the form, the expected amount, saving, submitting and deleting
(one by one or as a batch: all or none), and the regulators' review.

Every state change goes through :func:`services.workflow.apply` with
:data:`services.subsidy.states.APPLICATION_WORKFLOW`; every operator-facing function takes the
operator's primary key and answers :class:`NotFound` for another operator's ids. Amounts come
from :mod:`services.subsidy.amounts` (see the rounding and caps rule there).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.errors import BadRequest, Conflict, NotFound
from services.models.core import Operator
from services.models.subsidy import SubsidyApplication, SubsidyApplicationFacility, SubsidyRule
from services.subsidy.amounts import ZERO, Caps, Claim, Line, allocate, line_amount, to_fen
from services.subsidy.energy import EnergyBasis, EnergySource, Flag, energy_basis, kwh_text
from services.subsidy.options import FacilityOption, StationOption, facility_options, operator_check, station_options
from services.subsidy.rules import get_rule
from services.subsidy.shared import CHINA_TZ, Actor, china_today, notify, utc_now
from services.subsidy.states import APPLICATION_WORKFLOW as WF
from services.subsidy.states import EDITABLE, IN_PROCESS, role_of
from services.workflow import apply

__all__ = ["ApplicationForm", "Estimate", "Ineligible", "application_energy", "application_lines", "applications_energy",
           "batch_delete", "batch_submit", "delete_application", "energy_period", "estimate", "get_application",
           "review", "save_application", "submit_application"]

_PHONE = re.compile(r"^[0-9+\-() ]{5,30}$")


@dataclass
class ApplicationForm:
    rule_id: int | None
    station_pk: int | None
    facility_pks: list[int]
    contact_name: str
    contact_phone: str
    bank_account: str
    remark: str

    @staticmethod
    def _many(value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, (list, tuple)):
            return [str(v) for v in value]
        return [str(value)]

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> ApplicationForm:
        def _int(v: Any) -> int | None:
            s = str(v or "").strip()
            return int(s) if s.isdigit() else None

        pks = [int(x) for x in cls._many(data.get("facilities")) if str(x).strip().isdigit()]
        return cls(rule_id=_int(data.get("rule")), station_pk=_int(data.get("station")),
                   facility_pks=sorted(set(pks)), contact_name=str(data.get("contact_name") or "").strip()[:50],
                   contact_phone=str(data.get("contact_phone") or "").strip()[:30],
                   bank_account=str(data.get("bank_account") or "").strip()[:60],
                   remark=str(data.get("remark") or "").strip()[:2000])

    @classmethod
    def of(cls, app: SubsidyApplication, facility_pks: Iterable[int]) -> ApplicationForm:
        return cls(app.rule_id, app.station_archive_pk, sorted(facility_pks), app.contact_name or "",
                   app.contact_phone or "", app.bank_account or "", app.remark or "")


@dataclass
class Estimate:
    """What the form shows as it changes: the lines, the gross (rounded) and the caps' preview;
    for per-kWh rules the orders behind each line's kWh and the cross-check (``basis``)."""

    lines: list[tuple[FacilityOption, Decimal | None, Decimal]]  # option, kWh, exact line amount
    gross: Decimal
    capped: Decimal
    limited_by: str | None
    basis: EnergyBasis | None = None


def energy_period(rule: SubsidyRule, day: date) -> tuple[date, date]:
    """The days whose orders count for an application calculated on ``day``: the subsidy period
    up to that day (empty, ``start > end``, before the subsidy period begins)."""
    return rule.subsidy_start, min(rule.subsidy_end, day)


def estimate(session: Session, rule: SubsidyRule, operator_pk: int, station: StationOption | None,
             chosen: Sequence[FacilityOption], energy_source: EnergySource | None, *,
             today: date | None = None, operator_id: str | None = None) -> Estimate:
    """The expected amount: exact lines, rounded once; the preview also applies the per-station and
    per-operator caps (against what this rule already accounted), never the budget.

    Per-kWh lines are the kWh of the claimed pile's counted orders (:mod:`services.subsidy.energy`);
    ``energy_source`` (``query_station_stats``) only feeds the cross-check and may be ``None``."""
    today = today or china_today()
    basis: EnergyBasis | None = None
    if rule.basis == "per_kwh" and station is not None and chosen:
        start, end = energy_period(rule, today)
        basis = energy_basis(session, operator_id or "", station.station_id, [f.equipment_id for f in chosen],
                             start, end, energy_source)
    rates = rule.rates()
    lines = []
    for f in chosen:
        kwh = basis.kwh_for(f.equipment_id) if basis is not None else None
        ln = Line(f.id, f.facility_type, f.power_kw, kwh)
        lines.append((f, kwh, line_amount(ln, rule.basis, rates, rule.rate_kwh)))
    gross = to_fen(sum((a for _, _, a in lines), Decimal(0)))
    used_station, used_operator = _accounted(session, rule.id, station_id=station.id if station else None,
                                             operator_pk=operator_pk)
    [alloc] = allocate([Claim(0, "s", "o", gross)], Caps(rule.cap_station, rule.cap_operator, None),
                       already_station={"s": used_station}, already_operator={"o": used_operator})
    return Estimate(lines, gross, alloc.amount, alloc.limited_by, basis)


def application_energy(session: Session, app: SubsidyApplication, rule: SubsidyRule, operator_id: str,
                       stats_source: EnergySource | None, *, lines: Sequence[SubsidyApplicationFacility] | None = None
                       ) -> EnergyBasis | None:
    """The orders behind a saved per-kWh application, read now over the period it was calculated
    for (the subsidy period up to the China day of ``energy_fetched_at``), with the cross-check
    when a ``stats_source`` is given. When the counted energy is no longer what the amount was
    computed from (an order was reconciled, revised or disputed since), a ``changed`` flag says
    so: the amount stays as saved until the operator saves the application again."""
    if rule.basis != "per_kwh":
        return None
    lines = application_lines(session, app.id) if lines is None else lines
    day = app.energy_fetched_at.astimezone(CHINA_TZ).date() if app.energy_fetched_at else china_today()
    start, end = energy_period(rule, day)
    basis = energy_basis(session, operator_id, app.station_id, [x.equipment_id for x in lines], start, end,
                         stats_source)
    now = basis.counted.kwh
    if app.energy_kwh is not None and now != app.energy_kwh:
        basis.notes.append(Flag(
            "changed", f"申请金额按保存时计入的 {kwh_text(app.energy_kwh)} kWh 计算；订单对账情况已变化，现计入 "
                       f"{kwh_text(now)} kWh（重新保存申请后按新数据计算）",
            f"the amount was computed from the {kwh_text(app.energy_kwh)} kWh counted when the application was "
            f"saved; the orders have changed since and {kwh_text(now)} kWh count now (saving the application again "
            f"recomputes it)"))
    return basis


def applications_energy(session: Session, apps: Iterable[SubsidyApplication],
                        rules: Mapping[int, SubsidyRule]) -> dict[int, EnergyBasis]:
    """The orders behind each per-kWh application of ``apps`` (no cross-check: the exports read
    no operator's platform)."""
    apps = [a for a in apps if a.rule_id in rules and rules[a.rule_id].basis == "per_kwh"]
    if not apps:
        return {}
    ids = dict(session.execute(select(Operator.id, Operator.operator_id).where(
        Operator.id.in_({a.operator_pk for a in apps}))).all())
    out = {}
    for a in apps:
        basis = application_energy(session, a, rules[a.rule_id], ids.get(a.operator_pk, ""), None)
        if basis is not None:
            out[a.id] = basis
    return out


def _accounted(session: Session, rule_id: int, *, station_id: int | None, operator_pk: int) -> tuple[Decimal, Decimal]:
    done = ("accounted", "paid")
    by_station = session.scalar(select(func.coalesce(func.sum(SubsidyApplication.accounted_amount), 0)).where(
        SubsidyApplication.rule_id == rule_id, SubsidyApplication.state.in_(done),
        SubsidyApplication.station_archive_pk == station_id)) if station_id else 0
    by_operator = session.scalar(select(func.coalesce(func.sum(SubsidyApplication.accounted_amount), 0)).where(
        SubsidyApplication.rule_id == rule_id, SubsidyApplication.state.in_(done),
        SubsidyApplication.operator_pk == operator_pk))
    return Decimal(by_station or 0), Decimal(by_operator or 0)


def get_application(session: Session, app_id: int, *, operator_pk: int | None = None,
                    lock: bool = False) -> SubsidyApplication:
    """One application; with ``operator_pk``, only that operator's (another's is a 404)."""
    q = select(SubsidyApplication).where(SubsidyApplication.id == app_id)
    if operator_pk is not None:
        q = q.where(SubsidyApplication.operator_pk == operator_pk)
    if lock:
        q = q.with_for_update()
    app = session.scalars(q).first()
    if app is None:
        raise NotFound(f"没有编号为 {app_id} 的补贴申请 / no subsidy application {app_id}")
    return app


def application_lines(session: Session, app_id: int) -> list[SubsidyApplicationFacility]:
    return list(session.scalars(select(SubsidyApplicationFacility).where(
        SubsidyApplicationFacility.application_id == app_id).order_by(SubsidyApplicationFacility.equipment_id)))


class Ineligible(BadRequest):
    """The application breaks one or more conditions; ``details`` lists them."""


def _validate(session: Session, rule: SubsidyRule, actor: Actor, form: ApplicationForm, *, submit: bool,
              application_id: int | None, today: date) -> tuple[StationOption, list[FacilityOption]]:
    problems: list[str] = []
    for f in operator_check(session, rule, actor.operator_pk, today=today):  # type: ignore[arg-type]
        problems.append(str(f))
    if form.station_pk is None:
        raise Ineligible("请选择充电站 / choose a station", param="station", details=problems)
    stations = station_options(session, rule, actor.operator_pk, station_pk=form.station_pk)  # type: ignore[arg-type]
    if not stations:
        raise NotFound(f"没有编号为 {form.station_pk} 的站点档案 / no station archive {form.station_pk}")
    station = stations[0]
    problems += [f"{station.station_id}: {f}" for f in station.failures]
    options = {f.id: f for f in facility_options(session, rule, actor.operator_pk, station.id,  # type: ignore[arg-type]
                                                   application_id=application_id)}
    chosen = []
    for pk in form.facility_pks:
        opt = options.get(pk)
        if opt is None:
            problems.append(f"设施 {pk} 不属于该充电站 / facility {pk} is not one of this station's")
            continue
        problems += [f"{opt.equipment_id}: {f}" for f in opt.failures]
        chosen.append(opt)
    if submit and not chosen:
        problems.append("请至少选择一个充电设施 / choose at least one facility")
    if submit:
        if not form.contact_name:
            problems.append("请填写联系人 / the contact name is required")
        if not _PHONE.match(form.contact_phone):
            problems.append("请填写有效的联系电话 / a valid contact phone is required")
    if problems:
        raise Ineligible("; ".join(problems), details=problems)
    return station, chosen


def save_application(session: Session, actor: Actor, form: ApplicationForm, *, submit: bool,
                     operator_id: str, application: SubsidyApplication | None = None,
                     today: date | None = None) -> SubsidyApplication:
    """Create (or, when ``application`` is given and editable, change) an application; ``submit``
    also submits it. Every condition is checked, also on "save", so a draft never claims a
    facility it may not claim. Per-kWh amounts are computed from the counted orders as of now
    (``energy_fetched_at`` records when); the statistics are not read here: they never change
    the amount, and the pages compare them when the application is shown."""
    today = today or china_today()
    if application is not None:
        if application.state not in EDITABLE:
            raise Conflict(f"申请 #{application.id} 为{WF.label(application.state)}，不能修改 / application "
                           f"#{application.id} is {WF.label(application.state, 'en')} and cannot be changed")
        form.rule_id = application.rule_id
    if form.rule_id is None:
        raise BadRequest("请选择补贴规则 / choose a subsidy rule", param="rule")
    rule = get_rule(session, form.rule_id, published_only=True)
    station, chosen = _validate(session, rule, actor, form, submit=submit,
                                application_id=application.id if application else None, today=today)
    est = estimate(session, rule, actor.operator_pk, station, chosen, None, today=today,  # type: ignore[arg-type]
                   operator_id=operator_id)
    if application is None:
        application = SubsidyApplication(rule_id=rule.id, operator_pk=actor.operator_pk, created_by=actor.user_id,
                                         state="pending")
        session.add(application)
    application.station_archive_pk = station.id
    application.station_id = station.station_id
    application.station_name = station.name
    application.contact_name = form.contact_name or None
    application.contact_phone = form.contact_phone or None
    application.bank_account = form.bank_account or None
    application.remark = form.remark or None
    application.expected_amount = est.gross
    if rule.basis == "per_kwh":
        application.energy_kwh = sum((k or ZERO for _, k, _ in est.lines), Decimal(0))
        application.energy_fetched_at = utc_now()
    try:
        with session.begin_nested():
            session.flush()
            session.query(SubsidyApplicationFacility).filter(
                SubsidyApplicationFacility.application_id == application.id).delete()
            session.flush()
            session.add_all([SubsidyApplicationFacility(
                application_id=application.id, rule_id=rule.id, facility_archive_pk=f.id, equipment_id=f.equipment_id,
                facility_type=f.facility_type, power_kw=f.power_kw, kwh=kwh, amount=amount)
                for f, kwh, amount in est.lines])
            session.flush()
    except IntegrityError:
        raise Conflict("所选设施已在本规则的其他申请中申报 / a chosen facility was just claimed under this rule by "
                       "another application") from None
    if submit:
        _submit(session, application, actor)
    return application


def _submit(session: Session, app: SubsidyApplication, actor: Actor) -> None:
    apply(session, WF, app, "submit", role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name)
    app.submitted_at = utc_now()
    app.first_submitted_at = app.first_submitted_at or app.submitted_at
    app.return_reason = None


def _recheck(session: Session, app: SubsidyApplication, actor: Actor, today: date) -> None:
    """Before a submission: the conditions of today, on the application as saved."""
    rule = get_rule(session, app.rule_id)
    pks = [x.facility_archive_pk for x in application_lines(session, app.id)]
    form = ApplicationForm.of(app, pks)
    _validate(session, rule, actor, form, submit=True, application_id=app.id, today=today)


def submit_application(session: Session, actor: Actor, app_id: int, *, today: date | None = None) -> SubsidyApplication:
    app = get_application(session, app_id, operator_pk=actor.operator_pk, lock=True)
    WF.next_state(app.state, "submit", role_of(actor.role))  # a 409 before any other check
    _recheck(session, app, actor, today or china_today())
    _submit(session, app, actor)
    return app


def _labels(apps: Iterable[SubsidyApplication]) -> str:
    return ", ".join(f"#{a.id} {a.station_name or a.station_id}（{WF.label(a.state)}）" for a in apps)


def _load_many(session: Session, actor: Actor, ids: Sequence[int]) -> list[SubsidyApplication]:
    ids = sorted(set(ids))
    if not ids:
        raise BadRequest("请先选择补贴申请 / select one or more applications first", param="ids")
    apps = list(session.scalars(select(SubsidyApplication).where(
        SubsidyApplication.id.in_(ids), SubsidyApplication.operator_pk == actor.operator_pk)
        .order_by(SubsidyApplication.id).with_for_update()))
    missing = sorted(set(ids) - {a.id for a in apps})
    if missing:
        raise NotFound("没有这些补贴申请 / no such applications: " + ", ".join(f"#{i}" for i in missing))
    return apps


def batch_submit(session: Session, actor: Actor, ids: Sequence[int], *, today: date | None = None) -> list[SubsidyApplication]:
    """Submit every selected application if all are pending and eligible; otherwise none, and the
    offenders are named."""
    today = today or china_today()
    apps = _load_many(session, actor, ids)
    offenders = [a for a in apps if a.state != "pending"]
    if offenders:
        raise Conflict("只能批量提交“待提交”的申请，以下申请状态不符，未提交任何申请 / only pending applications can be "
                       "submitted together; nothing was submitted. Not pending: " + _labels(offenders),
                       details=[a.id for a in offenders])
    problems = []
    for a in apps:
        try:
            _recheck(session, a, actor, today)
        except BadRequest as exc:
            problems.append(f"#{a.id}: {exc.message}")
    if problems:
        raise Conflict("以下申请不满足条件，未提交任何申请 / nothing was submitted; these applications do not meet "
                       "the conditions: " + " | ".join(problems))
    for a in apps:
        _submit(session, a, actor)
    return apps


def delete_application(session: Session, actor: Actor, app_id: int) -> None:
    app = get_application(session, app_id, operator_pk=actor.operator_pk, lock=True)
    apply(session, WF, app, "delete", role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name)
    session.delete(app)
    session.flush()


def batch_delete(session: Session, actor: Actor, ids: Sequence[int]) -> int:
    """Delete every selected application if none is in process; otherwise none, offenders named."""
    apps = _load_many(session, actor, ids)
    offenders = [a for a in apps if a.state in IN_PROCESS]
    if offenders:
        raise Conflict("以下申请正在申请流程中，不能删除，未删除任何申请 / applications in process cannot be deleted; "
                       "nothing was deleted. In process: " + _labels(offenders), details=[a.id for a in offenders])
    for a in apps:
        apply(session, WF, a, "delete", role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name)
        session.delete(a)
    session.flush()
    return len(apps)


def review(session: Session, actor: Actor, app_id: int, action: str, reason: str | None = None) -> SubsidyApplication:
    if action not in ("approve", "return"):
        raise BadRequest("未知的审核操作 / unknown review action", param="action")
    app = get_application(session, app_id, lock=True)
    apply(session, WF, app, action, role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name,
          reason=reason)
    app.reviewed_at = utc_now()
    app.reviewed_by = actor.user_id
    rule = get_rule(session, app.rule_id)
    link = f"/backoffice/subsidy/applications/{app.id}"
    if action == "approve":
        app.return_reason = None
        notify(session, app.operator_pk, "补贴申请审核通过",
               f"您在“{rule.name}”下的补贴申请 #{app.id}（{app.station_name or app.station_id}）已审核通过，"
               f"将进入财务核算。", link)
    else:
        app.return_reason = reason.strip() if reason else None
        notify(session, app.operator_pk, "补贴申请已退回",
               f"您在“{rule.name}”下的补贴申请 #{app.id}（{app.station_name or app.station_id}）已退回，"
               f"原因：{app.return_reason}。请修改后重新提交。", link)
    return app

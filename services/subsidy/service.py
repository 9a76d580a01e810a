"""Subsidy rules, applications and accounting over the database (B10–B12 and the regulators' side).

Every state change goes through :func:`services.workflow.apply` with
:data:`services.subsidy.states.APPLICATION_WORKFLOW`; every operator-facing function takes the
operator's primary key and answers :class:`NotFound` for another operator's ids. Amounts come
from :mod:`services.subsidy.amounts` (see the rounding and caps rule there).

"Entered service" for a facility is the day (China time) its interconnection was approved: the
``workflow_events`` row moving its archive to ``interconnected`` (``reviewed_at`` when no event
exists, e.g. imported data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from services.errors import BadRequest, Conflict, NotFound
from services.models.archives import FacilityArchive
from services.models.subsidy import (
    SubsidyAccountingRun,
    SubsidyApplication,
    SubsidyApplicationFacility,
    SubsidyRule,
)
from services.stations.enums import STATION_STATUSES
from services.stations.vocab import EQUIPMENT_TYPE_FACILITY
from services.subsidy.amounts import (
    BASES,
    FACILITY_RATE_KEYS,
    ZERO,
    Caps,
    Claim,
    Line,
    allocate,
    line_amount,
    to_fen,
)
from services.subsidy.eligibility import (
    INTERCONNECTION_REQUIREMENTS,
    Failure,
    facility_failures,
    operator_failures,
    station_failures,
    terms_of,
)
from services.subsidy.energy import EnergySource, EnergyUnavailable, StationEnergy
from services.subsidy.states import APPLICATION_WORKFLOW as WF
from services.subsidy.states import EDITABLE, IN_PROCESS, NEEDS_ACTION, role_of
from services.workflow import apply

__all__ = [
    "Actor",
    "ApplicationForm",
    "ApplicationQuery",
    "CHINA_TZ",
    "Estimate",
    "FacilityOption",
    "Ineligible",
    "RULE_LABELS",
    "RuleForm",
    "StationOption",
    "account_rule",
    "application_lines",
    "batch_delete",
    "batch_submit",
    "china_today",
    "create_rule",
    "delete_application",
    "estimate",
    "facility_options",
    "get_application",
    "get_rule",
    "line_summary",
    "list_applications",
    "list_rules",
    "mark_paid",
    "operator_check",
    "operator_power_kw",
    "publish_rule",
    "review",
    "rule_editable",
    "rule_totals",
    "rule_tree",
    "save_application",
    "station_options",
    "statistics",
    "submit_application",
    "update_rule",
]

CHINA_TZ = ZoneInfo("Asia/Shanghai")


def china_today() -> date:
    return datetime.now(CHINA_TZ).date()


def _now() -> datetime:
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


def _notify(session: Session, operator_pk: int, title: str, body: str, link: str | None) -> None:
    from services.messaging.notify import notify_operator

    notify_operator(session, operator_pk, title, body, kind="workflow", link=link)


# === rules =====================================================================================
MONEY_FIELDS = ("cap_station", "cap_operator", "budget")
RATE_FIELDS = tuple(f"rate_{k}" for k in FACILITY_RATE_KEYS) + ("rate_kwh",)
RULE_LABELS: dict[str, tuple[str, str]] = {
    "name": ("规则名称", "name"), "description": ("规则描述", "description"),
    "subsidy_start": ("补贴开始日期", "subsidy period start"), "subsidy_end": ("补贴结束日期", "subsidy period end"),
    "apply_start": ("申请开始日期", "application period start"), "apply_end": ("申请结束日期", "application period end"),
    "basis": ("补贴标准", "subsidy standard"), "rate_dc": ("直流 元/kW", "DC yuan/kW"),
    "rate_ac": ("交流 元/kW", "AC yuan/kW"), "rate_acdc": ("交直流一体 元/kW", "AC/DC yuan/kW"),
    "rate_wireless": ("无线 元/kW", "wireless yuan/kW"), "rate_other": ("其他 元/kW", "other yuan/kW"),
    "rate_kwh": ("元/kWh", "yuan/kWh"), "cap_station": ("单站上限（元）", "cap per station (yuan)"),
    "cap_operator": ("单运营商上限（元）", "cap per operator (yuan)"), "budget": ("预算总额（元）", "budget (yuan)"),
    "required_station_status": ("充电站状态要求", "required station status"),
    "required_interconnection": ("互联互通状态要求", "required interconnection status"),
    "min_operator_power_kw": ("运营商累计额定功率下限（kW）", "operator's minimum cumulative rated power (kW)"),
}


def _dec(raw: Any, places: int) -> Decimal | None:
    """A non-negative Decimal with at most ``places`` decimals, or None for blank; ValueError otherwise."""
    s = ("" if raw is None else str(raw)).strip().replace(",", "")
    if not s:
        return None
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ValueError("不是数字 / not a number") from None
    if not d.is_finite() or d < 0:
        raise ValueError("须为非负数 / must be zero or more")
    if -d.as_tuple().exponent > places and d != d.quantize(Decimal(1).scaleb(-places)):
        raise ValueError(f"最多 {places} 位小数 / at most {places} decimals")
    if d >= Decimal(10) ** 11:
        raise ValueError("数值过大 / too large")
    return d.quantize(Decimal(1).scaleb(-places))


def _date(raw: Any) -> date | None:
    s = ("" if raw is None else str(raw)).strip()
    if not s:
        return None
    try:
        return date.fromisoformat(s)
    except ValueError:
        raise ValueError("日期格式应为 YYYY-MM-DD / a date is written YYYY-MM-DD") from None


@dataclass
class RuleForm:
    """The rule form as typed (``raw``), its parsed ``values`` and one message per bad field."""

    raw: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_rule(cls, rule: SubsidyRule) -> RuleForm:
        raw = {k: ("" if getattr(rule, k) is None else str(getattr(rule, k))) for k in RULE_LABELS}
        return cls(raw=raw)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> RuleForm:
        raw = {k: str(data.get(k) or "").strip() for k in RULE_LABELS}
        form = cls(raw=raw)
        v, err = form.values, form.errors
        v["name"] = raw["name"]
        if not raw["name"]:
            err["name"] = "请填写规则名称 / the name is required"
        elif len(raw["name"]) > 100:
            err["name"] = "规则名称最多 100 字 / at most 100 characters"
        v["description"] = raw["description"]
        for k in ("subsidy_start", "subsidy_end", "apply_start", "apply_end"):
            try:
                v[k] = _date(raw[k])
                if v[k] is None:
                    err[k] = "请填写日期 / a date is required"
            except ValueError as exc:
                err[k] = str(exc)
        if v.get("subsidy_start") and v.get("subsidy_end") and v["subsidy_start"] > v["subsidy_end"]:
            err["subsidy_end"] = "补贴结束日期不能早于开始日期 / the subsidy period ends before it starts"
        if v.get("apply_start") and v.get("apply_end") and v["apply_start"] > v["apply_end"]:
            err["apply_end"] = "申请结束日期不能早于开始日期 / the application period ends before it starts"
        v["basis"] = raw["basis"] or "per_kw"
        if v["basis"] not in BASES:
            err["basis"] = "补贴标准应为按功率或按电量 / per kW or per kWh"
        for k in RATE_FIELDS:
            try:
                v[k] = _dec(raw[k], 4)
            except ValueError as exc:
                err[k] = str(exc)
        for k in MONEY_FIELDS:
            try:
                v[k] = _dec(raw[k], 2)
            except ValueError as exc:
                err[k] = str(exc)
        if "budget" not in err and v.get("budget") is None:
            err["budget"] = "请填写预算总额 / the budget is required"
        if v["basis"] == "per_kw" and not any(v.get(f"rate_{k}") for k in FACILITY_RATE_KEYS) \
                and not any(f"rate_{k}" in err for k in FACILITY_RATE_KEYS):
            err["rate_dc"] = "按功率补贴时至少填写一种设施类型的标准 / give a rate for at least one facility type"
        if v["basis"] == "per_kwh" and not v.get("rate_kwh") and "rate_kwh" not in err:
            err["rate_kwh"] = "按电量补贴时请填写每 kWh 标准 / give the rate per kWh"
        if v["basis"] == "per_kw":
            v["rate_kwh"] = None
        elif v["basis"] == "per_kwh":
            for k in FACILITY_RATE_KEYS:
                v[f"rate_{k}"] = None
        rs = raw["required_station_status"]
        if rs in ("", "any"):
            v["required_station_status"] = None
        elif rs.lstrip("-").isdigit() and int(rs) in STATION_STATUSES:
            v["required_station_status"] = int(rs)
        else:
            err["required_station_status"] = "未知的充电站状态 / unknown station status"
        v["required_interconnection"] = raw["required_interconnection"] or "none"
        if v["required_interconnection"] not in INTERCONNECTION_REQUIREMENTS:
            err["required_interconnection"] = "未知的互联互通状态 / unknown interconnection status"
        try:
            v["min_operator_power_kw"] = _dec(raw["min_operator_power_kw"], 1) or Decimal("0.0")
        except ValueError as exc:
            err["min_operator_power_kw"] = str(exc)
        return form


def rule_editable(rule: SubsidyRule, today: date | None = None) -> bool:
    """Unpublished rules always; published ones only before the application period opens."""
    return rule.published_at is None or (today or china_today()) < rule.apply_start


def get_rule(session: Session, rule_id: int, *, published_only: bool = False, lock: bool = False) -> SubsidyRule:
    q = select(SubsidyRule).where(SubsidyRule.id == rule_id)
    if lock:
        q = q.with_for_update()
    rule = session.scalars(q).first()
    if rule is None or (published_only and rule.published_at is None):
        raise NotFound(f"没有编号为 {rule_id} 的补贴规则 / no subsidy rule {rule_id}")
    return rule


def _check_form(form: RuleForm) -> None:
    if form.errors:
        raise BadRequest("; ".join(f"{RULE_LABELS[k][0]}: {m}" for k, m in form.errors.items()),
                         param=next(iter(form.errors)), details=form.errors)


def create_rule(session: Session, form: RuleForm, actor: Actor) -> SubsidyRule:
    _check_form(form)
    rule = SubsidyRule(**form.values, created_by=actor.user_id)
    session.add(rule)
    session.flush()
    return rule


def update_rule(session: Session, rule: SubsidyRule, form: RuleForm, *, today: date | None = None) -> SubsidyRule:
    if not rule_editable(rule, today):
        raise Conflict("补贴规则已发布且申请时间已开始，不能再修改 / the rule is published and its application period "
                       "has opened: it can no longer be edited")
    _check_form(form)
    for k, val in form.values.items():
        setattr(rule, k, val)
    session.flush()
    return rule


def publish_rule(session: Session, rule: SubsidyRule) -> SubsidyRule:
    if rule.published_at is not None:
        raise Conflict("该补贴规则已发布 / the rule is already published")
    rule.published_at = _now()
    session.flush()
    return rule


def list_rules(session: Session, *, published_only: bool) -> list[SubsidyRule]:
    q = select(SubsidyRule).order_by(SubsidyRule.apply_start.desc(), SubsidyRule.id.desc())
    if published_only:
        q = q.where(SubsidyRule.published_at.is_not(None))
    return list(session.scalars(q))


# === eligibility facts =========================================================================
def operator_power_kw(session: Session, operator_pk: int) -> Decimal:
    """Cumulative rated power of the operator's interconnected facilities."""
    total = session.scalar(select(func.coalesce(func.sum(FacilityArchive.power_kw), 0)).where(
        FacilityArchive.operator_pk == operator_pk, FacilityArchive.state == "interconnected"))
    return Decimal(total or 0)


def operator_check(session: Session, rule: SubsidyRule, operator_pk: int, *, today: date | None = None) -> list[Failure]:
    return operator_failures(terms_of(rule), today=today or china_today(),
                             operator_power_kw=operator_power_kw(session, operator_pk))


@dataclass
class StationOption:
    id: int
    station_id: str
    name: str | None
    station_status: int | None
    archive_state: str
    interconnected: bool
    failures: list[Failure]

    @property
    def eligible(self) -> bool:
        return not self.failures


_STATIONS = text("""
SELECT sa.id, sa.station_id, sa.name, sa.station_status, sa.state,
       coalesce(st.interconnected AND st.feed_state = 'active', false) AS interconnected
FROM station_archives sa
JOIN operators o ON o.id = sa.operator_pk
LEFT JOIN stations st ON st.operator_id = o.operator_id AND st.station_id = sa.station_id
WHERE sa.operator_pk = :op AND (CAST(:sid AS integer) IS NULL OR sa.id = :sid)
ORDER BY sa.station_id
""")


def station_options(session: Session, rule: SubsidyRule, operator_pk: int, *,
                    station_pk: int | None = None) -> list[StationOption]:
    """The operator's station archives, each with the rule's station conditions it fails."""
    terms = terms_of(rule)
    out = []
    for r in session.execute(_STATIONS, {"op": operator_pk, "sid": station_pk}).mappings():
        fails = station_failures(terms, station_status=r["station_status"], archive_approved=r["state"] == "approved",
                                 interconnected=bool(r["interconnected"]))
        out.append(StationOption(r["id"], r["station_id"], r["name"], r["station_status"], r["state"],
                                 bool(r["interconnected"]), fails))
    return out


@dataclass
class FacilityOption:
    id: int
    equipment_id: str
    equipment_name: str | None
    facility_type: str
    power_kw: Decimal
    state: str
    in_service_on: date | None
    claimed_by: int | None
    failures: list[Failure]

    @property
    def eligible(self) -> bool:
        return not self.failures


_FACILITIES = text("""
SELECT fa.id, fa.equipment_id, fa.equipment_name, fa.equipment_type, fa.power_kw, fa.state,
       CASE WHEN fa.state = 'interconnected' THEN
         (coalesce((SELECT max(e.at) FROM workflow_events e
                    WHERE e.workflow = 'facility_archive' AND e.entity_id = fa.id::text
                      AND e.to_state = 'interconnected'), fa.reviewed_at) AT TIME ZONE 'Asia/Shanghai')::date
       END AS in_service_on,
       (SELECT f.application_id FROM subsidy_application_facilities f
        WHERE f.rule_id = :rule AND f.facility_archive_pk = fa.id) AS claimed_by
FROM facility_archives fa
WHERE fa.operator_pk = :op AND fa.station_archive_pk = :station
ORDER BY fa.equipment_id
""")


def facility_options(session: Session, rule: SubsidyRule, operator_pk: int, station_pk: int, *,
                     application_id: int | None = None) -> list[FacilityOption]:
    """The station's facilities, each with the rule's facility conditions it fails."""
    terms = terms_of(rule)
    out = []
    for r in session.execute(_FACILITIES, {"rule": rule.id, "op": operator_pk, "station": station_pk}).mappings():
        fails = facility_failures(terms, state=r["state"], in_service_on=r["in_service_on"], claimed_by=r["claimed_by"],
                                  application_id=application_id)
        out.append(FacilityOption(r["id"], r["equipment_id"], r["equipment_name"],
                                  EQUIPMENT_TYPE_FACILITY.get(r["equipment_type"] or 0, "other"),
                                  Decimal(r["power_kw"] or 0), r["state"], r["in_service_on"], r["claimed_by"], fails))
    return out


# === applications ==============================================================================
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
    """What the form shows as it changes: the lines, the gross (rounded) and the caps' preview."""

    lines: list[tuple[FacilityOption, Decimal | None, Decimal]]  # option, kWh, exact line amount
    gross: Decimal
    capped: Decimal
    limited_by: str | None
    energy: StationEnergy | None
    energy_error: str | None = None


def _energy_period(rule: SubsidyRule, today: date) -> tuple[date, date]:
    return rule.subsidy_start, min(rule.subsidy_end, today)


def estimate(session: Session, rule: SubsidyRule, operator_pk: int, station: StationOption | None,
             chosen: Sequence[FacilityOption], energy_source: EnergySource | None, *,
             today: date | None = None, operator_id: str | None = None) -> Estimate:
    """The expected amount: exact lines, rounded once; the preview also applies the per-station and
    per-operator caps (against what this rule already accounted), never the budget."""
    today = today or china_today()
    energy: StationEnergy | None = None
    energy_error = None
    if rule.basis == "per_kwh" and station is not None and chosen:
        start, end = _energy_period(rule, today)
        if energy_source is None:
            energy_error = "无法获取充电量统计 / the charging statistics are unavailable"
        elif start <= end:
            try:
                energy = energy_source(operator_id or "", station.station_id, start, end)
            except EnergyUnavailable as exc:
                energy_error = str(exc)
        else:
            energy = StationEnergy(Decimal(0))
    rates = rule.rates()
    lines = []
    for f in chosen:
        kwh = energy.for_equipment(f.equipment_id) if energy is not None else None
        ln = Line(f.id, f.facility_type, f.power_kw, kwh)
        lines.append((f, kwh, line_amount(ln, rule.basis, rates, rule.rate_kwh)))
    gross = to_fen(sum((a for _, _, a in lines), Decimal(0)))
    used_station, used_operator = _accounted(session, rule.id, station_id=station.id if station else None,
                                             operator_pk=operator_pk)
    [alloc] = allocate([Claim(0, "s", "o", gross)], Caps(rule.cap_station, rule.cap_operator, None),
                       already_station={"s": used_station}, already_operator={"o": used_operator})
    return Estimate(lines, gross, alloc.amount, alloc.limited_by, energy, energy_error)


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
                     energy_source: EnergySource | None, operator_id: str, application: SubsidyApplication | None = None,
                     today: date | None = None) -> SubsidyApplication:
    """Create (or, when ``application`` is given and editable, change) an application; ``submit``
    also submits it. Every condition is checked, also on "save", so a draft never claims a
    facility it may not claim."""
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
    est = estimate(session, rule, actor.operator_pk, station, chosen, energy_source, today=today,  # type: ignore[arg-type]
                   operator_id=operator_id)
    if rule.basis == "per_kwh" and chosen and est.energy is None:
        raise BadRequest(est.energy_error or "无法获取充电量统计 / the charging statistics are unavailable")
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
        application.energy_fetched_at = _now()
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
    app.submitted_at = _now()
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


# === listing and statistics ====================================================================
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


# === review, accounting, payment (regulators) ==================================================
def review(session: Session, actor: Actor, app_id: int, action: str, reason: str | None = None) -> SubsidyApplication:
    if action not in ("approve", "return"):
        raise BadRequest("未知的审核操作 / unknown review action", param="action")
    app = get_application(session, app_id, lock=True)
    apply(session, WF, app, action, role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name,
          reason=reason)
    app.reviewed_at = _now()
    app.reviewed_by = actor.user_id
    rule = get_rule(session, app.rule_id)
    link = f"/backoffice/subsidy/applications/{app.id}"
    if action == "approve":
        app.return_reason = None
        _notify(session, app.operator_pk, "补贴申请审核通过",
                f"您在“{rule.name}”下的补贴申请 #{app.id}（{app.station_name or app.station_id}）已审核通过，"
                f"将进入财务核算。", link)
    else:
        app.return_reason = reason.strip() if reason else None
        _notify(session, app.operator_pk, "补贴申请已退回",
                f"您在“{rule.name}”下的补贴申请 #{app.id}（{app.station_name or app.station_id}）已退回，"
                f"原因：{app.return_reason}。请修改后重新提交。", link)
    return app


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
    now = _now()
    for app, alloc in zip(apps, allocations, strict=True):
        apply(session, WF, app, "account", role=role_of(actor.role), actor_user_id=actor.user_id,
              actor_name=actor.name, reason=(f"limited by the {alloc.limited_by} cap" if alloc.limited_by else None))
        app.accounted_amount = alloc.amount
        app.limited_by = alloc.limited_by
        app.accounted_at = now
        app.accounting_run_id = run.id
        note = {"station": "单站补贴上限", "operator": "单运营商补贴上限", "budget": "补贴预算"}.get(alloc.limited_by or "")
        _notify(session, app.operator_pk, "补贴申请已核算",
                f"您在“{rule.name}”下的补贴申请 #{app.id} 已完成财务核算，核算金额 {alloc.amount} 元"
                + (f"（受{note}限制，申请金额 {alloc.gross} 元）" if note else "") + "。",
                "/backoffice/subsidy/accounting")
    session.flush()
    return run


def mark_paid(session: Session, actor: Actor, app_id: int) -> SubsidyApplication:
    app = get_application(session, app_id, lock=True)
    apply(session, WF, app, "pay", role=role_of(actor.role), actor_user_id=actor.user_id, actor_name=actor.name)
    app.paid_at = _now()
    _notify(session, app.operator_pk, "补贴已支付", f"补贴申请 #{app.id} 的补贴 {app.accounted_amount} 元已支付。",
            "/backoffice/subsidy/accounting")
    return app

"""Subsidy rules (regulators write them, operators read the published ones): the rule form with
one message per bad field, creating, editing (until the application period opens) and
publishing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.errors import BadRequest, Conflict, NotFound
from services.models.subsidy import SubsidyRule
from services.stations.enums import STATION_STATUSES
from services.subsidy.amounts import BASES, FACILITY_RATE_KEYS
from services.subsidy.eligibility import INTERCONNECTION_REQUIREMENTS
from services.subsidy.shared import Actor, china_today, utc_now

__all__ = ["RULE_LABELS", "RuleForm", "create_rule", "get_rule", "list_rules", "publish_rule", "rule_editable",
           "update_rule"]

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
    rule.published_at = utc_now()
    session.flush()
    return rule


def list_rules(session: Session, *, published_only: bool) -> list[SubsidyRule]:
    q = select(SubsidyRule).order_by(SubsidyRule.apply_start.desc(), SubsidyRule.id.desc())
    if published_only:
        q = q.where(SubsidyRule.published_at.is_not(None))
    return list(session.scalars(q))


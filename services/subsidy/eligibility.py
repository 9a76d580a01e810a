"""Who and what may apply under a rule: each condition is checked on its own and, when it
fails, gives its own message (Chinese and English), so a page can say exactly what is missing.

Three levels, each a pure function of plain facts (the service gathers them from the database):

- operator: the rule is published, today is inside the application period, and the operator's
  cumulative rated power of interconnected facilities reaches the rule's minimum;
- station: the station's status is the one the rule requires, and its interconnection status
  is the one the rule requires;
- facility: it is interconnected, it entered service inside the subsidy period, and it is not
  already claimed under this rule by another application.

>>> t = RuleTerms(published=True, apply_start=date(2026, 1, 1), apply_end=date(2026, 1, 31),
...               subsidy_start=date(2025, 1, 1), subsidy_end=date(2025, 12, 31),
...               required_station_status=None, required_interconnection="none",
...               min_operator_power_kw=Decimal("100"))
>>> [f.code for f in operator_failures(t, today=date(2026, 1, 5), operator_power_kw=Decimal("100"))]
[]
>>> [f.code for f in operator_failures(t, today=date(2026, 2, 1), operator_power_kw=Decimal("99.9"))]
['application_period', 'operator_power']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from services.stations.enums import STATION_STATUSES

__all__ = [
    "Failure",
    "INTERCONNECTION_REQUIREMENTS",
    "RuleTerms",
    "facility_failures",
    "operator_failures",
    "station_failures",
    "terms_of",
]

INTERCONNECTION_REQUIREMENTS: dict[str, tuple[str, str]] = {
    "none": ("不限", "no requirement"),
    "archive_approved": ("站点档案审核通过", "station archive approved"),
    "interconnected": ("已互联互通", "interconnected with the platform"),
}


@dataclass(frozen=True)
class Failure:
    """One failed condition: a stable ``code`` for tests and templates, and the message."""

    code: str
    zh: str
    en: str

    def text(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


@dataclass(frozen=True)
class RuleTerms:
    published: bool
    apply_start: date
    apply_end: date
    subsidy_start: date
    subsidy_end: date
    required_station_status: int | None
    required_interconnection: str
    min_operator_power_kw: Decimal


def terms_of(rule: Any) -> RuleTerms:
    """The conditions of a rule row (``services.models.subsidy.SubsidyRule``) or any lookalike."""
    return RuleTerms(published=rule.published_at is not None, apply_start=rule.apply_start, apply_end=rule.apply_end,
                     subsidy_start=rule.subsidy_start, subsidy_end=rule.subsidy_end,
                     required_station_status=rule.required_station_status,
                     required_interconnection=rule.required_interconnection or "none",
                     min_operator_power_kw=Decimal(rule.min_operator_power_kw or 0))


def _status(code: int | None) -> tuple[str, str]:
    if code is None:
        return ("未知", "unknown")
    return STATION_STATUSES.get(code, (str(code), str(code)))


def operator_failures(terms: RuleTerms, *, today: date, operator_power_kw: Decimal) -> list[Failure]:
    out: list[Failure] = []
    if not terms.published:
        out.append(Failure("unpublished", "该补贴规则尚未发布", "this subsidy rule is not published"))
    if today < terms.apply_start:
        out.append(Failure("application_period",
                           f"申请时间未开始（{terms.apply_start} 至 {terms.apply_end}）",
                           f"the application period has not opened yet ({terms.apply_start} to {terms.apply_end})"))
    elif today > terms.apply_end:
        out.append(Failure("application_period",
                           f"申请时间已结束（{terms.apply_start} 至 {terms.apply_end}）",
                           f"the application period is over ({terms.apply_start} to {terms.apply_end})"))
    need = terms.min_operator_power_kw
    if need and operator_power_kw < need:
        out.append(Failure("operator_power",
                           f"运营商累计互联互通充电设施额定功率为 {operator_power_kw} kW，低于规则要求的 {need} kW",
                           f"the operator's interconnected facilities total {operator_power_kw} kW of rated power, "
                           f"below the rule's minimum of {need} kW"))
    return out


def station_failures(terms: RuleTerms, *, station_status: int | None, archive_approved: bool,
                     interconnected: bool) -> list[Failure]:
    out: list[Failure] = []
    want = terms.required_station_status
    if want is not None and station_status != want:
        have_zh, have_en = _status(station_status)
        want_zh, want_en = _status(want)
        out.append(Failure("station_status", f"充电站状态为“{have_zh}”，规则要求“{want_zh}”",
                           f"the station is {have_en}; the rule requires {want_en}"))
    req = terms.required_interconnection
    if req == "archive_approved" and not archive_approved:
        out.append(Failure("station_interconnection", "充电站档案尚未审核通过，规则要求站点档案审核通过",
                           "the station archive is not approved; the rule requires an approved station archive"))
    elif req == "interconnected" and not interconnected:
        out.append(Failure("station_interconnection", "充电站尚未互联互通，规则要求充电站已互联互通",
                           "the station is not interconnected; the rule requires an interconnected station"))
    return out


def facility_failures(terms: RuleTerms, *, state: str, in_service_on: date | None, claimed_by: int | None,
                      application_id: int | None = None) -> list[Failure]:
    """``claimed_by``: the application that already claims this facility under the rule, if any
    (the application being edited, ``application_id``, does not count)."""
    out: list[Failure] = []
    if state != "interconnected":
        out.append(Failure("facility_interconnected", "充电设施尚未完成互联互通",
                           "the facility is not interconnected"))
    if in_service_on is None or not (terms.subsidy_start <= in_service_on <= terms.subsidy_end):
        when = in_service_on.isoformat() if in_service_on else "—"
        out.append(Failure("facility_period",
                           f"充电设施投入使用日期（{when}）不在补贴时间范围内（{terms.subsidy_start} 至 {terms.subsidy_end}）",
                           f"the facility entered service on {when}, outside the subsidy period "
                           f"({terms.subsidy_start} to {terms.subsidy_end})"))
    if claimed_by is not None and claimed_by != application_id:
        out.append(Failure("facility_claimed", f"该充电设施已在本规则的申请 #{claimed_by} 中申报",
                           f"the facility is already claimed under this rule by application #{claimed_by}"))
    return out

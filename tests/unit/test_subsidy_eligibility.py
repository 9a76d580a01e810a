"""Each eligibility condition on its own makes an operator, station or facility ineligible,
with its own message; and the application workflow table, both ways."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.errors import Conflict, Forbidden
from services.subsidy.eligibility import RuleTerms, facility_failures, operator_failures, station_failures
from services.subsidy.states import APPLICATION_WORKFLOW as WF
from services.subsidy.states import EDITABLE, IN_PROCESS

TERMS = RuleTerms(published=True, apply_start=date(2026, 11, 1), apply_end=date(2026, 12, 31),
                  subsidy_start=date(2026, 1, 1), subsidy_end=date(2026, 10, 31), required_station_status=50,
                  required_interconnection="interconnected", min_operator_power_kw=Decimal("500"))
TODAY = date(2026, 11, 24)


def codes(failures) -> list[str]:  # noqa: ANN001
    return [f.code for f in failures]


# --- operator -------------------------------------------------------------------------------
def test_an_eligible_operator_has_no_failures() -> None:
    assert operator_failures(TERMS, today=TODAY, operator_power_kw=Decimal("500")) == []


@pytest.mark.parametrize("today, word", [(date(2026, 10, 31), "未开始"), (date(2027, 1, 1), "已结束")])
def test_outside_the_application_period_alone(today: date, word: str) -> None:
    [f] = operator_failures(TERMS, today=today, operator_power_kw=Decimal("9999"))
    assert f.code == "application_period" and word in f.zh and "2026-11-01" in f.zh and "application period" in f.en


def test_application_period_bounds_are_inclusive() -> None:
    for d in (TERMS.apply_start, TERMS.apply_end):
        assert operator_failures(TERMS, today=d, operator_power_kw=Decimal("500")) == []


def test_below_the_minimum_cumulative_power_alone() -> None:
    [f] = operator_failures(TERMS, today=TODAY, operator_power_kw=Decimal("499.9"))
    assert f.code == "operator_power" and "499.9 kW" in f.zh and "500 kW" in f.zh and "minimum" in f.en


def test_an_unpublished_rule_alone() -> None:
    from dataclasses import replace

    [f] = operator_failures(replace(TERMS, published=False), today=TODAY, operator_power_kw=Decimal("500"))
    assert f.code == "unpublished"


# --- station --------------------------------------------------------------------------------
def test_an_eligible_station_has_no_failures() -> None:
    assert station_failures(TERMS, station_status=50, archive_approved=True, interconnected=True) == []


def test_wrong_station_status_alone() -> None:
    [f] = station_failures(TERMS, station_status=1, archive_approved=True, interconnected=True)
    assert f.code == "station_status" and "建设中" in f.zh and "正常使用" in f.zh and "under construction" in f.en


def test_station_not_interconnected_alone() -> None:
    [f] = station_failures(TERMS, station_status=50, archive_approved=True, interconnected=False)
    assert f.code == "station_interconnection" and "互联互通" in f.zh and "not interconnected" in f.en


def test_station_archive_not_approved_when_the_rule_asks_for_it() -> None:
    from dataclasses import replace

    terms = replace(TERMS, required_interconnection="archive_approved")
    [f] = station_failures(terms, station_status=50, archive_approved=False, interconnected=True)
    assert f.code == "station_interconnection" and "审核通过" in f.zh


def test_no_station_requirements_accept_any_station() -> None:
    from dataclasses import replace

    terms = replace(TERMS, required_station_status=None, required_interconnection="none")
    assert station_failures(terms, station_status=None, archive_approved=False, interconnected=False) == []


# --- facility -------------------------------------------------------------------------------
def test_an_eligible_facility_has_no_failures() -> None:
    assert facility_failures(TERMS, state="interconnected", in_service_on=date(2026, 5, 1), claimed_by=None) == []


@pytest.mark.parametrize("state", ["pending", "under_review", "approved", "ic_review"])
def test_facility_not_interconnected_alone(state: str) -> None:
    [f] = facility_failures(TERMS, state=state, in_service_on=date(2026, 5, 1), claimed_by=None)
    assert f.code == "facility_interconnected" and "互联互通" in f.zh


@pytest.mark.parametrize("when", [date(2025, 12, 31), date(2026, 11, 1), None])
def test_facility_outside_the_subsidy_period_alone(when: date | None) -> None:
    [f] = facility_failures(TERMS, state="interconnected", in_service_on=when, claimed_by=None)
    assert f.code == "facility_period" and "2026-01-01" in f.zh and "subsidy period" in f.en


def test_facility_already_claimed_alone_but_not_by_the_application_itself() -> None:
    [f] = facility_failures(TERMS, state="interconnected", in_service_on=date(2026, 5, 1), claimed_by=7)
    assert f.code == "facility_claimed" and "#7" in f.zh
    assert facility_failures(TERMS, state="interconnected", in_service_on=date(2026, 5, 1), claimed_by=7,
                             application_id=7) == []


# --- the workflow table, both ways ----------------------------------------------------------
LEGAL = [
    ("pending", "submit", "operator", "submitted"),
    ("returned", "submit", "operator", "submitted"),
    ("submitted", "approve", "regulator", "approved"),
    ("submitted", "return", "regulator", "returned"),
    ("approved", "account", "regulator", "accounted"),
    ("accounted", "pay", "regulator", "paid"),
    ("pending", "delete", "operator", "deleted"),
    ("returned", "delete", "operator", "deleted"),
]


@pytest.mark.parametrize("state, action, role, nxt", LEGAL)
def test_every_legal_move(state: str, action: str, role: str, nxt: str) -> None:
    assert WF.next_state(state, action, role) == nxt
    assert WF.next_state(state, action, "admin" if role == "regulator" else role) == nxt


def test_every_other_move_is_a_conflict() -> None:
    legal = {(s, a) for s, a, _, _ in LEGAL}
    states = [s for s in WF.states if s != "deleted"]
    for s in states:
        for a in WF.actions():
            if (s, a) in legal:
                continue
            with pytest.raises(Conflict) as exc:
                WF.next_state(s, a, "operator")
            assert WF.label(s) in exc.value.message


@pytest.mark.parametrize("state, action, role", [("pending", "submit", "regulator"), ("submitted", "approve", "operator"),
                                                 ("submitted", "return", "operator"), ("approved", "account", "operator"),
                                                 ("pending", "delete", "regulator")])
def test_the_wrong_role_is_forbidden(state: str, action: str, role: str) -> None:
    with pytest.raises(Forbidden):
        WF.next_state(state, action, role)


def test_delete_is_allowed_exactly_outside_the_process() -> None:
    deletable = {s for s in WF.states if "delete" in WF.allowed(s, "operator")}
    assert deletable == set(EDITABLE) == {"pending", "returned"}
    assert not deletable & IN_PROCESS


def test_returning_needs_a_reason() -> None:
    assert "return" in WF.reason_required

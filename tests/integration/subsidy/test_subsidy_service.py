"""The subsidy service on a real PostGIS: eligibility from archives and the feed, saving and
submitting, batch operations with mixed states, caps-safe accounting, exports."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.errors import BadRequest, Conflict, NotFound
from services.models.subsidy import SubsidyApplication, SubsidyRule
from services.subsidy.accounting import account_rule, mark_paid
from services.subsidy.applications import (
    ApplicationForm,
    application_lines,
    batch_delete,
    batch_submit,
    delete_application,
    get_application,
    review,
    save_application,
    submit_application,
)
from services.subsidy.export import CURRENCY_FORMAT, accounting_xlsx, applications_xlsx
from services.subsidy.listing import ApplicationQuery, line_summary, list_applications, rule_totals, rule_tree
from services.subsidy.options import facility_options, operator_check, operator_power_kw, station_options
from services.subsidy.rules import RuleForm, update_rule
from services.workflow import events_for
from tests.integration.subsidy.conftest import TODAY, Factory, OrderBook, kwh

D = Decimal


def form(rule: int, station: int, facilities: list[int], **kw: str) -> ApplicationForm:
    data = {"rule": str(rule), "station": str(station), "facilities": [str(f) for f in facilities],
            "contact_name": "王五", "contact_phone": "13800138000", **kw}
    return ApplicationForm.parse(data)


def save(s: Session, op, rule_id: int, station: int, facilities: list[int], *,  # noqa: ANN001
         submit: bool = False) -> SubsidyApplication:
    app = save_application(s, op.actor, form(rule_id, station, facilities), submit=submit,
                               operator_id=op.operator_id)
    s.flush()
    return app


# --- eligibility from the database -----------------------------------------------------------
def test_operator_power_counts_only_interconnected_facilities(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    factory.facility(op, st, power="120")
    factory.facility(op, st, power="7", equipment_type=2)
    factory.facility(op, st, power="500", state="approved")
    assert operator_power_kw(session, op.pk) == D("127.0")
    rule = session.get(SubsidyRule, factory.rule(min_operator_power_kw=D("127.1")))
    assert [f.code for f in operator_check(session, rule, op.pk)] == ["operator_power"]
    rule.min_operator_power_kw = D("127.0")
    assert operator_check(session, rule, op.pk) == []


def test_station_conditions_read_the_archive_status_and_the_feed(factory: Factory, session: Session) -> None:
    op = factory.operator()
    ok = factory.station(op, status=50, feed_interconnected=True)
    building = factory.station(op, status=1, feed_interconnected=True)
    not_ic = factory.station(op, status=50, feed_interconnected=False)
    no_feed = factory.station(op, status=50)
    rule = session.get(SubsidyRule, factory.rule(required_station_status=50, required_interconnection="interconnected"))
    got = {o.id: [f.code for f in o.failures] for o in station_options(session, rule, op.pk)}
    assert got == {ok: [], building: ["station_status"], not_ic: ["station_interconnection"],
                   no_feed: ["station_interconnection"]}


def test_facility_conditions(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    good = factory.facility(op, st)
    pending = factory.facility(op, st, state="ic_review")
    early = factory.facility(op, st, in_service=TODAY - timedelta(days=400))
    rule_id = factory.rule()
    rule = session.get(SubsidyRule, rule_id)
    claimed = factory.facility(op, st)
    app = save(session, op, rule_id, st, [claimed])
    got = {o.id: [f.code for f in o.failures] for o in facility_options(session, rule, op.pk, st)}
    assert got == {good: [], pending: ["facility_interconnected", "facility_period"], early: ["facility_period"],
                   claimed: ["facility_claimed"]}
    # the application that claims it may keep it
    again = {o.id: o.failures for o in facility_options(session, rule, op.pk, st, application_id=app.id)}
    assert again[claimed] == []


def test_saving_refuses_an_ineligible_facility_with_its_message(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    bad = factory.facility(op, st, state="approved")
    rule_id = factory.rule()
    with pytest.raises(BadRequest) as exc:
        save(session, op, rule_id, st, [bad])
    assert "互联互通" in exc.value.message


def test_outside_the_application_period_nothing_can_be_saved(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    f = factory.facility(op, st)
    rule_id = factory.rule(apply_start=TODAY + timedelta(days=1), apply_end=TODAY + timedelta(days=9))
    with pytest.raises(BadRequest) as exc:
        save(session, op, rule_id, st, [f])
    assert "申请时间未开始" in exc.value.message


def test_a_facility_is_claimed_once_per_rule_but_again_under_another_rule(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    f = factory.facility(op, st)
    r1, r2 = factory.rule(), factory.rule()
    save(session, op, r1, st, [f])
    with pytest.raises(BadRequest) as exc:
        save(session, op, r1, st, [f])
    assert "已在本规则的申请" in exc.value.message
    save(session, op, r2, st, [f])


def test_another_operators_station_or_application_is_not_found(factory: Factory, session: Session) -> None:
    a, b = factory.operator(), factory.operator()
    st_b = factory.station(b)
    f_b = factory.facility(b, st_b)
    rule_id = factory.rule()
    with pytest.raises(NotFound):
        save(session, a, rule_id, st_b, [f_b])
    app = save(session, b, rule_id, st_b, [f_b])
    with pytest.raises(NotFound):
        get_application(session, app.id, operator_pk=a.pk)
    with pytest.raises(NotFound):
        submit_application(session, a.actor, app.id)
    with pytest.raises(NotFound):
        batch_delete(session, a.actor, [app.id])


# --- amounts ---------------------------------------------------------------------------------
def test_expected_amount_per_kw_by_facility_type(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    fs = [factory.facility(op, st, power="120", equipment_type=1), factory.facility(op, st, power="7", equipment_type=2),
          factory.facility(op, st, power="60.5", equipment_type=3)]
    app = save(session, op, factory.rule(rate_acdc=D("150.0055")), st, fs)
    # 120*200 + 7*100 + 60.5*150.0055 = 24000 + 700 + 9075.33275 -> 33775.33
    assert app.expected_amount == D("33775.33")
    lines = application_lines(session, app.id)
    assert sum(x.amount for x in lines) == D("33775.33275")


def test_expected_amount_per_kwh_uses_the_agreed_orders_of_the_subsidy_period(factory: Factory, engine,  # noqa: ANN001
                                                                               session: Session) -> None:
    # Issue 15, item 7: the kWh come from reconciled orders, no longer from query_station_stats
    # (which this used to read); the statistics are not even needed to save (see test_subsidy_orders).
    op = factory.operator()
    st = factory.station(op, feed_interconnected=True)
    f1, f2 = factory.facility(op, st), factory.facility(op, st)
    (c1,), (c2,) = factory.feed_pile(op, st, f1), factory.feed_pile(op, st, f2)
    book = OrderBook(engine, op)
    day = TODAY - timedelta(days=2)
    orders = [book.push(c1, day, hour=8, minutes=95), book.push(c2, day, hour=13, minutes=1),
              book.push(c1, TODAY - timedelta(days=400))]  # before the subsidy period: not looked at
    book.reconcile(day, [book.listed(o) for o in orders[:2]])
    rule_id = factory.rule(basis="per_kwh", rate_dc=None, rate_ac=None, rate_acdc=None, rate_wireless=None,
                           rate_kwh=D("0.1235"), subsidy_end=TODAY + timedelta(days=30))
    app = save(session, op, rule_id, st, [f1, f2])
    # (76.00 + 0.80) * 0.1235 = 9.4848 -> 9.48
    assert kwh(*orders[:2]) == D("76.80")
    assert app.expected_amount == D("9.48") and app.energy_kwh == D("76.80")
    assert sorted(x.amount for x in application_lines(session, app.id)) == [D("0.80") * D("0.1235"),
                                                                          D("76.00") * D("0.1235")]


# --- states and batches ----------------------------------------------------------------------
def test_submit_review_and_events(factory: Factory, session: Session) -> None:
    op = factory.operator()
    reg = factory.regulator()
    st = factory.station(op)
    app = save(session, op, factory.rule(), st, [factory.facility(op, st)], submit=True)
    assert app.state == "submitted" and app.first_submitted_at is not None
    with pytest.raises(BadRequest):
        review(session, reg, app.id, "return", reason=" ")
    review(session, reg, app.id, "return", reason="缺少材料")
    assert app.state == "returned" and app.return_reason == "缺少材料"
    submit_application(session, op.actor, app.id)
    review(session, reg, app.id, "approve")
    with pytest.raises(Conflict):
        delete_application(session, op.actor, app.id)
    session.flush()
    events = [(e.action, e.from_state, e.to_state) for e in events_for(session, "subsidy_application", [app.id])]
    assert events == [("submit", "pending", "submitted"), ("return", "submitted", "returned"),
                      ("submit", "returned", "submitted"), ("approve", "submitted", "approved")]
    notices = session.execute(text(
        "SELECT m.title FROM messages m JOIN message_recipients r ON r.message_id = m.id "
        "WHERE r.operator_pk = :op ORDER BY m.id"), {"op": op.pk}).scalars().all()
    assert notices == ["补贴申请已退回", "补贴申请审核通过"]


def test_batch_submit_is_all_or_nothing_and_names_the_offenders(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op)
    rule_id = factory.rule()
    a = save(session, op, rule_id, st, [factory.facility(op, st)])
    b = save(session, op, rule_id, st, [factory.facility(op, st)])
    c = save(session, op, rule_id, st, [factory.facility(op, st)], submit=True)
    with pytest.raises(Conflict) as exc:
        batch_submit(session, op.actor, [a.id, b.id, c.id])
    assert f"#{c.id}" in exc.value.message and f"#{a.id}" not in exc.value.message
    assert (a.state, b.state) == ("pending", "pending")
    batch_submit(session, op.actor, [a.id, b.id])
    assert (a.state, b.state) == ("submitted", "submitted")


def test_batch_delete_refuses_any_in_process(factory: Factory, session: Session) -> None:
    op = factory.operator()
    reg = factory.regulator()
    st = factory.station(op)
    rule_id = factory.rule()
    a = save(session, op, rule_id, st, [factory.facility(op, st)])
    r = save(session, op, rule_id, st, [factory.facility(op, st)], submit=True)
    review(session, reg, r.id, "return", reason="补充材料")
    busy = save(session, op, rule_id, st, [factory.facility(op, st)], submit=True)
    ids = [a.id, r.id, busy.id]
    with pytest.raises(Conflict) as exc:
        batch_delete(session, op.actor, ids)
    assert f"#{busy.id}" in exc.value.message
    assert session.scalar(select(text("count(*)")).select_from(SubsidyApplication).where(SubsidyApplication.id.in_(ids))) == 3
    assert batch_delete(session, op.actor, [a.id, r.id]) == 2
    assert {x.id for x in session.scalars(select(SubsidyApplication).where(SubsidyApplication.id.in_(ids)))} == {busy.id}
    # a deleted application frees its facilities for a new application under the rule
    assert all(o.claimed_by in (None, busy.id) for o in
               facility_options(session, session.get(SubsidyRule, rule_id), op.pk, st))


# --- accounting ------------------------------------------------------------------------------
def _approved(session: Session, factory: Factory, reg, op, rule_id: int, st: int, power: str) -> SubsidyApplication:  # noqa: ANN001
    app = save(session, op, rule_id, st, [factory.facility(op, st, power=power)], submit=True)
    review(session, reg, app.id, "approve")
    return app


def test_accounting_applies_station_operator_and_budget_caps_in_application_order(factory: Factory, session: Session) -> None:
    reg = factory.regulator()
    a, b = factory.operator(), factory.operator()
    a1, a2, b1 = factory.station(a), factory.station(a), factory.station(b)
    rule_id = factory.rule(cap_station=D("15000"), cap_operator=D("25000"), budget=D("32000.50"))
    x1 = _approved(session, factory, reg, a, rule_id, a1, "60")  # 12000
    x2 = _approved(session, factory, reg, a, rule_id, a1, "60")  # 12000 -> station headroom 3000
    x3 = _approved(session, factory, reg, a, rule_id, a2, "60")  # 12000 -> operator headroom 10000
    x4 = _approved(session, factory, reg, b, rule_id, b1, "60")  # 12000 -> budget headroom 7000.50
    run = account_rule(session, reg, rule_id)
    got = [(x.accounted_amount, x.limited_by, x.state) for x in (x1, x2, x3, x4)]
    assert got == [(D("12000.00"), None, "accounted"), (D("3000.00"), "station", "accounted"),
                   (D("10000.00"), "operator", "accounted"), (D("7000.50"), "budget", "accounted")]
    assert run.total == D("32000.50") and run.applications == 4
    totals = rule_totals(session, session.get(SubsidyRule, rule_id))
    assert totals["accounted"] == D("32000.50") and totals["remaining"] == D("0.00")
    # a later approval under an exhausted budget is accounted at zero, never beyond
    x5 = _approved(session, factory, reg, b, rule_id, b1, "7")
    account_rule(session, reg, rule_id)
    assert x5.accounted_amount == D("0.00") and x5.limited_by == "budget"
    with pytest.raises(Conflict):
        account_rule(session, reg, rule_id)
    mark_paid(session, reg, x1.id)
    assert x1.state == "paid"


def test_exports_hold_numbers_with_currency_format_and_totals(factory: Factory, session: Session) -> None:
    reg = factory.regulator()
    op = factory.operator()
    st = factory.station(op, name="情侣路站")
    rule_id = factory.rule(cap_station=D("10000.25"))
    x1 = _approved(session, factory, reg, op, rule_id, st, "60")  # 12000 -> 10000.25
    x2 = save(session, op, rule_id, st, [factory.facility(op, st, power="7.5", equipment_type=2)])  # 750
    account_rule(session, reg, rule_id)
    rules = {rule_id: session.get(SubsidyRule, rule_id)}
    apps = list_applications(session, ApplicationQuery(rule_id=rule_id), operator_pk=op.pk)
    data = applications_xlsx(apps, rules, line_summary(session, [a.id for a in apps]))
    ws = load_workbook(BytesIO(data)).active
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][0] == "申请编号" and len(rows) == 1 + 2 + 1
    body = {r[0]: r for r in rows[1:3]}
    assert body[x1.id][3] == "情侣路站" and body[x1.id][6] == "已核算"
    assert body[x1.id][7] == 12000 and body[x1.id][8] == pytest.approx(10000.25)
    assert body[x2.id][7] == 750 and body[x2.id][8] is None
    total = rows[-1]
    assert total[0] == "合计" and total[7] == 12750 and total[8] == pytest.approx(10000.25) and total[5] == pytest.approx(67.5)
    for row in ws.iter_rows(min_row=2):
        for cell in (row[7], row[8]):
            if cell.value is not None:
                assert isinstance(cell.value, (int, float)) and cell.number_format == CURRENCY_FORMAT

    done = [a for a in apps if a.state in ("accounted", "paid")]
    ws2 = load_workbook(BytesIO(accounting_xlsx(done, rules))).active
    rows2 = list(ws2.iter_rows(values_only=True))
    assert len(rows2) == 1 + 1 + 1 and rows2[1][5] == pytest.approx(10000.25) and rows2[1][6] == "单站上限"
    assert rows2[-1][5] == pytest.approx(10000.25)
    assert ws2.cell(row=2, column=6).number_format == CURRENCY_FORMAT


def test_rule_tree_counts_and_done_marks(factory: Factory, session: Session) -> None:
    reg = factory.regulator()
    op = factory.operator()
    st = factory.station(op)
    r_open = factory.rule()
    r_done = factory.rule()
    save(session, op, r_open, st, [factory.facility(op, st)])
    save(session, op, r_open, st, [factory.facility(op, st)], submit=True)
    _approved(session, factory, reg, op, r_done, st, "10")
    account_rule(session, reg, r_done)
    tree = {n["rule"].id: n for n in rule_tree(session, op.pk)}
    assert (tree[r_open]["total"], tree[r_open]["action"], tree[r_open]["done"]) == (2, 1, False)
    assert (tree[r_done]["total"], tree[r_done]["action"], tree[r_done]["done"]) == (1, 0, True)


def test_rules_are_editable_only_before_the_application_period_when_published(factory: Factory, session: Session) -> None:
    rule = session.get(SubsidyRule, factory.rule())
    raw = {k: v for k, v in RuleForm.from_rule(rule).raw.items()}
    with pytest.raises(Conflict):
        update_rule(session, rule, RuleForm.parse(raw))
    future = session.get(SubsidyRule, factory.rule(apply_start=TODAY + timedelta(days=3),
                                                   apply_end=TODAY + timedelta(days=9)))
    raw = RuleForm.from_rule(future).raw | {"name": "改过的名字"}
    update_rule(session, future, RuleForm.parse(raw))
    assert future.name == "改过的名字"


def test_rule_form_validation_names_each_field() -> None:
    f = RuleForm.parse({"name": "", "subsidy_start": "2026-02-01", "subsidy_end": "2026-01-01",
                            "apply_start": "x", "apply_end": "2026-01-01", "basis": "per_kw", "budget": "1.001",
                            "cap_station": "-1", "required_station_status": "7"})
    assert set(f.errors) >= {"name", "subsidy_end", "apply_start", "budget", "cap_station", "rate_dc",
                             "required_station_status"}
    ok = RuleForm.parse({"name": "n", "subsidy_start": "2026-01-01", "subsidy_end": "2026-12-31",
                             "apply_start": "2027-01-01", "apply_end": "2027-02-01", "basis": "per_kwh",
                             "rate_kwh": "0.1235", "budget": "1,000,000.5", "rate_dc": "200"})
    assert ok.errors == {} and ok.values["budget"] == D("1000000.50") and ok.values["rate_dc"] is None

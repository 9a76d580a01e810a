"""Per-kWh subsidies from reconciled charge orders (issue 15, item 7), on a real PostGIS: orders
pushed through ``store_order`` and reconciled through ``reconcile`` for the piles of the claimed
facilities; the amount is the rate × the agreed energy exactly, every other order is excluded
with its reason, ``query_station_stats`` is a cross-check flagged beyond 5 % either way, and the
exports carry the same figures."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from services.models.subsidy import SubsidyApplication, SubsidyRule
from services.subsidy.accounting import account_rule
from services.subsidy.applications import (
    ApplicationForm,
    application_energy,
    application_lines,
    applications_energy,
    estimate,
    review,
    save_application,
)
from services.subsidy.energy import EnergyUnavailable, StationEnergy, energy_basis, kwh_text
from services.subsidy.export import ENERGY_HEADERS, KWH_FORMAT, accounting_xlsx, applications_xlsx
from services.subsidy.options import facility_options, station_options
from tests.integration.subsidy.conftest import TODAY, Factory, FakeEnergy, Op, OrderBook, Scene, kwh

D = Decimal
RATE = D("0.1235")


def per_kwh_rule(factory: Factory, **kw) -> int:  # noqa: ANN003
    values = dict(basis="per_kwh", rate_dc=None, rate_ac=None, rate_acdc=None, rate_wireless=None, rate_kwh=RATE,
                  subsidy_start=TODAY - timedelta(days=20))
    return factory.rule(**{**values, **kw})


def save(s: Session, op: Op, rule_id: int, station: int, facilities: list[int], *, submit: bool = False
         ) -> SubsidyApplication:
    form = ApplicationForm.parse({"rule": str(rule_id), "station": str(station),
                                  "facilities": [str(f) for f in facilities], "contact_name": "王五",
                                  "contact_phone": "13800138000"})
    app = save_application(s, op.actor, form, submit=submit, operator_id=op.operator_id)
    s.flush()
    return app


def fen(amount: Decimal) -> Decimal:
    return amount.quantize(D("0.01"), rounding=ROUND_HALF_UP)


def test_the_amount_is_the_rate_times_the_agreed_energy_and_every_exclusion_has_its_reason(
        scene: Scene, session: Session) -> None:
    o = scene.orders
    rule_id = per_kwh_rule(scene.factory)
    app = save(session, scene.op, rule_id, scene.st, [scene.f1, scene.f2])
    assert scene.agreed > 0
    assert app.energy_kwh == scene.agreed
    assert app.expected_amount == fen(scene.agreed * RATE)
    lines = {x.equipment_id: x for x in application_lines(session, app.id)}
    assert lines[scene.eq1].kwh == kwh(o["a1"]) and lines[scene.eq1].amount == kwh(o["a1"]) * RATE
    assert lines[scene.eq2].kwh == kwh(o["a2"]) and lines[scene.eq2].amount == kwh(o["a2"]) * RATE

    basis = application_energy(session, app, session.get(SubsidyRule, rule_id), scene.op.operator_id, None)
    assert basis is not None and basis.check is None  # no statistics asked: nothing to compare
    assert (basis.start, basis.end) == (TODAY - timedelta(days=20), TODAY)
    assert (basis.counted.orders, basis.counted.kwh) == (2, scene.agreed)
    got = {reason: (t.orders, t.kwh, dict(t.codes)) for reason, t in basis.excluded.items()}
    assert got == {
        "disputed_on_receipt": (1, kwh(o["over"]), {"over_tariff": 1}),
        "reconcile_disputed": (2, kwh(o["money"], o["energy"]), {"dispute_2": 1, "dispute_3": 1}),
        "unlisted": (1, kwh(o["omitted"]), {}),
        "revised_unreconciled": (1, kwh(o["revised2"]), {}),
        "unreconciled": (1, kwh(o["late"]), {}),
    }
    assert list(basis.excluded) == ["disputed_on_receipt", "reconcile_disputed", "unlisted", "revised_unreconciled",
                                    "unreconciled"]
    assert (basis.excluded_total.orders, basis.received.orders) == (6, 8)
    assert (basis.other.orders, basis.other.kwh) == (1, kwh(o["other"]))  # the unclaimed pile, shown apart
    assert [f.code for f in basis.flags] == []
    # per pile
    assert (basis.counted_for(scene.eq1).orders, basis.excluded_for(scene.eq1).orders) == (1, 4)
    assert (basis.counted_for(scene.eq2).orders, basis.excluded_for(scene.eq2).orders) == (1, 2)


def test_a_revision_counts_once_its_latest_version_is_reconciled(scene: Scene, session: Session) -> None:
    o, book = scene.orders, scene.book
    book.reconcile(TODAY - timedelta(days=3), [book.listed(o[k]) for k in ("a1", "a2", "revised2", "omitted")])
    rule_id = per_kwh_rule(scene.factory)
    app = save(session, scene.op, rule_id, scene.st, [scene.f1, scene.f2])
    agreed = kwh(o["a1"], o["a2"], o["revised2"], o["omitted"])
    assert app.energy_kwh == agreed and app.expected_amount == fen(agreed * RATE)
    basis = application_energy(session, app, session.get(SubsidyRule, rule_id), scene.op.operator_id, None)
    # the latest list speaks for every order of the day: what it left out is now unlisted
    assert set(basis.excluded) == {"disputed_on_receipt", "unlisted", "unreconciled"}
    assert basis.excluded["unlisted"].orders == 2  # money and energy (over was disputed on receipt already)
    assert basis.excluded["disputed_on_receipt"].orders == 1 and basis.counted.orders == 4


def test_no_orders_is_zero_kwh_with_a_flag_never_the_statistics(factory: Factory, session: Session) -> None:
    op = factory.operator()
    st = factory.station(op, feed_interconnected=True)
    f = factory.facility(op, st)
    factory.feed_pile(op, st, f)
    rule_id = per_kwh_rule(factory)
    rule = session.get(SubsidyRule, rule_id)
    stats = FakeEnergy({factory.equipment_id_of(f): "500"})
    station = station_options(session, rule, op.pk, station_pk=st)[0]
    chosen = facility_options(session, rule, op.pk, st)
    est = estimate(session, rule, op.pk, station, chosen, stats, operator_id=op.operator_id)
    assert est.gross == D("0.00") and [k for _, k, _ in est.lines] == [D(0)]
    assert [f.code for f in est.basis.flags] == ["no_orders", "stats_difference"]
    assert est.basis.check.stats_kwh == D(500) and est.basis.check.orders_kwh == D(0)
    app = save(session, op, rule_id, st, [f], submit=True)
    assert app.state == "submitted" and app.expected_amount == D("0.00") and app.energy_kwh == D(0)


def _basis(session: Session, scene: Scene, stats) -> object:  # noqa: ANN001
    return energy_basis(session, scene.op.operator_id, scene.factory.station_id_of(scene.st),
                        [scene.eq1, scene.eq2], TODAY - timedelta(days=20), TODAY, stats)


def test_the_statistics_are_flagged_beyond_5_percent_either_way(scene: Scene, session: Session) -> None:
    o = scene.orders
    k2 = kwh(o["a2"])
    agreed = scene.agreed
    assert agreed == D("100.00")  # a1: 60 kW × 75 min × 0.8 = 60 kWh; a2: 60 kW × 50 min × 0.8 = 40 kWh

    def stats_for(total: str) -> FakeEnergy:  # split like the orders; another pile's figure is not compared
        return FakeEnergy({scene.eq1: str(D(total) - k2), scene.eq2: str(k2), "ELSEWHERE": "1000"})

    # the difference is taken on the statistics' figure: flagged when |orders − stats| > 5 % × stats
    cases = [("100", False),
             ("105.26", False), ("105.27", True), ("130", True),   # orders below the statistics
             ("95.24", False), ("95.23", True), ("50", True)]      # orders above the statistics
    for total, flagged in cases:
        basis = _basis(session, scene, stats_for(total))
        c = basis.check
        assert (c.scope, c.orders_kwh, c.stats_kwh) == ("facilities", agreed, D(total))
        assert c.flagged is flagged, (total, c.percent)
        assert ("stats_difference" in [f.code for f in basis.flags]) is flagged
        assert basis.counted.kwh == agreed  # the statistics never move the amount's basis
    flag = next(f for f in _basis(session, scene, stats_for("130")).flags if f.code == "stats_difference")
    assert "100" in flag.zh and "130" in flag.zh and "-23.08%" in flag.zh

    # statistics without a breakdown by pile: the whole station's counted orders against StationElectricity
    station_counted = agreed + kwh(o["other"])
    basis = _basis(session, scene, lambda *_a: StationEnergy(station_counted * D("1.2")))
    assert (basis.check.scope, basis.check.orders_kwh, basis.check.flagged) == ("station", station_counted, True)
    basis = _basis(session, scene, lambda *_a: StationEnergy(station_counted))
    assert basis.check.flagged is False

    def down(*_a: object) -> StationEnergy:
        raise EnergyUnavailable("运营商平台无响应 / the operator's platform does not answer")

    basis = _basis(session, scene, down)
    assert basis.check.stats_kwh is None and [f.code for f in basis.flags] == ["stats_unavailable"]
    assert "无响应" in basis.flags[0].zh and basis.counted.kwh == agreed


def test_orders_reconciled_after_saving_are_flagged_until_saved_again(scene: Scene, session: Session) -> None:
    o, book = scene.orders, scene.book
    rule_id = per_kwh_rule(scene.factory)
    rule = session.get(SubsidyRule, rule_id)
    app = save(session, scene.op, rule_id, scene.st, [scene.f1, scene.f2])
    before = app.expected_amount
    book.reconcile(TODAY - timedelta(days=1), [book.listed(o["late"])])
    basis = application_energy(session, app, rule, scene.op.operator_id, None)
    assert basis.counted.kwh == scene.agreed + kwh(o["late"])
    [flag] = basis.flags
    assert flag.code == "changed"
    assert kwh_text(scene.agreed) in flag.zh and kwh_text(scene.agreed + kwh(o["late"])) in flag.en
    assert app.expected_amount == before  # nothing moves under the reviewer
    again = save_application(session, scene.op.actor, ApplicationForm.of(app, [scene.f1, scene.f2]), submit=False,
                             operator_id=scene.op.operator_id, application=app)
    assert again.expected_amount == fen((scene.agreed + kwh(o["late"])) * RATE)
    assert [f.code for f in application_energy(session, app, rule, scene.op.operator_id, None).flags] == []


def test_per_kw_rules_do_not_look_at_orders(scene: Scene, session: Session) -> None:
    rule_id = scene.factory.rule()
    app = save(session, scene.op, rule_id, scene.st, [scene.f1])
    assert app.expected_amount == D("12000.00") and app.energy_kwh is None
    assert application_energy(session, app, session.get(SubsidyRule, rule_id), scene.op.operator_id, None) is None


def test_exports_carry_the_energy_the_orders_and_the_exclusions(scene: Scene, session: Session) -> None:
    o = scene.orders
    reg = scene.factory.regulator()
    rule_id = per_kwh_rule(scene.factory)
    app = save(session, scene.op, rule_id, scene.st, [scene.f1, scene.f2], submit=True)
    review(session, reg, app.id, "approve")
    account_rule(session, reg, rule_id)
    kw_rule = scene.factory.rule()
    kw_app = save(session, scene.op, kw_rule, scene.st, [scene.f3])
    rules = {rule_id: session.get(SubsidyRule, rule_id), kw_rule: session.get(SubsidyRule, kw_rule)}
    apps = [app, kw_app]
    energy = applications_energy(session, apps, rules)
    assert set(energy) == {app.id}
    excluded = kwh(o["over"], o["money"], o["energy"], o["omitted"], o["revised2"], o["late"])

    ws = load_workbook(BytesIO(applications_xlsx(apps, rules, {}, energy))).active
    rows = list(ws.iter_rows(values_only=True))
    assert list(rows[0][11:]) == ENERGY_HEADERS
    by_id = {r[0]: r for r in rows[1:-1]}
    row = by_id[app.id]
    assert row[7] == pytest.approx(float(fen(scene.agreed * RATE)))
    assert D(str(row[11])) == scene.agreed and row[12] == 2 and row[13] == 6 and D(str(row[14])) == excluded
    reasons = row[15]
    for label in ("接收时存疑", "over_tariff×1", "对账争议", "金额不符×1", "电量不符×1", "运营商对账清单未列出",
                  "订单已修订，最新版本尚未对账", "尚未对账 1 单"):
        assert label in reasons, (label, reasons)
    assert row[16] is None  # no flag
    assert by_id[kw_app.id][11:] == (None,) * len(ENERGY_HEADERS)
    total = rows[-1]
    assert total[0] == "合计" and D(str(total[11])) == scene.agreed and total[12] == 2 and total[13] == 6
    assert ws.cell(row=2, column=12).number_format == KWH_FORMAT

    ws2 = load_workbook(BytesIO(accounting_xlsx([app], rules, energy))).active
    rows2 = list(ws2.iter_rows(values_only=True))
    assert list(rows2[0][10:]) == ENERGY_HEADERS
    assert D(str(rows2[1][10])) == scene.agreed and rows2[1][11] == 2 and rows2[1][12] == 6
    assert "over_tariff×1" in rows2[1][14]
    assert rows2[1][5] == pytest.approx(float(fen(scene.agreed * RATE)))


def test_an_order_received_before_its_connector_was_known_belongs_to_its_station_now(
        factory: Factory, engine, session: Session) -> None:  # noqa: ANN001
    op = factory.operator()
    st = factory.station(op, feed_interconnected=True)
    f = factory.facility(op, st)
    book = OrderBook(engine, op)
    day = TODAY - timedelta(days=2)
    early = book.push(f"{factory.equipment_id_of(f)}1", day)  # the connector is not in the feed yet: disputed
    factory.feed_pile(op, st, f)
    clean = book.push(f"{factory.equipment_id_of(f)}1", day, hour=12)
    book.reconcile(day, [book.listed(early), book.listed(clean)])
    app = save(session, op, per_kwh_rule(factory), st, [f])
    basis = application_energy(session, app, session.get(SubsidyRule, app.rule_id), op.operator_id, None)
    assert (basis.counted.orders, basis.counted.kwh) == (1, kwh(clean))
    assert basis.excluded["disputed_on_receipt"].codes == Counter({"connector": 1})

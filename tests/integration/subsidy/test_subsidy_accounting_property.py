"""Property test of the accounting on the real database: whatever the approved amounts, the
caps and the number of accounting runs, no station, operator or budget total ever exceeds its
cap, and no application gets more than it asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from services.models.subsidy import SubsidyApplication
from services.subsidy.accounting import account_rule
from tests.integration.subsidy.conftest import Factory

D = Decimal
money = st.decimals(min_value=D("0"), max_value=D("50000"), places=2, allow_nan=False, allow_infinity=False)
cap = st.one_of(st.none(), money)
claims = st.lists(st.tuples(st.integers(0, 3), money, st.booleans()), min_size=1, max_size=25)


def test_property_accounting_never_breaks_a_cap(engine: Engine) -> None:
    factory = Factory(engine)
    ops = [factory.operator(), factory.operator()]
    stations = [(op, factory.station(op)) for op in ops for _ in range(2)]  # 4 stations, 2 per operator
    reg = factory.regulator()
    Session = sessionmaker(engine, expire_on_commit=False)
    examples = []

    @settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(claims, cap, cap, money)
    def run(raw, station_cap, operator_cap, budget) -> None:  # noqa: ANN001
        examples.append(1)
        rule_id = factory.rule(cap_station=station_cap, cap_operator=operator_cap, budget=budget)
        t0 = datetime.now(UTC) - timedelta(days=1)
        with Session.begin() as s:
            for i, (k, amount, later) in enumerate(raw):
                op, st_pk = stations[k]
                s.add(SubsidyApplication(rule_id=rule_id, operator_pk=op.pk, station_archive_pk=st_pk,
                                         station_id=f"S{k}", state="submitted" if later else "approved",
                                         expected_amount=amount, first_submitted_at=t0 + timedelta(seconds=i)))
        # two runs: the first accounts the early approvals, the second the later ones
        for phase in (1, 2):
            with Session.begin() as s:
                if phase == 2:
                    s.execute(text("UPDATE subsidy_applications SET state = 'approved' "
                                   "WHERE rule_id = :r AND state = 'submitted'"), {"r": rule_id})
                if s.scalar(text("SELECT count(*) FROM subsidy_applications WHERE rule_id = :r AND state = 'approved'"),
                            {"r": rule_id}):
                    account_rule(s, reg, rule_id)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT station_archive_pk, operator_pk, expected_amount, accounted_amount, state "
                                     "FROM subsidy_applications WHERE rule_id = :r"), {"r": rule_id}).all()
        assert all(r.state == "accounted" for r in rows)
        assert all(D(0) <= r.accounted_amount <= r.expected_amount for r in rows)
        per_station: dict[int, Decimal] = {}
        per_operator: dict[int, Decimal] = {}
        for r in rows:
            per_station[r.station_archive_pk] = per_station.get(r.station_archive_pk, D(0)) + r.accounted_amount
            per_operator[r.operator_pk] = per_operator.get(r.operator_pk, D(0)) + r.accounted_amount
        if station_cap is not None:
            assert max(per_station.values()) <= station_cap
        if operator_cap is not None:
            assert max(per_operator.values()) <= operator_cap
        assert sum(per_station.values(), D(0)) <= budget
        # nothing was cut without a reason: without caps every amount is paid in full
        if station_cap is None and operator_cap is None and sum(r.expected_amount for r in rows) <= budget:
            assert all(r.accounted_amount == r.expected_amount for r in rows)

    run()
    assert len(examples) >= 20

"""Tariffs and order checks without a database (issue 15)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.orders.sample import billed_order
from services.orders.checks import ConnectorRef, OrderInvalid, TariffInForce, check_order, read_order
from services.prices.tariff import CHINA_TZ, Cap, Tariff, from_fee_texts, merge_cheapest, money, read_policy

GUANGDONG = [("000000", "0.3000", "0.6"), ("080000", "0.65", "0.6"), ("100000", "1.1", "0.6"),
             ("120000", "0.65", "0.6"), ("140000", "1.1", "0.6"), ("190000", "0.65", "0.6")]


def policy(rows=GUANGDONG, **extra):  # noqa: ANN001, ANN201
    return {"SumPeriod": len(rows), "PolicyInfos": [{"StartTime": s, "ElecPrice": e, "SevicePrice": v}
                                                    for s, e, v in rows], **extra}


def china(h: int, m: int = 0, day: int = 5) -> datetime:
    return datetime(2026, 12, day, h, m, tzinfo=CHINA_TZ)


TARIFF = read_policy(policy()).tariff


def test_a_guangdong_policy_reads_as_six_periods_without_problems() -> None:
    r = read_policy(policy(), Cap(Decimal(2)))
    assert r.problems == ()
    assert [(p["start"], p["end"], p["total"]) for p in r.tariff.api_periods()] == [
        ("00:00", "08:00", "0.9000"), ("08:00", "10:00", "1.2500"), ("10:00", "12:00", "1.7000"),
        ("12:00", "14:00", "1.2500"), ("14:00", "19:00", "1.7000"), ("19:00", "24:00", "1.2500")]
    assert r.tariff.at(china(11, 59)).total == Decimal("1.7000")
    assert r.tariff.until(china(11, 0)) == china(12)
    assert r.tariff.until(china(20)) == china(0, day=6)


@pytest.mark.parametrize("data, expect", [
    (policy([(f"{h:02d}0000", "1", "0") for h in range(24)] + [(f"{h:02d}3000", "1", "0") for h in range(10)]),
     "at most 32"),
    (policy([("000000", "1", "0"), ("120000", "1", "0"), ("080000", "2", "0")]), "increasing order"),
    (policy([("000000", "1", "0"), ("12:00", "1", "0")]), "not HHmmss"),
    (policy([("000000", "abc", "0")]), "not a number"),
    (policy([("000000", "1", "-0.1")]), "negative"),
    (policy([("000000", "25", "0")]), "absurd"),
    (policy([("080000", "1", "0")]), "000000"),
    (policy([("000000", "1.5", "0.8")]), "cap"),
    ({"SumPeriod": 3, "PolicyInfos": [{"StartTime": "000000", "ElecPrice": 1, "SevicePrice": 0}]}, "SumPeriod 3"),
    ({"SumPeriod": 0, "PolicyInfos": []}, "no period"),
])
def test_every_broken_rule_is_named(data, expect) -> None:  # noqa: ANN001
    r = read_policy(data, Cap(Decimal(2)))
    assert any(expect in p for p in r.problems), r.problems


def test_cap_on_the_service_fee_alone() -> None:
    assert read_policy(policy([("000000", "1.9", "0.5")]), Cap(Decimal("0.8"), "service")).problems == ()
    assert read_policy(policy([("000000", "0.5", "0.9")]), Cap(Decimal("0.8"), "service")).problems


def test_a_policy_without_midnight_wraps_the_last_period() -> None:
    t = read_policy(policy([("080000", "1", "0"), ("200000", "0.5", "0")])).tariff
    assert t.at(china(3)).total == Decimal("0.5000") and t.at(china(9)).total == Decimal("1.0000")


def test_fee_text_fallback_and_cheapest_merge() -> None:
    t = from_fee_texts("00:00-08:00 0.30元/度;08:00-24:00 0.65元/度", "0.60元/度")
    assert [p["total"] for p in t.api_periods()] == ["0.9000", "1.2500"]
    flat = Tariff.flat("0.5", "0.5")
    merged = merge_cheapest([TARIFF, flat])
    assert merged.at(china(3)).total == Decimal("0.9000") and merged.at(china(11)).total == Decimal("1.0000")


def test_estimate_crosses_periods_and_midnight() -> None:
    e = TARIFF.estimate(Decimal(30), Decimal(7), china(23, 0))
    assert e.minutes == round(30 / 7 * 60)
    assert e.end.date() > e.start.date()
    # one hour at 1.25 then the rest at 0.90
    assert e.yuan == money(Decimal(7) * Decimal("1.25") + Decimal(23) * Decimal("0.90"))


def make_order(tariff: Tariff, start: datetime, end: datetime, power_kw: Decimal, *, factor: Decimal = Decimal("0.8"),
               bump: Decimal = Decimal(0), seq: str = "MA5OP0001000000000000000001") -> dict:
    return billed_order(tariff, start, end, power_kw, connector_id="C1", seq=seq, factor=factor, bump=bump)


NOW = china(12, day=6)
CONNECTOR = ConnectorRef(Decimal("60"))


def at(_moment):  # noqa: ANN001, ANN201
    return TariffInForce(TARIFF, 7)


def test_a_clean_order_is_accepted_at_the_tariff() -> None:
    o = read_order(make_order(TARIFF, china(9, 30), china(10, 45), Decimal(60)))
    v = check_order(o, CONNECTOR, at, NOW)
    assert v.confirm_result == 0 and v.at_tariff is True and v.overcharge == 0, v.findings
    assert v.tariff_versions == [7] and len(o.details) == 2


def test_an_overcharged_order_is_disputed_with_the_excess() -> None:
    o = read_order(make_order(TARIFF, china(9, 30), china(10, 45), Decimal(60), bump=Decimal("0.2")))
    v = check_order(o, CONNECTOR, at, NOW)
    assert v.confirm_result == 1 and v.at_tariff is False
    assert v.overcharge == (o.total_power * Decimal("0.2")).quantize(Decimal("0.0001"))
    assert {f.code for f in v.findings} == {"over_tariff"}


def test_arithmetic_physics_and_references() -> None:
    data = make_order(TARIFF, china(9, 30), china(10, 45), Decimal(60))
    data["TotalMoney"] = str(Decimal(data["TotalMoney"]) + 1)
    data["ChargeDetails"][0]["DetailElecMoney"] = "999.00"
    v = check_order(read_order(data), CONNECTOR, at, NOW)
    assert {"total_money", "detail_money", "details_sum"} <= {f.code for f in v.findings} and v.confirm_result == 1
    v = check_order(read_order(make_order(TARIFF, china(9), china(10), Decimal(60), factor=Decimal("1.2"))),
                    CONNECTOR, at, NOW)
    assert [f.code for f in v.findings] == ["energy"]
    v = check_order(read_order(make_order(TARIFF, china(13, day=6), china(14, day=6), Decimal(60))), CONNECTOR, at, NOW)
    assert "future" in {f.code for f in v.findings}
    v = check_order(read_order(make_order(TARIFF, china(9), china(10), Decimal(60))), None, at, NOW)
    assert [f.code for f in v.findings] == ["connector"] and v.confirm_result == 1


def test_unknown_tariff_is_not_a_dispute() -> None:
    v = check_order(read_order(make_order(TARIFF, china(9), china(10), Decimal(60))), CONNECTOR, lambda _m: None, NOW)
    assert v.confirm_result == 0 and v.at_tariff is None and [f.code for f in v.findings] == ["no_tariff"]


@pytest.mark.parametrize("field, value, named", [
    ("TotalPower", "abc", "TotalPower"), ("StartChargeSeq", None, "StartChargeSeq"), ("EndTime", "yesterday", "EndTime"),
    ("ChargeDetails", "x", "ChargeDetails"), ("TotalMoney", 1e30, "TotalMoney")])
def test_unreadable_orders_name_the_field(field, value, named) -> None:  # noqa: ANN001
    data = make_order(TARIFF, china(9), china(10), Decimal(60))
    data[field] = value
    with pytest.raises(OrderInvalid) as exc:
        read_order(data)
    assert exc.value.param == named and named in exc.value.message
    data = make_order(TARIFF, china(9), china(10), Decimal(60))
    data["ChargeDetails"][0]["SevicePrice"] = "一元"
    with pytest.raises(OrderInvalid) as exc:
        read_order(data)
    assert exc.value.param == "ChargeDetails[0].SevicePrice"


@settings(max_examples=200, deadline=None)
@given(start_min=st.integers(0, 60 * 48), minutes=st.integers(1, 60 * 30), power=st.sampled_from([7, 22, 60, 120, 240]),
       factor=st.decimals("0.3", "0.99", places=2))
def test_any_order_billed_by_the_tariff_passes_every_check(start_min, minutes, power, factor) -> None:  # noqa: ANN001
    start = china(0, day=3) + timedelta(minutes=start_min)
    o = read_order(make_order(TARIFF, start, start + timedelta(minutes=minutes), Decimal(power), factor=factor))
    v = check_order(o, ConnectorRef(Decimal(power)), at, NOW)
    assert v.confirm_result == 0 and v.at_tariff is True and v.overcharge == 0, [f.message for f in v.findings]


def test_same_figures_same_digest_whatever_the_formatting() -> None:
    a = make_order(TARIFF, china(9), china(10), Decimal(60))
    b = dict(a, TotalMoney=float(a["TotalMoney"]), TotalPower=a["TotalPower"] + "0")
    assert read_order(a).digest() == read_order(b).digest()
    assert read_order(a).digest() != read_order(dict(a, TotalPower="1")).digest()

"""Subsidy amounts: per-kW and per-kWh rules, rounding to the fen, station/operator/budget caps,
and property tests that the accounted amounts never exceed any cap."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.subsidy.amounts import (
    Caps,
    Claim,
    Line,
    allocate,
    as_decimal,
    gross_per_kw,
    gross_per_kwh,
    to_fen,
)

D = Decimal
RATES = {"dc": D("200"), "ac": D("100"), "acdc": D("150"), "wireless": D("80.5"), "other": None}


def test_per_kw_sums_power_times_the_rate_of_each_facility_type() -> None:
    lines = [Line(1, "dc", D("120")), Line(2, "ac", D("7")), Line(3, "acdc", D("60")), Line(4, "wireless", D("11")),
             Line(5, "other", D("30"))]
    # 120*200 + 7*100 + 60*150 + 11*80.5 + 30*0
    assert gross_per_kw(lines, RATES) == D("34585.50")


def test_per_kwh_multiplies_energy_by_the_rate() -> None:
    lines = [Line(1, "dc", D("60"), kwh=D("12345.67")), Line(2, "ac", D("7"), kwh=D("0.01"))]
    assert gross_per_kwh(lines, D("0.15")) == D("1851.85")  # 1851.852 -> 1851.85


def test_rounding_is_half_up_once_per_application() -> None:
    assert to_fen(D("0.005")) == D("0.01")
    assert to_fen(D("0.0049999")) == D("0.00")
    assert to_fen(D("2.675")) == D("2.68")  # a float would say 2.67
    # three lines of 0.004 each: rounded per line they would be 0.00; rounded once, 0.01
    lines = [Line(i, "ac", D("0.001")) for i in range(3)]
    assert gross_per_kw(lines, {"ac": D("4")}) == D("0.01")


def test_floats_from_the_feed_enter_through_their_shortest_text() -> None:
    assert as_decimal(0.1) + as_decimal(0.2) == D("0.3")
    assert gross_per_kwh([Line(1, "dc", D(60), kwh=as_decimal(1234.56))], D("0.1")) == D("123.46")


def test_station_cap_limits_the_sum_per_station() -> None:
    out = allocate([Claim(1, "s1", "o", D("700")), Claim(2, "s1", "o", D("700")), Claim(3, "s2", "o", D("700"))],
                   Caps(station=D("1000"), operator=None, budget=None))
    assert [(a.amount, a.limited_by) for a in out] == [(D("700.00"), None), (D("300.00"), "station"),
                                                      (D("700.00"), None)]


def test_operator_cap_limits_the_sum_per_operator() -> None:
    out = allocate([Claim(1, "s1", "a", D("700")), Claim(2, "s2", "a", D("700")), Claim(3, "s3", "b", D("700"))],
                   Caps(station=None, operator=D("1000.50"), budget=None))
    assert [(a.amount, a.limited_by) for a in out] == [(D("700.00"), None), (D("300.50"), "operator"),
                                                      (D("700.00"), None)]


def test_budget_limits_the_total_in_application_order() -> None:
    out = allocate([Claim(1, "s1", "a", D("600")), Claim(2, "s2", "b", D("600")), Claim(3, "s3", "c", D("600"))],
                   Caps(station=None, operator=None, budget=D("1000")))
    assert [a.amount for a in out] == [D("600.00"), D("400.00"), D("0.00")]
    assert [a.limited_by for a in out] == [None, "budget", "budget"]


def test_the_tightest_cap_is_named_and_ties_go_to_station_then_operator_then_budget() -> None:
    [a] = allocate([Claim(1, "s", "o", D("500"))], Caps(station=D("100"), operator=D("50"), budget=D("10")))
    assert (a.amount, a.limited_by) == (D("10.00"), "budget")
    [b] = allocate([Claim(1, "s", "o", D("500"))], Caps(station=D("50"), operator=D("50"), budget=D("50")))
    assert (b.amount, b.limited_by) == (D("50.00"), "station")


def test_a_second_run_continues_from_what_earlier_runs_used() -> None:
    out = allocate([Claim(9, "s1", "a", D("500"))], Caps(station=D("800"), operator=D("2000"), budget=D("5000")),
                   already_station={"s1": D("600")}, already_operator={"a": D("600")}, already_total=D("600"))
    assert out[0].amount == D("200.00") and out[0].limited_by == "station"


def test_caps_must_be_whole_fen() -> None:
    with pytest.raises(ValueError):
        Caps(station=D("0.001"), operator=None, budget=None)


money = st.decimals(min_value=D("0"), max_value=D("1000000"), places=2, allow_nan=False, allow_infinity=False)
optional_cap = st.one_of(st.none(), money)
claims = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2),
                            st.decimals(min_value=D("0"), max_value=D("500000"), places=4,
                                        allow_nan=False, allow_infinity=False)), max_size=40)


@settings(max_examples=400, deadline=None)
@given(claims, optional_cap, optional_cap, optional_cap)
def test_property_no_cap_is_ever_exceeded(raw, station_cap, operator_cap, budget) -> None:
    caps = Caps(station=station_cap, operator=operator_cap, budget=budget)
    cs = [Claim(i, f"s{s}", f"o{o}", to_fen(g)) for i, (s, o, g) in enumerate(raw)]
    out = allocate(cs, caps)
    per_station: dict[str, Decimal] = defaultdict(Decimal)
    per_operator: dict[str, Decimal] = defaultdict(Decimal)
    for c, a in zip(cs, out, strict=True):
        assert a.application_id == c.application_id
        assert D("0") <= a.amount <= a.gross  # never more than asked, never negative
        assert a.amount == to_fen(a.amount)  # whole fen
        per_station[c.station] += a.amount
        per_operator[c.operator] += a.amount
    total = sum((a.amount for a in out), D("0"))
    if station_cap is not None:
        assert all(v <= station_cap for v in per_station.values())
    if operator_cap is not None:
        assert all(v <= operator_cap for v in per_operator.values())
    if budget is not None:
        assert total <= budget


@settings(max_examples=200, deadline=None)
@given(claims, optional_cap, optional_cap, money)
def test_property_an_amount_is_cut_only_by_a_cap_that_is_then_exhausted(raw, station_cap, operator_cap, budget) -> None:
    caps = Caps(station=station_cap, operator=operator_cap, budget=budget)
    cs = [Claim(i, f"s{s}", f"o{o}", to_fen(g)) for i, (s, o, g) in enumerate(raw)]
    out = allocate(cs, caps)
    used_s: dict[str, Decimal] = defaultdict(Decimal)
    used_o: dict[str, Decimal] = defaultdict(Decimal)
    used = D("0")
    for c, a in zip(cs, out, strict=True):
        used_s[c.station] += a.amount
        used_o[c.operator] += a.amount
        used += a.amount
        if a.amount < a.gross:
            # the cut is exactly what some cap allowed: after it, that cap is full
            full = {"station": station_cap is not None and used_s[c.station] == station_cap,
                    "operator": operator_cap is not None and used_o[c.operator] == operator_cap,
                    "budget": used == budget}
            assert a.limited_by is not None and full[a.limited_by]
        else:
            assert a.limited_by is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["dc", "ac", "acdc", "wireless", "other"]),
                          st.decimals(min_value=D("0"), max_value=D("2000"), places=1, allow_nan=False,
                                      allow_infinity=False)), max_size=30),
       st.decimals(min_value=D("0"), max_value=D("1000"), places=4, allow_nan=False, allow_infinity=False))
def test_property_gross_is_the_exact_sum_rounded_once(lines, rate) -> None:
    rates = {k: rate for k in ("dc", "ac", "acdc", "wireless", "other")}
    ls = [Line(i, t, p) for i, (t, p) in enumerate(lines)]
    exact = sum((p * rate for _, p in lines), D("0"))
    got = gross_per_kw(ls, rates)
    assert got == to_fen(exact)
    assert abs(got - exact) <= D("0.005")

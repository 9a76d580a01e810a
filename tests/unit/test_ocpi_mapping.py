"""The OCPI mapping without a database: tariffs price every minute as we do, opening times never
crash and always validate, statuses, connectors and parameters."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from services.ocpi import mapping
from services.ocpi.errors import OcpiError
from services.ocpi.models import ENCODER
from services.ocpi.paging import parse_list
from services.ocpi.parties import party_candidates, token_candidates
from services.prices.tariff import CHINA_TZ, Period
from services.prices.tariff import Tariff as DayTariff

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "ocpi-2.2.1" / "ocpi-2.2.1.schema.json")
                    .read_text(encoding="utf-8"))


def _valid(obj: object, name: str) -> None:
    data = json.loads(ENCODER.encode(obj)) if isinstance(obj, msgspec.Struct) else obj
    errors = list(Draft202012Validator({**SCHEMA, "$ref": f"#/$defs/{name}"}).iter_errors(data))
    assert not errors, [e.message for e in errors[:3]]


def _ocpi_price(tariff: dict, minute: int) -> Decimal:
    """OCPI 2.2.1: the first element whose restrictions hold; end_time exclusive, wrapping past midnight."""
    for element in tariff["elements"]:
        r = element.get("restrictions") or {}
        start = int(r["start_time"][:2]) * 60 + int(r["start_time"][3:]) if "start_time" in r else 0
        end = int(r["end_time"][:2]) * 60 + int(r["end_time"][3:]) if "end_time" in r else 1440
        if (start <= minute < end) if start < end else (minute >= start or minute < end):
            return Decimal(str(element["price_components"][0]["price"]))
    raise AssertionError(minute)


prices = st.decimals(min_value=0, max_value=5, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def day_tariffs(draw) -> DayTariff:  # noqa: ANN001
    starts = sorted(set(draw(st.lists(st.integers(min_value=1, max_value=1439), max_size=8))))
    return DayTariff(tuple(Period(s * 60, draw(prices), draw(prices)) for s in [0, *starts]))


@given(day_tariffs())
@settings(max_examples=150, deadline=None)
def test_a_roaming_client_prices_every_minute_as_we_do(t: DayTariff) -> None:
    ocpi = json.loads(ENCODER.encode(mapping.tariff(17, "ABC", t, datetime(2026, 12, 6, tzinfo=UTC))))
    _valid(ocpi, "Tariff")
    for minute in range(1440):
        moment = datetime(2026, 12, 6, minute // 60, minute % 60, tzinfo=CHINA_TZ)
        assert _ocpi_price(ocpi, minute) == t.at(moment).total, minute


def test_a_period_starting_within_a_minute_starts_at_that_minute() -> None:
    t = DayTariff((Period(0, Decimal("0.3"), Decimal("0.5")), Period(8 * 3600 + 30, Decimal("0.6"), Decimal("0.5")),
                   Period(8 * 3600 + 45, Decimal("0.7"), Decimal("0.5"))))
    elements = mapping.tariff_elements(t)
    assert [(e.restrictions.start_time, e.restrictions.end_time, e.price_components[0].price) for e in elements] == [
        ("00:00", "08:00", Decimal("0.8")), ("08:00", "00:00", Decimal("1.2"))]


def test_alt_text_fits_the_display_text_limit() -> None:
    t = DayTariff(tuple(Period(i * 2700, Decimal("0.1234") + i, Decimal("0.5")) for i in range(32)))
    texts = mapping.tariff_alt_text(t)
    assert all(len(d.text) <= 512 and d.text.endswith("…") for d in texts)
    _valid(mapping.tariff(1, "ABC", t, datetime(2026, 12, 6, tzinfo=UTC)), "Tariff")


@given(st.text(max_size=60) | st.sampled_from(["00:00-24:00", "周一至周五 08:00-20:00", "22:00-06:00", "08:00-08:00",
                                                 "周末 10:00-16:00；工作日 9:00-17:00", "07:00-22:00,23:00-23:30"]))
@settings(max_examples=300, deadline=None)
def test_opening_times_never_fail_and_always_validate(text: str) -> None:
    hours = mapping.opening_times(text)
    if hours is not None:
        _valid(hours, "Hours")


def test_evse_status_precedence() -> None:
    order = ["AVAILABLE", "CHARGING", "BLOCKED", "RESERVED", "UNKNOWN", "OUTOFORDER"]
    for i, best in enumerate(order):
        assert mapping.evse_status(order[i:], 50) == best
        assert mapping.evse_status(order[i:], 0) == best  # StationStatus 0 (unknown) does not override
    for station_status in (1, 5, 6):
        assert mapping.evse_status(["AVAILABLE"], station_status) == "INOPERATIVE"
    assert {mapping.connector_state(s, None, None)[0] for s in (0, 1, 2, 3, 4, 255, 99)} == {
        "UNKNOWN", "AVAILABLE", "BLOCKED", "CHARGING", "RESERVED", "OUTOFORDER"}


def test_freshness_hook_makes_silent_connectors_unknown_since_they_went_stale() -> None:
    t0 = datetime(2026, 12, 6, 8, tzinfo=UTC)
    state, since = mapping.connector_state(3, t0 - timedelta(hours=2), t0, now=t0 + timedelta(minutes=31),
                                           stale_after=timedelta(minutes=30))
    assert (state, since) == ("UNKNOWN", t0 + timedelta(minutes=30))
    assert mapping.connector_state(3, t0, t0, now=t0 + timedelta(minutes=29), stale_after=timedelta(minutes=30))[0] == \
        "CHARGING"


@pytest.mark.parametrize("row, expected", [
    ({"connector_type": 4, "voltage_upper_limits": 1000, "current": 600, "power_kw": 480}, ("DC", 1000, 600)),
    ({"connector_type": 3, "voltage_upper_limits": None, "current": None, "power_kw": 7}, ("AC_1_PHASE", 220, 32)),
    ({"connector_type": 2, "voltage_upper_limits": None, "current": None, "power_kw": 21}, ("AC_3_PHASE", 220, 32)),
    ({"connector_type": 3, "voltage_upper_limits": 380, "current": 32, "power_kw": 21}, ("AC_3_PHASE", 219, 32)),
    ({"connector_type": 1, "voltage_upper_limits": 220, "current": None, "power_kw": 2.2}, ("AC_1_PHASE", 220, 10)),
    ({"connector_type": 4, "voltage_upper_limits": 0, "current": 0, "power_kw": 0}, ("DC", 750, 1)),
])
def test_connector_electrics(row: dict, expected: tuple) -> None:
    c = mapping.connector({**row, "connector_pk": 1, "connector_id": "C1", "last_updated": datetime.now(UTC)})
    assert (c.power_type, c.max_voltage, c.max_amperage) == expected
    _valid(c, "Connector")


def test_location_without_piles_address_or_operator_is_still_valid() -> None:
    loc = mapping.location({"id": 5, "name": "站", "address": None, "district_name": None, "lng": -0.5, "lat": -0.25,
                            "construction": None, "park_info": None, "busine_hours": None, "site_guide": "",
                            "station_status": 50, "operator_name": None,
                            "last_updated": datetime(2026, 12, 6, tzinfo=UTC)}, [], "ABC", "珠海市")
    assert (loc.address, loc.evses, loc.operator, loc.coordinates.latitude) == ("珠海市", [], None, "-0.2500000")
    _valid(loc, "Location")


def test_list_parameters() -> None:
    q = parse_list({"offset": "40", "limit": "20", "after": "99"}, default_limit=100, max_limit=500, key=int)
    assert (q.offset, q.limit, q.after) == (40, 20, 99)
    q = parse_list({"date_from": "2026-12-06T08:00:00.5", "date_to": "2026-12-06T18:00:00+08:00"}, default_limit=1,
                   max_limit=5, key=int)
    assert q.date_from == datetime(2026, 12, 6, 8, 0, 0, 500000, tzinfo=UTC)  # no zone: UTC
    assert q.date_to == datetime(2026, 12, 6, 10, tzinfo=UTC)
    with pytest.raises(OcpiError) as e:
        parse_list({"date_from": "2026-12-06T09:00:00Z", "date_to": "2026-12-06T08:00:00Z"}, default_limit=1,
                   max_limit=5, key=int)
    assert (e.value.status_code, e.value.http_status, e.value.param) == (2001, 200, "date_to")


def test_tokens_and_party_ids() -> None:
    assert token_candidates("Token " + "A" * 2000) == []
    assert token_candidates("Token dG9r ZW4=") == ["dG9r ZW4="]  # not one value: taken as it is
    assert next(party_candidates("ABCDEF-12")) != "-12"  # not letters and digits: from the hash
    assert all(re.fullmatch(r"[A-Z0-9]{3}", p) for p, _ in zip(party_candidates("X"), range(50), strict=False))

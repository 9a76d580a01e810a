"""The shared station filter: parsing, 400 messages, canonical keys, SQL shape (no database)."""

from __future__ import annotations

import pytest

from services.errors import BadRequest
from services.stations.filters import StationFilter, parse_route


def p(**kw: object) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [str(v)] for k, v in kw.items()}


def test_repeat_and_comma_separated_values_merge() -> None:
    f = StationFilter.from_params(p(operator=["MA01", "MA02,MA03"], scale="small,large", facility_type="dc"))
    assert f.operator == ("MA01", "MA02", "MA03")
    assert f.scale == ("small", "large")
    assert f.facility_type == ("dc",)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (p(scale="huge"), "scale"),
        (p(facility_type="dc,nuclear"), "facility_type"),
        (p(payment="bitcoin"), "payment"),
        (p(station_type="7"), "station_type"),
        (p(station_type="abc"), "station_type"),
        (p(district="4404"), "district"),
        (p(bbox="1,2,3"), "bbox"),
        (p(bbox="113,22,112,23"), "bbox"),
        (p(lat=22.2), "lng"),
        (p(lat=22.2, lng=113.5, radius=0), "radius"),
        (p(lat=22.2, lng=113.5, radius=10_000_000), "radius"),
        (p(radius=100), "radius"),
        (p(min_power="fast"), "min_power"),
        (p(available="maybe"), "available"),
        (p(route="LINESTRING(1 2)"), "route"),
        (p(route="not a polyline at all ~~~"), "route"),
        (p(corridor=100), "corridor"),
        (p(operator="bad id!"), "operator"),
    ],
)
def test_bad_parameters_name_the_parameter(params: dict, param: str) -> None:
    with pytest.raises(BadRequest) as info:
        StationFilter.from_params(params)
    assert info.value.param == param
    assert param in info.value.message


def test_cache_key_is_canonical() -> None:
    a = StationFilter.from_params(p(operator="B,A", scale="large,small"))
    b = StationFilter.from_params(p(operator=["A", "B"], scale=["small", "large"]))
    assert a.cache_key() == b.cache_key()
    assert StationFilter.from_params({}).is_empty()


def test_sql_has_one_predicate_per_selected_dimension() -> None:
    f = StationFilter.from_params(p(operator="A", payment="card", q="星星", available="true", bbox="113,22,114,23"))
    where = f.where_sql()
    assert "s.operator_id = ANY" in where and "s.payments &&" in where and "ILIKE" in where
    assert "connectors_free > 0" in where and "ST_MakeEnvelope" in where
    assert f.dimension_sql("district") is None
    assert f.sql_params()["f_q_like"] == "%星星%"


def test_like_wildcards_in_q_are_escaped() -> None:
    assert StationFilter.from_params(p(q="50%_off")).sql_params()["f_q_like"] == "%50\\%\\_off%"


def test_route_from_wkt_and_polyline() -> None:
    assert parse_route("LINESTRING (113.5 22.2, 113.6 22.3, 113.7 22.31)")[-1] == (113.7, 22.31)
    assert parse_route("_p~iF~ps|U_ulLnnqC_mqNvxq`@")[0] == (-120.2, 38.5)
    f = StationFilter.from_params(p(route="LINESTRING(113.5 22.2, 113.6 22.3)"))
    assert f.corridor == 1000.0 and f.route_wkt().startswith("LINESTRING(")


def test_zero_min_power_is_a_filter_not_unset() -> None:
    f = StationFilter.from_params(p(min_power=0))
    assert not f.is_empty()
    assert "min_power=0" in f.cache_key()

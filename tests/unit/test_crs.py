"""Tests for geo.crs."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import CRS

from geo.crs import (
    CGCS2000,
    CGCS2000_GK_CM114,
    WEB_MERCATOR,
    WGS84,
    ZHUHAI_GK,
    geodesic_distance_m,
    geodesic_line_length_m,
    get_transformer,
    to_3857,
    transform,
)


def test_zhuhai_gauss_kruger_zone_is_cm_114e() -> None:
    crs = CRS.from_user_input(CGCS2000_GK_CM114)
    assert crs.name == "CGCS2000 / 3-degree Gauss-Kruger CM 114E"
    west, south, east, north = crs.area_of_use.bounds
    # Zhuhai spans about 113.0..114.4 E, 21.8..22.5 N.
    assert west <= 113.0 and 114.4 <= east and south <= 21.8 <= 22.5 <= north
    assert ZHUHAI_GK == CGCS2000_GK_CM114
    assert CRS.from_user_input(CGCS2000).name == "China Geodetic Coordinate System 2000"


def test_transformers_are_cached_and_xy() -> None:
    t = get_transformer(4326, "epsg:3857")
    assert t is get_transformer(WGS84, WEB_MERCATOR)
    # always_xy: lng first even though EPSG:4326 / 4490 are lat-first.
    lng, lat = transform(113.5, 22.25, WGS84, CGCS2000)
    assert (lng, lat) == pytest.approx((113.5, 22.25), abs=1e-7)


def test_gauss_kruger_round_trip_and_false_easting() -> None:
    e, n = transform(114.0, 22.25, WGS84, ZHUHAI_GK)
    assert e == pytest.approx(500_000.0, abs=1e-3)  # on the central meridian
    assert 2_400_000 < n < 2_500_000
    lng, lat = transform(e, n, ZHUHAI_GK, WGS84)
    assert (lng, lat) == pytest.approx((114.0, 22.25), abs=1e-9)


def test_transform_arrays() -> None:
    lngs = np.array([113.0, 113.5, 114.0])
    lats = np.array([22.0, 22.2, 22.4])
    x, y = transform(lngs, lats, WGS84, WEB_MERCATOR)
    assert x.shape == (3,) and np.all(np.diff(x) > 0)


def test_to_3857() -> None:
    assert to_3857(0.0, 0.0) == pytest.approx((0.0, 0.0), abs=1e-9)
    x, y = to_3857(180.0, 0.0)
    assert x == pytest.approx(20037508.342789244)


def test_geodesic_distance_matches_metric_projection() -> None:
    d = geodesic_distance_m(113.5, 22.2, 113.6, 22.3)
    e1, n1 = transform(113.5, 22.2, WGS84, ZHUHAI_GK)
    e2, n2 = transform(113.6, 22.3, WGS84, ZHUHAI_GK)
    planar = float(np.hypot(e2 - e1, n2 - n1))
    assert 14_000 < d < 16_000
    assert abs(d - planar) / d < 1e-3  # GK scale error near the CM is tiny


def test_geodesic_line_length() -> None:
    coords = [(113.5, 22.2), (113.55, 22.25), (113.6, 22.3)]
    total = geodesic_line_length_m(coords)
    parts = geodesic_distance_m(*coords[0], *coords[1]) + geodesic_distance_m(*coords[1], *coords[2])
    assert total == pytest.approx(parts, rel=1e-12)
    assert geodesic_line_length_m([]) == 0.0
    assert geodesic_line_length_m([(113.5, 22.2)]) == 0.0
    assert geodesic_line_length_m(iter(coords)) == pytest.approx(total)

"""Tests for geo.gcj02: published vectors, round trips, outside China, arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyproj import Geod

from geo.gcj02 import (
    gcj02_to_wgs84,
    gcj02_to_wgs84_array,
    out_of_china,
    wgs84_to_gcj02,
    wgs84_to_gcj02_array,
)

GEOD = Geod(ellps="WGS84")

# Published test vectors of the eviltransform project (github.com/googollee/eviltransform,
# go/transform_test.go, python/test.py): (wgs_lng, wgs_lat, gcj_lng, gcj_lat).
EVILTRANSFORM_VECTORS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]
# README example of coordtransform (github.com/wandergis/coordtransform):
# wgs84togcj02(116.404, 39.915) -> [116.41024449916938, 39.91640428150164].
COORDTRANSFORM_VECTOR = (116.404, 39.915, 116.41024449916938, 39.91640428150164)

ZHUHAI_LNGS = np.linspace(113.0, 114.4, 50)
ZHUHAI_LATS = np.linspace(21.8, 22.5, 50)


def _grid() -> tuple[np.ndarray, np.ndarray]:
    lng, lat = np.meshgrid(ZHUHAI_LNGS, ZHUHAI_LATS)
    return lng.ravel(), lat.ravel()


def _max_error_m(lng1, lat1, lng2, lat2) -> float:
    _, _, dist = GEOD.inv(lng1, lat1, lng2, lat2)
    return float(np.max(dist))


def _reference_forward(lng: float, lat: float) -> tuple[float, float]:
    """Independent textbook transcription of the published forward formula."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lng - 105.0, lat - 35.0
    t_lat = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y**2 + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
        + (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    )
    t_lng = (
        300.0 + x + 2.0 * y + 0.1 * x**2 + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
        + (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
        + (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
        + (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    )
    rad = math.radians(lat)
    magic = 1 - ee * math.sin(rad) ** 2
    d_lat = t_lat * 180.0 / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    d_lng = t_lng * 180.0 / (a / math.sqrt(magic) * math.cos(rad) * math.pi)
    return lng + d_lng, lat + d_lat


@pytest.mark.parametrize("wgs_lng,wgs_lat,gcj_lng,gcj_lat", [*EVILTRANSFORM_VECTORS, COORDTRANSFORM_VECTOR])
def test_published_vectors(wgs_lng, wgs_lat, gcj_lng, gcj_lat) -> None:
    assert wgs84_to_gcj02(wgs_lng, wgs_lat) == pytest.approx((gcj_lng, gcj_lat), abs=1e-9)
    back = gcj02_to_wgs84(gcj_lng, gcj_lat)
    assert _max_error_m(back[0], back[1], wgs_lng, wgs_lat) < 0.01


def test_brief_example_is_close() -> None:
    # Only given to ~1e-5 degree precision in the brief, so a loose check.
    assert wgs84_to_gcj02(116.397128, 39.916527) == pytest.approx((116.403370, 39.917929), abs=1e-5)


def test_forward_matches_independent_reimplementation() -> None:
    for lng, lat in zip(*_grid(), strict=True):
        assert wgs84_to_gcj02(lng, lat) == pytest.approx(_reference_forward(lng, lat), abs=1e-12)


def test_offset_size_in_zhuhai_is_a_few_hundred_metres() -> None:
    lng, lat = _grid()
    g_lng, g_lat = wgs84_to_gcj02_array(lng, lat)
    _, _, dist = GEOD.inv(lng, lat, g_lng, g_lat)
    assert 300 < dist.min() and dist.max() < 800


def test_round_trip_wgs_gcj_wgs_under_1cm() -> None:
    lng, lat = _grid()
    out = [gcj02_to_wgs84(*wgs84_to_gcj02(x, y)) for x, y in zip(lng, lat, strict=True)]
    back = np.array(out)
    assert _max_error_m(back[:, 0], back[:, 1], lng, lat) < 0.01
    assert np.max(np.abs(back - np.column_stack([lng, lat]))) < 1e-9


def test_round_trip_gcj_wgs_gcj_under_1cm() -> None:
    lng, lat = _grid()
    out = [wgs84_to_gcj02(*gcj02_to_wgs84(x, y)) for x, y in zip(lng, lat, strict=True)]
    back = np.array(out)
    assert _max_error_m(back[:, 0], back[:, 1], lng, lat) < 0.01
    assert np.max(np.abs(back - np.column_stack([lng, lat]))) < 1e-9


def test_array_round_trips_under_1cm() -> None:
    lng, lat = _grid()
    w = gcj02_to_wgs84_array(*wgs84_to_gcj02_array(lng, lat))
    assert _max_error_m(w[0], w[1], lng, lat) < 0.01
    g = wgs84_to_gcj02_array(*gcj02_to_wgs84_array(lng, lat))
    assert _max_error_m(g[0], g[1], lng, lat) < 0.01


@pytest.mark.parametrize(
    "lng,lat",
    [(139.69, 35.68), (-0.1276, 51.5072), (-74.006, 40.7128), (151.2093, -33.8688), (0.0, 0.0)],
    ids=["tokyo", "london", "new-york", "sydney", "null-island"],
)
def test_outside_china_unchanged(lng, lat) -> None:
    assert out_of_china(lng, lat)
    assert wgs84_to_gcj02(lng, lat) == (lng, lat)
    assert gcj02_to_wgs84(lng, lat) == (lng, lat)
    a_lng, a_lat = wgs84_to_gcj02_array([lng], [lat])
    assert (a_lng[0], a_lat[0]) == (lng, lat)
    a_lng, a_lat = gcj02_to_wgs84_array([lng], [lat])
    assert (a_lng[0], a_lat[0]) == (lng, lat)


def test_out_of_china_is_the_standard_rectangle() -> None:
    assert not out_of_china(72.004, 0.8293)
    assert not out_of_china(137.8347, 55.8271)
    assert out_of_china(72.0039, 30.0)
    assert out_of_china(137.8348, 30.0)
    assert out_of_china(110.0, 0.8292)
    assert out_of_china(110.0, 55.8272)
    # The crude published rule: Macau (next to Zhuhai) counts as inside.
    assert not out_of_china(113.5439, 22.1987)


def test_array_variants_equal_scalar() -> None:
    lng, lat = _grid()
    # Mix in points outside China.
    lng = np.concatenate([lng, [139.69, -0.1276]])
    lat = np.concatenate([lat, [35.68, 51.5072]])
    f_lng, f_lat = wgs84_to_gcj02_array(lng, lat)
    i_lng, i_lat = gcj02_to_wgs84_array(lng, lat)
    for k in range(lng.size):
        assert (f_lng[k], f_lat[k]) == pytest.approx(wgs84_to_gcj02(lng[k], lat[k]), abs=1e-12)
        assert (i_lng[k], i_lat[k]) == pytest.approx(gcj02_to_wgs84(lng[k], lat[k]), abs=1e-12)


def test_array_variants_keep_shape_and_inputs() -> None:
    lng = np.full((3, 4), 113.5)
    lat = np.full((3, 4), 22.25)
    out_lng, out_lat = wgs84_to_gcj02_array(lng, lat)
    assert out_lng.shape == out_lat.shape == (3, 4)
    assert np.all(lng == 113.5)  # inputs untouched
    back_lng, back_lat = gcj02_to_wgs84_array(out_lng, out_lat)
    assert back_lng.shape == (3, 4)
    assert np.all(out_lng != 113.5)


def test_array_nan_and_empty() -> None:
    lng, lat = gcj02_to_wgs84_array([np.nan, 113.5], [22.2, 22.2])
    assert math.isnan(lng[0]) and not math.isnan(lng[1])
    e_lng, e_lat = wgs84_to_gcj02_array([], [])
    assert e_lng.size == 0 and e_lat.size == 0

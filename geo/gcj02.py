"""WGS84 <-> GCJ-02 ("Mars coordinates") conversion.

GCJ-02 is the obfuscated datum that Chinese map providers (Amap/Gaode, Tencent,
Google China tiles) use. The forward transform is the widely published
reconstruction (eviltransform, coordtransform, ...) on the Krasovsky ellipsoid
(``a = 6378245.0``, ``ee = 0.00669342162296594323``); it reproduces the official
offsets to well under a metre. There is no closed-form inverse: :func:`gcj02_to_wgs84`
solves ``wgs84_to_gcj02(w) == g`` by fixed-point iteration (the offset varies by
about 1e-5 per unit of displacement, so each step gains ~5 digits) until the
residual is below 1e-12 degree, with at most :data:`MAX_ITERATIONS` steps.

Outside China
-------------
Points for which :func:`out_of_china` is true are returned unchanged by every
function here. This is the standard published rough rectangle
``72.004 <= lng <= 137.8347`` and ``0.8293 <= lat <= 55.8271`` (eviltransform),
*not* a real border: it also contains Hong Kong, Macau, Taiwan and parts of the
neighbouring countries (for example Seoul), which are therefore shifted as if in
mainland China. This matches what the published implementations do, so data
converted elsewhere with them round-trips through this module. For the inverse the
test is made on the GCJ-02 input.

Coordinates are always ``(lng, lat)`` in decimal degrees.

>>> lng, lat = wgs84_to_gcj02(113.5767, 22.2707)   # Zhuhai
>>> round(lng - 113.5767, 5), round(lat - 22.2707, 5)
(0.00504, -0.00302)
>>> back = gcj02_to_wgs84(lng, lat)
>>> abs(back[0] - 113.5767) < 1e-9 and abs(back[1] - 22.2707) < 1e-9
True
>>> wgs84_to_gcj02(139.69, 35.68)                  # Tokyo: unchanged
(139.69, 35.68)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "A",
    "EE",
    "MAX_ITERATIONS",
    "gcj02_to_wgs84",
    "gcj02_to_wgs84_array",
    "out_of_china",
    "wgs84_to_gcj02",
    "wgs84_to_gcj02_array",
]

A = 6378245.0
"""Semi-major axis of the Krasovsky 1940 ellipsoid (metres)."""
EE = 0.00669342162296594323
"""First eccentricity squared of the Krasovsky 1940 ellipsoid."""

MAX_ITERATIONS = 30
"""Upper bound on inverse iterations (3 or 4 are enough in practice)."""
_TOLERANCE = 1e-12  # degrees, ~0.1 micrometre

# Standard published "out of China" rectangle (eviltransform).
_MIN_LNG, _MAX_LNG = 72.004, 137.8347
_MIN_LAT, _MAX_LAT = 0.8293, 55.8271


def out_of_china(lng: float, lat: float) -> bool:
    """Return True when the point is outside the standard rough China rectangle.

    ``lng < 72.004 or lng > 137.8347 or lat < 0.8293 or lat > 55.8271``; see the
    module docstring for why this is deliberately the crude published rule.

    >>> out_of_china(113.5, 22.3), out_of_china(-0.1276, 51.5072)
    (False, True)
    >>> out_of_china(72.004, 0.8293)   # edges count as inside
    False
    """
    return lng < _MIN_LNG or lng > _MAX_LNG or lat < _MIN_LAT or lat > _MAX_LAT


def _out_of_china_array(lng: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.bool_]:
    return (lng < _MIN_LNG) | (lng > _MAX_LNG) | (lat < _MIN_LAT) | (lat > _MAX_LAT)


def _delta(lng: Any, lat: Any, xp: Any) -> tuple[Any, Any]:
    """GCJ-02 offset (dlng, dlat) in degrees at a WGS84 point, no China test.

    ``xp`` is :mod:`math` (scalars) or :mod:`numpy` (arrays), so that the scalar and
    array functions share one formula and give identical results.
    """
    pi = math.pi
    x = lng - 105.0
    y = lat - 35.0
    sqrt_abs_x = xp.sqrt(abs(x))
    common = (20.0 * xp.sin(6.0 * x * pi) + 20.0 * xp.sin(2.0 * x * pi)) * 2.0 / 3.0

    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
    dlat = dlat + common
    dlat = dlat + (20.0 * xp.sin(y * pi) + 40.0 * xp.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * xp.sin(y / 12.0 * pi) + 320.0 * xp.sin(y * pi / 30.0)) * 2.0 / 3.0

    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
    dlng = dlng + common
    dlng = dlng + (20.0 * xp.sin(x * pi) + 40.0 * xp.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlng = dlng + (150.0 * xp.sin(x / 12.0 * pi) + 300.0 * xp.sin(x / 30.0 * pi)) * 2.0 / 3.0

    radlat = lat / 180.0 * pi
    magic = xp.sin(radlat)
    magic = 1.0 - EE * magic * magic
    sqrtmagic = xp.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * pi)
    dlng = (dlng * 180.0) / (A / sqrtmagic * xp.cos(radlat) * pi)
    return dlng, dlat


def wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """Convert one WGS84 point to GCJ-02.

    >>> lng, lat = wgs84_to_gcj02(116.404, 39.915)   # Beijing, coordtransform README
    >>> round(lng, 9), round(lat, 9)
    (116.410244499, 39.916404282)
    >>> wgs84_to_gcj02(-0.1276, 51.5072)             # London: outside, unchanged
    (-0.1276, 51.5072)
    """
    lng = float(lng)
    lat = float(lat)
    if out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _delta(lng, lat, math)
    return lng + dlng, lat + dlat


def gcj02_to_wgs84(lng: float, lat: float) -> tuple[float, float]:
    """Convert one GCJ-02 point to WGS84 (iterative exact inverse).

    The result ``w`` satisfies ``wgs84_to_gcj02(w) == (lng, lat)`` to about 1e-12
    degree (far below 1 cm).

    >>> g = wgs84_to_gcj02(113.5, 22.25)
    >>> w = gcj02_to_wgs84(*g)
    >>> round(w[0], 10), round(w[1], 10)
    (113.5, 22.25)
    >>> gcj02_to_wgs84(139.69, 35.68)                # Tokyo: outside, unchanged
    (139.69, 35.68)
    """
    lng = float(lng)
    lat = float(lat)
    if out_of_china(lng, lat):
        return lng, lat
    # Fixed point of w = g - delta(w), starting from w0 = g.
    w_lng, w_lat = lng, lat
    for _ in range(MAX_ITERATIONS):
        dlng, dlat = _delta(w_lng, w_lat, math)
        err_lng = w_lng + dlng - lng
        err_lat = w_lat + dlat - lat
        w_lng -= err_lng
        w_lat -= err_lat
        if abs(err_lng) < _TOLERANCE and abs(err_lat) < _TOLERANCE:
            break
    return w_lng, w_lat


def _as_float_arrays(lngs: ArrayLike, lats: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lng_arr, lat_arr = np.broadcast_arrays(
        np.asarray(lngs, dtype=np.float64), np.asarray(lats, dtype=np.float64)
    )
    return lng_arr.copy(), lat_arr.copy()


def wgs84_to_gcj02_array(
    lngs: ArrayLike, lats: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised :func:`wgs84_to_gcj02` for array-likes of the same (broadcastable) shape.

    Returns new float64 arrays; points outside China are copied unchanged, NaN stays NaN.

    >>> lng, lat = wgs84_to_gcj02_array([116.404, 139.69], [39.915, 35.68])
    >>> lng.round(9).tolist(), lat.round(9).tolist()
    ([116.410244499, 139.69], [39.916404282, 35.68])
    >>> wgs84_to_gcj02_array([], [])[0].shape
    (0,)
    """
    lng, lat = _as_float_arrays(lngs, lats)
    inside = ~_out_of_china_array(lng, lat)
    if inside.any():
        dlng, dlat = _delta(lng[inside], lat[inside], np)
        lng[inside] += dlng
        lat[inside] += dlat
    return lng, lat


def gcj02_to_wgs84_array(
    lngs: ArrayLike, lats: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Vectorised :func:`gcj02_to_wgs84` (same iteration, same results).

    >>> g_lng, g_lat = wgs84_to_gcj02_array([113.5, 113.6], [22.25, 22.3])
    >>> w_lng, w_lat = gcj02_to_wgs84_array(g_lng, g_lat)
    >>> w_lng.round(10).tolist(), w_lat.round(10).tolist()
    ([113.5, 113.6], [22.25, 22.3])
    """
    lng, lat = _as_float_arrays(lngs, lats)
    inside = ~_out_of_china_array(lng, lat)
    if not inside.any():
        return lng, lat
    g_lng = lng[inside]
    g_lat = lat[inside]
    w_lng = g_lng.copy()
    w_lat = g_lat.copy()
    # Iterate only the points that have not converged yet, exactly like the scalar loop.
    active = np.arange(g_lng.size)
    for _ in range(MAX_ITERATIONS):
        if active.size == 0:
            break
        dlng, dlat = _delta(w_lng[active], w_lat[active], np)
        err_lng = w_lng[active] + dlng - g_lng[active]
        err_lat = w_lat[active] + dlat - g_lat[active]
        w_lng[active] -= err_lng
        w_lat[active] -= err_lat
        done = (np.abs(err_lng) < _TOLERANCE) & (np.abs(err_lat) < _TOLERANCE)
        # NaN never converges; drop it too so it does not cost MAX_ITERATIONS rounds.
        done |= np.isnan(err_lng) | np.isnan(err_lat)
        active = active[~done]
    lng[inside] = w_lng
    lat[inside] = w_lat
    return lng, lat

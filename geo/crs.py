"""Coordinate reference systems and geodesic measures (pyproj).

All functions take and return ``(x, y)`` = ``(lng, lat)`` or ``(easting, northing)``:
every :class:`pyproj.Transformer` here is built with ``always_xy=True``, so the
EPSG axis order of EPSG:4326 / EPSG:4490 (lat, lng) never leaks out.

CRSs used by the project:

* :data:`WGS84` ``EPSG:4326`` -- storage and API.
* :data:`WEB_MERCATOR` ``EPSG:3857`` -- tiles.
* :data:`CGCS2000` ``EPSG:4490`` -- Chinese official geographic CRS. It agrees with
  WGS84 to a few centimetres and PROJ uses a null transformation between the two.
* :data:`CGCS2000_GK_CM114` ``EPSG:4547`` -- "CGCS2000 / 3-degree Gauss-Kruger
  CM 114E", the 3-degree zone for 112.5..115.5 E, which holds all of Zhuhai
  (113.0..114.4 E). Metric, no zone number in the false easting (500 000 m);
  EPSG:4526 is the same zone with the "38" prefix in eastings.

Transformers are cached per (src, dst) pair; pyproj >= 3.1 Transformers are
thread-safe, so the cache may be shared by threads.

>>> x, y = to_3857(113.5, 22.25)
>>> round(x, 2), round(y, 2)
(12634762.21, 2541567.3)
>>> round(geodesic_distance_m(113.5, 22.25, 113.5, 22.25), 6)
0.0
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from pyproj import Geod, Transformer

__all__ = [
    "CGCS2000",
    "CGCS2000_GK_CM114",
    "WEB_MERCATOR",
    "WGS84",
    "ZHUHAI_GK",
    "geodesic_distance_m",
    "geodesic_line_length_m",
    "get_transformer",
    "to_3857",
    "transform",
]

WGS84 = "EPSG:4326"
WEB_MERCATOR = "EPSG:3857"
CGCS2000 = "EPSG:4490"
CGCS2000_GK_CM114 = "EPSG:4547"
ZHUHAI_GK = CGCS2000_GK_CM114
"""The metric CRS for Zhuhai (local distances, areas, buffers)."""

_GEOD = Geod(ellps="WGS84")

CrsLike = str | int


def _normalise(crs: CrsLike) -> str:
    """``4326``, ``"4326"``, ``"epsg:4326"`` -> ``"EPSG:4326"`` (one cache key each)."""
    if isinstance(crs, bool):
        raise TypeError(f"not a CRS: {crs!r}")
    if isinstance(crs, int):
        return f"EPSG:{crs}"
    text = str(crs).strip()
    if text.isdigit():
        return f"EPSG:{text}"
    if text.upper().startswith("EPSG:"):
        return "EPSG:" + text[5:].strip()
    return text


@lru_cache(maxsize=64)
def _cached_transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def get_transformer(src: CrsLike, dst: CrsLike) -> Transformer:
    """Return the cached ``always_xy=True`` transformer from ``src`` to ``dst``.

    >>> get_transformer(4326, "epsg:3857") is get_transformer("EPSG:4326", 3857)
    True
    """
    return _cached_transformer(_normalise(src), _normalise(dst))


def transform(lng: Any, lat: Any, src: CrsLike, dst: CrsLike) -> tuple[Any, Any]:
    """Transform ``(x, y)`` (scalars or arrays) from ``src`` to ``dst``.

    >>> e, n = transform(113.5, 22.25, WGS84, ZHUHAI_GK)
    >>> round(e), round(n)
    (448459, 2461569)
    >>> lng, lat = transform(e, n, ZHUHAI_GK, WGS84)
    >>> round(lng, 9), round(lat, 9)
    (113.5, 22.25)
    """
    return get_transformer(src, dst).transform(lng, lat)


def to_3857(lng: float, lat: float) -> tuple[float, float]:
    """WGS84 lng/lat to Web Mercator metres.

    >>> to_3857(0.0, 0.0)
    (0.0, 0.0)
    """
    x, y = get_transformer(WGS84, WEB_MERCATOR).transform(lng, lat)
    return float(x), float(y)


def geodesic_distance_m(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    """Geodesic distance in metres on the WGS84 ellipsoid.

    >>> round(geodesic_distance_m(113.0, 22.0, 113.0, 23.0))   # one degree of latitude
    110737
    """
    _, _, dist = _GEOD.inv(lng1, lat1, lng2, lat2)
    return float(dist)


def geodesic_line_length_m(coords: Iterable[tuple[float, float]]) -> float:
    """Length in metres of a line given as ``(lng, lat)`` pairs (0.0 for < 2 points).

    >>> round(geodesic_line_length_m([(113.0, 22.0), (113.0, 22.5), (113.0, 23.0)]))
    110737
    >>> geodesic_line_length_m([])
    0.0
    """
    points = list(coords)
    if len(points) < 2:
        return 0.0
    lngs = [float(p[0]) for p in points]
    lats = [float(p[1]) for p in points]
    return float(_GEOD.line_length(lngs, lats))

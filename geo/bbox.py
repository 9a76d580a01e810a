"""Parsing and validation of user-supplied points and bounding boxes.

Bounding boxes are written ``minLng,minLat,maxLng,maxLat`` (GeoJSON / OGC API
``bbox`` order) in WGS84 degrees. Boxes crossing the antimeridian (``min_lng >
max_lng``) are rejected: nothing in this project needs them.

>>> parse_bbox("113.5,22.2,113.6,22.3")
BBox(min_lng=113.5, min_lat=22.2, max_lng=113.6, max_lat=22.3)
>>> parse_point("113.55", 22.25)
(113.55, 22.25)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from shapely.geometry import Polygon, box

from geo.errors import GeoInputError

__all__ = ["BBox", "parse_bbox", "parse_point"]


@dataclass(frozen=True, slots=True)
class BBox:
    """A WGS84 bounding box; build it with :func:`parse_bbox` to get validation.

    >>> b = BBox(113.5, 22.2, 113.6, 22.3)
    >>> b.as_tuple()
    (113.5, 22.2, 113.6, 22.3)
    >>> b.to_polygon().bounds
    (113.5, 22.2, 113.6, 22.3)
    """

    min_lng: float
    min_lat: float
    max_lng: float
    max_lat: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        """``(min_lng, min_lat, max_lng, max_lat)``."""
        return (self.min_lng, self.min_lat, self.max_lng, self.max_lat)

    def to_polygon(self) -> Polygon:
        """The box as a shapely Polygon (WGS84)."""
        return box(self.min_lng, self.min_lat, self.max_lng, self.max_lat)


def _to_float(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise GeoInputError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise GeoInputError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise GeoInputError(f"{what} must be a finite number, got {value!r}")
    return number


def _check_lng(value: float, what: str) -> None:
    if not -180.0 <= value <= 180.0:
        raise GeoInputError(f"{what} must be between -180 and 180, got {value!r}")


def _check_lat(value: float, what: str) -> None:
    if not -90.0 <= value <= 90.0:
        raise GeoInputError(f"{what} must be between -90 and 90, got {value!r}")


def parse_point(lng: Any, lat: Any) -> tuple[float, float]:
    """Validate a WGS84 point given as numbers or numeric strings; return ``(lng, lat)``.

    >>> parse_point(-180, 90)
    (-180.0, 90.0)
    >>> parse_point(None, 22.0)
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: longitude must be a number, got None
    >>> parse_point("", 22.0)
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: longitude must be a number, got ''
    >>> parse_point(113.5, 91)
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: latitude must be between -90 and 90, got 91.0
    """
    lng_f = _to_float(lng, "longitude")
    lat_f = _to_float(lat, "latitude")
    _check_lng(lng_f, "longitude")
    _check_lat(lat_f, "latitude")
    return lng_f, lat_f


def parse_bbox(text: str) -> BBox:
    """Parse ``"minLng,minLat,maxLng,maxLat"`` into a validated :class:`BBox`.

    Spaces around the numbers are allowed; ``min == max`` (a degenerate box) is allowed.

    >>> parse_bbox(" 113.5 , 22.2 , 113.6 , 22.3 ")
    BBox(min_lng=113.5, min_lat=22.2, max_lng=113.6, max_lat=22.3)
    >>> parse_bbox("")
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: bbox must be 4 comma-separated numbers minLng,minLat,maxLng,maxLat; got 0 values
    >>> parse_bbox(None)
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: bbox must be a string 'minLng,minLat,maxLng,maxLat', got None
    >>> parse_bbox("113.6,22.2,113.5,22.3")
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: bbox minLng (113.6) must not be greater than maxLng (113.5)
    """
    if not isinstance(text, str):
        raise GeoInputError(f"bbox must be a string 'minLng,minLat,maxLng,maxLat', got {text!r}")
    parts = text.split(",") if text.strip() else []
    if len(parts) != 4:
        raise GeoInputError(
            "bbox must be 4 comma-separated numbers minLng,minLat,maxLng,maxLat; "
            f"got {len(parts)} values"
        )
    names = ("minLng", "minLat", "maxLng", "maxLat")
    min_lng, min_lat, max_lng, max_lat = (
        _to_float(part, f"bbox {name}") for part, name in zip(parts, names, strict=True)
    )
    _check_lng(min_lng, "bbox minLng")
    _check_lat(min_lat, "bbox minLat")
    _check_lng(max_lng, "bbox maxLng")
    _check_lat(max_lat, "bbox maxLat")
    if min_lng > max_lng:
        raise GeoInputError(f"bbox minLng ({min_lng}) must not be greater than maxLng ({max_lng})")
    if min_lat > max_lat:
        raise GeoInputError(f"bbox minLat ({min_lat}) must not be greater than maxLat ({max_lat})")
    return BBox(min_lng, min_lat, max_lng, max_lat)

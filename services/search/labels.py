"""Facet values with their Chinese and English labels, in a stable order.

Closed vocabularies (station type, scale, facility type, payment) list every value, zero counts
included, in vocabulary order, so chips do not jump around. Operators and districts list the
values that have stations under the other dimensions' filters, plus any selected value (with
its count, possibly 0), most stations first.
"""

from __future__ import annotations

from typing import Any

from services.stations.enums import STATION_TYPES
from services.stations.filters import StationFilter
from services.stations.vocab import FACILITY_TYPES, PAYMENTS, SCALES

__all__ = ["CLOSED_VOCABULARIES", "label_facets"]

CLOSED_VOCABULARIES: dict[str, dict[Any, tuple[str, str]]] = {
    "station_type": STATION_TYPES,
    "scale": SCALES,
    "facility_type": FACILITY_TYPES,
    "payment": PAYMENTS,
}


def label_facets(raw: dict[str, list[tuple[str, int, str | None, str | None]]],
                 flt: StationFilter) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for dim in ("operator", "district"):
        rows = {(int(v) if dim == "district" else v): (n, lab, lab_en) for v, n, lab, lab_en in raw.get(dim, [])}
        for sel in getattr(flt, dim):
            rows.setdefault(sel, (0, None, None))
        items = []
        for value, (n, lab, lab_en) in rows.items():
            if dim == "operator":
                # label: short name (or full name); label_en: full registered name (no English names kept)
                items.append({"value": value, "label": lab or lab_en or value, "label_en": lab_en or lab or value,
                              "count": n})
            else:
                items.append({"value": value, "label": lab or str(value), "label_en": lab_en or lab or str(value),
                              "count": n})
        items.sort(key=lambda it: (-it["count"], str(it["value"])))
        out[dim] = items
    for dim, vocab in CLOSED_VOCABULARIES.items():
        counts: dict[str, int] = {v: n for v, n, _, _ in raw.get(dim, [])}
        out[dim] = [{"value": value, "label": zh, "label_en": en, "count": counts.get(str(value), 0)}
                    for value, (zh, en) in vocab.items()]
    return {dim: out[dim] for dim in ("operator", "district", "station_type", "scale", "facility_type", "payment")}

"""What a higher platform reads of the stations: StationInfo pages and station statuses.

The stations are the public ones, with the open API's visibility rule
(``services.stations.filters.VISIBLE_SQL``: active and interconnected), each under its own
operator's OperatorID and StationID. A StationInfo is built from the columns the feed stored
(the report, cut to widths above the standard's limits, so equal for every accepted station);
the numbers those columns round (a pile's or connector's ``Power`` to 0.1 kW, volts and amps to
integers) come from the report as received (``stations.raw``, the normalised StationInfo), and so
does the order of the piles. Coordinates are the GCJ-02 ones reported (``lng_gcj02``/``lat_gcj02``).

A station has changed since ``LastQueryTime`` when it, one of its piles or connectors (the feed's
writers move ``updated_at``/``info_changed_at`` with them) or the status of one of its connectors
(``status_changed_at``, ``updated_at``) changed at or after that second: the predicate OCPI's
``date_from`` uses, on ``stations`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.stations.filters import VISIBLE_SQL

__all__ = ["CHANGED_SINCE", "station_infos", "station_statuses", "stations_page"]

CHANGED_SINCE = "greatest(s.updated_at, s.info_changed_at, s.status_changed_at) >= :since"

#: (StationInfo key, column), in the standard's order; EquipmentInfos follows
STATION_FIELDS = (
    ("StationID", "station_id"), ("OperatorID", "operator_id"), ("EquipmentOwnerID", "equipment_owner_id"),
    ("StationName", "name"), ("CountryCode", "country_code"), ("AreaCode", "area_code"), ("Address", "address"),
    ("StationTel", "station_tel"), ("ServiceTel", "service_tel"), ("StationType", "station_type"),
    ("StationStatus", "station_status"), ("ParkNums", "park_nums"), ("StationLng", "lng_gcj02"),
    ("StationLat", "lat_gcj02"), ("SiteGuide", "site_guide"), ("Construction", "construction"),
    ("Pictures", "pictures"), ("MatchCars", "match_cars"), ("ParkInfo", "park_info"), ("BusineHours", "busine_hours"),
    ("ElectricityFee", "electricity_fee"), ("ServiceFee", "service_fee"), ("ParkFee", "park_fee"),
    ("Payment", "payment"), ("SupportOrder", "support_order"), ("Remark", "remark"),
)
EQUIPMENT_FIELDS = (
    ("EquipmentID", "equipment_id"), ("ManufacturerID", "manufacturer_id"), ("ManufacturerName", "manufacturer_name"),
    ("EquipmentModel", "equipment_model"), ("ProductionDate", "production_date"), ("EquipmentType", "equipment_type"),
    ("EquipmentLng", "lng_gcj02"), ("EquipmentLat", "lat_gcj02"), ("Power", "power_kw"),
    ("EquipmentName", "equipment_name"),
)
CONNECTOR_FIELDS = (
    ("ConnectorID", "connector_id"), ("ConnectorName", "connector_name"), ("ConnectorType", "connector_type"),
    ("VoltageUpperLimits", "voltage_upper_limits"), ("VoltageLowerLimits", "voltage_lower_limits"),
    ("Current", "current"), ("Power", "power_kw"), ("ParkNo", "park_no"), ("NationalStandard", "national_standard"),
)
#: numbers the columns round: served as reported
_AS_REPORTED = frozenset({"Power", "VoltageUpperLimits", "VoltageLowerLimits", "Current"})

_STATION_COLUMNS = "s.id, " + ", ".join(f"s.{c}" for _, c in STATION_FIELDS) + ", s.raw"

_PILES = text("""
SELECT e.station_pk, e.id AS equipment_pk, e.equipment_id, e.manufacturer_id, e.manufacturer_name, e.equipment_model,
       e.production_date, e.equipment_type, e.lng_gcj02, e.lat_gcj02, e.power_kw, e.equipment_name,
       c.connector_id, c.connector_name, c.connector_type, c.voltage_upper_limits, c.voltage_lower_limits, c.current,
       c.power_kw AS connector_power_kw, c.park_no, c.national_standard
FROM equipment e
LEFT JOIN connectors c ON c.equipment_pk = e.id
WHERE e.station_pk = ANY(:ids)
ORDER BY e.station_pk, e.id, c.id""")


def _value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _reported(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _object(fields: Sequence[tuple[str, str]], row: Any, raw: dict) -> dict[str, Any]:
    """One object from its columns; the numbers the columns round as reported; no empty fields."""
    out: dict[str, Any] = {}
    for key, column in fields:
        value = row.get(column)
        if key in _AS_REPORTED and _reported(raw.get(key)):
            value = raw[key]
        value = _value(value)
        if value is not None and value != []:
            out[key] = value
    return out


def _raw_items(raw: Any, key: str, id_key: str) -> dict[str, tuple[int, dict]]:
    """The reported items of a list (EquipmentInfos, ConnectorInfos) by ID, with their position."""
    items = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(items, list):
        return {}
    return {str(x[id_key]): (i, x) for i, x in enumerate(items) if isinstance(x, dict) and x.get(id_key) is not None}


def _piles(conn: Connection, stations: Sequence[Any]) -> dict[int, list[dict[str, Any]]]:
    """Each station's EquipmentInfos (with their ConnectorInfos), in the order reported."""
    raws = {s["id"]: _raw_items(s["raw"], "EquipmentInfos", "EquipmentID") for s in stations}
    piles: dict[int, dict[int, tuple[Any, dict[str, Any], dict]]] = {}
    for r in conn.execute(_PILES, {"ids": list(raws)}).mappings():
        station = piles.setdefault(r["station_pk"], {})
        if r["equipment_pk"] not in station:
            position, raw = raws[r["station_pk"]].get(r["equipment_id"], (math.inf, {}))
            info = _object(EQUIPMENT_FIELDS, r, raw)
            info["ConnectorInfos"] = []
            station[r["equipment_pk"]] = ((position, r["equipment_pk"]), info, raw)
        if r["connector_id"] is not None:
            _, info, raw = station[r["equipment_pk"]]
            reported = _raw_items(raw, "ConnectorInfos", "ConnectorID").get(r["connector_id"], (math.inf, {}))
            row = {**r, "power_kw": r["connector_power_kw"]}
            info["ConnectorInfos"].append((reported[0], len(info["ConnectorInfos"]),
                                           _object(CONNECTOR_FIELDS, row, reported[1])))
    out: dict[int, list[dict[str, Any]]] = {}
    for pk, station in piles.items():
        ordered = sorted(station.values(), key=lambda x: x[0])
        for _, info, _ in ordered:
            info["ConnectorInfos"] = [c for *_, c in sorted(info["ConnectorInfos"], key=lambda x: x[:2])]
        out[pk] = [info for _, info, _ in ordered]
    return out


def station_infos(conn: Connection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """StationInfos of ``stations`` rows read with :data:`_STATION_COLUMNS`, in their order."""
    piles = _piles(conn, rows)
    out = []
    for s in rows:
        raw = s["raw"] if isinstance(s["raw"], dict) else {}
        info = _object(STATION_FIELDS, s, raw)
        info["EquipmentInfos"] = piles.get(s["id"], [])
        out.append(info)
    return out


def stations_page(conn: Connection, *, since: datetime | None, page_no: int, page_size: int) -> dict[str, Any]:
    """``{PageNo, PageCount, ItemSize, StationInfos}``: the public stations (changed at or after
    ``since``, when given) ordered by their key, page ``page_no`` of ``page_size``. Read it in one
    snapshot so the count and the page agree."""
    where, params = VISIBLE_SQL, {}
    if since is not None:
        where += " AND " + CHANGED_SINCE
        params["since"] = since
    total = conn.execute(text(f"SELECT count(*) FROM stations s WHERE {where}"), params).scalar_one()
    rows = list(conn.execute(text(f"SELECT {_STATION_COLUMNS} FROM stations s WHERE {where} ORDER BY s.id "
                                  "LIMIT :lim OFFSET :off"),
                             {**params, "lim": page_size, "off": (page_no - 1) * page_size}).mappings())
    return {"PageNo": page_no, "PageCount": math.ceil(total / page_size), "ItemSize": total,
            "StationInfos": station_infos(conn, rows)}


_STATUSES = text(f"""
SELECT s.station_id, c.connector_id, cs.status, cs.park_status, cs.lock_status
FROM stations s
LEFT JOIN connectors c ON c.station_pk = s.id
LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
WHERE {VISIBLE_SQL} AND s.station_id = ANY(:ids)
ORDER BY s.operator_id, s.id, c.equipment_pk, c.id""")


def station_statuses(conn: Connection, station_ids: Iterable[str]) -> list[dict[str, Any]]:
    """A StationStatusInfo per public StationID asked for, in the order asked (unknown ones left
    out). A StationID several operators use is one StationStatusInfo with the connectors of all
    their stations (their ConnectorIDs differ). A connector without a known status (never
    reported, or silent) is ``Status`` 0, offline: the standard has no unknown connector status;
    ``ParkStatus`` and ``LockStatus`` 0 are unknown."""
    ids = list(dict.fromkeys(station_ids))
    found: dict[str, list[dict[str, Any]]] = {}
    for r in conn.execute(_STATUSES, {"ids": ids}):
        connectors = found.setdefault(r.station_id, [])
        if r.connector_id is not None:
            connectors.append({"ConnectorID": r.connector_id, "Status": 0 if r.status is None else r.status,
                               "ParkStatus": r.park_status or 0, "LockStatus": r.lock_status or 0})
    return [{"StationID": sid, "ConnectorStatusInfos": found[sid]} for sid in ids if sid in found]

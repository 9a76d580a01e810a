"""T/CEC 102 business objects (Part 2): StationInfo, EquipmentInfo, ConnectorInfo and statuses.

Input is tolerant (operators' platforms misspell keys, send numbers as strings, send arrays as
objects); :func:`normalize_station_info` returns the standard's spelling and types, and
:func:`validate_station_info` lists, in words, what still breaks the field rules.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.errors import ProtocolError, Ret

# Enumerations (value -> (zh label, en label)) live in services.stations.enums, shared with search
# and the portal; they are re-exported here for codec users.
from services.stations.enums import (
    CONNECTOR_STATUSES,
    CONNECTOR_TYPES,
    CONSTRUCTIONS,
    EQUIPMENT_TYPES,
    LOCK_STATUSES,
    NATIONAL_STANDARDS,
    PARK_STATUSES,
    STATION_STATUSES,
    STATION_TYPES,
)

__all__ = [
    "CONNECTOR_REQUIRED",
    "CONNECTOR_STATUSES",
    "CONNECTOR_TYPES",
    "CONSTRUCTIONS",
    "EQUIPMENT_REQUIRED",
    "EQUIPMENT_TYPES",
    "LOCK_STATUSES",
    "NATIONAL_STANDARDS",
    "PARK_STATUSES",
    "STATION_REQUIRED",
    "STATION_STATUSES",
    "STATION_TYPES",
    "normalize_station_info",
    "stations_from_page",
    "status_infos_from",
    "validate_station_info",
]

# --------------------------------------------------------------------------------------------
# Business objects: field rules from Part 2
# --------------------------------------------------------------------------------------------

STATION_REQUIRED: tuple[str, ...] = (
    "StationID", "OperatorID", "EquipmentOwnerID", "StationName", "CountryCode", "AreaCode",
    "Address", "ServiceTel", "StationType", "StationStatus", "ParkNums", "StationLng",
    "StationLat", "Construction", "EquipmentInfos",
)
EQUIPMENT_REQUIRED: tuple[str, ...] = ("EquipmentID", "EquipmentType", "ConnectorInfos", "Power")
CONNECTOR_REQUIRED: tuple[str, ...] = (
    "ConnectorID", "ConnectorType", "VoltageUpperLimits", "VoltageLowerLimits", "Current",
    "Power", "NationalStandard",
)

_STATION_MAX = {
    "StationID": 20, "StationName": 50, "AreaCode": 20, "Address": 50, "StationTel": 30,
    "ServiceTel": 30, "SiteGuide": 100, "MatchCars": 100, "ParkInfo": 100, "BusineHours": 100,
    "ElectricityFee": 256, "ServiceFee": 100, "ParkFee": 100, "Payment": 20, "Remark": 100,
}
_STATION_EXACT = {"OperatorID": 9, "EquipmentOwnerID": 9, "CountryCode": 2}
_EQUIPMENT_MAX = {
    "EquipmentID": 23, "ManufacturerName": 30, "EquipmentModel": 20, "EquipmentName": 30,
}
_EQUIPMENT_EXACT = {"ManufacturerID": 9}
_CONNECTOR_MAX = {"ConnectorID": 26, "ConnectorName": 30, "ParkNo": 10}

_STATION_ENUMS = {
    "StationType": STATION_TYPES, "StationStatus": STATION_STATUSES, "Construction": CONSTRUCTIONS,
}
_EQUIPMENT_ENUMS = {"EquipmentType": EQUIPMENT_TYPES}
_CONNECTOR_ENUMS = {"ConnectorType": CONNECTOR_TYPES, "NationalStandard": NATIONAL_STANDARDS}

_STATION_INTS = ("StationType", "StationStatus", "ParkNums", "Construction", "SupportOrder")
_STATION_FLOATS = ("StationLng", "StationLat")
_STATION_STRS = (
    "StationID", "OperatorID", "EquipmentOwnerID", "AreaCode", "StationTel", "ServiceTel",
)
_EQUIPMENT_INTS = ("EquipmentType",)
_EQUIPMENT_FLOATS = ("EquipmentLng", "EquipmentLat", "Power")
_EQUIPMENT_STRS = ("EquipmentID", "ManufacturerID")
_CONNECTOR_INTS = ("ConnectorType", "NationalStandard")
_CONNECTOR_FLOATS = ("VoltageUpperLimits", "VoltageLowerLimits", "Current", "Power")
_CONNECTOR_STRS = ("ConnectorID", "ParkNo")
_STATUS_INTS = ("Status", "ParkStatus", "LockStatus")

#: Misspellings seen in the spec's own examples and in operators' feeds -> standard key.
#: ``SeviceMoney`` is not a StationInfo field at all, so it is passed through untouched.
_STATION_ALIASES = {
    "OperationID": "OperatorID",
    "BusinessHours": "BusineHours",
    "SeviceFee": "ServiceFee",
    "ServiceFees": "ServiceFee",
}


def _coerce_int(value: Any) -> Any:
    """``"50"`` -> 50 and ``50.0`` -> 50; anything else is returned for validation to flag."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        if re.fullmatch(r"[+-]?\d+\.0*", text):
            return int(float(text))
        if not text:
            return None
    return value


def _coerce_float(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            number = float(text)
        except ValueError:
            return value
        return number if number == number and abs(number) != float("inf") else value
    return value


def _coerce(obj: dict, ints: tuple, floats: tuple, strs: tuple) -> dict:
    out = dict(obj)
    for k in ints:
        if k in out:
            out[k] = _coerce_int(out[k])
    for k in floats:
        if k in out:
            out[k] = _coerce_float(out[k])
    for k in strs:
        if isinstance(out.get(k), int) and not isinstance(out.get(k), bool):
            out[k] = str(out[k])
    return out


def _as_list(value: Any, id_key: str) -> list:
    """Arrays sent as objects: a single item (it has ``id_key``) or a map of items."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if id_key in value or not value or not all(isinstance(v, dict) for v in value.values()):
            return [value]
        return list(value.values())
    return [value]


def _normalize_connector(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    return _coerce(obj, _CONNECTOR_INTS, _CONNECTOR_FLOATS, _CONNECTOR_STRS)


def _normalize_equipment(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    out = _coerce(obj, _EQUIPMENT_INTS, _EQUIPMENT_FLOATS, _EQUIPMENT_STRS)
    if "ConnectorInfos" in out:
        out["ConnectorInfos"] = [
            _normalize_connector(c) for c in _as_list(out["ConnectorInfos"], "ConnectorID")
        ]
    return out


def normalize_station_info(obj: dict) -> dict:
    """Return a copy of a StationInfo in the standard's spelling and types.

    Accepts ``OperationID``, ``BusinessHours``, numeric strings and equipment/connector lists
    sent as objects; unknown keys pass through unchanged. A standard key wins over its
    misspelling when both are present.

    >>> normalize_station_info({"OperationID": "MA59J8YL8", "StationType": "1",
    ...                         "StationLng": "113.5", "BusinessHours": "24h"})
    {'OperatorID': 'MA59J8YL8', 'StationType': 1, 'StationLng': 113.5, 'BusineHours': '24h'}
    >>> normalize_station_info({})
    {}
    """
    out: dict = {}
    for key, value in obj.items():
        std = _STATION_ALIASES.get(key, key)
        if std != key and std in obj:
            continue
        out[std] = value
    out = _coerce(out, _STATION_INTS, _STATION_FLOATS, _STATION_STRS)
    if isinstance(out.get("Pictures"), str):
        out["Pictures"] = [out["Pictures"]] if out["Pictures"] else []
    if "EquipmentInfos" in out:
        out["EquipmentInfos"] = [
            _normalize_equipment(e) for e in _as_list(out["EquipmentInfos"], "EquipmentID")
        ]
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check(
    obj: dict,
    path: str,
    required: tuple,
    maxlen: dict,
    exact: dict,
    enums: dict,
    ints: tuple,
    numbers: tuple,
) -> list[str]:
    problems: list[str] = []
    for name in required:
        value = obj.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"{path}: required field {name} is missing")
    for name, limit in maxlen.items():
        value = obj.get(name)
        if isinstance(value, str) and len(value) > limit:
            problems.append(
                f"{path}: {name} is {len(value)} characters long, the limit is {limit}"
            )
    for name, size in exact.items():
        value = obj.get(name)
        if isinstance(value, str) and value and len(value) != size:
            problems.append(f"{path}: {name} should be {size} characters, got {len(value)}")
    for name in ints:
        value = obj.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            problems.append(f"{path}: {name} must be an integer, got {value!r}")
    for name, table in enums.items():
        value = obj.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value not in table:
            allowed = ", ".join(str(v) for v in table)
            problems.append(f"{path}: {name} {value} is not a known value (allowed: {allowed})")
    for name in numbers:
        value = obj.get(name)
        if value is not None and not _is_number(value):
            problems.append(f"{path}: {name} must be a number, got {value!r}")
    return problems


def _label(obj: dict, kind: str, id_key: str, index: int | None) -> str:
    ident = obj.get(id_key)
    where = f"{kind}[{index}]" if index is not None else kind
    return f"{where} {id_key}={ident}" if ident not in (None, "") else where


def validate_station_info(obj: dict) -> list[str]:
    """Human-readable problems in a (normalised) StationInfo; empty when it conforms.

    Call it on the output of :func:`normalize_station_info`, so misspellings and numeric
    strings are not reported as problems the codec already repairs.

    >>> validate_station_info({"StationID": "S1"})[0]
    'StationInfo StationID=S1: required field OperatorID is missing'
    """
    if not isinstance(obj, dict):
        return ["StationInfo must be a JSON object"]
    path = _label(obj, "StationInfo", "StationID", None)
    problems = _check(
        obj, path, STATION_REQUIRED, _STATION_MAX, _STATION_EXACT, _STATION_ENUMS,
        _STATION_INTS, _STATION_FLOATS,
    )
    for name, low, high in (("StationLng", -180, 180), ("StationLat", -90, 90)):
        value = obj.get(name)
        if _is_number(value) and not low <= value <= high:
            problems.append(f"{path}: {name} {value} is outside {low}..{high}")
    equipments = obj.get("EquipmentInfos")
    if isinstance(equipments, list):
        if not equipments:
            problems.append(f"{path}: EquipmentInfos is empty; a station needs equipment")
        for i, eq in enumerate(equipments):
            if not isinstance(eq, dict):
                problems.append(f"{path}: EquipmentInfos[{i}] must be an object")
                continue
            epath = f"{path} > " + _label(eq, "EquipmentInfos", "EquipmentID", i)
            problems += _check(
                eq, epath, EQUIPMENT_REQUIRED, _EQUIPMENT_MAX, _EQUIPMENT_EXACT,
                _EQUIPMENT_ENUMS, _EQUIPMENT_INTS, _EQUIPMENT_FLOATS,
            )
            connectors = eq.get("ConnectorInfos")
            if isinstance(connectors, list):
                if not connectors:
                    problems.append(f"{epath}: ConnectorInfos is empty; equipment needs connectors")
                for j, con in enumerate(connectors):
                    if not isinstance(con, dict):
                        problems.append(f"{epath}: ConnectorInfos[{j}] must be an object")
                        continue
                    cpath = f"{epath} > " + _label(con, "ConnectorInfos", "ConnectorID", j)
                    problems += _check(
                        con, cpath, CONNECTOR_REQUIRED, _CONNECTOR_MAX, {},
                        _CONNECTOR_ENUMS, _CONNECTOR_INTS, _CONNECTOR_FLOATS,
                    )
            elif connectors is not None:
                problems.append(f"{epath}: ConnectorInfos must be an array")
    elif equipments is not None:
        problems.append(f"{path}: EquipmentInfos must be an array")
    return problems


def _business_dict(data: Any, what: str) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ProtocolError(Ret.BUSINESS, f"{what} Data must be a JSON object")
    return data


def stations_from_page(data: dict) -> list[dict]:
    """Normalised StationInfos of a ``query_stations_info`` page (or a pushed station).

    ``StationInfos`` may be an array, one station object, or a map of stations.

    >>> [s["StationID"] for s in stations_from_page({"StationInfos": {"StationID": 7}})]
    ['7']
    >>> stations_from_page({"PageNo": 1, "StationInfos": []})
    []
    """
    page = _business_dict(data, "query_stations_info")
    raw = page.get("StationInfos")
    if raw is None and "StationInfo" in page:  # notification_stationInfo (city variant)
        raw = page["StationInfo"]
    return [
        normalize_station_info(s) if isinstance(s, dict) else s
        for s in _as_list(raw, "StationID")
    ]


def _normalize_status(obj: Any) -> Any:
    if not isinstance(obj, dict):
        return obj
    return _coerce(obj, _STATUS_INTS, (), ("ConnectorID",))


def status_infos_from(data: dict) -> list[dict]:
    """StationStatusInfos of a ``query_station_status`` response, normalised.

    Accepts ``StationStatusInfos`` as an array or object, and variants that put the list
    under ``Total``; each ``ConnectorStatusInfos`` becomes an array with integer statuses.

    >>> status_infos_from({"Total": 1, "StationStatusInfos": {"StationID": "S1",
    ...     "ConnectorStatusInfos": {"ConnectorID": "C1", "Status": "3"}}})
    [{'StationID': 'S1', 'ConnectorStatusInfos': [{'ConnectorID': 'C1', 'Status': 3}]}]
    """
    body = _business_dict(data, "query_station_status")
    raw = body.get("StationStatusInfos")
    if raw is None:
        raw = body.get("StationStatusInfo")
    if raw is None and isinstance(body.get("Total"), (list, dict)):
        raw = body["Total"]
    out = []
    for info in _as_list(raw, "StationID"):
        if not isinstance(info, dict):
            out.append(info)
            continue
        info = _coerce(info, (), (), ("StationID",))
        if "ConnectorStatusInfos" in info:
            info["ConnectorStatusInfos"] = [
                _normalize_status(c) for c in _as_list(info["ConnectorStatusInfos"], "ConnectorID")
            ]
        out.append(info)
    return out

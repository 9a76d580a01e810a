"""StationInfo -> table rows: what the feed writes for a station, its equipment and connectors.

Pure preparation, no database: field values cut to their column widths and types, the rules a
real station must meet (on top of the protocol's field rules), GCJ-02 converted to WGS84 for a
whole batch at once, payments and pinyin derived, and a content digest that lets an unchanged
station skip every write. :mod:`ingest.store` writes the rows.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from psycopg2.extras import Json

from geo.gcj02 import gcj02_to_wgs84_array
from ingest.objects import validate_station_info
from services.stations.vocab import normalize_payments, pinyin_of

__all__ = ["PreparedRows", "content_digest", "int_or_none", "prepare_rows"]


_STATION_WIDTHS = {
    "StationID": 20, "EquipmentOwnerID": 9, "StationName": 50, "CountryCode": 2, "AreaCode": 20,
    "Address": 100, "StationTel": 30, "ServiceTel": 30, "SiteGuide": 200, "MatchCars": 200,
    "ParkInfo": 200, "BusineHours": 200, "ElectricityFee": 512, "ServiceFee": 200, "ParkFee": 200,
    "Payment": 100, "Remark": 200,
}


def _str(value: Any, width: int | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)
    return value[:width] if width else value


def int_or_none(value: Any, low: int = -32768, high: int = 32767) -> int | None:
    """An integer within ``low..high`` (a smallint by default), else None; booleans are not integers.

    >>> int_or_none(3.0), int_or_none(True), int_or_none(40000), int_or_none("3")
    (3, None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and low <= value <= high:
        return value
    return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _power(value: Any) -> float | None:
    v = _num(value)
    return round(v, 1) if v is not None and 0 <= v < 1_000_000 else None


def _date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _impossible(st: dict) -> list[str]:
    """Values the field rules allow but no real station has."""
    out: list[str] = []
    sid = st.get("StationID")
    lng, lat = _num(st.get("StationLng")), _num(st.get("StationLat"))
    if lng is not None and lat is not None and lng == 0 and lat == 0:
        out.append(f"StationInfo StationID={sid}: StationLng/StationLat are 0,0")
    park = st.get("ParkNums")
    if isinstance(park, int) and not isinstance(park, bool) and not 0 <= park <= 100_000:
        out.append(f"StationInfo StationID={sid}: ParkNums {park} is impossible")
    for eq in st.get("EquipmentInfos") or []:
        if not isinstance(eq, dict):
            continue
        p = _num(eq.get("Power"))
        if p is not None and not 0 < p <= 2000:
            out.append(f"StationInfo StationID={sid} > EquipmentID={eq.get('EquipmentID')}: "
                       f"Power {p} kW is impossible")
        for con in eq.get("ConnectorInfos") or []:
            if not isinstance(con, dict):
                continue
            cp = _num(con.get("Power"))
            if cp is not None and not 0 < cp <= 2000:
                out.append(f"StationInfo StationID={sid} > ConnectorID={con.get('ConnectorID')}: "
                           f"Power {cp} kW is impossible")
            for name in ("VoltageUpperLimits", "VoltageLowerLimits", "Current"):
                v = _num(con.get(name))
                if v is not None and not 0 <= v <= 5000:
                    out.append(f"StationInfo StationID={sid} > ConnectorID={con.get('ConnectorID')}: "
                               f"{name} {v} is impossible")
    return out


@dataclass
class PreparedRows:
    """The rows of a batch of StationInfos, ready for the upserts of :mod:`ingest.store`."""

    stations: list[tuple]
    equipment: dict[str, list[tuple]]  # StationID -> equipment rows
    connectors: dict[str, list[tuple]]  # StationID -> connector rows


def prepare_rows(stations: Iterable[dict], operator_id: str, operator_name: str, interconnected: bool) -> PreparedRows:
    """Validate, convert coordinates and derive the columns of a batch of StationInfos."""
    by_id: dict[str, dict] = {}
    for st in stations:
        sid = st.get("StationID") if isinstance(st, dict) else None
        if isinstance(sid, str) and sid.strip():  # without a StationID there is no key to store it under
            by_id[sid] = st  # the last occurrence wins (pages that shifted under us repeat stations)
    items = list(by_id.values())
    lngs = np.array([_num(s.get("StationLng")) if _num(s.get("StationLng")) is not None else np.nan for s in items],
                    dtype=np.float64)
    lats = np.array([_num(s.get("StationLat")) if _num(s.get("StationLat")) is not None else np.nan for s in items],
                    dtype=np.float64)
    w_lng, w_lat = gcj02_to_wgs84_array(lngs, lats) if items else (lngs, lats)
    op_pinyin, op_initials = pinyin_of(operator_name)

    rows: list[tuple] = []
    equipment: dict[str, list[tuple]] = {}
    connectors: dict[str, list[tuple]] = {}
    eq_coords: list[tuple[float | None, float | None]] = []
    for i, st in enumerate(items):
        sid = st["StationID"]
        problems = validate_station_info(st)
        if not problems:
            problems = _impossible(st)
        own = st.get("OperatorID")
        if not problems and own != operator_id:
            problems = [f"StationInfo StationID={sid}: OperatorID {own!r} is not this feed's operator {operator_id}"]
        lng_ok = bool(np.isfinite(lngs[i]) and np.isfinite(lats[i])
                      and -180 <= lngs[i] <= 180 and -90 <= lats[i] <= 90)
        name = _str(st.get("StationName"), 50) or sid
        address = _str(st.get("Address"), 100)
        payment = _str(st.get("Payment"), 100)
        codes, unknown = normalize_payments(payment) if payment else ([], [])
        full, initials = pinyin_of(name)
        search_text = " ".join(x for x in (name, operator_name, address, full, op_pinyin, initials, op_initials) if x)
        digest = content_digest(st, operator_name, interconnected)
        pictures = [str(p) for p in st.get("Pictures") or [] if p is not None] if isinstance(st.get("Pictures"), list) else []
        rows.append((
            sid[:20], _str(st.get("EquipmentOwnerID"), 9), name, _str(st.get("CountryCode"), 2) or "CN",
            _str(st.get("AreaCode"), 20), address, _str(st.get("StationTel"), 30), _str(st.get("ServiceTel"), 30),
            int_or_none(st.get("StationType")) or 0, int_or_none(st.get("StationStatus")) or 0,
            int_or_none(st.get("ParkNums"), 0, 2**31 - 1) or 0,
            float(lngs[i]) if lng_ok else None, float(lats[i]) if lng_ok else None,
            float(w_lng[i]) if lng_ok else None, float(w_lat[i]) if lng_ok else None,
            _str(st.get("SiteGuide"), 200), int_or_none(st.get("Construction")), pictures,
            _str(st.get("MatchCars"), 200), _str(st.get("ParkInfo"), 200), _str(st.get("BusineHours"), 200),
            _str(st.get("ElectricityFee"), 512), _str(st.get("ServiceFee"), 200), _str(st.get("ParkFee"), 200),
            payment, int_or_none(st.get("SupportOrder")), _str(st.get("Remark"), 200),
            codes, unknown, full, initials, search_text, Json(st, dumps=_dumps), digest,
            "; ".join(problems) if problems else None, interconnected,
        ))
        if problems:
            continue
        eq_rows = []
        con_rows = []
        for eq in st.get("EquipmentInfos") or []:
            e_lng, e_lat = _num(eq.get("EquipmentLng")), _num(eq.get("EquipmentLat"))
            if e_lng is None or e_lat is None or not (-180 <= e_lng <= 180 and -90 <= e_lat <= 90):
                e_lng = e_lat = None
            eq_coords.append((e_lng, e_lat))
            eq_rows.append((
                eq["EquipmentID"], _str(eq.get("ManufacturerID"), 9), _str(eq.get("ManufacturerName"), 60),
                _str(eq.get("EquipmentModel"), 40), _date(eq.get("ProductionDate")), int_or_none(eq.get("EquipmentType")),
                e_lng, e_lat, None, None, _power(eq.get("Power")),
                _str(eq.get("EquipmentName"), 60),
            ))
            for con in eq.get("ConnectorInfos") or []:
                con_rows.append((
                    con["ConnectorID"], eq["EquipmentID"], _str(con.get("ConnectorName"), 60),
                    int_or_none(con.get("ConnectorType")), int_or_none(round(_num(con.get("VoltageUpperLimits")) or 0), 0, 2**31 - 1),
                    int_or_none(round(_num(con.get("VoltageLowerLimits")) or 0), 0, 2**31 - 1),
                    int_or_none(round(_num(con.get("Current")) or 0), 0, 2**31 - 1), _power(con.get("Power")),
                    _str(con.get("ParkNo"), 20), int_or_none(con.get("NationalStandard")),
                ))
        equipment[sid] = eq_rows
        connectors[sid] = con_rows
    # Pile positions: one vectorised conversion for the whole batch.
    if eq_coords:
        e_lng = np.array([np.nan if x is None else x for x, _ in eq_coords], dtype=np.float64)
        e_lat = np.array([np.nan if y is None else y for _, y in eq_coords], dtype=np.float64)
        w_lng, w_lat = gcj02_to_wgs84_array(e_lng, e_lat)
        k = 0
        for sid in equipment:
            fixed = []
            for row in equipment[sid]:
                ok = row[6] is not None
                fixed.append((*row[:8], float(w_lng[k]) if ok else None, float(w_lat[k]) if ok else None, *row[10:]))
                k += 1
            equipment[sid] = fixed
    return PreparedRows(rows, equipment, connectors)


def content_digest(st: dict, operator_name: str, interconnected: bool) -> str:
    """Hash of everything that feeds a station's row: equal hash, nothing to write."""
    return hashlib.md5(json.dumps([st, operator_name, interconnected], sort_keys=True, ensure_ascii=False,
                                  default=str).encode("utf-8")).hexdigest()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


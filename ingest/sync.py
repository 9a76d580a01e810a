"""Pull sync: operators' StationInfos and statuses into PostGIS, idempotently.

One run per operator (``sync_operator``), several operators at once (``sync_all``, a thread per
operator with its own time budget, so one broken platform never stalls the others).

A run:

1. takes the operator's advisory lock (``pg_try_advisory_lock``; several app processes and the
   CLI can all try, one pulls) and logs a ``sync_runs`` row;
2. pages through ``query_stations_info`` (``LastQueryTime`` = start of the previous successful
   pull minus ``FeedSettings.overlap_s``; empty for a full pull). If ``ItemSize`` moves while
   paging, the pages shifted under us: the whole listing is read a second time and both passes
   are merged; withdrawals are only decided from a stable listing;
3. writes stations in chunks, each chunk one transaction: one ``INSERT .. ON CONFLICT`` for the
   stations (GCJ-02 converted to WGS84 here, district by ``ST_Intersects`` in PostGIS, rejected
   rows kept with their reason), then equipment and connectors of the stations that changed, and
   deletion of the piles and connectors they no longer report. A content hash makes an
   unchanged station a no-op;
4. pulls connector statuses in batches of ≤ 50 StationIDs into ``connector_status``;
5. refreshes the derived station columns, marks stations missing from a *full* listing as
   withdrawn, bumps the ``stations`` data version when anything visible changed, and moves the
   operator's ``last_query_time`` only when everything succeeded.

Database writes are retried while the database is unreachable (``FeedSettings.db_retry_s``), so a
database restart in the middle of a run delays it instead of failing it; every write is an
idempotent upsert, so a run cut short is completed by the next one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from psycopg2.extras import Json, execute_values
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from geo.gcj02 import gcj02_to_wgs84_array
from ingest.client import Endpoint, FeedClient, FeedError
from ingest.protocol import (
    CONNECTOR_STATUSES,
    Secrets,
    format_query_time,
    validate_station_info,
)
from services.db import is_disconnect
from services.settings import Settings
from services.stations.summary import bump_version, refresh_station_summaries
from services.stations.vocab import normalize_payments, pinyin_of

__all__ = [
    "EndpointInfo",
    "SyncResult",
    "load_endpoints",
    "pull_statuses",
    "store_station_infos",
    "store_statuses",
    "sync_all",
    "sync_operator",
]

log = logging.getLogger("zhcharge.feed.sync")

_CHUNK = 1000  # stations per write transaction


# --------------------------------------------------------------------------------------------
# Endpoints and results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointInfo:
    """A ``feed_endpoints`` row joined with its operator's name."""

    operator_id: str
    name: str
    base_url: str | None
    api_version: str
    platform_operator_id: str | None
    operator_secret: str | None
    data_secret: str | None
    data_iv: str | None
    sig_secret: str | None
    enabled: bool
    interconnected: bool
    last_query_time: datetime | None
    circuit_state: str
    circuit_failures: int
    circuit_opened_at: datetime | None

    @property
    def pullable(self) -> bool:
        return bool(self.base_url and self.platform_operator_id and self.operator_secret
                    and self.data_secret and self.data_iv and self.sig_secret)

    def endpoint(self) -> Endpoint:
        return Endpoint(self.operator_id, self.base_url or "", self.api_version,
                        Secrets(self.platform_operator_id or "", self.operator_secret or "",
                                self.data_secret or "", self.data_iv or "", self.sig_secret or ""))


_ENDPOINTS = text("""
SELECT f.operator_id, o.name, f.base_url, f.api_version, f.platform_operator_id, f.operator_secret,
       f.data_secret, f.data_iv, f.sig_secret, f.enabled, f.interconnected, f.last_query_time,
       f.circuit_state, f.circuit_failures, f.circuit_opened_at
FROM feed_endpoints f JOIN operators o ON o.operator_id = f.operator_id
WHERE (CAST(:op AS text) IS NULL OR f.operator_id = :op)
ORDER BY f.operator_id
""")


def load_endpoints(conn: Connection, operator_id: str | None = None) -> list[EndpointInfo]:
    return [EndpointInfo(**dict(r._mapping)) for r in conn.execute(_ENDPOINTS, {"op": operator_id})]


@dataclass
class SyncResult:
    operator_id: str
    mode: str
    ok: bool = False
    skipped: str | None = None
    pages: int = 0
    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    withdrawn: int = 0
    statuses: int = 0
    duration_ms: int = 0
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    run_id: int | None = None
    unkeyed: int = 0
    """StationInfos without a StationID: nothing to key them by, so reported, not stored."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        """One progress line for the CLI."""
        if self.skipped:
            return f"{self.operator_id}  {self.mode:<11}  skipped: {self.skipped}"
        counts = (f"{self.pages} pages, {self.received} stations (inserted {self.inserted}, updated "
                  f"{self.updated}, unchanged {self.unchanged}, rejected {self.rejected}, withdrawn "
                  f"{self.withdrawn}), {self.statuses} statuses")
        if self.mode == "status":
            counts = f"{self.statuses} statuses"
        tail = "ok" if self.ok else f"FAILED: {self.error}"
        return f"{self.operator_id}  {self.mode:<11}  {counts} in {self.duration_ms / 1000:.1f} s  {tail}"


class _DatabaseDown(Exception):
    """The database stayed unreachable for longer than the retry budget."""


def _with_db(engine: Engine, fn: Callable[[Connection], Any], budget_s: float) -> Any:
    """Run ``fn`` in one transaction; while the database is unreachable, retry with backoff."""
    deadline = time.monotonic() + budget_s
    delay = 0.25
    while True:
        try:
            with engine.begin() as conn:
                return fn(conn)
        except DBAPIError as exc:
            if not is_disconnect(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise _DatabaseDown("the database is unreachable") from exc
            log.warning("database unreachable (%s); retrying in %.1f s", type(exc.orig).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 3.0)


# --------------------------------------------------------------------------------------------
# StationInfo -> rows
# --------------------------------------------------------------------------------------------

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


def _int(value: Any, low: int = -32768, high: int = 32767) -> int | None:
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
class _Prepared:
    stations: list[tuple]
    equipment: dict[str, list[tuple]]  # StationID -> equipment rows
    connectors: dict[str, list[tuple]]  # StationID -> connector rows


def _prepare(stations: Iterable[dict], operator_id: str, operator_name: str, interconnected: bool) -> _Prepared:
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
        digest = _digest(st, operator_name, interconnected)
        pictures = [str(p) for p in st.get("Pictures") or [] if p is not None] if isinstance(st.get("Pictures"), list) else []
        rows.append((
            sid[:20], _str(st.get("EquipmentOwnerID"), 9), name, _str(st.get("CountryCode"), 2) or "CN",
            _str(st.get("AreaCode"), 20), address, _str(st.get("StationTel"), 30), _str(st.get("ServiceTel"), 30),
            _int(st.get("StationType")) or 0, _int(st.get("StationStatus")) or 0,
            _int(st.get("ParkNums"), 0, 2**31 - 1) or 0,
            float(lngs[i]) if lng_ok else None, float(lats[i]) if lng_ok else None,
            float(w_lng[i]) if lng_ok else None, float(w_lat[i]) if lng_ok else None,
            _str(st.get("SiteGuide"), 200), _int(st.get("Construction")), pictures,
            _str(st.get("MatchCars"), 200), _str(st.get("ParkInfo"), 200), _str(st.get("BusineHours"), 200),
            _str(st.get("ElectricityFee"), 512), _str(st.get("ServiceFee"), 200), _str(st.get("ParkFee"), 200),
            payment, _int(st.get("SupportOrder")), _str(st.get("Remark"), 200),
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
                _str(eq.get("EquipmentModel"), 40), _date(eq.get("ProductionDate")), _int(eq.get("EquipmentType")),
                e_lng, e_lat, None, None, _power(eq.get("Power")),
                _str(eq.get("EquipmentName"), 60),
            ))
            for con in eq.get("ConnectorInfos") or []:
                con_rows.append((
                    con["ConnectorID"], eq["EquipmentID"], _str(con.get("ConnectorName"), 60),
                    _int(con.get("ConnectorType")), _int(round(_num(con.get("VoltageUpperLimits")) or 0), 0, 2**31 - 1),
                    _int(round(_num(con.get("VoltageLowerLimits")) or 0), 0, 2**31 - 1),
                    _int(round(_num(con.get("Current")) or 0), 0, 2**31 - 1), _power(con.get("Power")),
                    _str(con.get("ParkNo"), 20), _int(con.get("NationalStandard")),
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
    return _Prepared(rows, equipment, connectors)


def _digest(st: dict, operator_name: str, interconnected: bool) -> str:
    """Hash of everything that feeds a station's row: equal hash, nothing to write."""
    return hashlib.md5(json.dumps([st, operator_name, interconnected], sort_keys=True, ensure_ascii=False,
                                  default=str).encode("utf-8")).hexdigest()


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------------------------
# Writing stations, equipment and connectors
# --------------------------------------------------------------------------------------------

_STATION_TEMPLATE = (
    "(%s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar,"
    " %s::smallint, %s::smallint, %s::int, %s::float8, %s::float8, %s::float8, %s::float8, %s::varchar,"
    " %s::smallint, %s::text[], %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::varchar,"
    " %s::varchar, %s::smallint, %s::varchar, %s::varchar(10)[], %s::text[], %s::text, %s::text, %s::text,"
    " %s::jsonb, %s::varchar, %s::text, %s::boolean)"
)

_UPSERT_STATIONS = """
WITH v (station_id, equipment_owner_id, name, country_code, area_code, address, station_tel, service_tel,
        station_type, station_status, park_nums, lng_gcj02, lat_gcj02, lng, lat, site_guide, construction,
        pictures, match_cars, park_info, busine_hours, electricity_fee, service_fee, park_fee, payment,
        support_order, remark, payments, payment_unknown, name_pinyin, name_initials, search_text, raw,
        content_hash, problems, interconnected) AS (VALUES %s),
p AS (
    SELECT v.*, CASE WHEN v.lng IS NOT NULL THEN ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326) END AS g FROM v
),
d AS (
    SELECT p.*, (SELECT dd.adcode FROM districts dd
                 WHERE dd.city_adcode = %(city)s AND ST_Intersects(dd.geom, p.g)
                 ORDER BY dd.adcode LIMIT 1) AS adcode
    FROM p
)
INSERT INTO stations AS s (
    operator_id, station_id, equipment_owner_id, name, country_code, area_code, address, station_tel,
    service_tel, station_type, station_status, park_nums, lng_gcj02, lat_gcj02, site_guide, construction,
    pictures, match_cars, park_info, busine_hours, electricity_fee, service_fee, park_fee, payment,
    support_order, remark, geom, geom_3857, district_adcode, area_code_mismatch, feed_state, reject_reason,
    interconnected, payments, payment_unknown, name_pinyin, name_initials, search_text, raw, content_hash,
    info_changed_at, withdrawn_at, updated_at)
SELECT %(op)s, station_id, equipment_owner_id, name, country_code, area_code, address, station_tel,
       service_tel, station_type, station_status, park_nums, lng_gcj02, lat_gcj02, site_guide, construction,
       pictures, match_cars, park_info, busine_hours, electricity_fee, service_fee, park_fee, payment,
       support_order, remark, g, ST_Transform(g, 3857), adcode,
       adcode IS NOT NULL AND area_code IS DISTINCT FROM adcode::text,
       CASE WHEN problems IS NOT NULL OR adcode IS NULL THEN 'rejected' ELSE 'active' END,
       coalesce(problems, CASE WHEN g IS NULL THEN 'StationLng/StationLat are not usable coordinates'
                               WHEN adcode IS NULL THEN format(
                                   'StationLng/StationLat (GCJ-02 %%s, %%s) lie outside the city''s districts',
                                   lng_gcj02, lat_gcj02) END),
       interconnected, payments, payment_unknown, name_pinyin, name_initials, search_text, raw, content_hash,
       now(), NULL, now()
FROM d
ON CONFLICT (operator_id, station_id) DO UPDATE SET
    equipment_owner_id = EXCLUDED.equipment_owner_id, name = EXCLUDED.name, country_code = EXCLUDED.country_code,
    area_code = EXCLUDED.area_code, address = EXCLUDED.address, station_tel = EXCLUDED.station_tel,
    service_tel = EXCLUDED.service_tel, station_type = EXCLUDED.station_type,
    station_status = EXCLUDED.station_status, park_nums = EXCLUDED.park_nums, lng_gcj02 = EXCLUDED.lng_gcj02,
    lat_gcj02 = EXCLUDED.lat_gcj02, site_guide = EXCLUDED.site_guide, construction = EXCLUDED.construction,
    pictures = EXCLUDED.pictures, match_cars = EXCLUDED.match_cars, park_info = EXCLUDED.park_info,
    busine_hours = EXCLUDED.busine_hours, electricity_fee = EXCLUDED.electricity_fee,
    service_fee = EXCLUDED.service_fee, park_fee = EXCLUDED.park_fee, payment = EXCLUDED.payment,
    support_order = EXCLUDED.support_order, remark = EXCLUDED.remark, geom = EXCLUDED.geom,
    geom_3857 = EXCLUDED.geom_3857, district_adcode = EXCLUDED.district_adcode,
    area_code_mismatch = EXCLUDED.area_code_mismatch, feed_state = EXCLUDED.feed_state,
    reject_reason = EXCLUDED.reject_reason, interconnected = EXCLUDED.interconnected,
    payments = EXCLUDED.payments, payment_unknown = EXCLUDED.payment_unknown,
    name_pinyin = EXCLUDED.name_pinyin, name_initials = EXCLUDED.name_initials,
    search_text = EXCLUDED.search_text, raw = EXCLUDED.raw, content_hash = EXCLUDED.content_hash,
    info_changed_at = CASE WHEN s.content_hash IS DISTINCT FROM EXCLUDED.content_hash THEN now()
                           ELSE s.info_changed_at END,
    withdrawn_at = NULL, updated_at = now()
WHERE s.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR s.feed_state IS DISTINCT FROM EXCLUDED.feed_state
   OR s.district_adcode IS DISTINCT FROM EXCLUDED.district_adcode
RETURNING s.id, s.station_id, (s.xmax = 0) AS inserted, s.feed_state
"""

_EQUIPMENT_TEMPLATE = (
    "(%s::varchar, %s::varchar, %s::varchar, %s::varchar, %s::date, %s::smallint, %s::float8, %s::float8,"
    " %s::float8, %s::float8, %s::numeric, %s::varchar, %s::bigint)"
)

_UPSERT_EQUIPMENT = """
INSERT INTO equipment AS e (station_pk, operator_id, equipment_id, manufacturer_id, manufacturer_name,
                            equipment_model, production_date, equipment_type, lng_gcj02, lat_gcj02, geom,
                            power_kw, equipment_name, updated_at)
SELECT v.station_pk, %(op)s, v.equipment_id, v.manufacturer_id, v.manufacturer_name, v.equipment_model,
       v.production_date, v.equipment_type, v.lng_gcj02, v.lat_gcj02,
       CASE WHEN v.lng IS NOT NULL THEN ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326) END,
       v.power_kw, v.equipment_name, now()
FROM (VALUES %s) AS v (equipment_id, manufacturer_id, manufacturer_name, equipment_model, production_date,
                       equipment_type, lng_gcj02, lat_gcj02, lng, lat, power_kw, equipment_name, station_pk)
ON CONFLICT (operator_id, equipment_id) DO UPDATE SET
    station_pk = EXCLUDED.station_pk, manufacturer_id = EXCLUDED.manufacturer_id,
    manufacturer_name = EXCLUDED.manufacturer_name, equipment_model = EXCLUDED.equipment_model,
    production_date = EXCLUDED.production_date, equipment_type = EXCLUDED.equipment_type,
    lng_gcj02 = EXCLUDED.lng_gcj02, lat_gcj02 = EXCLUDED.lat_gcj02, geom = EXCLUDED.geom,
    power_kw = EXCLUDED.power_kw, equipment_name = EXCLUDED.equipment_name, updated_at = now()
WHERE (e.station_pk, e.manufacturer_id, e.manufacturer_name, e.equipment_model, e.production_date,
       e.equipment_type, e.lng_gcj02, e.lat_gcj02, e.power_kw, e.equipment_name)
      IS DISTINCT FROM
      (EXCLUDED.station_pk, EXCLUDED.manufacturer_id, EXCLUDED.manufacturer_name, EXCLUDED.equipment_model,
       EXCLUDED.production_date, EXCLUDED.equipment_type, EXCLUDED.lng_gcj02, EXCLUDED.lat_gcj02,
       EXCLUDED.power_kw, EXCLUDED.equipment_name)
"""

_CONNECTOR_TEMPLATE = (
    "(%s::varchar, %s::varchar, %s::varchar, %s::smallint, %s::int, %s::int, %s::int, %s::numeric,"
    " %s::varchar, %s::smallint)"
)

_UPSERT_CONNECTORS = """
INSERT INTO connectors AS c (equipment_pk, station_pk, operator_id, connector_id, connector_name,
                             connector_type, voltage_upper_limits, voltage_lower_limits, current, power_kw,
                             park_no, national_standard, updated_at)
SELECT e.id, e.station_pk, %(op)s, v.connector_id, v.connector_name, v.connector_type, v.vu, v.vl, v.cur,
       v.power_kw, v.park_no, v.national_standard, now()
FROM (VALUES %s) AS v (connector_id, equipment_id, connector_name, connector_type, vu, vl, cur, power_kw,
                       park_no, national_standard)
JOIN equipment e ON e.operator_id = %(op)s AND e.equipment_id = v.equipment_id
ON CONFLICT (operator_id, connector_id) DO UPDATE SET
    equipment_pk = EXCLUDED.equipment_pk, station_pk = EXCLUDED.station_pk,
    connector_name = EXCLUDED.connector_name, connector_type = EXCLUDED.connector_type,
    voltage_upper_limits = EXCLUDED.voltage_upper_limits, voltage_lower_limits = EXCLUDED.voltage_lower_limits,
    current = EXCLUDED.current, power_kw = EXCLUDED.power_kw, park_no = EXCLUDED.park_no,
    national_standard = EXCLUDED.national_standard, updated_at = now()
WHERE (c.equipment_pk, c.station_pk, c.connector_name, c.connector_type, c.voltage_upper_limits,
       c.voltage_lower_limits, c.current, c.power_kw, c.park_no, c.national_standard)
      IS DISTINCT FROM
      (EXCLUDED.equipment_pk, EXCLUDED.station_pk, EXCLUDED.connector_name, EXCLUDED.connector_type,
       EXCLUDED.voltage_upper_limits, EXCLUDED.voltage_lower_limits, EXCLUDED.current, EXCLUDED.power_kw,
       EXCLUDED.park_no, EXCLUDED.national_standard)
"""


_PRECEDENCE = {"unchanged": 0, "updated": 1, "inserted": 2, "rejected": 3}


@dataclass
class StoreCounts:
    """What happened to each StationID: inserted, updated, unchanged (accepted ones) or rejected."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    touched: list[int] = field(default_factory=list)
    """Primary keys of the station rows that changed."""
    outcome: dict[str, str] = field(default_factory=dict)

    def add(self, other: StoreCounts) -> None:
        """Merge a later chunk (a station read twice keeps its strongest outcome)."""
        self.touched += other.touched
        for sid, o in other.outcome.items():
            prev = self.outcome.get(sid)
            if prev is None or "rejected" in (o, prev) or _PRECEDENCE[o] > _PRECEDENCE[prev]:
                self.outcome[sid] = o  # the latest read decides rejection; otherwise the strongest change
        values = list(self.outcome.values())
        self.inserted, self.updated = values.count("inserted"), values.count("updated")
        self.unchanged, self.rejected = values.count("unchanged"), values.count("rejected")


def store_station_infos(conn: Connection, operator_id: str, operator_name: str, stations: Sequence[dict], *,
                        interconnected: bool, city_adcode: int = 440400) -> StoreCounts:
    """Upsert normalised StationInfos with their equipment and connectors, in the caller's transaction.

    Returns the counts and the primary keys of the stations whose row changed (their derived
    columns still need ``refresh_station_summaries``).
    """
    counts = StoreCounts()
    by_id: dict[str, dict] = {}
    for st in stations:
        sid = st.get("StationID") if isinstance(st, dict) else None
        if isinstance(sid, str) and sid.strip():
            by_id[sid] = st
    if not by_id:
        return counts
    cur = conn.connection.dbapi_connection.cursor()
    try:
        # Skip what is stored already with the same content: no conversion, no write.
        cur.execute("SELECT station_id, content_hash, feed_state FROM stations WHERE operator_id = %s "
                    "AND station_id = ANY(%s)", (operator_id, list(by_id)))
        stored = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        skipped: dict[str, str] = {}
        todo = []
        for sid, st in by_id.items():
            have = stored.get(sid)
            if have and have[1] != "withdrawn" and have[0] == _digest(st, operator_name, interconnected):
                skipped[sid] = "rejected" if have[1] == "rejected" else "unchanged"
            else:
                todo.append(st)
        prep = _prepare(todo, operator_id, operator_name, interconnected)
        if not prep.stations:
            counts.outcome = skipped
            counts.unchanged = sum(1 for o in skipped.values() if o == "unchanged")
            counts.rejected = len(skipped) - counts.unchanged
            return counts
        # execute_values cannot mix %(name)s with the VALUES placeholder: inline the two constants
        # (an int, and the operator ID quoted by the driver).
        sql = _UPSERT_STATIONS.replace("%(city)s", str(int(city_adcode))).replace(
            "%(op)s", cur.mogrify("%s", (operator_id,)).decode())
        returned = execute_values(cur, sql, prep.stations, template=_STATION_TEMPLATE,
                                  page_size=len(prep.stations), fetch=True)
        ids = [r[0] for r in prep.stations]
        cur.execute("SELECT station_id FROM stations WHERE operator_id = %s AND station_id = ANY(%s) "
                    "AND feed_state = 'rejected'", (operator_id, ids))
        rejected = {r[0] for r in cur.fetchall()}
        changed_active: dict[str, int] = {}
        rejected_pks: list[int] = []
        outcome = {sid: ("rejected" if sid in rejected else "unchanged") for sid in ids}
        for pk, sid, inserted, state in returned:
            counts.touched.append(pk)
            if state == "rejected":
                rejected_pks.append(pk)
            else:
                changed_active[sid] = pk
                outcome[sid] = "inserted" if inserted else "updated"
        outcome.update(skipped)
        counts.outcome = outcome
        counts.inserted = sum(1 for o in outcome.values() if o == "inserted")
        counts.updated = sum(1 for o in outcome.values() if o == "updated")
        counts.unchanged = sum(1 for o in outcome.values() if o == "unchanged")
        counts.rejected = sum(1 for o in outcome.values() if o == "rejected")
        op_literal = cur.mogrify("%s", (operator_id,)).decode()
        if rejected_pks:
            # A rejected station shows nothing; its piles are dropped (the raw StationInfo is kept).
            cur.execute("DELETE FROM equipment WHERE station_pk = ANY(%s)", (rejected_pks,))
        if changed_active:
            eq_rows: dict[str, tuple] = {}
            con_rows: dict[str, tuple] = {}
            for sid, pk in changed_active.items():
                for row in prep.equipment.get(sid, []):
                    eq_rows[row[0]] = (*row, pk)
                for row in prep.connectors.get(sid, []):
                    con_rows[row[0]] = row
            pks = list(changed_active.values())
            if eq_rows:
                execute_values(cur, _UPSERT_EQUIPMENT.replace("%(op)s", op_literal), list(eq_rows.values()),
                               template=_EQUIPMENT_TEMPLATE, page_size=5000)
            cur.execute("DELETE FROM equipment WHERE station_pk = ANY(%s) AND NOT (equipment_id = ANY(%s))",
                        (pks, list(eq_rows)))
            if con_rows:
                execute_values(cur, _UPSERT_CONNECTORS.replace("%(op)s", op_literal), list(con_rows.values()),
                               template=_CONNECTOR_TEMPLATE, page_size=5000)
            cur.execute("DELETE FROM connectors WHERE station_pk = ANY(%s) AND NOT (connector_id = ANY(%s))",
                        (pks, list(con_rows)))
    finally:
        cur.close()
    return counts


# --------------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------------

_UPSERT_STATUS = """
INSERT INTO connector_status AS cs (operator_id, connector_id, status, park_status, lock_status, source,
                                    status_since, updated_at)
SELECT %(op)s, v.connector_id, v.status, v.park, v.lock, %(src)s, now(), now()
FROM (VALUES %s) AS v (connector_id, status, park, lock)
ON CONFLICT (operator_id, connector_id) DO UPDATE SET
    status = EXCLUDED.status, park_status = EXCLUDED.park_status, lock_status = EXCLUDED.lock_status,
    source = EXCLUDED.source,
    status_since = CASE WHEN cs.status IS DISTINCT FROM EXCLUDED.status THEN now() ELSE cs.status_since END,
    updated_at = now()
WHERE (cs.status, cs.park_status, cs.lock_status, cs.source) IS DISTINCT FROM
      (EXCLUDED.status, EXCLUDED.park_status, EXCLUDED.lock_status, EXCLUDED.source)
   OR cs.updated_at < now() - interval '5 minutes'
"""


def _status_rows(infos: Iterable[dict]) -> tuple[dict[str, tuple], int]:
    rows: dict[str, tuple] = {}
    bad = 0
    for info in infos:
        if not isinstance(info, dict):
            bad += 1
            continue
        for c in info.get("ConnectorStatusInfos") or []:
            if not isinstance(c, dict):
                bad += 1
                continue
            cid, status = c.get("ConnectorID"), c.get("Status")
            if not isinstance(cid, str) or not cid or len(cid) > 26 or _int(status) is None \
                    or status not in CONNECTOR_STATUSES:
                bad += 1
                continue
            rows[cid] = (cid, status, _int(c.get("ParkStatus")), _int(c.get("LockStatus")))
    return rows, bad


def store_statuses(conn: Connection, operator_id: str, infos: Iterable[dict], *, source: str = "pull") -> tuple[int, list[int]]:
    """Upsert connector statuses; returns (statuses stored, pks of stations whose statuses changed).

    ``status_since`` moves only when the status value changes; ``updated_at`` is the report time,
    refreshed at most every 5 minutes while nothing changes (a status pull every minute would
    otherwise rewrite every row of the table each time).
    """
    rows, _bad = _status_rows(infos)
    if not rows:
        return 0, []
    cur = conn.connection.dbapi_connection.cursor()
    try:
        ids = list(rows)
        cur.execute("SELECT connector_id, status FROM connector_status WHERE operator_id = %s "
                    "AND connector_id = ANY(%s)", (operator_id, ids))
        old = dict(cur.fetchall())
        changed = [cid for cid, row in rows.items() if old.get(cid) != row[1]]
        sql = _UPSERT_STATUS.replace("%(op)s", cur.mogrify("%s", (operator_id,)).decode()).replace(
            "%(src)s", cur.mogrify("%s", (source,)).decode())
        execute_values(cur, sql, list(rows.values()), template="(%s::varchar, %s::smallint, %s::smallint, %s::smallint)",
                       page_size=10000)
        pks: list[int] = []
        if changed:
            cur.execute("UPDATE stations s SET status_changed_at = now() FROM (SELECT DISTINCT station_pk FROM "
                        "connectors WHERE operator_id = %s AND connector_id = ANY(%s)) c WHERE s.id = c.station_pk "
                        "RETURNING s.id", (operator_id, changed))
            pks = [r[0] for r in cur.fetchall()]
        return len(rows), pks
    finally:
        cur.close()


# --------------------------------------------------------------------------------------------
# One operator
# --------------------------------------------------------------------------------------------


class _OperatorLock:
    """``pg_try_advisory_lock`` per operator on a connection of its own (session level)."""

    def __init__(self, engine: Engine, operator_id: str) -> None:
        self.engine = engine
        self.operator_id = operator_id
        self.conn: Connection | None = None

    def acquire(self, wait_s: float = 0.0) -> bool:
        deadline = time.monotonic() + wait_s
        self.conn = self.engine.connect()
        while True:
            got = self.conn.execute(text("SELECT pg_try_advisory_lock(hashtext('zhcharge.feed'), hashtext(:op))"),
                                    {"op": self.operator_id}).scalar()
            self.conn.commit()
            if got:
                return True
            if time.monotonic() >= deadline:
                self.release()
                return False
            time.sleep(0.2)

    def release(self) -> None:
        if self.conn is None:
            return
        try:
            self.conn.execute(text("SELECT pg_advisory_unlock(hashtext('zhcharge.feed'), hashtext(:op))"),
                              {"op": self.operator_id})
            self.conn.commit()
        except SQLAlchemyError:
            self.conn.invalidate()  # the session (and its lock) died with the server
        finally:
            self.conn.close()
            self.conn = None


def _client_for(ep: EndpointInfo, settings: Settings, deadline: float) -> FeedClient:
    f = settings.feed
    return FeedClient(ep.endpoint(), timeout_s=f.timeout_s, retries=f.retries, backoff_s=f.backoff_s,
                      token_margin_s=f.token_margin_s, deadline=deadline)


def _circuit_allows(ep: EndpointInfo, settings: Settings) -> str | None:
    """None when a pull may go ahead; otherwise why not."""
    if ep.circuit_state != "open" or ep.circuit_opened_at is None:
        return None
    until = ep.circuit_opened_at + timedelta(seconds=settings.feed.circuit_open_s)
    if datetime.now(UTC) < until:
        return f"circuit open until {until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC after {ep.circuit_failures} failures"
    return None


def _half_open(engine: Engine, ep: EndpointInfo) -> None:
    """An open circuit whose pause is over lets one trial pull through (state ``half_open``)."""
    if ep.circuit_state == "open":
        with engine.begin() as conn:
            conn.execute(text("UPDATE feed_endpoints SET circuit_state = 'half_open', updated_at = now() "
                              "WHERE operator_id = :op AND circuit_state = 'open'"), {"op": ep.operator_id})


_CIRCUIT_OK = text("""
UPDATE feed_endpoints SET circuit_state = 'closed', circuit_failures = 0, circuit_opened_at = NULL,
       last_error = NULL, updated_at = now()
WHERE operator_id = :op
""")
_CIRCUIT_FAIL = text("""
UPDATE feed_endpoints SET circuit_failures = circuit_failures + 1,
       circuit_state = CASE WHEN circuit_state <> 'closed' OR circuit_failures + 1 >= :threshold
                            THEN 'open' ELSE 'closed' END,
       circuit_opened_at = CASE WHEN circuit_state <> 'closed' OR circuit_failures + 1 >= :threshold
                                THEN now() ELSE circuit_opened_at END,
       last_error = :error, updated_at = now()
WHERE operator_id = :op
""")
_RUN_START = text("""
WITH stale AS (
    UPDATE sync_runs SET ok = false, finished_at = coalesce(finished_at, now()),
           error = coalesce(error, 'interrupted (the process or the database stopped)')
    WHERE operator_id = :op AND finished_at IS NULL AND started_at < now() - make_interval(secs => :budget)
)
INSERT INTO sync_runs (operator_id, mode, started_at) VALUES (:op, :mode, :started) RETURNING id
""")
_RUN_END = text("""
UPDATE sync_runs SET finished_at = now(), duration_ms = :duration_ms, pages = :pages, inserted = :inserted,
       updated = :updated, unchanged = :unchanged, rejected = :rejected, withdrawn = :withdrawn,
       statuses = :statuses, ok = :ok, error = :error
WHERE id = :id
""")


def _fetch_listing(client: FeedClient, page_size: int, last_query_time: str, result: SyncResult,
                   on_chunk: Callable[[list[dict]], None], chunk_size: int = _CHUNK) -> tuple[list[str], bool]:
    """Page through query_stations_info; returns (StationIDs seen, listing was stable)."""
    seen: list[str] = []
    item_size: int | None = None
    stable = True
    chunk: list[dict] = []
    for page, stations in client.iter_station_pages(page_size, last_query_time):
        result.pages += 1
        result.received += len(stations)
        size = page.get("ItemSize")
        if item_size is None:
            item_size = size
        elif size != item_size:
            stable = False
        for st in stations:
            if isinstance(st, dict) and isinstance(st.get("StationID"), str) and st["StationID"].strip():
                seen.append(st["StationID"])
            else:
                result.unkeyed += 1
        chunk.extend(stations)
        if len(chunk) >= chunk_size:
            on_chunk(chunk)
            chunk = []
    if chunk:
        on_chunk(chunk)
    return seen, stable


_RAN_WITHIN = text("""
SELECT EXISTS (SELECT 1 FROM sync_runs WHERE operator_id = :op AND mode = ANY(:modes)
               AND started_at > now() - make_interval(secs => :s))
""")


def _ran_recently(engine: Engine, operator_id: str, modes: list[str], within_s: float | None) -> bool:
    if not within_s:
        return False
    with engine.connect() as conn:
        return bool(conn.execute(_RAN_WITHIN, {"op": operator_id, "modes": modes, "s": within_s}).scalar())


def _not_pullable_now(ep: EndpointInfo, settings: Settings, respect_circuit: bool) -> str | None:
    """Why this operator is not pulled now (no pull settings, or its circuit is open), or None."""
    if not ep.pullable:
        return "no pull settings (base URL and secrets)"
    if respect_circuit:
        return _circuit_allows(ep, settings) or None
    return None


def sync_operator(engine: Engine, settings: Settings, ep: EndpointInfo, *, full: bool = False,
                  statuses: bool = True, respect_circuit: bool = False, lock_wait_s: float = 0.0,
                  skip_if_ran_within_s: float | None = None) -> SyncResult:
    """Pull one operator now (see the module docstring). Never raises for feed or database trouble.

    ``skip_if_ran_within_s`` (the scheduler's) re-checks under the lock that no other process
    pulled this operator meanwhile.
    """
    mode = "full" if full or ep.last_query_time is None else "incremental"
    result = SyncResult(ep.operator_id, mode)
    t0 = time.monotonic()
    result.skipped = _not_pullable_now(ep, settings, respect_circuit)
    if result.skipped:
        return result
    f = settings.feed
    lock = _OperatorLock(engine, ep.operator_id)
    try:
        if not lock.acquire(lock_wait_s):
            result.skipped = "another process is pulling this operator"
            return result
        if _ran_recently(engine, ep.operator_id, ["full", "incremental"], skip_if_ran_within_s):
            lock.release()
            result.skipped = "pulled recently by another process"
            return result
        _half_open(engine, ep)
    except SQLAlchemyError:
        result.error = "the database is unreachable"
        lock.release()
        return result
    started = datetime.now(UTC)
    deadline = time.monotonic() + f.operator_budget_s
    budget = f.db_retry_s
    feed_failed = False
    try:
        result.run_id = _with_db(engine, lambda c: c.execute(_RUN_START, {
            "op": ep.operator_id, "mode": mode, "started": started, "budget": f.operator_budget_s}).scalar_one(), budget)
        totals = StoreCounts()

        def write_chunk(chunk: list[dict]) -> None:
            def work(conn: Connection) -> None:
                counts = store_station_infos(conn, ep.operator_id, ep.name, chunk, interconnected=ep.interconnected,
                                             city_adcode=settings.app.city_adcode)
                changed = refresh_station_summaries(conn, counts.touched)
                if counts.touched or changed:
                    bump_version(conn, "stations")
                totals.add(counts)
            _with_db(engine, work, budget)

        last = "" if mode == "full" else format_query_time(ep.last_query_time)  # type: ignore[arg-type]
        with _client_for(ep, settings, deadline) as client:
            try:
                seen, stable = _fetch_listing(client, f.page_size, last, result, write_chunk, f.write_chunk)
                if not stable:
                    result.notes.append("the listing moved while paging; read it a second time")
                    seen2, stable = _fetch_listing(client, f.page_size, last, result, write_chunk, f.write_chunk)
                    seen = seen + seen2
                    if not stable:
                        result.notes.append("the listing kept moving: withdrawals left for the next full sync")
                status_ids: list[str] = []
                if statuses:
                    def active_ids(conn: Connection) -> list[str]:
                        if mode == "full":
                            q = "SELECT station_id FROM stations WHERE operator_id = :op AND feed_state = 'active'"
                            return list(conn.execute(text(q), {"op": ep.operator_id}).scalars())
                        q = ("SELECT station_id FROM stations WHERE operator_id = :op AND feed_state = 'active' "
                             "AND station_id = ANY(:ids)")
                        return list(conn.execute(text(q), {"op": ep.operator_id, "ids": list(set(seen))}).scalars())
                    status_ids = sorted(_with_db(engine, active_ids, budget))
                infos = _pull_status_infos(client, status_ids, f.status_batch)
            except FeedError as exc:
                feed_failed = True
                raise
        if result.unkeyed:
            result.notes.append(f"{result.unkeyed} StationInfos without a StationID could not be stored")
        result.inserted, result.updated = totals.inserted, totals.updated
        result.unchanged, result.rejected = totals.unchanged, totals.rejected

        def finish(conn: Connection) -> None:
            n, status_pks = store_statuses(conn, ep.operator_id, infos, source="pull")
            result.statuses = n
            changed = refresh_station_summaries(conn, status_pks)
            withdrawn: list[int] = []
            if mode == "full" and stable:
                withdrawn = list(conn.execute(text(
                    "UPDATE stations SET feed_state = 'withdrawn', withdrawn_at = now(), updated_at = now() "
                    "WHERE operator_id = :op AND feed_state <> 'withdrawn' AND NOT (station_id = ANY(:seen)) "
                    "RETURNING id"), {"op": ep.operator_id, "seen": list(set(seen))}).scalars())
            result.withdrawn = len(withdrawn)
            if status_pks or changed or withdrawn:
                bump_version(conn, "stations")
            conn.execute(text(
                "UPDATE feed_endpoints SET last_query_time = :lqt, "
                "last_full_sync_at = CASE WHEN :full THEN now() ELSE last_full_sync_at END, updated_at = now() "
                "WHERE operator_id = :op"),
                {"lqt": started - timedelta(seconds=f.overlap_s), "full": mode == "full", "op": ep.operator_id})
            conn.execute(_CIRCUIT_OK, {"op": ep.operator_id})
        _with_db(engine, finish, budget)
        result.ok = True
    except FeedError as exc:
        result.error = exc.message
    except _DatabaseDown:
        result.error = "the database is unreachable"
    except SQLAlchemyError as exc:
        log.exception("sync of %s failed on the database", ep.operator_id)
        result.error = f"database error ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - one operator's bug must not stop the others
        log.exception("sync of %s failed", ep.operator_id)
        result.error = f"internal error ({type(exc).__name__}: {str(exc)[:200]})"
    finally:
        result.duration_ms = int((time.monotonic() - t0) * 1000)
        try:
            def log_end(conn: Connection) -> None:
                if feed_failed:
                    conn.execute(_CIRCUIT_FAIL, {"op": ep.operator_id, "error": result.error,
                                                 "threshold": f.circuit_failures})
                if result.run_id is not None:
                    conn.execute(_RUN_END, {
                        "id": result.run_id, "duration_ms": result.duration_ms, "pages": result.pages,
                        "inserted": result.inserted, "updated": result.updated, "unchanged": result.unchanged,
                        "rejected": result.rejected, "withdrawn": result.withdrawn, "statuses": result.statuses,
                        "ok": result.ok, "error": _run_error(result)})
            _with_db(engine, log_end, min(budget, 10.0))
        except (SQLAlchemyError, _DatabaseDown):
            log.warning("could not log the sync run of %s", ep.operator_id)
        lock.release()
    return result


def _run_error(result: SyncResult) -> str | None:
    parts = ([result.error] if result.error else []) + result.notes
    return "; ".join(parts) or None


def _pull_status_infos(client: FeedClient, station_ids: list[str], batch: int) -> list[dict]:
    infos: list[dict] = []
    batch = max(1, min(50, batch))
    for i in range(0, len(station_ids), batch):
        infos.extend(client.station_status(station_ids[i:i + batch]))
    return infos


def pull_statuses(engine: Engine, settings: Settings, ep: EndpointInfo, *, respect_circuit: bool = True,
                  skip_if_ran_within_s: float | None = None) -> SyncResult:
    """A status-only pull of every active station of the operator (mode ``status``), under its lock."""
    result = SyncResult(ep.operator_id, "status")
    t0 = time.monotonic()
    result.skipped = _not_pullable_now(ep, settings, respect_circuit)
    if result.skipped:
        return result
    f = settings.feed
    feed_failed = False
    lock = _OperatorLock(engine, ep.operator_id)
    try:
        if not lock.acquire(0):
            result.skipped = "another process is pulling this operator"
            return result
        if _ran_recently(engine, ep.operator_id, ["full", "incremental", "status"], skip_if_ran_within_s):
            lock.release()
            result.skipped = "pulled recently by another process"
            return result
        _half_open(engine, ep)
    except SQLAlchemyError:
        lock.release()
        result.error = "the database is unreachable"
        return result
    try:
        result.run_id = _with_db(engine, lambda c: c.execute(_RUN_START, {
            "op": ep.operator_id, "mode": "status", "started": datetime.now(UTC),
            "budget": f.operator_budget_s}).scalar_one(), f.db_retry_s)
        ids = _with_db(engine, lambda c: sorted(c.execute(text(
            "SELECT station_id FROM stations WHERE operator_id = :op AND feed_state = 'active'"),
            {"op": ep.operator_id}).scalars()), f.db_retry_s)
        with _client_for(ep, settings, time.monotonic() + f.operator_budget_s) as client:
            try:
                infos = _pull_status_infos(client, ids, f.status_batch)
            except FeedError:
                feed_failed = True
                raise

        def store(conn: Connection) -> None:
            n, pks = store_statuses(conn, ep.operator_id, infos, source="pull")
            result.statuses = n
            changed = refresh_station_summaries(conn, pks)
            if pks or changed:
                bump_version(conn, "stations")
            conn.execute(_CIRCUIT_OK, {"op": ep.operator_id})
        _with_db(engine, store, f.db_retry_s)
        result.ok = True
    except FeedError as exc:
        result.error = exc.message
    except (_DatabaseDown, SQLAlchemyError):
        result.error = "the database is unreachable"
    finally:
        result.duration_ms = int((time.monotonic() - t0) * 1000)
        try:
            def log_end(conn: Connection) -> None:
                if feed_failed:
                    conn.execute(_CIRCUIT_FAIL, {"op": ep.operator_id, "error": result.error,
                                                 "threshold": f.circuit_failures})
                if result.run_id is not None:
                    conn.execute(_RUN_END, {
                        "id": result.run_id, "duration_ms": result.duration_ms, "pages": 0, "inserted": 0,
                        "updated": 0, "unchanged": 0, "rejected": 0, "withdrawn": 0, "statuses": result.statuses,
                        "ok": result.ok, "error": result.error})
            if result.run_id is not None or feed_failed:
                _with_db(engine, log_end, 10.0)
        except (SQLAlchemyError, _DatabaseDown):
            log.warning("could not log the status pull of %s", ep.operator_id)
        lock.release()
    return result


# --------------------------------------------------------------------------------------------
# Several operators
# --------------------------------------------------------------------------------------------


def sync_all(engine: Engine, settings: Settings, *, operator_id: str | None = None, full: bool = False,
             respect_circuit: bool = False, lock_wait_s: float = 0.0,
             on_result: Callable[[SyncResult], None] | None = None) -> list[SyncResult]:
    """Pull every enabled operator that has pull settings (or the one named) concurrently; results
    in completion order. Operators that only push to us (no base URL or secrets yet, e.g. between
    the two halves of B5 step 1) are not part of a run over all operators."""
    with engine.connect() as conn:
        endpoints = [ep for ep in load_endpoints(conn, operator_id)
                     if operator_id or (ep.enabled and ep.pullable)]
    results: list[SyncResult] = []
    if not endpoints:
        return results
    workers = max(1, min(settings.feed.max_workers, len(endpoints)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="feed-sync") as pool:
        futures = [pool.submit(sync_operator, engine, settings, ep, full=full, respect_circuit=respect_circuit,
                               lock_wait_s=lock_wait_s) for ep in endpoints]
        from concurrent.futures import as_completed

        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            if on_result:
                on_result(r)
    from ingest.receiver import prune

    prune(engine, settings)  # replay entries and expired tokens, also when no scheduler runs
    return results

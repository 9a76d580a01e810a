"""Operator endpoints as the feed reads them, their status, and the stored view of one station.

Registration (``register_operator``) is domain work on ``feed_endpoints`` and lives in
:mod:`services.feed.endpoints`; it is re-exported here for the feed's callers. Used by the sync,
the scheduler, the ``zhcharge feed`` / ``zhcharge stations`` commands and the demo loader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest.client import Endpoint
from ingest.crypto import Secrets
from services.errors import NotFound
from services.feed.endpoints import InboundCredentials, register_operator

__all__ = ["EndpointInfo", "InboundCredentials", "endpoint_status", "load_endpoints", "register_operator",
           "station_detail"]


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


_STATUS = text("""
SELECT f.operator_id, o.name, f.base_url, f.api_version, f.enabled, f.interconnected, f.circuit_state,
       f.circuit_failures, f.circuit_opened_at, f.last_query_time, f.last_full_sync_at, f.last_push_at,
       f.last_error,
       (SELECT count(*) FROM stations s WHERE s.operator_id = f.operator_id AND s.feed_state = 'active') AS active,
       (SELECT count(*) FROM stations s WHERE s.operator_id = f.operator_id AND s.feed_state = 'withdrawn') AS withdrawn,
       (SELECT count(*) FROM stations s WHERE s.operator_id = f.operator_id AND s.feed_state = 'rejected') AS rejected,
       r.mode, r.started_at, r.finished_at, r.duration_ms, r.pages, r.inserted, r.updated, r.unchanged,
       r.rejected AS run_rejected, r.withdrawn AS run_withdrawn, r.statuses, r.ok, r.error
FROM feed_endpoints f
JOIN operators o ON o.operator_id = f.operator_id
LEFT JOIN LATERAL (SELECT * FROM sync_runs sr WHERE sr.operator_id = f.operator_id AND sr.mode <> 'push'
                   ORDER BY sr.started_at DESC, sr.id DESC LIMIT 1) r ON true
ORDER BY f.operator_id
""")


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def endpoint_status(conn: Connection) -> list[dict[str, Any]]:
    """Per operator: endpoint, circuit, station counts and the last run."""
    out = []
    for r in conn.execute(_STATUS):
        last = None
        if r.mode is not None:
            last = {"mode": r.mode, "started_at": _iso(r.started_at), "finished_at": _iso(r.finished_at),
                    "duration_ms": r.duration_ms, "ok": r.ok,
                    "result": "ok" if r.ok else ("failed" if r.ok is False else "running"),
                    "pages": r.pages, "inserted": r.inserted, "updated": r.updated, "unchanged": r.unchanged,
                    "rejected": r.run_rejected, "withdrawn": r.run_withdrawn, "statuses": r.statuses,
                    "error": r.error}
        out.append({
            "operator_id": r.operator_id, "name": r.name, "base_url": r.base_url, "api_version": r.api_version,
            "enabled": r.enabled, "interconnected": r.interconnected,
            "circuit": {"state": r.circuit_state, "failures": r.circuit_failures,
                        "opened_at": _iso(r.circuit_opened_at)},
            "circuit_state": r.circuit_state,
            "last_query_time": _iso(r.last_query_time), "last_full_sync_at": _iso(r.last_full_sync_at),
            "last_push_at": _iso(r.last_push_at), "last_error": r.last_error,
            "stations": {"active": r.active, "withdrawn": r.withdrawn, "rejected": r.rejected},
            "last_run": last,
        })
    return out


_STATION = text("""
SELECT s.*, ST_X(s.geom) AS lng, ST_Y(s.geom) AS lat, o.name AS operator_name, d.name AS district_name,
       d.name_en AS district_name_en
FROM stations s
JOIN operators o ON o.operator_id = s.operator_id
LEFT JOIN districts d ON d.adcode = s.district_adcode
WHERE s.operator_id = :op AND s.station_id = :sid
""")
_EQUIPMENT = text("""
SELECT e.*, ST_X(e.geom) AS lng, ST_Y(e.geom) AS lat FROM equipment e WHERE e.station_pk = :pk ORDER BY e.equipment_id
""")
_CONNECTORS = text("""
SELECT c.*, cs.status, cs.park_status, cs.lock_status, cs.source AS status_source, cs.status_since,
       cs.updated_at AS status_updated_at
FROM connectors c
LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
WHERE c.station_pk = :pk ORDER BY c.connector_id
""")

_STATION_FIELDS = (
    "operator_id", "operator_name", "station_id", "name", "equipment_owner_id", "country_code", "area_code",
    "address", "station_tel", "service_tel", "station_type", "station_status", "park_nums", "site_guide",
    "construction", "pictures", "match_cars", "park_info", "busine_hours", "electricity_fee", "service_fee",
    "park_fee", "payment", "payments", "payment_unknown", "support_order", "remark", "feed_state",
    "reject_reason", "interconnected", "area_code_mismatch", "facility_types", "pile_count", "scale",
    "max_power_kw", "connectors_total", "connectors_free", "availability", "name_pinyin", "name_initials",
    "first_seen_at", "info_changed_at", "status_changed_at", "withdrawn_at", "updated_at",
)


def _num(value: Any) -> Any:
    from decimal import Decimal

    return float(value) if isinstance(value, Decimal) else value


def station_detail(conn: Connection, operator_id: str, station_id: str) -> dict[str, Any]:
    """The stored station: WGS84 and reported GCJ-02 position, district, state, piles, connectors."""
    row = conn.execute(_STATION, {"op": operator_id, "sid": station_id}).mappings().first()
    if row is None:
        raise NotFound(f"no station {station_id!r} of operator {operator_id!r} is stored")
    out: dict[str, Any] = {k: _iso(_num(row[k])) for k in _STATION_FIELDS}
    out.update({
        "lng": row["lng"], "lat": row["lat"],
        "lng_gcj02": row["lng_gcj02"], "lat_gcj02": row["lat_gcj02"],
        "wgs84": {"lng": row["lng"], "lat": row["lat"]},
        "gcj02": {"lng": row["lng_gcj02"], "lat": row["lat_gcj02"]},
        "district_adcode": row["district_adcode"],
        "district": ({"adcode": row["district_adcode"], "name": row["district_name"],
                      "name_en": row["district_name_en"]} if row["district_adcode"] else None),
        "status": row["station_status"],
    })
    connectors: dict[int, list[dict]] = {}
    for c in conn.execute(_CONNECTORS, {"pk": row["id"]}).mappings():
        connectors.setdefault(c["equipment_pk"], []).append({
            "connector_id": c["connector_id"], "connector_name": c["connector_name"],
            "connector_type": c["connector_type"], "voltage_upper_limits": c["voltage_upper_limits"],
            "voltage_lower_limits": c["voltage_lower_limits"], "current": c["current"],
            "power_kw": _num(c["power_kw"]), "park_no": c["park_no"], "national_standard": c["national_standard"],
            "status": c["status"], "park_status": c["park_status"], "lock_status": c["lock_status"],
            "status_source": c["status_source"], "status_since": _iso(c["status_since"]),
            "status_updated_at": _iso(c["status_updated_at"]),
        })
    out["equipment"] = [{
        "equipment_id": e["equipment_id"], "equipment_name": e["equipment_name"],
        "equipment_type": e["equipment_type"], "power_kw": _num(e["power_kw"]),
        "manufacturer_id": e["manufacturer_id"], "manufacturer_name": e["manufacturer_name"],
        "equipment_model": e["equipment_model"], "production_date": _iso(e["production_date"]),
        "lng": e["lng"], "lat": e["lat"], "lng_gcj02": e["lng_gcj02"], "lat_gcj02": e["lat_gcj02"],
        "connectors": connectors.get(e["id"], []),
    } for e in conn.execute(_EQUIPMENT, {"pk": row["id"]}).mappings()]
    return out

"""Demo archives: every demo operator gets station, report and facility archives in several states
and a passed interconnection application, built from what its platform reports (the ``stations``
and ``equipment`` the feed synced), so every archives page has something to show.

Idempotent: archives are keyed by StationID / EquipmentID / report number and never duplicated;
existing ones are left as they are. States are set directly (no review messages are sent); one
``workflow_events`` row per archive records the demo as their origin.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from geo import gcj02
from services.archives.workflows import FACILITY, INTERCONNECTION, STATION
from services.models.archives import FacilityArchive, InterconnectionApplication, ReportArchive, ReportFile, StationArchive
from services.workflow import WorkflowEvent

__all__ = ["ensure_demo_archives"]

# state of the n-th demo station archive (the first ones are approved and associated)
STATION_STATES = ("approved", "approved", "approved", "approved", "under_review", "pending", "rejected", "pending")
# state of the n-th facility archive of the approved stations
FACILITY_STATES = ("interconnected", "interconnected", "ic_review", "approved", "under_review", "pending", "rejected",
                   "interconnected", "approved", "pending")
_DEMO_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
             b"trailer<</Root 1 0 R>>\n%%EOF\n")

_STATIONS = text("""
SELECT s.station_id, s.name, s.address, s.district_adcode, s.lng_gcj02, s.lat_gcj02, s.station_type,
       s.station_status, s.construction, s.service_tel, s.station_tel, s.park_nums, s.busine_hours,
       s.electricity_fee, s.service_fee, s.park_fee, s.payment, s.support_order, s.equipment_owner_id
FROM stations s JOIN operators o ON o.operator_id = s.operator_id
WHERE o.id = :pk AND s.feed_state = 'active' AND s.district_adcode IS NOT NULL
ORDER BY s.station_id LIMIT :n
""")
_EQUIPMENT = text("""
SELECT e.equipment_id, e.equipment_name, e.equipment_type, e.power_kw, e.manufacturer_id, e.manufacturer_name,
       e.equipment_model, e.production_date, e.lng_gcj02, e.lat_gcj02,
       (SELECT count(*) FROM connectors c WHERE c.equipment_pk = e.id) AS n_conn,
       (SELECT min(c.connector_type) FROM connectors c WHERE c.equipment_pk = e.id) AS conn_type
FROM equipment e JOIN stations s ON s.id = e.station_pk
WHERE s.operator_id = :op AND s.station_id = :sid ORDER BY e.equipment_id LIMIT 6
""")


def _clip(value: Any, n: int) -> Any:
    return value[:n] if isinstance(value, str) else value


def _event(s: Session, wf_name: str, entity_id: int, state: str) -> None:
    s.add(WorkflowEvent(workflow=wf_name, entity_id=str(entity_id), action="demo", from_state=None, to_state=state,
                        actor_role="system", actor_name="demo"))


def _report(s: Session, operator_pk: int, operator_id: str, upload_dir: Path | None) -> ReportArchive:
    no = f"DEMO-{operator_id}-001"
    r = s.execute(select(ReportArchive).where(ReportArchive.operator_pk == operator_pk,
                                              ReportArchive.report_no == no)).scalar_one_or_none()
    if r is not None:
        return r
    r = ReportArchive(operator_pk=operator_pk, report_no=no, lab="国家电动汽车充电设施质量检验检测中心（示例）",
                      report_date=date(2024, 3, 15), equipment_model="DEMO-DC120", manufacturer_name="示例电气",
                      equipment_type=1, remark="演示数据")
    s.add(r)
    s.flush()
    if upload_dir is not None:
        stored = hashlib.sha256(f"demo:{operator_id}".encode()).hexdigest()[:32] + ".pdf"
        directory = Path(upload_dir) / "reports"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / stored).write_bytes(_DEMO_PDF)
        s.add(ReportFile(report_pk=r.id, stored_name=stored, original_name="形式试验报告（示例）.pdf",
                         content_type="application/pdf", size_bytes=len(_DEMO_PDF),
                         sha256=hashlib.sha256(_DEMO_PDF).hexdigest(), current=True))
    return r


def _ensure_one(s: Session, operator_pk: int, upload_dir: Path | None) -> dict[str, int]:
    operator_id = s.execute(text("SELECT operator_id FROM operators WHERE id = :pk"), {"pk": operator_pk}).scalar()
    if operator_id is None:
        return {"stations": 0, "facilities": 0}
    now = datetime.now(timezone.utc)
    report = _report(s, operator_pk, operator_id, upload_dir)
    made = {"stations": 0, "facilities": 0}
    fi = 0
    for i, row in enumerate(s.execute(_STATIONS, {"pk": operator_pk, "n": len(STATION_STATES)}).mappings().all()):
        state = STATION_STATES[i]
        st = s.execute(select(StationArchive).where(StationArchive.operator_pk == operator_pk,
                                                    StationArchive.station_id == row["station_id"])).scalar_one_or_none()
        if st is None:
            lng, lat = row["lng_gcj02"], row["lat_gcj02"]
            wlng, wlat = gcj02.gcj02_to_wgs84(lng, lat)
            st = StationArchive(
                operator_pk=operator_pk, station_id=row["station_id"], name=_clip(row["name"], 50),
                address=_clip(row["address"], 50), district_adcode=row["district_adcode"], lng_gcj02=lng, lat_gcj02=lat,
                geom=f"SRID=4326;POINT({wlng:.8f} {wlat:.8f})", station_type=row["station_type"],
                station_status=row["station_status"], construction=row["construction"] or 255,
                service_tel=_clip(row["service_tel"], 30), station_tel=_clip(row["station_tel"], 30),
                park_nums=row["park_nums"], busine_hours=_clip(row["busine_hours"], 100),
                electricity_fee=_clip(row["electricity_fee"], 256), service_fee=_clip(row["service_fee"], 100),
                park_fee=_clip(row["park_fee"], 100), payment=_clip(row["payment"], 20),
                support_order=row["support_order"], equipment_owner_id=row["equipment_owner_id"] or operator_id,
                state=state, associated_for_interconnection=state == "approved",
                rejection_reason="站点地址与坐标不一致，请核对后重新提交（演示）" if state == "rejected" else None,
                submitted_at=now if state != "pending" else None,
                reviewed_at=now if state in ("approved", "rejected") else None)
            s.add(st)
            s.flush()
            _event(s, STATION.name, st.id, state)
            made["stations"] += 1
        if st.state != "approved":
            continue
        for e in s.execute(_EQUIPMENT, {"op": operator_id, "sid": row["station_id"]}).mappings().all():
            fstate = FACILITY_STATES[fi % len(FACILITY_STATES)]
            fi += 1
            exists = s.execute(select(FacilityArchive.id).where(FacilityArchive.operator_pk == operator_pk,
                                                                FacilityArchive.equipment_id == e["equipment_id"])).first()
            if exists:
                continue
            lng, lat = e["lng_gcj02"] or st.lng_gcj02, e["lat_gcj02"] or st.lat_gcj02
            wlng, wlat = gcj02.gcj02_to_wgs84(lng, lat)
            fa = FacilityArchive(
                operator_pk=operator_pk, station_archive_pk=st.id, report_archive_pk=report.id,
                equipment_id=e["equipment_id"], equipment_name=_clip(e["equipment_name"], 30),
                equipment_type=e["equipment_type"], power_kw=e["power_kw"], connector_count=e["n_conn"] or 1,
                connector_type=e["conn_type"] or 4, manufacturer_id=e["manufacturer_id"],
                manufacturer_name=_clip(e["manufacturer_name"], 30) or "示例电气",
                equipment_model=_clip(e["equipment_model"], 20) or "DEMO", production_date=e["production_date"],
                lng_gcj02=lng, lat_gcj02=lat, geom=f"SRID=4326;POINT({wlng:.8f} {wlat:.8f})", state=fstate,
                ever_approved=fstate in ("approved", "ic_review", "interconnected"),
                rejection_reason="额定功率与检测报告不一致（演示）" if fstate == "rejected" else None,
                submitted_at=now if fstate != "pending" else None,
                reviewed_at=now if fstate not in ("pending", "under_review") else None)
            s.add(fa)
            s.flush()
            _event(s, FACILITY.name, fa.id, fstate)
            made["facilities"] += 1
    interconnected = bool(s.execute(text("SELECT interconnected FROM feed_endpoints WHERE operator_id = :o"),
                                    {"o": operator_id}).scalar())
    app = s.execute(select(InterconnectionApplication).where(
        InterconnectionApplication.operator_pk == operator_pk)).scalar_one_or_none()
    if app is None:
        state = "passed" if interconnected else "configuring"
        app = InterconnectionApplication(
            operator_pk=operator_pk, step=3 if interconnected else 1, state=state,
            docking_saved_at=now if interconnected else None, submitted_at=now if interconnected else None,
            checked_at=now if interconnected else None, attempts=1 if interconnected else 0,
            debug_results={name: {"interface": name, "ok": True, "ret": 0, "msg": "演示", "note": "", "request": None,
                                  "response": None, "url": "", "elapsed_ms": 0, "at": now.isoformat()}
                           for name in ("query_token", "query_stations_info", "query_station_status",
                                        "query_station_stats")} if interconnected else {},
            check_report={"passed": True, "differences": [], "warnings": [], "stations_checked": 4,
                          "facilities_checked": made["facilities"], "pulled_stations": None, "max_distance_m": 200.0,
                          "finished_at": now.isoformat()} if interconnected else None)
        s.add(app)
        s.flush()
        _event(s, INTERCONNECTION.name, app.id, state)
    return made


def ensure_demo_archives(conn_or_session: Connection | Session, operator_pks: list[int] | tuple[int, ...], *,
                         upload_dir: str | Path | None = None) -> dict[int, dict[str, int]]:
    """Give each operator demo archives (see the module docstring); returns what was created per
    operator. Runs inside the caller's transaction; call it again and nothing changes."""
    own = isinstance(conn_or_session, Connection)
    s = Session(bind=conn_or_session) if own else conn_or_session
    try:
        out = {pk: _ensure_one(s, pk, Path(upload_dir) if upload_dir else None) for pk in operator_pks}
        s.flush()
        return out
    finally:
        if own:
            s.close()

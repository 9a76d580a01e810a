"""What an operator may apply for under a rule: its station archives and each station's
facilities, every one with the rule's conditions it fails, and the operator-level check. The
facts come from the database; :mod:`services.subsidy.eligibility` judges them.

"Entered service" for a facility is the day (China time) its interconnection was approved: the
``workflow_events`` row moving its archive to ``interconnected`` (``reviewed_at`` when no event
exists, e.g. imported data).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from services.models.archives import FacilityArchive
from services.models.subsidy import SubsidyRule
from services.stations.vocab import EQUIPMENT_TYPE_FACILITY
from services.subsidy.eligibility import Failure, facility_failures, operator_failures, station_failures, terms_of
from services.subsidy.shared import china_today

__all__ = ["FacilityOption", "StationOption", "facility_options", "operator_check", "operator_power_kw",
           "station_options"]

def operator_power_kw(session: Session, operator_pk: int) -> Decimal:
    """Cumulative rated power of the operator's interconnected facilities."""
    total = session.scalar(select(func.coalesce(func.sum(FacilityArchive.power_kw), 0)).where(
        FacilityArchive.operator_pk == operator_pk, FacilityArchive.state == "interconnected"))
    return Decimal(total or 0)


def operator_check(session: Session, rule: SubsidyRule, operator_pk: int, *, today: date | None = None) -> list[Failure]:
    return operator_failures(terms_of(rule), today=today or china_today(),
                             operator_power_kw=operator_power_kw(session, operator_pk))


@dataclass
class StationOption:
    id: int
    station_id: str
    name: str | None
    station_status: int | None
    archive_state: str
    interconnected: bool
    failures: list[Failure]

    @property
    def eligible(self) -> bool:
        return not self.failures


_STATIONS = text("""
SELECT sa.id, sa.station_id, sa.name, sa.station_status, sa.state,
       coalesce(st.interconnected AND st.feed_state = 'active', false) AS interconnected
FROM station_archives sa
JOIN operators o ON o.id = sa.operator_pk
LEFT JOIN stations st ON st.operator_id = o.operator_id AND st.station_id = sa.station_id
WHERE sa.operator_pk = :op AND (CAST(:sid AS integer) IS NULL OR sa.id = :sid)
ORDER BY sa.station_id
""")


def station_options(session: Session, rule: SubsidyRule, operator_pk: int, *,
                    station_pk: int | None = None) -> list[StationOption]:
    """The operator's station archives, each with the rule's station conditions it fails."""
    terms = terms_of(rule)
    out = []
    for r in session.execute(_STATIONS, {"op": operator_pk, "sid": station_pk}).mappings():
        fails = station_failures(terms, station_status=r["station_status"], archive_approved=r["state"] == "approved",
                                 interconnected=bool(r["interconnected"]))
        out.append(StationOption(r["id"], r["station_id"], r["name"], r["station_status"], r["state"],
                                 bool(r["interconnected"]), fails))
    return out


@dataclass
class FacilityOption:
    id: int
    equipment_id: str
    equipment_name: str | None
    facility_type: str
    power_kw: Decimal
    state: str
    in_service_on: date | None
    claimed_by: int | None
    failures: list[Failure]

    @property
    def eligible(self) -> bool:
        return not self.failures


_FACILITIES = text("""
SELECT fa.id, fa.equipment_id, fa.equipment_name, fa.equipment_type, fa.power_kw, fa.state,
       CASE WHEN fa.state = 'interconnected' THEN
         (coalesce((SELECT max(e.at) FROM workflow_events e
                    WHERE e.workflow = 'facility_archive' AND e.entity_id = fa.id::text
                      AND e.to_state = 'interconnected'), fa.reviewed_at) AT TIME ZONE 'Asia/Shanghai')::date
       END AS in_service_on,
       (SELECT f.application_id FROM subsidy_application_facilities f
        WHERE f.rule_id = :rule AND f.facility_archive_pk = fa.id) AS claimed_by
FROM facility_archives fa
WHERE fa.operator_pk = :op AND fa.station_archive_pk = :station
ORDER BY fa.equipment_id
""")


def facility_options(session: Session, rule: SubsidyRule, operator_pk: int, station_pk: int, *,
                     application_id: int | None = None) -> list[FacilityOption]:
    """The station's facilities, each with the rule's facility conditions it fails."""
    terms = terms_of(rule)
    out = []
    for r in session.execute(_FACILITIES, {"rule": rule.id, "op": operator_pk, "station": station_pk}).mappings():
        fails = facility_failures(terms, state=r["state"], in_service_on=r["in_service_on"], claimed_by=r["claimed_by"],
                                  application_id=application_id)
        out.append(FacilityOption(r["id"], r["equipment_id"], r["equipment_name"],
                                  EQUIPMENT_TYPE_FACILITY.get(r["equipment_type"] or 0, "other"),
                                  Decimal(r["power_kw"] or 0), r["state"], r["in_service_on"], r["claimed_by"], fails))
    return out


"""What operators declare in the back office (B2–B5): station, report and facility archives, the
files of the test reports, and the interconnection application of the operator's system.

Archives are the operator's word; the feed (``stations``/``equipment``) is what its platform
reports. The interconnection check compares the two. Coordinates are kept as entered (GCJ-02)
and converted once to WGS84 (``geom``). States are the workflow tables' keys
(``services.archives.workflows``); every change of state goes through ``services.workflow.apply``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base, created_at, updated_at

__all__ = [
    "FACILITY_STATES",
    "IC_STATES",
    "STATION_STATES",
    "FacilityArchive",
    "InterconnectionApplication",
    "ReportArchive",
    "ReportFile",
    "StationArchive",
]

STATION_STATES = ("pending", "under_review", "approved", "rejected")
FACILITY_STATES = ("pending", "under_review", "rejected", "approved", "ic_review", "interconnected")
IC_STATES = ("configuring", "checking", "passed", "failed")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class StationArchive(Base):
    """A charging station as its operator declares it (every StationInfo field it fills in)."""

    __tablename__ = "station_archives"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    station_id: Mapped[str] = mapped_column(String(20), nullable=False)
    equipment_owner_id: Mapped[str | None] = mapped_column(String(9))
    name: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(50))
    district_adcode: Mapped[int | None] = mapped_column(Integer, ForeignKey("districts.adcode"))
    lng_gcj02: Mapped[float | None] = mapped_column(Float)
    lat_gcj02: Mapped[float | None] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    station_type: Mapped[int | None] = mapped_column(SmallInteger)
    station_status: Mapped[int | None] = mapped_column(SmallInteger)
    construction: Mapped[int | None] = mapped_column(SmallInteger)
    service_tel: Mapped[str | None] = mapped_column(String(30))
    station_tel: Mapped[str | None] = mapped_column(String(30))
    park_nums: Mapped[int | None] = mapped_column(Integer)
    site_guide: Mapped[str | None] = mapped_column(String(100))
    match_cars: Mapped[str | None] = mapped_column(String(100))
    park_info: Mapped[str | None] = mapped_column(String(100))
    busine_hours: Mapped[str | None] = mapped_column(String(100))
    electricity_fee: Mapped[str | None] = mapped_column(String(256))
    service_fee: Mapped[str | None] = mapped_column(String(100))
    park_fee: Mapped[str | None] = mapped_column(String(100))
    payment: Mapped[str | None] = mapped_column(String(20))
    support_order: Mapped[int | None] = mapped_column(SmallInteger)
    remark: Mapped[str | None] = mapped_column(String(100))
    pictures: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    state: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    associated_for_interconnection: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        UniqueConstraint("operator_pk", "station_id"),
        CheckConstraint(_in("state", STATION_STATES), name="state"),
        Index("ix_station_archives_operator_state", "operator_pk", "state"),
        Index("ix_station_archives_state_submitted", "state", "submitted_at"),
    )


class ReportArchive(Base):
    """A charging-equipment test report (type test); its files are in ``report_files``."""

    __tablename__ = "report_archives"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    report_no: Mapped[str] = mapped_column(String(50), nullable=False)
    lab: Mapped[str] = mapped_column(String(100), nullable=False)
    report_date: Mapped[date] = mapped_column(Date, nullable=False)
    equipment_model: Mapped[str] = mapped_column(String(40), nullable=False)
    manufacturer_name: Mapped[str | None] = mapped_column(String(60))
    equipment_type: Mapped[int | None] = mapped_column(SmallInteger)
    power_kw: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    remark: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (UniqueConstraint("operator_pk", "report_no"),
                      Index("ix_report_archives_operator_pk", "operator_pk"))


class ReportFile(Base):
    """One uploaded file of a report, stored outside the web root under a random name.

    The current type-test report is the row with ``current``; replaced files stay as history.
    """

    __tablename__ = "report_files"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    report_pk: Mapped[int] = mapped_column(Integer, ForeignKey("report_archives.id", ondelete="CASCADE"),
                                           nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False, server_default="type_test")
    stored_name: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    original_name: Mapped[str] = mapped_column(String(255), nullable=False)
    content_type: Mapped[str] = mapped_column(String(40), nullable=False)
    size_bytes: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    current: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    uploaded_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[datetime] = created_at()
    replaced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("content_type IN ('application/pdf', 'image/jpeg', 'image/png')", name="content_type"),
        Index("ix_report_files_report", "report_pk", "uploaded_at"),
        Index("uq_report_files_current", "report_pk", "kind", unique=True, postgresql_where=text("current")),
    )


class FacilityArchive(Base):
    """A charging facility (pile) as its operator declares it, linked to its station and report."""

    __tablename__ = "facility_archives"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    station_archive_pk: Mapped[int] = mapped_column(Integer, ForeignKey("station_archives.id", ondelete="RESTRICT"),
                                                    nullable=False)
    report_archive_pk: Mapped[int | None] = mapped_column(Integer, ForeignKey("report_archives.id",
                                                                              ondelete="RESTRICT"))
    equipment_id: Mapped[str] = mapped_column(String(23), nullable=False)
    equipment_name: Mapped[str | None] = mapped_column(String(30))
    equipment_type: Mapped[int | None] = mapped_column(SmallInteger)
    power_kw: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    connector_count: Mapped[int | None] = mapped_column(SmallInteger)
    connector_type: Mapped[int | None] = mapped_column(SmallInteger)
    national_standard: Mapped[int | None] = mapped_column(SmallInteger)
    manufacturer_id: Mapped[str | None] = mapped_column(String(9))
    manufacturer_name: Mapped[str | None] = mapped_column(String(30))
    equipment_model: Mapped[str | None] = mapped_column(String(20))
    production_date: Mapped[date | None] = mapped_column(Date)
    lng_gcj02: Mapped[float | None] = mapped_column(Float)
    lat_gcj02: Mapped[float | None] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    state: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    ever_approved: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        UniqueConstraint("operator_pk", "equipment_id"),
        CheckConstraint(_in("state", FACILITY_STATES), name="state"),
        Index("ix_facility_archives_operator_state", "operator_pk", "state"),
        Index("ix_facility_archives_station", "station_archive_pk"),
        Index("ix_facility_archives_report", "report_archive_pk"),
        Index("ix_facility_archives_state_submitted", "state", "submitted_at"),
    )


class InterconnectionApplication(Base):
    """The operator's system interconnection (B5): one row per operator, its step and the results.

    ``debug_results`` holds the last joint-debugging call per interface; ``check_report`` the
    comparison of the full pull with the archives (step 3).
    """

    __tablename__ = "interconnection_applications"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False,
                                             unique=True)
    step: Mapped[int] = mapped_column(SmallInteger, nullable=False, server_default="1")
    state: Mapped[str] = mapped_column(String(20), nullable=False, server_default="configuring")
    docking_saved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    debug_results: Mapped[dict] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    check_report: Mapped[dict | None] = mapped_column(JSONB)
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint(_in("state", IC_STATES), name="state"),
        CheckConstraint("step BETWEEN 1 AND 3", name="step"),
    )


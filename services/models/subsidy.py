"""Subsidy rules (B10), applications with their facilities (B11) and accounting runs (B12).

Money is ``Numeric(14, 2)`` (yuan, whole fen); rates are ``Numeric(12, 4)`` (yuan per kW or per
kWh) so a rate like 0.1235 yuan/kWh stays exact. Amounts are computed by
``services.subsidy.amounts``; the caps are enforced by the allocation order there (under a lock
on the rule row), not by triggers.

``subsidy_application_facilities`` carries the rule id as well, with a unique
``(rule_id, facility_archive_pk)``: a facility is claimed at most once per rule, whatever
application claims it, and a composite key keeps that rule id equal to its application's.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base, created_at, updated_at

__all__ = ["APPLICATION_STATES", "SubsidyAccountingRun", "SubsidyApplication", "SubsidyApplicationFacility",
           "SubsidyRule"]

APPLICATION_STATES = ("pending", "submitted", "returned", "approved", "accounted", "paid")
MONEY = Numeric(14, 2)
RATE = Numeric(12, 4)


class SubsidyRule(Base):
    """A subsidy policy: periods, standard (per kW by facility type, or per kWh), caps, conditions.

    Editable only while unpublished or before the application period opens; ``published_at``
    makes it visible to operators.
    """

    __tablename__ = "subsidy_rules"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    subsidy_start: Mapped[date] = mapped_column(Date, nullable=False)
    subsidy_end: Mapped[date] = mapped_column(Date, nullable=False)
    apply_start: Mapped[date] = mapped_column(Date, nullable=False)
    apply_end: Mapped[date] = mapped_column(Date, nullable=False)
    basis: Mapped[str] = mapped_column(String(10), nullable=False)
    rate_dc: Mapped[Decimal | None] = mapped_column(RATE)
    rate_ac: Mapped[Decimal | None] = mapped_column(RATE)
    rate_acdc: Mapped[Decimal | None] = mapped_column(RATE)
    rate_wireless: Mapped[Decimal | None] = mapped_column(RATE)
    rate_other: Mapped[Decimal | None] = mapped_column(RATE)
    rate_kwh: Mapped[Decimal | None] = mapped_column(RATE)
    cap_station: Mapped[Decimal | None] = mapped_column(MONEY)
    cap_operator: Mapped[Decimal | None] = mapped_column(MONEY)
    budget: Mapped[Decimal] = mapped_column(MONEY, nullable=False)
    required_station_status: Mapped[int | None] = mapped_column(SmallInteger)
    required_interconnection: Mapped[str] = mapped_column(String(20), nullable=False, server_default="none")
    min_operator_power_kw: Mapped[Decimal] = mapped_column(Numeric(12, 1), nullable=False, server_default="0")
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("subsidy_start <= subsidy_end", name="subsidy_period"),
        CheckConstraint("apply_start <= apply_end", name="apply_period"),
        CheckConstraint("basis IN ('per_kw', 'per_kwh')", name="basis"),
        CheckConstraint("required_interconnection IN ('none', 'archive_approved', 'interconnected')",
                        name="required_interconnection"),
        CheckConstraint("budget >= 0 AND coalesce(cap_station, 0) >= 0 AND coalesce(cap_operator, 0) >= 0 "
                        "AND min_operator_power_kw >= 0", name="non_negative"),
        CheckConstraint("coalesce(rate_dc, 0) >= 0 AND coalesce(rate_ac, 0) >= 0 AND coalesce(rate_acdc, 0) >= 0 "
                        "AND coalesce(rate_wireless, 0) >= 0 AND coalesce(rate_other, 0) >= 0 "
                        "AND coalesce(rate_kwh, 0) >= 0", name="rates"),
    )

    def rates(self) -> dict[str, Decimal | None]:
        return {"dc": self.rate_dc, "ac": self.rate_ac, "acdc": self.rate_acdc, "wireless": self.rate_wireless,
                "other": self.rate_other}


class SubsidyApplication(Base):
    """One operator's application for one station under one rule."""

    __tablename__ = "subsidy_applications"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    rule_id: Mapped[int] = mapped_column(Integer, ForeignKey("subsidy_rules.id", ondelete="RESTRICT"), nullable=False)
    operator_pk: Mapped[int] = mapped_column(Integer, ForeignKey("operators.id", ondelete="CASCADE"), nullable=False)
    station_archive_pk: Mapped[int] = mapped_column(Integer, ForeignKey("station_archives.id", ondelete="RESTRICT"),
                                                    nullable=False)
    station_id: Mapped[str] = mapped_column(String(20), nullable=False)
    station_name: Mapped[str | None] = mapped_column(String(50))
    contact_name: Mapped[str | None] = mapped_column(String(50))
    contact_phone: Mapped[str | None] = mapped_column(String(30))
    bank_account: Mapped[str | None] = mapped_column(String(60))
    remark: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    expected_amount: Mapped[Decimal] = mapped_column(MONEY, nullable=False, server_default="0")
    energy_kwh: Mapped[Decimal | None] = mapped_column(Numeric(16, 3))
    energy_fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accounted_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    limited_by: Mapped[str | None] = mapped_column(String(10))
    accounting_run_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("subsidy_accounting_runs.id",
                                                                              ondelete="SET NULL",
                                                                              name="fk_subsidy_applications_run"))
    return_reason: Mapped[str | None] = mapped_column(Text)
    first_submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reviewed_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    accounted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        UniqueConstraint("id", "rule_id", name="uq_subsidy_applications_id_rule"),
        CheckConstraint("state IN ('pending', 'submitted', 'returned', 'approved', 'accounted', 'paid')", name="state"),
        CheckConstraint("expected_amount >= 0 AND coalesce(accounted_amount, 0) >= 0", name="amounts"),
        CheckConstraint("limited_by IS NULL OR limited_by IN ('station', 'operator', 'budget')", name="limited_by"),
        Index("ix_subsidy_applications_operator_rule", "operator_pk", "rule_id", "state"),
        Index("ix_subsidy_applications_rule_state", "rule_id", "state"),
    )


class SubsidyApplicationFacility(Base):
    """A facility claimed by an application, with its figures at the time of the application."""

    __tablename__ = "subsidy_application_facilities"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    application_id: Mapped[int] = mapped_column(Integer, nullable=False)
    rule_id: Mapped[int] = mapped_column(Integer, nullable=False)
    facility_archive_pk: Mapped[int] = mapped_column(Integer, ForeignKey("facility_archives.id", ondelete="RESTRICT",
                                                                name="fk_subsidy_application_facilities_facility"),
                                                     nullable=False)
    equipment_id: Mapped[str] = mapped_column(String(23), nullable=False)
    facility_type: Mapped[str] = mapped_column(String(10), nullable=False)
    power_kw: Mapped[Decimal] = mapped_column(Numeric(8, 1), nullable=False)
    kwh: Mapped[Decimal | None] = mapped_column(Numeric(16, 3))
    amount: Mapped[Decimal] = mapped_column(Numeric(24, 8), nullable=False)  # exact line amount, unrounded

    __table_args__ = (
        ForeignKeyConstraint(["application_id", "rule_id"], ["subsidy_applications.id", "subsidy_applications.rule_id"],
                             ondelete="CASCADE", name="fk_subsidy_application_facilities_application"),
        UniqueConstraint("rule_id", "facility_archive_pk", name="uq_subsidy_application_facilities_rule_facility"),
        Index("ix_subsidy_application_facilities_application", "application_id"),
    )


class SubsidyAccountingRun(Base):
    """One run of the financial accounting of a rule's approved applications."""

    __tablename__ = "subsidy_accounting_runs"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    rule_id: Mapped[int] = mapped_column(Integer, ForeignKey("subsidy_rules.id", ondelete="RESTRICT"), nullable=False,
                                         index=True)
    run_at: Mapped[datetime] = created_at()
    actor_user_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str | None] = mapped_column(String(100))
    applications: Mapped[int] = mapped_column(Integer, nullable=False)
    total: Mapped[Decimal] = mapped_column(MONEY, nullable=False)

"""Tables every domain shares: operators, districts, the audit log and data versions."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from services.models.base import Base, created_at, updated_at


class Operator(Base):
    """A charging operator company. ``operator_id`` is the protocol's 9-character OperatorID.

    Registration fields (credit code, legal representative, contacts, review state) are added by
    the accounts migration; feed endpoints live in ``feed_endpoints``.
    """

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(9), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    short_name: Mapped[str | None] = mapped_column(String(50))
    credit_code: Mapped[str | None] = mapped_column(String(18), unique=True)
    service_tel: Mapped[str | None] = mapped_column(String(30))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()


class District(Base):
    """An administrative district (GB/T 2260 adcode) with its WGS84 boundary."""

    __tablename__ = "districts"

    adcode: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    name_en: Mapped[str | None] = mapped_column(String(80))
    city_adcode: Mapped[int] = mapped_column(Integer, nullable=False, index=True)
    level: Mapped[str] = mapped_column(String(20), nullable=False, server_default="district")
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False)
    label_point = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    source: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = updated_at()


class AuditLog(Base):
    """Append-only log of who did what to which object."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now(), index=True)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(100), nullable=False)
    action: Mapped[str] = mapped_column(String(60), nullable=False)
    target_type: Mapped[str] = mapped_column(String(40), nullable=False)
    target_id: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict | None] = mapped_column(JSONB)


class DataVersion(Base):
    """A counter per data layer, bumped whenever what a tile or search could show changes.

    Tile ETags and search caches are keyed on it.
    """

    __tablename__ = "data_versions"

    layer: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="1")
    updated_at: Mapped[datetime] = updated_at()


__all__ = ["AuditLog", "DataVersion", "District", "Operator", "ForeignKey"]

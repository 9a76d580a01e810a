"""Feed data as reported by the operators' platforms through T/CEC 102, and the feed's own state.

Column names follow the protocol's field names in snake case. Coordinates are stored twice:
``geom`` (WGS84, converted at ingest) and ``lng_gcj02``/``lat_gcj02`` as reported. Derived
columns (``facility_types``, ``payments``, ``scale``, connector counts, pinyin) are kept in step
by the sync so searches and tiles never recompute them per request.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
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

FEED_STATES = ("active", "withdrawn", "rejected")


class FeedEndpoint(Base):
    """How we pull from one operator's platform, and the credentials it uses to push to us.

    ``platform_operator_id`` is the OperatorID the operator issued to us; the ``inbound_*``
    secrets are the ones we issued to the operator for its calls to our receiver.
    """

    __tablename__ = "feed_endpoints"

    id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(9), ForeignKey("operators.operator_id", ondelete="CASCADE",
                                                                   onupdate="CASCADE"), unique=True, nullable=False)
    base_url: Mapped[str | None] = mapped_column(Text)
    api_version: Mapped[str] = mapped_column(String(20), nullable=False, server_default="v20160701")
    platform_operator_id: Mapped[str | None] = mapped_column(String(32))
    operator_secret: Mapped[str | None] = mapped_column(String(64))
    data_secret: Mapped[str | None] = mapped_column(String(64))
    data_iv: Mapped[str | None] = mapped_column(String(64))
    sig_secret: Mapped[str | None] = mapped_column(String(64))
    inbound_operator_secret: Mapped[str] = mapped_column(String(64), nullable=False)
    inbound_data_secret: Mapped[str] = mapped_column(String(64), nullable=False)
    inbound_data_iv: Mapped[str] = mapped_column(String(64), nullable=False)
    inbound_sig_secret: Mapped[str] = mapped_column(String(64), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    interconnected: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    last_query_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_full_sync_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_push_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    circuit_state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="closed")
    circuit_failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    circuit_opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        CheckConstraint("circuit_state IN ('closed', 'open', 'half_open')", name="circuit_state"),
    )


class Station(Base):
    """A charging station as its operator reports it (StationInfo), keyed by operator + StationID."""

    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(9), ForeignKey("operators.operator_id", ondelete="CASCADE",
                                                                   onupdate="CASCADE"), nullable=False)
    station_id: Mapped[str] = mapped_column(String(20), nullable=False)
    equipment_owner_id: Mapped[str | None] = mapped_column(String(9))
    name: Mapped[str] = mapped_column(String(50), nullable=False)
    country_code: Mapped[str] = mapped_column(String(2), nullable=False, server_default="CN")
    area_code: Mapped[str | None] = mapped_column(String(20))
    address: Mapped[str | None] = mapped_column(String(100))
    station_tel: Mapped[str | None] = mapped_column(String(30))
    service_tel: Mapped[str | None] = mapped_column(String(30))
    station_type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    station_status: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    park_nums: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Nullable only for rejected stations (CHECK ck_stations_position, migration 0200).
    lng_gcj02: Mapped[float | None] = mapped_column(Float)
    lat_gcj02: Mapped[float | None] = mapped_column(Float)
    site_guide: Mapped[str | None] = mapped_column(String(200))
    construction: Mapped[int | None] = mapped_column(SmallInteger)
    pictures: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    match_cars: Mapped[str | None] = mapped_column(String(200))
    park_info: Mapped[str | None] = mapped_column(String(200))
    busine_hours: Mapped[str | None] = mapped_column(String(200))
    electricity_fee: Mapped[str | None] = mapped_column(String(512))
    service_fee: Mapped[str | None] = mapped_column(String(200))
    park_fee: Mapped[str | None] = mapped_column(String(200))
    payment: Mapped[str | None] = mapped_column(String(100))
    support_order: Mapped[int | None] = mapped_column(SmallInteger)
    remark: Mapped[str | None] = mapped_column(String(200))

    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    geom_3857 = mapped_column(Geometry("POINT", srid=3857, spatial_index=True))
    district_adcode: Mapped[int | None] = mapped_column(Integer, ForeignKey("districts.adcode"), index=True)
    area_code_mismatch: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))

    feed_state: Mapped[str] = mapped_column(String(10), nullable=False, server_default="active")
    reject_reason: Mapped[str | None] = mapped_column(Text)
    interconnected: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))

    # derived, kept in step by the sync
    facility_types: Mapped[list[str]] = mapped_column(ARRAY(String(10)), nullable=False, server_default="{}")
    payments: Mapped[list[str]] = mapped_column(ARRAY(String(10)), nullable=False, server_default="{}")
    payment_unknown: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    pile_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    scale: Mapped[str | None] = mapped_column(String(10))
    max_power_kw: Mapped[Decimal | None] = mapped_column(Numeric(8, 1))
    connectors_total: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    connectors_free: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    availability: Mapped[str] = mapped_column(String(10), nullable=False, server_default="unknown")
    # the cheapest price per kWh now (electricity + service) and when it next changes (services.prices)
    price_now: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    price_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    name_pinyin: Mapped[str | None] = mapped_column(Text)
    name_initials: Mapped[str | None] = mapped_column(Text)
    search_text: Mapped[str | None] = mapped_column(Text)

    raw: Mapped[dict | None] = mapped_column(JSONB)
    content_hash: Mapped[str | None] = mapped_column(String(32))
    first_seen_at: Mapped[datetime] = created_at()
    info_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    status_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    silent_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the last of its connectors fell silent, while none of them reports (issue 16)."""
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (
        UniqueConstraint("operator_id", "station_id"),
        CheckConstraint("feed_state IN ('active', 'withdrawn', 'rejected')", name="feed_state"),
        CheckConstraint("availability IN ('free', 'busy', 'offline', 'unknown')", name="availability"),
        CheckConstraint("feed_state = 'rejected' OR (geom IS NOT NULL AND geom_3857 IS NOT NULL "
                        "AND lng_gcj02 IS NOT NULL AND lat_gcj02 IS NOT NULL)", name="position"),
        Index("ix_stations_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        Index("ix_stations_search_text_trgm", "search_text", postgresql_using="gin",
              postgresql_ops={"search_text": "gin_trgm_ops"}),
        Index("ix_stations_name_pinyin_trgm", "name_pinyin", postgresql_using="gin",
              postgresql_ops={"name_pinyin": "gin_trgm_ops"}),
        Index("ix_stations_facility_types", "facility_types", postgresql_using="gin"),
        Index("ix_stations_payments", "payments", postgresql_using="gin"),
        Index("ix_stations_operator_state", "operator_id", "feed_state"),
        # partial indexes on the visible stations, made by migrations 0300 (keyset pagination by
        # name) and 0350 (tile scans)
        Index("ix_stations_search_name", "name", "id", postgresql_where=text("feed_state = 'active' AND interconnected")),
        Index("ix_stations_tile_geom_3857", "geom_3857", postgresql_using="gist",
              postgresql_where=text("feed_state = 'active' AND interconnected")),
        Index("ix_stations_price_until", "price_until", postgresql_where=text("price_until IS NOT NULL")),
    )


class Equipment(Base):
    """A charging pile (EquipmentInfo); EquipmentID is unique within its operator."""

    __tablename__ = "equipment"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    station_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("stations.id", ondelete="CASCADE"),
                                            nullable=False, index=True)
    operator_id: Mapped[str] = mapped_column(String(9), nullable=False)
    equipment_id: Mapped[str] = mapped_column(String(23), nullable=False)
    manufacturer_id: Mapped[str | None] = mapped_column(String(9))
    manufacturer_name: Mapped[str | None] = mapped_column(String(60))
    equipment_model: Mapped[str | None] = mapped_column(String(40))
    production_date: Mapped[date | None] = mapped_column(Date)
    equipment_type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    lng_gcj02: Mapped[float | None] = mapped_column(Float)
    lat_gcj02: Mapped[float | None] = mapped_column(Float)
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    power_kw: Mapped[Decimal] = mapped_column(Numeric(8, 1), nullable=False)
    equipment_name: Mapped[str | None] = mapped_column(String(60))
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (UniqueConstraint("operator_id", "equipment_id"),
                      Index("ix_equipment_operator_station", "operator_id", "station_pk"))


class Connector(Base):
    """A connector (ConnectorInfo); ConnectorID is unique within its operator."""

    __tablename__ = "connectors"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    equipment_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("equipment.id", ondelete="CASCADE"),
                                              nullable=False, index=True)
    station_pk: Mapped[int] = mapped_column(BigInteger, ForeignKey("stations.id", ondelete="CASCADE"),
                                            nullable=False, index=True)
    operator_id: Mapped[str] = mapped_column(String(9), nullable=False)
    connector_id: Mapped[str] = mapped_column(String(26), nullable=False)
    connector_name: Mapped[str | None] = mapped_column(String(60))
    connector_type: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    voltage_upper_limits: Mapped[int | None] = mapped_column(Integer)
    voltage_lower_limits: Mapped[int | None] = mapped_column(Integer)
    current: Mapped[int | None] = mapped_column(Integer)
    power_kw: Mapped[Decimal] = mapped_column(Numeric(8, 1), nullable=False)
    park_no: Mapped[str | None] = mapped_column(String(20))
    national_standard: Mapped[int | None] = mapped_column(SmallInteger)
    updated_at: Mapped[datetime] = updated_at()

    __table_args__ = (UniqueConstraint("operator_id", "connector_id"),)


class ConnectorStatus(Base):
    """Live status of a connector, keyed like the protocol (operator + ConnectorID).

    Kept apart from ``connectors`` so a status push can land before (or without) the
    connector's StationInfo, and so the hot write path touches one narrow row. ``id`` is the small
    key of its history (``connector_status_history``); ``status`` is NULL while the connector is
    silent (unknown since ``status_since``); ``reported_at`` is the time of the report it holds,
    which only moves forward (migration 1500).
    """

    __tablename__ = "connector_status"

    operator_id: Mapped[str] = mapped_column(String(9), primary_key=True)
    connector_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    id: Mapped[int] = mapped_column(Integer, Identity(), nullable=False)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    park_status: Mapped[int | None] = mapped_column(SmallInteger)
    lock_status: Mapped[int | None] = mapped_column(SmallInteger)
    source: Mapped[str] = mapped_column(String(10), nullable=False, server_default="pull")
    status_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))

    __table_args__ = (UniqueConstraint("id"),)


class SyncRun(Base):
    """One pull or push batch, for the feed status page and the dashboard."""

    __tablename__ = "sync_runs"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(9), nullable=False)
    mode: Mapped[str] = mapped_column(String(12), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=text("now()"))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    inserted: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    updated: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    unchanged: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    rejected: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    withdrawn: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    statuses: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    ok: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_sync_runs_operator_started", "operator_id", "started_at"),
        CheckConstraint("mode IN ('full', 'incremental', 'status', 'push', 'check', 'policy')", name="mode"),
    )


class FeedPushSeen(Base):
    """Replay protection: (operator, TimeStamp second, Seq) of every accepted push, with its Sig.

    Kept for the TimeStamp window only (older envelopes fail the clock check anyway).
    """

    __tablename__ = "feed_push_seen"

    operator_id: Mapped[str] = mapped_column(String(9), primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    seq: Mapped[str] = mapped_column(String(4), primary_key=True)
    sig: Mapped[str] = mapped_column(String(32), nullable=False)
    received_at: Mapped[datetime] = created_at()

    __table_args__ = (Index("ix_feed_push_seen_ts", "ts"),)


class FeedToken(Base):
    """AccessTokens we issued to operators (SHA-256 only), shared by every app process."""

    __tablename__ = "feed_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[str] = mapped_column(String(9), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    created_at: Mapped[datetime] = created_at()

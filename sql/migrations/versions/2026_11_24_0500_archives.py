"""archives: station, report and facility archives, report files, interconnection applications

Revision ID: 0500
Revises: (none: a root of its branch; depends_on implies 0001)
Depends on: 0100 (workflow_events), 0200 (feed), 0400 (users, for reviewed_by)
Create Date: 2026-11-24 18:40:00

Decisions recorded here:

* Most StationInfo columns are nullable: "save" keeps a half-filled draft; "submit" validates
  every field in the service (``services.archives.validation``), not in CHECKs, so the operator
  gets one message per field instead of a constraint name.
* States are CHECKed against the workflow tables' keys; transitions are in code
  (``services.archives.workflows``) and every change writes ``workflow_events``.
* ``report_files``: one ``current`` type-test file per report (partial unique index); replaced
  files stay as history. Files live under ``settings.app.upload_dir`` with random names.
* Facilities reference their station and report archives with ``ON DELETE RESTRICT``: the
  service refuses to delete an archive still in use, with a message naming the facilities.
"""
from __future__ import annotations

import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0500"
down_revision = None  # depends_on implies 0001 (see 0700 for why not "0001")
branch_labels = ("archives",)
depends_on = ("0100", "0200", "0400")

STATION_STATES = "('pending', 'under_review', 'approved', 'rejected')"
FACILITY_STATES = "('pending', 'under_review', 'rejected', 'approved', 'ic_review', 'interconnected')"
IC_STATES = "('configuring', 'checking', 'passed', 'failed')"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "station_archives",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("operator_pk", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(20), nullable=False),
        sa.Column("equipment_owner_id", sa.String(9), nullable=True),
        sa.Column("name", sa.String(50), nullable=True),
        sa.Column("address", sa.String(50), nullable=True),
        sa.Column("district_adcode", sa.Integer(), nullable=True),
        sa.Column("lng_gcj02", sa.Float(), nullable=True),
        sa.Column("lat_gcj02", sa.Float(), nullable=True),
        sa.Column("geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("station_type", sa.SmallInteger(), nullable=True),
        sa.Column("station_status", sa.SmallInteger(), nullable=True),
        sa.Column("construction", sa.SmallInteger(), nullable=True),
        sa.Column("service_tel", sa.String(30), nullable=True),
        sa.Column("station_tel", sa.String(30), nullable=True),
        sa.Column("park_nums", sa.Integer(), nullable=True),
        sa.Column("site_guide", sa.String(100), nullable=True),
        sa.Column("match_cars", sa.String(100), nullable=True),
        sa.Column("park_info", sa.String(100), nullable=True),
        sa.Column("busine_hours", sa.String(100), nullable=True),
        sa.Column("electricity_fee", sa.String(256), nullable=True),
        sa.Column("service_fee", sa.String(100), nullable=True),
        sa.Column("park_fee", sa.String(100), nullable=True),
        sa.Column("payment", sa.String(20), nullable=True),
        sa.Column("support_order", sa.SmallInteger(), nullable=True),
        sa.Column("remark", sa.String(100), nullable=True),
        sa.Column("pictures", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("state", sa.String(20), server_default="pending", nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("associated_for_interconnection", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("submitted_at", True),
        _ts("reviewed_at", True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(f"state IN {STATION_STATES}", name=op.f("ck_station_archives_state")),
        sa.ForeignKeyConstraint(["operator_pk"], ["operators.id"], name=op.f("fk_station_archives_operator_pk_operators"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["district_adcode"], ["districts.adcode"],
                                name=op.f("fk_station_archives_district_adcode_districts")),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"], name=op.f("fk_station_archives_reviewed_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_archives")),
        sa.UniqueConstraint("operator_pk", "station_id", name=op.f("uq_station_archives_operator_pk_station_id")),
    )
    op.create_index("idx_station_archives_geom", "station_archives", ["geom"], postgresql_using="gist")
    op.create_index("ix_station_archives_operator_state", "station_archives", ["operator_pk", "state"])
    op.create_index("ix_station_archives_state_submitted", "station_archives", ["state", "submitted_at"])

    op.create_table(
        "report_archives",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("operator_pk", sa.Integer(), nullable=False),
        sa.Column("report_no", sa.String(50), nullable=False),
        sa.Column("lab", sa.String(100), nullable=False),
        sa.Column("report_date", sa.Date(), nullable=False),
        sa.Column("equipment_model", sa.String(40), nullable=False),
        sa.Column("manufacturer_name", sa.String(60), nullable=True),
        sa.Column("equipment_type", sa.SmallInteger(), nullable=True),
        sa.Column("power_kw", sa.Numeric(8, 1), nullable=True),
        sa.Column("remark", sa.String(200), nullable=True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(["operator_pk"], ["operators.id"], name=op.f("fk_report_archives_operator_pk_operators"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_report_archives_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_archives")),
        sa.UniqueConstraint("operator_pk", "report_no", name=op.f("uq_report_archives_operator_pk_report_no")),
    )
    op.create_index("ix_report_archives_operator_pk", "report_archives", ["operator_pk"])

    op.create_table(
        "report_files",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("report_pk", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), server_default="type_test", nullable=False),
        sa.Column("stored_name", sa.String(80), nullable=False),
        sa.Column("original_name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("current", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("uploaded_by", sa.Integer(), nullable=True),
        _ts("uploaded_at"),
        _ts("replaced_at", True),
        sa.CheckConstraint("content_type IN ('application/pdf', 'image/jpeg', 'image/png')",
                           name=op.f("ck_report_files_content_type")),
        sa.ForeignKeyConstraint(["report_pk"], ["report_archives.id"], name=op.f("fk_report_files_report_pk_report_archives"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploaded_by"], ["users.id"], name=op.f("fk_report_files_uploaded_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_files")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_report_files_stored_name")),
    )
    op.create_index("ix_report_files_report", "report_files", ["report_pk", "uploaded_at"])
    op.create_index("uq_report_files_current", "report_files", ["report_pk", "kind"], unique=True,
                    postgresql_where=sa.text("current"))

    op.create_table(
        "facility_archives",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("operator_pk", sa.Integer(), nullable=False),
        sa.Column("station_archive_pk", sa.Integer(), nullable=False),
        sa.Column("report_archive_pk", sa.Integer(), nullable=True),
        sa.Column("equipment_id", sa.String(23), nullable=False),
        sa.Column("equipment_name", sa.String(30), nullable=True),
        sa.Column("equipment_type", sa.SmallInteger(), nullable=True),
        sa.Column("power_kw", sa.Numeric(8, 1), nullable=True),
        sa.Column("connector_count", sa.SmallInteger(), nullable=True),
        sa.Column("connector_type", sa.SmallInteger(), nullable=True),
        sa.Column("national_standard", sa.SmallInteger(), nullable=True),
        sa.Column("manufacturer_id", sa.String(9), nullable=True),
        sa.Column("manufacturer_name", sa.String(30), nullable=True),
        sa.Column("equipment_model", sa.String(20), nullable=True),
        sa.Column("production_date", sa.Date(), nullable=True),
        sa.Column("lng_gcj02", sa.Float(), nullable=True),
        sa.Column("lat_gcj02", sa.Float(), nullable=True),
        sa.Column("geom", geoalchemy2.Geometry("POINT", srid=4326, spatial_index=False), nullable=True),
        sa.Column("state", sa.String(20), server_default="pending", nullable=False),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.Column("ever_approved", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _ts("submitted_at", True),
        _ts("reviewed_at", True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(f"state IN {FACILITY_STATES}", name=op.f("ck_facility_archives_state")),
        sa.ForeignKeyConstraint(["operator_pk"], ["operators.id"], name=op.f("fk_facility_archives_operator_pk_operators"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["station_archive_pk"], ["station_archives.id"],
                                name=op.f("fk_facility_archives_station_archive_pk_station_archives"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["report_archive_pk"], ["report_archives.id"],
                                name=op.f("fk_facility_archives_report_archive_pk_report_archives"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"], name=op.f("fk_facility_archives_reviewed_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facility_archives")),
        sa.UniqueConstraint("operator_pk", "equipment_id", name=op.f("uq_facility_archives_operator_pk_equipment_id")),
    )
    op.create_index("ix_facility_archives_operator_state", "facility_archives", ["operator_pk", "state"])
    op.create_index("ix_facility_archives_station", "facility_archives", ["station_archive_pk"])
    op.create_index("ix_facility_archives_report", "facility_archives", ["report_archive_pk"])
    op.create_index("ix_facility_archives_state_submitted", "facility_archives", ["state", "submitted_at"])

    op.create_table(
        "interconnection_applications",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("operator_pk", sa.Integer(), nullable=False),
        sa.Column("step", sa.SmallInteger(), server_default="1", nullable=False),
        sa.Column("state", sa.String(20), server_default="configuring", nullable=False),
        _ts("docking_saved_at", True),
        sa.Column("debug_results", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False),
        sa.Column("check_report", postgresql.JSONB(), nullable=True),
        _ts("submitted_at", True),
        _ts("checked_at", True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(f"state IN {IC_STATES}", name=op.f("ck_interconnection_applications_state")),
        sa.CheckConstraint("step BETWEEN 1 AND 3", name=op.f("ck_interconnection_applications_step")),
        sa.ForeignKeyConstraint(["operator_pk"], ["operators.id"],
                                name=op.f("fk_interconnection_applications_operator_pk_operators"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interconnection_applications")),
        sa.UniqueConstraint("operator_pk", name=op.f("uq_interconnection_applications_operator_pk")),
    )


def downgrade() -> None:
    op.drop_table("interconnection_applications")
    op.drop_index("ix_facility_archives_state_submitted", table_name="facility_archives")
    op.drop_index("ix_facility_archives_report", table_name="facility_archives")
    op.drop_index("ix_facility_archives_station", table_name="facility_archives")
    op.drop_index("ix_facility_archives_operator_state", table_name="facility_archives")
    op.drop_table("facility_archives")
    op.drop_index("uq_report_files_current", table_name="report_files")
    op.drop_index("ix_report_files_report", table_name="report_files")
    op.drop_table("report_files")
    op.drop_index("ix_report_archives_operator_pk", table_name="report_archives")
    op.drop_table("report_archives")
    op.drop_index("ix_station_archives_state_submitted", table_name="station_archives")
    op.drop_index("ix_station_archives_operator_state", table_name="station_archives")
    op.drop_index("idx_station_archives_geom", table_name="station_archives")
    op.drop_table("station_archives")

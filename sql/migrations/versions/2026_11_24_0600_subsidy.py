"""subsidy: rules, applications, their facilities and accounting runs

Revision ID: 0600
Revises: (none; depends on 0100 workflow_events, 0400 users, 0500 station and facility archives)
Create Date: 2026-11-24 18:30:00

Decisions recorded here:

* Money is NUMERIC(14,2) (whole fen), rates NUMERIC(12,4), line amounts NUMERIC(24,8) (exact
  products of power or energy and rate, never rounded); the application's amount is rounded
  once to the fen in ``services.subsidy.amounts``.
* A facility is claimed at most once per rule: ``subsidy_application_facilities`` repeats the
  rule id, unique with the facility, and a composite foreign key to
  ``subsidy_applications (id, rule_id)`` keeps it equal to the application's rule.
* Caps are not triggers: the accounting locks the rule row and allocates in application order,
  clamping each amount to the remaining headroom (see the module docstring there).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0600"
# None, not "0001": with "0001" plus dependencies on its children, Alembic 1.20 may try to delete
# the 0001 row of alembic_version (KeyError: '0001'), depending on set ordering; see 0700's note.
# The dependencies imply 0001.
down_revision = None
branch_labels = ("subsidy",)
depends_on = ("0100", "0400", "0500")

MONEY = sa.Numeric(14, 2)
RATE = sa.Numeric(12, 4)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    if nullable:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=True)
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "subsidy_rules",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("subsidy_start", sa.Date(), nullable=False),
        sa.Column("subsidy_end", sa.Date(), nullable=False),
        sa.Column("apply_start", sa.Date(), nullable=False),
        sa.Column("apply_end", sa.Date(), nullable=False),
        sa.Column("basis", sa.String(10), nullable=False),
        sa.Column("rate_dc", RATE, nullable=True),
        sa.Column("rate_ac", RATE, nullable=True),
        sa.Column("rate_acdc", RATE, nullable=True),
        sa.Column("rate_wireless", RATE, nullable=True),
        sa.Column("rate_other", RATE, nullable=True),
        sa.Column("rate_kwh", RATE, nullable=True),
        sa.Column("cap_station", MONEY, nullable=True),
        sa.Column("cap_operator", MONEY, nullable=True),
        sa.Column("budget", MONEY, nullable=False),
        sa.Column("required_station_status", sa.SmallInteger(), nullable=True),
        sa.Column("required_interconnection", sa.String(20), server_default="none", nullable=False),
        sa.Column("min_operator_power_kw", sa.Numeric(12, 1), server_default="0", nullable=False),
        _ts("published_at", True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("subsidy_start <= subsidy_end", name=op.f("ck_subsidy_rules_subsidy_period")),
        sa.CheckConstraint("apply_start <= apply_end", name=op.f("ck_subsidy_rules_apply_period")),
        sa.CheckConstraint("basis IN ('per_kw', 'per_kwh')", name=op.f("ck_subsidy_rules_basis")),
        sa.CheckConstraint("required_interconnection IN ('none', 'archive_approved', 'interconnected')",
                           name=op.f("ck_subsidy_rules_required_interconnection")),
        sa.CheckConstraint("budget >= 0 AND coalesce(cap_station, 0) >= 0 AND coalesce(cap_operator, 0) >= 0 "
                           "AND min_operator_power_kw >= 0", name=op.f("ck_subsidy_rules_non_negative")),
        sa.CheckConstraint("coalesce(rate_dc, 0) >= 0 AND coalesce(rate_ac, 0) >= 0 AND coalesce(rate_acdc, 0) >= 0 "
                           "AND coalesce(rate_wireless, 0) >= 0 AND coalesce(rate_other, 0) >= 0 "
                           "AND coalesce(rate_kwh, 0) >= 0", name=op.f("ck_subsidy_rules_rates")),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_subsidy_rules_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_rules")),
    )
    op.create_table(
        "subsidy_accounting_runs",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        _ts("run_at"),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(100), nullable=True),
        sa.Column("applications", sa.Integer(), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.ForeignKeyConstraint(["rule_id"], ["subsidy_rules.id"],
                                name=op.f("fk_subsidy_accounting_runs_rule_id_subsidy_rules"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"],
                                name=op.f("fk_subsidy_accounting_runs_actor_user_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_accounting_runs")),
    )
    op.create_index(op.f("ix_subsidy_accounting_runs_rule_id"), "subsidy_accounting_runs", ["rule_id"])
    op.create_table(
        "subsidy_applications",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("operator_pk", sa.Integer(), nullable=False),
        sa.Column("station_archive_pk", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(20), nullable=False),
        sa.Column("station_name", sa.String(50), nullable=True),
        sa.Column("contact_name", sa.String(50), nullable=True),
        sa.Column("contact_phone", sa.String(30), nullable=True),
        sa.Column("bank_account", sa.String(60), nullable=True),
        sa.Column("remark", sa.Text(), nullable=True),
        sa.Column("state", sa.String(20), server_default="pending", nullable=False),
        sa.Column("expected_amount", MONEY, server_default="0", nullable=False),
        sa.Column("energy_kwh", sa.Numeric(16, 3), nullable=True),
        _ts("energy_fetched_at", True),
        sa.Column("accounted_amount", MONEY, nullable=True),
        sa.Column("limited_by", sa.String(10), nullable=True),
        sa.Column("accounting_run_id", sa.Integer(), nullable=True),
        sa.Column("return_reason", sa.Text(), nullable=True),
        _ts("first_submitted_at", True),
        _ts("submitted_at", True),
        _ts("reviewed_at", True),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        _ts("accounted_at", True),
        _ts("paid_at", True),
        sa.Column("created_by", sa.Integer(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("state IN ('pending', 'submitted', 'returned', 'approved', 'accounted', 'paid')",
                           name=op.f("ck_subsidy_applications_state")),
        sa.CheckConstraint("expected_amount >= 0 AND coalesce(accounted_amount, 0) >= 0",
                           name=op.f("ck_subsidy_applications_amounts")),
        sa.CheckConstraint("limited_by IS NULL OR limited_by IN ('station', 'operator', 'budget')",
                           name=op.f("ck_subsidy_applications_limited_by")),
        sa.ForeignKeyConstraint(["rule_id"], ["subsidy_rules.id"],
                                name=op.f("fk_subsidy_applications_rule_id_subsidy_rules"), ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["operator_pk"], ["operators.id"],
                                name=op.f("fk_subsidy_applications_operator_pk_operators"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["station_archive_pk"], ["station_archives.id"],
                                name=op.f("fk_subsidy_applications_station_archive_pk_station_archives"),
                                ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["accounting_run_id"], ["subsidy_accounting_runs.id"],
                                name=op.f("fk_subsidy_applications_run"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["reviewed_by"], ["users.id"], name=op.f("fk_subsidy_applications_reviewed_by_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["created_by"], ["users.id"], name=op.f("fk_subsidy_applications_created_by_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_applications")),
        sa.UniqueConstraint("id", "rule_id", name=op.f("uq_subsidy_applications_id_rule")),
    )
    op.create_index("ix_subsidy_applications_operator_rule", "subsidy_applications", ["operator_pk", "rule_id", "state"])
    op.create_index("ix_subsidy_applications_rule_state", "subsidy_applications", ["rule_id", "state"])
    op.create_table(
        "subsidy_application_facilities",
        sa.Column("id", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("facility_archive_pk", sa.Integer(), nullable=False),
        sa.Column("equipment_id", sa.String(23), nullable=False),
        sa.Column("facility_type", sa.String(10), nullable=False),
        sa.Column("power_kw", sa.Numeric(8, 1), nullable=False),
        sa.Column("kwh", sa.Numeric(16, 3), nullable=True),
        sa.Column("amount", sa.Numeric(24, 8), nullable=False),
        sa.ForeignKeyConstraint(["application_id", "rule_id"], ["subsidy_applications.id", "subsidy_applications.rule_id"],
                                name=op.f("fk_subsidy_application_facilities_application"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["facility_archive_pk"], ["facility_archives.id"],
                                name=op.f("fk_subsidy_application_facilities_facility"), ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subsidy_application_facilities")),
        sa.UniqueConstraint("rule_id", "facility_archive_pk", name=op.f("uq_subsidy_application_facilities_rule_facility")),
    )
    op.create_index("ix_subsidy_application_facilities_application", "subsidy_application_facilities",
                    ["application_id"])


def downgrade() -> None:
    op.drop_table("subsidy_application_facilities")
    op.drop_table("subsidy_applications")
    op.drop_table("subsidy_accounting_runs")
    op.drop_table("subsidy_rules")

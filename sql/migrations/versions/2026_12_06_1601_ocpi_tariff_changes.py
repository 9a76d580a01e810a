"""ocpi: indexes on the current tariff versions for OCPI's date filters and its list of Tariffs

Revision ID: 1601
Revises: 1600
Create Date: 2026-12-06 14:00:00

An OCPI Location's ``last_updated`` is the latest change of the station, its operator and what
hangs from it. Every change of a pile, a connector or a connector's status already moves the
station's ``updated_at`` or ``status_changed_at`` (the feed's writers do so in the same
transaction), so ``date_from``/``date_to`` are predicates on ``stations`` alone, except a new
tariff version, which touches no station: this index finds the current versions that began since
a moment without reading the whole history (3 million rows at national scale):
``ix_connector_tariffs_current_since``.

OCPI's Tariffs are the (operator, tariff) pairs of current versions, each with the moment the
operator first used the tariff: ``ix_connector_tariffs_current_pairs`` lets the list skip from one
pair to the next (a loose index scan: a few hundred probes instead of aggregating millions of
rows) and gives each pair's earliest ``first_seen_at`` from its first entry.

Neither index holds ``last_seen_at``, which every policy pull rewrites: those updates stay HOT.
"""
from __future__ import annotations

from alembic import op

revision = "1601"
down_revision = "1600"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_connector_tariffs_current_since ON connector_tariffs (first_seen_at) "
               "WHERE valid_to IS NULL")
    op.execute("CREATE INDEX ix_connector_tariffs_current_pairs ON connector_tariffs "
               "(operator_id, tariff_id, first_seen_at) WHERE valid_to IS NULL")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_connector_tariffs_current_pairs")
    op.execute("DROP INDEX IF EXISTS ix_connector_tariffs_current_since")

"""tiles: cluster-cell triggers as static statements (cached plans), early exit on irrelevant updates

Revision ID: 0352
Revises: 0351
Create Date: 2026-11-24 18:55:00

0351's triggers built their statement with EXECUTE, so every UPDATE of stations paid for planning
it (~0.45 ms per statement, even when nothing a cluster shows had changed). One static function
per operation lets plpgsql cache the plans, and updates that touch no position, visibility or
connector count leave at once. Re-runs sql/functions/tile_cluster_cells.sql (idempotent).
"""
from __future__ import annotations

from alembic import op

from services.db import read_sql

revision = "0352"
down_revision = "0351"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("functions/tile_cluster_cells.sql"))


def downgrade() -> None:
    # The functions of 0351 and 0352 compute the same thing; going back leaves the faster ones.
    pass

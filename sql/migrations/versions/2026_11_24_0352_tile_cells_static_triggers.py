"""tiles: cluster-cell triggers as static statements (cached plans), early exit on irrelevant updates

Revision ID: 0352
Revises: 0351
Create Date: 2026-11-24 18:55:00

0351's triggers built their statement with EXECUTE, so every UPDATE of stations paid for planning
it (~0.45 ms per statement, even when nothing a cluster shows had changed). One static function
per operation lets plpgsql cache the plans, and updates that touch no position, visibility or
connector count leave at once. Runs ``versions/sql/0352_tile_cluster_cells.sql`` (the file as it
was at this revision); going back runs 0351's copy again, so 0351 has its own functions.
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0352"
down_revision = "0351"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute((SQL / "0352_tile_cluster_cells.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute((SQL / "0351_tile_cluster_cells.sql").read_text(encoding="utf-8"))
    for fn in ("zh_tile_cells_ins", "zh_tile_cells_upd", "zh_tile_cells_del"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")

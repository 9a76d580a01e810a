"""tiles: the cluster-cell fold written once (zh_tile_cells_fold), called by every trigger and the rebuild

Revision ID: 0354
Revises: 0353
Create Date: 2026-12-06 06:00:00

0352 wrote the same INSERT ... ON CONFLICT (a delta folded into every level) four times: in the
insert, update and delete triggers and in the rebuild. It now lives in one plpgsql function with
one static statement (its plan is cached, as before); the callers gather their delta (position,
sign, connector counts) into arrays and call it once. Inserts and deletes share one trigger
function (zh_tile_cells_rows: the triggers name their transition table alike and pass the sign),
which replaces 0352's zh_tile_cells_ins and zh_tile_cells_del. Same cells, same early exit on
updates that change nothing a cluster shows. Runs ``versions/sql/0354_tile_cluster_cells.sql``
(the file as it was at this revision); going back runs 0352's copy again.
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0354"
down_revision = "0353"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute((SQL / "0354_tile_cluster_cells.sql").read_text(encoding="utf-8"))
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_ins()")
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_del()")


def downgrade() -> None:
    op.execute((SQL / "0352_tile_cluster_cells.sql").read_text(encoding="utf-8"))
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_rows()")
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_fold(geometry[], integer[], integer[], integer[])")

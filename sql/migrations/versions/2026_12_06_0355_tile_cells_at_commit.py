"""tiles: the cluster and filter cells folded at commit, not at each statement

Revision ID: 0355
Revises: 0354
Create Date: 2026-12-06 12:40:00

The low-level cells of tile_cluster_cells and tile_filter_cells are shared by every operator on the
same part of the map (the level-0 cell by all), and a writer holds their row locks until it commits.
Folded by the statement triggers, a full sync's chunk took them at its first station insert and
held them while it stored the chunk's piles and connectors: concurrent operators' syncs took turns
(measured: 14 s of waiting inside zh_tile_cells_fold over one 12 s full sync of six operators). The
statement triggers on stations now append the transaction's delta to tile_cell_deltas and mark the
transaction in tile_cell_flushes, whose deferred constraint trigger folds the delta into both tables
once, at commit. The same cells, exactly (the triggers' old/new rows are what they were); the
filter-cell triggers of 0353 go (the cluster-cell triggers gather for both). Runs
``versions/sql/0355_tile_cluster_cells.sql``; going back runs 0354's copy and
``versions/sql/0355_down_tile_filter_cells.sql`` (0353's filter-cell functions and triggers).
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0355"
down_revision = "0354"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute("""
        CREATE UNLOGGED TABLE tile_cell_deltas (
            xid bigint NOT NULL DEFAULT txid_current(),
            sign smallint NOT NULL,
            g geometry(Point, 3857) NOT NULL,
            station_type smallint NOT NULL,
            scale varchar(10),
            facility_types varchar(10)[] NOT NULL,
            payments varchar(10)[] NOT NULL,
            max_power_kw numeric(8,1),
            total integer NOT NULL,
            free integer NOT NULL
        )""")
    op.execute("CREATE INDEX ix_tile_cell_deltas_xid ON tile_cell_deltas (xid)")
    op.execute("CREATE UNLOGGED TABLE tile_cell_flushes (xid bigint CONSTRAINT pk_tile_cell_flushes PRIMARY KEY)")
    op.execute((SQL / "0355_tile_cluster_cells.sql").read_text(encoding="utf-8"))
    for name in ("ins", "upd", "del"):
        op.execute(f"DROP FUNCTION zh_tile_filter_cells_{name}()")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_tile_cell_flushes_at_commit ON tile_cell_flushes")
    op.execute((SQL / "0354_tile_cluster_cells.sql").read_text(encoding="utf-8"))
    op.execute((SQL / "0355_down_tile_filter_cells.sql").read_text(encoding="utf-8"))
    for fn in ("zh_tile_cells_at_commit()", "zh_tile_cells_flush(bigint)", "zh_tile_filter_cells_fold(bigint)"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.execute("DROP TABLE tile_cell_flushes")
    op.execute("DROP TABLE tile_cell_deltas")

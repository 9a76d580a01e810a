"""tiles: per-cell cluster aggregates for low zooms, kept exact by triggers on stations

Revision ID: 0351
Revises: 0350
Create Date: 2026-11-24 18:45:00

Measured at national scale (250,000 stations, 2 cores): aggregating a dense z5 tile per request
took up to 111 ms (z3: 421 ms); reading its cells from this table takes about a millisecond.
Statement-level triggers with transition tables fold every insert/update/delete of stations into
the table in the same transaction, so it is exactly as fresh as the data version the ETags use.
The functions and triggers are ``versions/sql/0351_tile_cluster_cells.sql``: the file as it was
at this revision (one trigger function building its statement with EXECUTE; 0352 replaced it).
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0351"
down_revision = "0350"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute("""
        CREATE TABLE tile_cluster_cells (
            z smallint NOT NULL,
            cx integer NOT NULL,
            cy integer NOT NULL,
            point_count integer NOT NULL,
            connectors_total bigint NOT NULL,
            connectors_free bigint NOT NULL,
            sum_x float8 NOT NULL,
            sum_y float8 NOT NULL,
            CONSTRAINT pk_tile_cluster_cells PRIMARY KEY (z, cx, cy)
        )""")
    # a tile's cells: 8 x 8 cells per tile, so the tile is (cx >> 3, cy >> 3)
    op.execute("CREATE INDEX ix_tile_cluster_cells_tile ON tile_cluster_cells (z, (cx >> 3), (cy >> 3))")
    op.execute((SQL / "0351_tile_cluster_cells.sql").read_text(encoding="utf-8"))
    op.execute("SELECT zh_tile_cells_rebuild()")


def downgrade() -> None:
    for name in ("ins", "upd", "del", "trunc"):
        op.execute(f"DROP TRIGGER IF EXISTS trg_stations_tile_cells_{name} ON stations")
    for fn in ("zh_tile_cells_ins", "zh_tile_cells_upd", "zh_tile_cells_del", "zh_tile_cells_apply"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_truncate()")
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_rebuild()")
    op.execute("DROP FUNCTION IF EXISTS zh_tile_cells_merge_sql(text)")
    op.execute("DROP TABLE IF EXISTS tile_cluster_cells")

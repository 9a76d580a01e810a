"""tiles: GCJ-02 point shift, the districts tile function, data-version NOTIFY, a partial GiST index

Revision ID: 0350
Revises: 0001
Create Date: 2026-11-24 18:30:00

The station tile query itself is not a fixed SQL function: its filter predicate is rendered by
``services.stations.filters.StationFilter`` (shared with the search API), so ``tiles.render``
builds it from ``sql/queries/tile_stations.sql`` / ``tile_clusters.sql`` with bind parameters.
The functions are executed from this revision's own copies (``versions/sql/0350_*.sql``, the
files of ``sql/functions`` as they were when it was written), so the revision keeps its meaning
when ``sql/functions`` changes; a later change to a function needs a new migration with its own
copy.
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0350"
down_revision = "0001"
branch_labels = ("tiles",)
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    for name in ("gcj02_tile", "tile_districts", "tile_version_notify"):
        op.execute((SQL / f"0350_{name}.sql").read_text(encoding="utf-8"))
    # Only visible stations are ever tiled: a partial index keeps tile scans on them alone.
    op.execute("CREATE INDEX IF NOT EXISTS ix_stations_tile_geom_3857 ON stations USING gist (geom_3857) "
               "WHERE feed_state = 'active' AND interconnected")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_stations_tile_geom_3857")
    op.execute("DROP TRIGGER IF EXISTS trg_data_versions_notify ON data_versions")
    op.execute("DROP FUNCTION IF EXISTS zh_notify_data_version()")
    op.execute("DROP FUNCTION IF EXISTS tile_districts(integer, integer, integer, float8, float8)")
    op.execute("DROP FUNCTION IF EXISTS zh_wgs84_to_gcj02(geometry)")

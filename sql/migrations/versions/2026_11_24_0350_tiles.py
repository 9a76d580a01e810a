"""tiles: GCJ-02 point shift, the districts tile function, data-version NOTIFY, a partial GiST index

Revision ID: 0350
Revises: 0001
Create Date: 2026-11-24 18:30:00

The station tile query itself is not a fixed SQL function: its filter predicate is rendered by
``services.stations.filters.StationFilter`` (shared with the search API), so ``tiles.render``
builds it from ``sql/queries/tile_stations.sql`` / ``tile_clusters.sql`` with bind parameters.
The functions are executed from ``sql/functions``; a later change to one of them needs a new
migration that runs the file again.
"""
from __future__ import annotations

from alembic import op

from services.db import read_sql

revision = "0350"
down_revision = "0001"
branch_labels = ("tiles",)
depends_on = None


def upgrade() -> None:
    op.execute(read_sql("functions/gcj02_tile.sql"))
    op.execute(read_sql("functions/tile_districts.sql"))
    op.execute(read_sql("functions/tile_version_notify.sql"))
    # Only visible stations are ever tiled: a partial index keeps tile scans on them alone.
    op.execute("CREATE INDEX IF NOT EXISTS ix_stations_tile_geom_3857 ON stations USING gist (geom_3857) "
               "WHERE feed_state = 'active' AND interconnected")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_stations_tile_geom_3857")
    op.execute("DROP TRIGGER IF EXISTS trg_data_versions_notify ON data_versions")
    op.execute("DROP FUNCTION IF EXISTS zh_notify_data_version()")
    op.execute("DROP FUNCTION IF EXISTS tile_districts(integer, integer, integer, float8, float8)")
    op.execute("DROP FUNCTION IF EXISTS zh_wgs84_to_gcj02(geometry)")

"""feed: the index of ``stations.updated_at`` moves to ``station_updates``; status pushes update stations HOT

Revision ID: 1511
Revises: 1510
Create Date: 2026-12-06 15:10:00

Measured through the real receiver (issue 18, bench ``feed``, pg_stat_statements): each batch of
status pushes spent most of its database time in one UPDATE of the stations whose free count
changed, 0.55 ms a station, because ``updated_at`` was indexed: every such update was non-HOT and
wrote a new entry into each of the fifteen indexes of ``stations`` (three trigram GIN indexes among
them) for a change of its free count. ``station_updates (station_pk, updated_at)`` now carries that
index, kept by statement-level triggers on stations (``sql/functions/station_updates.sql`` as at
this revision, copied to ``versions/sql/1511_*``); ``stations`` gets a fillfactor of 90 so that new
pages keep room for HOT updates. The column ``stations.updated_at`` and its meaning are unchanged.
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "1511"
down_revision = "1510"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute("""
        CREATE TABLE station_updates (
            station_pk bigint NOT NULL,
            updated_at timestamptz NOT NULL,
            CONSTRAINT pk_station_updates PRIMARY KEY (station_pk),
            CONSTRAINT fk_station_updates_station_pk_stations FOREIGN KEY (station_pk) REFERENCES stations (id)
                ON DELETE CASCADE ON UPDATE CASCADE
        );
        INSERT INTO station_updates (station_pk, updated_at) SELECT id, updated_at FROM stations;
        CREATE INDEX ix_station_updates_updated_at ON station_updates (updated_at, station_pk);
        ALTER TABLE stations SET (fillfactor = 90);
        DROP INDEX ix_stations_updated_at;
    """)
    op.execute((SQL / "1511_station_updates.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute("""
        DROP TRIGGER IF EXISTS trg_station_updates_ins ON stations;
        DROP TRIGGER IF EXISTS trg_station_updates_upd ON stations;
        DROP FUNCTION IF EXISTS zh_station_updates();
        DROP TABLE IF EXISTS station_updates;
        ALTER TABLE stations RESET (fillfactor);
        CREATE INDEX ix_stations_updated_at ON stations (updated_at);
    """)

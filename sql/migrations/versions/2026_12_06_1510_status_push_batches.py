"""reliability: status pushes stored in batches (``feed_store_status_pushes``), the receiver's group commit

Revision ID: 1510
Revises: 1501
Create Date: 2026-12-06 09:00:00

Measured through the real receiver (bench ``feed``): a status push cost about 1-3 ms of database
time, most of it the statement-level triggers on ``stations`` (search, tile cells, filter cells)
fired by each push's one-row station UPDATE, plus a commit and a NOTIFY per push. The push
function is split in two parts, the connector (replay claim, status, history) and the stations
(summary, version bump), and ``feed_store_status_pushes`` stores a batch of concurrent pushes in one
statement and one commit: the connector part per push in order, then one UPDATE of every station
changed and one version bump. ``feed_store_status_push`` (one push) is the same two parts, so both
paths store the same. The SQL is ``sql/functions/feed_status_push.sql`` as it is at this revision
(copied to ``versions/sql/1510_*``); the downgrade restores the function of 1500.
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "1510"
down_revision = "1501"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute((SQL / "1510_feed_status_push.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute((SQL / "1500_feed_status_push.sql").read_text(encoding="utf-8"))
    op.execute("""
        DROP FUNCTION IF EXISTS feed_store_status_pushes(text[], timestamptz[], text[], text[], text[], smallint[],
                                                         smallint[], smallint[]);
        DROP FUNCTION IF EXISTS zh_status_push_stations(bigint[], boolean);
        DROP FUNCTION IF EXISTS zh_status_push_connector(text, timestamptz, text, text, text, smallint, smallint,
                                                         smallint);
    """)

"""feed: a batch of status pushes stored as a set (``feed_store_status_pushes``), not push by push

Revision ID: 1512
Revises: 1511
Create Date: 2026-12-06 15:40:00

Measured through the real receiver (issue 18, bench ``feed``): the batch function ran six statements
per push (replay claim, last push, status row, status, history, station), 0.13 ms of database time a
push. It now runs one statement per step for the whole batch: the replay claims in batch order, the
operators' last push, the connectors' rows locked in key order, their status and history. What a step
cannot decide for a whole batch (a connector pushed twice in one batch, one without a status row yet,
a report older than the row's) goes through ``zh_status_push_apply`` one push at a time, in order:
the part of ``zh_status_push_connector`` after its claim, which the one-push path still runs. The SQL
is ``sql/functions/feed_status_push.sql`` as at this revision (copied to ``versions/sql/1512_*``); the
downgrade restores 1510's.
"""
from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "1512"
down_revision = "1511"
branch_labels = None
depends_on = None

SQL = Path(__file__).with_name("sql")  # this revision's own copies of its SQL


def upgrade() -> None:
    op.execute((SQL / "1512_feed_status_push.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute((SQL / "1510_feed_status_push.sql").read_text(encoding="utf-8"))
    op.execute("DROP FUNCTION IF EXISTS zh_status_push_apply(text, timestamptz, text, smallint, smallint, smallint)")

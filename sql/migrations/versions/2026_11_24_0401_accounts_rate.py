"""accounts: per-IP rate-limit windows for login and code sending (``auth_rate``)

``auth_rate`` is UNLOGGED, like ``api_rate``: fixed-window counters shared by every app process
(``services.accounts.ratelimit``); losing them in a crash only resets the windows. It has no
model (``sql/migrations/env.py`` leaves model-less tables alone).

Revision ID: 0401
Revises: 0400
Create Date: 2026-11-24 19:30:00
"""
from __future__ import annotations

from alembic import op

revision = "0401"
down_revision = "0400"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE UNLOGGED TABLE auth_rate (
            bucket text NOT NULL,
            window_start timestamptz NOT NULL,
            window_s integer NOT NULL,
            hits integer NOT NULL DEFAULT 1,
            CONSTRAINT pk_auth_rate PRIMARY KEY (bucket, window_start)
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS auth_rate")

"""accounts: login failures per account *and* client address (``login_failures``)

The lockout that a stranger could trigger on purpose (five wrong passwords locked an account for
everyone) becomes a lock of one account for one address, with a slow-down before it and an
account-wide ceiling (see ``services.accounts.lockout``). ``users.failed_logins`` and
``users.locked_until`` go: the state lives here. Keys are ``u:<user id>`` for real accounts and
``n:<sha-256 of the name>`` for names that are no account, so answers never reveal which is which.
The row with client ``*`` holds the account-wide lock. No model (``env.py`` leaves model-less
tables alone); a logged table, so a restart does not hand an attacker fresh attempts.

Revision ID: 1300
Revises: 0401
Create Date: 2026-12-05 22:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "1300"
down_revision = "0401"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE login_failures (
            account_key text NOT NULL,
            client text NOT NULL,
            failures integer NOT NULL DEFAULT 0,
            first_failed_at timestamptz NOT NULL DEFAULT now(),
            last_failed_at timestamptz NOT NULL DEFAULT now(),
            locked_until timestamptz,
            CONSTRAINT pk_login_failures PRIMARY KEY (account_key, client)
        )""")
    op.execute("CREATE INDEX ix_login_failures_last_failed_at ON login_failures (last_failed_at)")
    op.drop_column("users", "failed_logins")
    op.drop_column("users", "locked_until")
    # the owner's unlock code is a third purpose of one-time codes
    op.drop_constraint(op.f("ck_verification_codes_purpose"), "verification_codes", type_="check")
    op.create_check_constraint(op.f("ck_verification_codes_purpose"), "verification_codes",
                               "purpose IN ('register', 'reset_password', 'unlock')")


def downgrade() -> None:
    op.execute("DELETE FROM verification_codes WHERE purpose = 'unlock'")
    op.drop_constraint(op.f("ck_verification_codes_purpose"), "verification_codes", type_="check")
    op.create_check_constraint(op.f("ck_verification_codes_purpose"), "verification_codes",
                               "purpose IN ('register', 'reset_password')")
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("failed_logins", sa.SmallInteger(), server_default="0", nullable=False))
    op.execute("DROP TABLE IF EXISTS login_failures")

"""search: a stored lower-cased search text with its trigram index (ascii queries by LIKE, not ILIKE)

Revision ID: 0305
Revises: 0304
Create Date: 2026-12-06 10:00:00

A query with cased letters (pinyin ``changlong``, initials ``xxcd``, brands in Latin letters) was
matched by ``t ILIKE '%q%'`` on ``station_text``: PostgreSQL lower-cases every candidate's whole
search text (about 500 bytes) before comparing, 136–257 ms for ``xxcd`` at 250,000 stations where
the same pattern by LIKE took 21–96 ms (issue 18, bench/README.md). In a UTF-8 database ILIKE *is*
``lower(t) LIKE lower(pattern)`` (PostgreSQL's ``Generic_Text_IC_like``), so ``tl``, the search
text lower-cased once when it is stored, matched by ``LIKE lower(pattern)``, finds exactly the same
rows. ``tl`` is a generated column of ``station_text``: the triggers that keep ``station_text`` in
step with ``stations`` (migration 0302) keep it too, with no change to their functions. Queries
without cased letters (Chinese, digits) keep reading ``t`` and its trigram and bigram indexes.
"""
from __future__ import annotations

from alembic import op

revision = "0305"
down_revision = "0304"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE station_text ADD COLUMN tl text GENERATED ALWAYS AS (lower(t)) STORED")
    op.execute("ALTER TABLE station_text ALTER COLUMN tl SET STORAGE EXTERNAL")
    op.execute("CREATE INDEX ix_station_text_tl_trgm ON station_text USING gin (tl gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_station_text_tl_trgm")
    op.execute("ALTER TABLE station_text DROP COLUMN IF EXISTS tl")

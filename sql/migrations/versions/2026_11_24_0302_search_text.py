"""search: station_text, an uncompressed copy of the search text of visible stations

Revision ID: 0302
Revises: 0301
Create Date: 2026-11-24 19:00:00

Measured on 250,000 generated stations: ``stations`` rows are about 1.6 kB, so PostgreSQL
compresses ``search_text`` in place, and a scan that cannot use the trigram index (1–2 character
Chinese queries) spent 540 ms decompressing it; ``similarity()`` over the whole search text cost
another 7–14 µs a match, over the name alone about 1 µs. ``station_text`` keeps, for visible
stations only and kept in step by a trigger like ``station_search``: ``t`` the search text
(stored uncompressed, trigram indexed), ``n`` the name and ``p`` its pinyin and initials (what
relevance is ranked on: ``n`` for Chinese queries, ``p`` for ascii ones).
"""
from __future__ import annotations

from alembic import op

revision = "0302"
down_revision = "0301"
branch_labels = None
depends_on = None

SYNC_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_text_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM station_text WHERE id = OLD.id;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.id <> NEW.id THEN
        DELETE FROM station_text WHERE id = OLD.id;
    END IF;
    IF NEW.feed_state = 'active' AND NEW.interconnected AND NEW.geom IS NOT NULL THEN
        INSERT INTO station_text (id, t, n, p)
        VALUES (NEW.id, coalesce(NEW.search_text, NEW.name), NEW.name,
                concat_ws(' ', NEW.name_pinyin, NEW.name_initials))
        ON CONFLICT (id) DO UPDATE SET t = EXCLUDED.t, n = EXCLUDED.n, p = EXCLUDED.p;
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM station_text WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
"""

TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_search_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE station_search, station_text;
    RETURN NULL;
END $$;
"""

_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in (
    "id", "search_text", "name", "name_pinyin", "name_initials", "feed_state", "interconnected", "geom"))


def upgrade() -> None:
    op.execute("""
        CREATE TABLE station_text (
            id bigint NOT NULL,
            t text NOT NULL,
            n text NOT NULL,
            p text NOT NULL,
            CONSTRAINT pk_station_text PRIMARY KEY (id)
        )""")
    op.execute("ALTER TABLE station_text ALTER COLUMN t SET STORAGE EXTERNAL")
    op.execute(SYNC_FUNCTION)
    op.execute(TRUNCATE_FUNCTION)
    op.execute("CREATE TRIGGER trg_station_text_ins_del AFTER INSERT OR DELETE ON stations "
               "FOR EACH ROW EXECUTE FUNCTION zh_station_text_sync()")
    op.execute(f"CREATE TRIGGER trg_station_text_upd AFTER UPDATE ON stations "
               f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION zh_station_text_sync()")
    op.execute("""
        INSERT INTO station_text (id, t, n, p)
        SELECT id, coalesce(search_text, name), name, concat_ws(' ', name_pinyin, name_initials) FROM stations
        WHERE feed_state = 'active' AND interconnected AND geom IS NOT NULL""")
    op.execute("CREATE INDEX ix_station_text_t_trgm ON station_text USING gin (t gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS trg_station_text_upd ON stations")
    op.execute("DROP TRIGGER IF EXISTS trg_station_text_ins_del ON stations")
    op.execute("DROP FUNCTION IF EXISTS zh_station_text_sync()")
    # 0300's definition, character for character (read from 0300, as 0301 and 0303 read theirs)
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("search_0300", Path(__file__).with_name("2026_11_24_0300_search.py"))
    prev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prev)  # type: ignore[union-attr]
    op.execute(prev.TRUNCATE_FUNCTION)
    op.execute("DROP TABLE IF EXISTS station_text")

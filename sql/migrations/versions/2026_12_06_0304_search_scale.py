"""search at national scale: facet counts from a cube of the six codes; 2-character Chinese queries indexed

Revision ID: 0304
Revises: 0303
Create Date: 2026-12-06 09:00:00

Country-wide facet counts (no bbox, no text, no other filter than the six dimensions) grouped every
row of ``station_search``: 66 ms at 250,000 stations, growing with the country. The counts only
depend on the six codes (``op``, ``district``, ``st``, ``scale``, ``ft``, ``pay``), so this table
keeps one row per combination with its number of stations, kept exact by row triggers on
``station_search`` (a status push changes ``free``, not a code: the update trigger's WHEN clause
skips it). A few thousand rows whatever the number of stations; rows whose count drops to 0 stay
(the search skips them). ``services.search.service`` reads it instead of ``station_search`` when
nothing but dimensions is asked.

A 2-character Chinese query (长隆, 拱北: most place names) has no trigram, so ``LIKE '%长隆%'`` on
``station_text`` could not use the trigram index and read the whole table (a parallel scan of
every visible station). ``zh_bigrams(t)`` is the set of 2-character substrings of the search text
holding a non-ASCII character (about 18 a station); a GIN index on it finds the rows holding the
query, and the LIKE rechecks them (the same rows as before: a text contains a 2-character string
exactly when that string is one of its 2-character substrings).
"""
from __future__ import annotations

from alembic import op

revision = "0304"
down_revision = "0303"
branch_labels = None
depends_on = None

SYNC_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_facet_cube_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        INSERT INTO station_facet_cube AS c (op, district, st, scale, ft, pay, n)
        VALUES (OLD.op, OLD.district, OLD.st, OLD.scale, OLD.ft, OLD.pay, -1)
        ON CONFLICT (op, district, st, scale, ft, pay) DO UPDATE SET n = c.n - 1;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO station_facet_cube AS c (op, district, st, scale, ft, pay, n)
        VALUES (NEW.op, NEW.district, NEW.st, NEW.scale, NEW.ft, NEW.pay, 1)
        ON CONFLICT (op, district, st, scale, ft, pay) DO UPDATE SET n = c.n + 1;
    END IF;
    RETURN NULL;
END $$;
"""

BIGRAMS_FUNCTION = r"""
CREATE OR REPLACE FUNCTION zh_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (SELECT substr(t, i, 2) AS g FROM generate_series(1, length(t) - 1) i) x
    WHERE g ~ '[^\x01-\x7f]'
$$;
"""

TRUNCATE_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_facet_cube_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE station_facet_cube;
    RETURN NULL;
END $$;
"""

_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in ("op", "district", "st", "scale", "ft", "pay"))

TRIGGERS = f"""
CREATE TRIGGER trg_station_facet_cube_ins_del AFTER INSERT OR DELETE ON station_search
    FOR EACH ROW EXECUTE FUNCTION zh_station_facet_cube_sync();
CREATE TRIGGER trg_station_facet_cube_upd AFTER UPDATE ON station_search
    FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION zh_station_facet_cube_sync();
CREATE TRIGGER trg_station_facet_cube_trunc AFTER TRUNCATE ON station_search
    FOR EACH STATEMENT EXECUTE FUNCTION zh_station_facet_cube_truncate();
"""


def upgrade() -> None:
    op.execute("""
        CREATE TABLE station_facet_cube (
            op integer NOT NULL,
            district integer,
            st smallint NOT NULL,
            scale smallint NOT NULL,
            ft smallint NOT NULL,
            pay smallint NOT NULL,
            n integer NOT NULL,
            CONSTRAINT uq_station_facet_cube UNIQUE NULLS NOT DISTINCT (op, district, st, scale, ft, pay)
        )""")
    op.execute(SYNC_FUNCTION)
    op.execute(TRUNCATE_FUNCTION)
    op.execute("LOCK TABLE station_search IN SHARE MODE")  # no write between the backfill and the triggers
    op.execute("""
        INSERT INTO station_facet_cube (op, district, st, scale, ft, pay, n)
        SELECT op, district, st, scale, ft, pay, count(*) FROM station_search GROUP BY 1, 2, 3, 4, 5, 6""")
    op.execute(TRIGGERS)
    op.execute(BIGRAMS_FUNCTION)
    op.execute("CREATE INDEX ix_station_text_bigrams ON station_text USING gin (zh_bigrams(t))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_station_text_bigrams")
    op.execute("DROP FUNCTION IF EXISTS zh_bigrams(text)")
    op.execute("DROP TRIGGER IF EXISTS trg_station_facet_cube_trunc ON station_search")
    op.execute("DROP TRIGGER IF EXISTS trg_station_facet_cube_upd ON station_search")
    op.execute("DROP TRIGGER IF EXISTS trg_station_facet_cube_ins_del ON station_search")
    op.execute("DROP FUNCTION IF EXISTS zh_station_facet_cube_truncate()")
    op.execute("DROP FUNCTION IF EXISTS zh_station_facet_cube_sync()")
    op.execute("DROP TABLE IF EXISTS station_facet_cube")

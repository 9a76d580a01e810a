"""search: the text table carries the stations' facet codes, so a name search reads one table

Revision ID: 0307
Revises: 0306
Create Date: 2026-12-06 16:20:00

A name search takes its first 2,001 text matches from ``station_text`` and, for the facets, each
one's codes from ``station_search``: 2,001 primary-key lookups, 7 ms of a 30 ms query at 1,000,000
stations once ``station_search`` is in spatial order (0306) rather than in the text table's order.
``station_text`` now carries the six dimension codes (operator, district, station type, scale,
facility types, payments), copied from ``station_search``: when a text row is written (the station
becomes visible, its text changes) and when a ``station_search`` row's codes change (trigger
``trg_station_search_text_codes``). A text query with no other filter than its dimensions reads
``station_text`` alone (``services.search.service``); the volatile columns (free, price, uptime,
position) stay in ``station_search`` only, so the status pushes never touch ``station_text``.
"""
from __future__ import annotations

from alembic import op

revision = "0307"
down_revision = "0306"
branch_labels = None
depends_on = None

CODES = ("op", "district", "st", "scale", "ft", "pay")

TEXT_FUNCTION = """
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
        -- the codes as station_search has them (its trigger on stations runs before this one)
        INSERT INTO station_text (id, t, n, p, op, district, st, scale, ft, pay)
        SELECT NEW.id, coalesce(NEW.search_text, NEW.name), NEW.name, concat_ws(' ', NEW.name_pinyin, NEW.name_initials),
               s.op, s.district, s.st, s.scale, s.ft, s.pay
        FROM (SELECT NEW.id AS id) k LEFT JOIN station_search s ON s.id = k.id
        ON CONFLICT (id) DO UPDATE SET t = EXCLUDED.t, n = EXCLUDED.n, p = EXCLUDED.p, op = EXCLUDED.op,
            district = EXCLUDED.district, st = EXCLUDED.st, scale = EXCLUDED.scale, ft = EXCLUDED.ft,
            pay = EXCLUDED.pay
        WHERE (station_text.t, station_text.n, station_text.p, station_text.op, station_text.district,
               station_text.st, station_text.scale, station_text.ft, station_text.pay)
              IS DISTINCT FROM (EXCLUDED.t, EXCLUDED.n, EXCLUDED.p, EXCLUDED.op, EXCLUDED.district, EXCLUDED.st,
                                EXCLUDED.scale, EXCLUDED.ft, EXCLUDED.pay);
    ELSIF TG_OP = 'UPDATE' THEN
        DELETE FROM station_text WHERE id = NEW.id;
    END IF;
    RETURN NULL;
END $$;
"""

CODES_FUNCTION = """
CREATE OR REPLACE FUNCTION zh_station_text_codes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE station_text t SET op = NEW.op, district = NEW.district, st = NEW.st, scale = NEW.scale, ft = NEW.ft,
                              pay = NEW.pay
    WHERE t.id = NEW.id
      AND (t.op, t.district, t.st, t.scale, t.ft, t.pay)
          IS DISTINCT FROM (NEW.op, NEW.district, NEW.st, NEW.scale, NEW.ft, NEW.pay);
    RETURN NULL;
END $$;
"""

_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in (*CODES, "id"))


def upgrade() -> None:
    op.execute("ALTER TABLE station_text ADD COLUMN op integer, ADD COLUMN district integer, "
               "ADD COLUMN st smallint, ADD COLUMN scale smallint, ADD COLUMN ft smallint, ADD COLUMN pay smallint")
    op.execute(TEXT_FUNCTION)
    op.execute(CODES_FUNCTION)
    op.execute("CREATE TRIGGER trg_station_search_text_codes_ins AFTER INSERT ON station_search "
               "FOR EACH ROW EXECUTE FUNCTION zh_station_text_codes()")
    op.execute(f"CREATE TRIGGER trg_station_search_text_codes_upd AFTER UPDATE ON station_search "
               f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION zh_station_text_codes()")
    # every row written again, as zh_station_text_sync writes it, into an emptied table (a rewrite in
    # place would keep each row's old version for as long as this transaction runs: twice the size),
    # in id order, without its GIN indexes, with room for the code updates to stay in their page
    op.execute("DROP INDEX ix_station_text_t_trgm, ix_station_text_tl_trgm, ix_station_text_bigrams")
    op.execute("ALTER TABLE station_text SET (fillfactor = 90)")
    op.execute("TRUNCATE station_text")
    op.execute("""
        INSERT INTO station_text (id, t, n, p, op, district, st, scale, ft, pay)
        SELECT st.id, coalesce(st.search_text, st.name), st.name, concat_ws(' ', st.name_pinyin, st.name_initials),
               s.op, s.district, s.st, s.scale, s.ft, s.pay
        FROM stations st LEFT JOIN station_search s ON s.id = st.id
        WHERE st.feed_state = 'active' AND st.interconnected AND st.geom IS NOT NULL
        ORDER BY st.id""")
    op.execute("SET LOCAL maintenance_work_mem = '512MB'")  # a GIN index built in fewer, larger runs
    op.execute("CREATE INDEX ix_station_text_t_trgm ON station_text USING gin (t gin_trgm_ops)")
    op.execute("CREATE INDEX ix_station_text_tl_trgm ON station_text USING gin (tl gin_trgm_ops)")
    op.execute("CREATE INDEX ix_station_text_bigrams ON station_text USING gin (zh_bigrams(t))")


def downgrade() -> None:
    import importlib.util
    from pathlib import Path

    op.execute("DROP TRIGGER IF EXISTS trg_station_search_text_codes_upd ON station_search")
    op.execute("DROP TRIGGER IF EXISTS trg_station_search_text_codes_ins ON station_search")
    op.execute("DROP FUNCTION IF EXISTS zh_station_text_codes()")
    spec = importlib.util.spec_from_file_location("m0303", Path(__file__).with_name("2026_11_24_0303_search_noop.py"))
    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(mod)  # type: ignore[union-attr]
    op.execute(mod.TEXT_FUNCTION)
    op.execute("ALTER TABLE station_text RESET (fillfactor)")
    op.execute("ALTER TABLE station_text DROP COLUMN op, DROP COLUMN district, DROP COLUMN st, DROP COLUMN scale, "
               "DROP COLUMN ft, DROP COLUMN pay")

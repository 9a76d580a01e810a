-- Search at national scale (migration 0304).
-- station_facet_cube: the visible stations counted by their six facet codes, kept exact by row
-- triggers on station_search; the search reads it for facet counts asked with dimensions only (no
-- bbox, text or other filter). Rows whose count drops to 0 stay.
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

CREATE OR REPLACE FUNCTION zh_station_facet_cube_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE station_facet_cube;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS trg_station_facet_cube_ins_del ON station_search;
DROP TRIGGER IF EXISTS trg_station_facet_cube_upd ON station_search;
DROP TRIGGER IF EXISTS trg_station_facet_cube_trunc ON station_search;
CREATE TRIGGER trg_station_facet_cube_ins_del AFTER INSERT OR DELETE ON station_search
    FOR EACH ROW EXECUTE FUNCTION zh_station_facet_cube_sync();
CREATE TRIGGER trg_station_facet_cube_upd AFTER UPDATE ON station_search
    FOR EACH ROW WHEN (OLD.op IS DISTINCT FROM NEW.op OR OLD.district IS DISTINCT FROM NEW.district OR OLD.st IS DISTINCT FROM NEW.st OR OLD.scale IS DISTINCT FROM NEW.scale OR OLD.ft IS DISTINCT FROM NEW.ft OR OLD.pay IS DISTINCT FROM NEW.pay) EXECUTE FUNCTION zh_station_facet_cube_sync();
CREATE TRIGGER trg_station_facet_cube_trunc AFTER TRUNCATE ON station_search
    FOR EACH STATEMENT EXECUTE FUNCTION zh_station_facet_cube_truncate();

-- zh_bigrams: the 2-character substrings of a text holding a non-ASCII character (the GIN index
-- ix_station_text_bigrams on station_text finds 2-character Chinese queries, which have no trigram).
CREATE OR REPLACE FUNCTION zh_bigrams(t text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (SELECT substr(t, i, 2) AS g FROM generate_series(1, length(t) - 1) i) x
    WHERE g ~ '[^\x01-\x7f]'
$$;

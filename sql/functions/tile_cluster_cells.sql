-- Per-cell station aggregates for the cluster zooms, kept exact by statement-level triggers on
-- stations, so a low-zoom tile reads a few dozen rows instead of aggregating every station in it
-- (national scale: 250,000 stations, a z5 tile over eastern China aggregates ~100,000 of them).
--
-- Grid: the same world-anchored grid as sql/queries/tile_clusters.sql with 8 cells per tile edge
-- (TileSettings.cluster_cell_px = 64 on 512-px tiles). Level 11 is computed from the point,
-- coarser levels by shifting the cell index (cells nest exactly). Only visible stations count
-- (feed_state = 'active' AND interconnected). Rows whose count drops to 0 are kept (and skipped by
-- the tile query); zh_tile_cells_rebuild() compacts.

-- The fold, written once: a delta (geom_3857, sign +1/-1, connectors_total, connectors_free, as
-- parallel arrays) added to every level at once, keys in order so concurrent writers cannot
-- deadlock. A plpgsql function with one static statement, so its plan is cached: a one-row status
-- update costs a fraction of a millisecond. Every trigger and the rebuild gather their delta and
-- call it once.
CREATE OR REPLACE FUNCTION zh_tile_cells_fold(geoms geometry[], signs integer[], totals integer[], frees integer[])
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    WITH b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM unnest(geoms, signs, totals, frees) AS d(g, sign, total, free)
    )
    INSERT INTO tile_cluster_cells AS c (z, cx, cy, point_count, connectors_total, connectors_free, sum_x, sum_y)
    SELECT lv.z, b.cx >> (11 - lv.z), b.cy >> (11 - lv.z),
           sum(b.sign), sum(b.sign * b.total), sum(b.sign * b.free), sum(b.sign * b.x), sum(b.sign * b.y)
    FROM b CROSS JOIN generate_series(0, 11) AS lv(z)
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (z, cx, cy) DO UPDATE SET
        point_count = c.point_count + EXCLUDED.point_count,
        connectors_total = c.connectors_total + EXCLUDED.connectors_total,
        connectors_free = c.connectors_free + EXCLUDED.connectors_free,
        sum_x = CASE WHEN c.point_count + EXCLUDED.point_count = 0 THEN 0 ELSE c.sum_x + EXCLUDED.sum_x END,
        sum_y = CASE WHEN c.point_count + EXCLUDED.point_count = 0 THEN 0 ELSE c.sum_y + EXCLUDED.sum_y END;
END
$fn$;

-- Inserts and deletes: the trigger names its transition table delta_rows and passes the sign.
CREATE OR REPLACE FUNCTION zh_tile_cells_rows() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM zh_tile_cells_fold(array_agg(geom_3857), array_agg(TG_ARGV[0]::integer), array_agg(connectors_total),
                               array_agg(connectors_free))
    FROM delta_rows WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION zh_tile_cells_upd() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    -- most updates (names, fees, timestamps) change nothing a cluster shows: leave at once
    PERFORM 1 FROM old_rows o JOIN new_rows n ON n.id = o.id
    WHERE (o.geom_3857, o.connectors_total, o.connectors_free, o.feed_state, o.interconnected)
          IS DISTINCT FROM (n.geom_3857, n.connectors_total, n.connectors_free, n.feed_state, n.interconnected)
    LIMIT 1;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    PERFORM zh_tile_cells_fold(array_agg(d.g), array_agg(d.sign), array_agg(d.total), array_agg(d.free))
    FROM (
        WITH changed AS (
            SELECT o.id FROM old_rows o JOIN new_rows n ON n.id = o.id
            WHERE (o.geom_3857, o.connectors_total, o.connectors_free, o.feed_state, o.interconnected)
                  IS DISTINCT FROM (n.geom_3857, n.connectors_total, n.connectors_free, n.feed_state, n.interconnected)
        )
        SELECT geom_3857, 1, connectors_total, connectors_free FROM new_rows JOIN changed USING (id) WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL
        UNION ALL
        SELECT geom_3857, -1, connectors_total, connectors_free FROM old_rows JOIN changed USING (id) WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL
    ) AS d(g, sign, total, free);
    RETURN NULL;
END
$fn$;

-- Recompute everything from stations (migration, repair, compaction); returns the number of cells.
CREATE OR REPLACE FUNCTION zh_tile_cells_rebuild() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
BEGIN
    TRUNCATE tile_cluster_cells;
    PERFORM zh_tile_cells_fold(array_agg(geom_3857), array_agg(1), array_agg(connectors_total), array_agg(connectors_free))
    FROM stations WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL;
    SELECT count(*) INTO n FROM tile_cluster_cells;
    RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION zh_tile_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    TRUNCATE tile_cluster_cells;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS trg_stations_tile_cells_ins ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_cells_upd ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_cells_del ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_cells_trunc ON stations;
CREATE TRIGGER trg_stations_tile_cells_ins AFTER INSERT ON stations
    REFERENCING NEW TABLE AS delta_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_rows('1');
CREATE TRIGGER trg_stations_tile_cells_upd AFTER UPDATE ON stations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_upd();
CREATE TRIGGER trg_stations_tile_cells_del AFTER DELETE ON stations
    REFERENCING OLD TABLE AS delta_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_rows('-1');
CREATE TRIGGER trg_stations_tile_cells_trunc AFTER TRUNCATE ON stations
    FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_truncate();

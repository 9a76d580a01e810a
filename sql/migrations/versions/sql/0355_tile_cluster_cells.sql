-- Per-cell station aggregates for the cluster zooms, kept exact from the stations' changes, so a
-- low-zoom tile reads a few dozen rows instead of aggregating every station in it (national scale:
-- 250,000 stations, a z5 tile over eastern China aggregates ~100,000 of them).
--
-- tile_cluster_cells: the same world-anchored grid as sql/queries/tile_clusters.sql with 8 cells per
-- tile edge (TileSettings.cluster_cell_px = 64 on 512-px tiles). Level 11 is computed from the point,
-- coarser levels by shifting the cell index (cells nest exactly). tile_filter_cells (migration 0353):
-- the same cells for levels 0-8, split by the values the low-selectivity tile filters test. Only
-- visible stations count (feed_state = 'active' AND interconnected). Rows whose count drops to 0 are
-- kept (and skipped by the tile queries); the rebuilds compact.
--
-- Folded at commit (migration 0355). A low-level cell is shared by every operator on that part of
-- the map (the level-0 cell by all of them), so a writer holds its row locks until it commits: when
-- the statement triggers folded at once, a full sync's chunk locked them at its first station insert
-- and held them through its piles and connectors, and six operators' syncs took turns (10 s of lock
-- waits in a 10 s sync). Now the statement triggers on stations only append the transaction's delta
-- (each changed visible row's old values with sign -1, new values with +1) to tile_cell_deltas and
-- mark the transaction in tile_cell_flushes; the mark's deferred constraint trigger folds the delta
-- into both tables once, as the transaction commits, so the locks are held only for that fold and the
-- commit. Both are UNLOGGED: a delta lives only inside its own transaction (a crash loses nothing
-- committed), and nothing reads them on a replica.

-- The cluster fold, written once: a delta (geom_3857, sign +1/-1, connectors_total, connectors_free,
-- as parallel arrays) added to every level at once, keys in order so concurrent writers cannot
-- deadlock. A plpgsql function with one static statement, so its plan is cached.
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

-- The filter-cell fold of the delta of transaction p_xid (levels 0-8, tiles.render.FILTER_CELL_MAX_Z),
-- keys in order.
CREATE OR REPLACE FUNCTION zh_tile_filter_cells_fold(p_xid bigint) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    WITH b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, d.station_type, coalesce(d.scale, '') AS scale, d.facility_types, d.payments,
               d.free > 0 AS available, coalesce(d.max_power_kw, -1) AS max_power_kw,
               coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM tile_cell_deltas d
        WHERE d.xid = p_xid
    )
    INSERT INTO tile_filter_cells AS c (z, cx, cy, station_type, scale, facility_types, payments, available,
                                        max_power_kw, point_count, connectors_total, connectors_free, sum_x, sum_y)
    SELECT lv.z, b.cx >> (11 - lv.z), b.cy >> (11 - lv.z), b.station_type, b.scale, b.facility_types, b.payments,
           b.available, b.max_power_kw,
           sum(b.sign), sum(b.sign * b.total), sum(b.sign * b.free), sum(b.sign * b.x), sum(b.sign * b.y)
    FROM b CROSS JOIN generate_series(0, 8) AS lv(z)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9
    ON CONFLICT (z, cx, cy, station_type, scale, facility_types, payments, available, max_power_kw) DO UPDATE SET
        point_count = c.point_count + EXCLUDED.point_count,
        connectors_total = c.connectors_total + EXCLUDED.connectors_total,
        connectors_free = c.connectors_free + EXCLUDED.connectors_free,
        sum_x = CASE WHEN c.point_count + EXCLUDED.point_count = 0 THEN 0 ELSE c.sum_x + EXCLUDED.sum_x END,
        sum_y = CASE WHEN c.point_count + EXCLUDED.point_count = 0 THEN 0 ELSE c.sum_y + EXCLUDED.sum_y END;
END
$fn$;

-- Fold the delta of transaction p_xid into both tables and forget it.
CREATE OR REPLACE FUNCTION zh_tile_cells_flush(p_xid bigint) RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM zh_tile_cells_fold(array_agg(d.g), array_agg(d.sign::integer), array_agg(d.total), array_agg(d.free))
    FROM tile_cell_deltas d WHERE d.xid = p_xid;
    PERFORM zh_tile_filter_cells_fold(p_xid);
    DELETE FROM tile_cell_deltas WHERE xid = p_xid;
    DELETE FROM tile_cell_flushes WHERE xid = p_xid;
END
$fn$;

-- The deferred constraint trigger of a transaction's mark: its fold, as it commits.
CREATE OR REPLACE FUNCTION zh_tile_cells_at_commit() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM zh_tile_cells_flush(NEW.xid);
    RETURN NULL;
END
$fn$;

-- Inserts and deletes: the trigger names its transition table delta_rows and passes the sign.
CREATE OR REPLACE FUNCTION zh_tile_cells_rows() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO tile_cell_deltas (sign, g, station_type, scale, facility_types, payments, max_power_kw, total, free)
    SELECT TG_ARGV[0]::smallint, geom_3857, station_type, scale, facility_types, payments, max_power_kw,
           connectors_total, connectors_free
    FROM delta_rows WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL;
    IF FOUND THEN
        INSERT INTO tile_cell_flushes (xid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$fn$;

-- Updates: each row that changed anything either table keys or sums on gives its old values (-1) and
-- its new values (+1); most updates (names, fees, timestamps) give nothing.
CREATE OR REPLACE FUNCTION zh_tile_cells_upd() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO tile_cell_deltas (sign, g, station_type, scale, facility_types, payments, max_power_kw, total, free)
    SELECT v.sign, v.g, v.station_type, v.scale, v.facility_types, v.payments, v.max_power_kw, v.total, v.free
    FROM old_rows o JOIN new_rows n ON n.id = o.id
    CROSS JOIN LATERAL (VALUES
        (-1::smallint, o.geom_3857, o.station_type, o.scale, o.facility_types, o.payments, o.max_power_kw,
         o.connectors_total, o.connectors_free,
         o.feed_state = 'active' AND o.interconnected AND o.geom_3857 IS NOT NULL),
        (1::smallint, n.geom_3857, n.station_type, n.scale, n.facility_types, n.payments, n.max_power_kw,
         n.connectors_total, n.connectors_free,
         n.feed_state = 'active' AND n.interconnected AND n.geom_3857 IS NOT NULL)
    ) AS v(sign, g, station_type, scale, facility_types, payments, max_power_kw, total, free, visible)
    WHERE (o.geom_3857, o.connectors_total, o.connectors_free, o.feed_state, o.interconnected, o.station_type,
           o.scale, o.facility_types, o.payments, o.max_power_kw)
          IS DISTINCT FROM
          (n.geom_3857, n.connectors_total, n.connectors_free, n.feed_state, n.interconnected, n.station_type,
           n.scale, n.facility_types, n.payments, n.max_power_kw)
      AND v.visible;
    IF FOUND THEN
        INSERT INTO tile_cell_flushes (xid) VALUES (txid_current()) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$fn$;

-- Recompute everything from stations (migration, repair, compaction); returns the number of cells.
-- This transaction's own delta is folded first (into both tables), so it is not counted twice.
CREATE OR REPLACE FUNCTION zh_tile_cells_rebuild() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
BEGIN
    PERFORM zh_tile_cells_flush(txid_current());
    TRUNCATE tile_cluster_cells;
    PERFORM zh_tile_cells_fold(array_agg(geom_3857), array_agg(1), array_agg(connectors_total), array_agg(connectors_free))
    FROM stations WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL;
    SELECT count(*) INTO n FROM tile_cluster_cells;
    RETURN n;
END
$fn$;

CREATE OR REPLACE FUNCTION zh_tile_filter_cells_rebuild() RETURNS bigint LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
    v_xid bigint := txid_current();
BEGIN
    PERFORM zh_tile_cells_flush(v_xid);
    TRUNCATE tile_filter_cells;
    INSERT INTO tile_cell_deltas (xid, sign, g, station_type, scale, facility_types, payments, max_power_kw, total,
                                  free)
    SELECT v_xid, 1, geom_3857, station_type, scale, facility_types, payments, max_power_kw, connectors_total,
           connectors_free
    FROM stations WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL;
    PERFORM zh_tile_filter_cells_fold(v_xid);
    DELETE FROM tile_cell_deltas WHERE xid = v_xid;
    SELECT count(*) INTO n FROM tile_filter_cells;
    RETURN n;
END
$fn$;

-- TRUNCATE stations: the cells empty, and the delta gathered so far describes stations now gone.
CREATE OR REPLACE FUNCTION zh_tile_cells_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM tile_cell_deltas WHERE xid = txid_current();
    TRUNCATE tile_cluster_cells;
    RETURN NULL;
END
$fn$;

DROP TRIGGER IF EXISTS trg_stations_tile_cells_ins ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_cells_upd ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_cells_del ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_cells_trunc ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_filter_cells_ins ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_filter_cells_upd ON stations;
DROP TRIGGER IF EXISTS trg_stations_tile_filter_cells_del ON stations;
CREATE TRIGGER trg_stations_tile_cells_ins AFTER INSERT ON stations
    REFERENCING NEW TABLE AS delta_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_rows('1');
CREATE TRIGGER trg_stations_tile_cells_upd AFTER UPDATE ON stations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_upd();
CREATE TRIGGER trg_stations_tile_cells_del AFTER DELETE ON stations
    REFERENCING OLD TABLE AS delta_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_rows('-1');
CREATE TRIGGER trg_stations_tile_cells_trunc AFTER TRUNCATE ON stations
    FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_cells_truncate();
DROP TRIGGER IF EXISTS trg_tile_cell_flushes_at_commit ON tile_cell_flushes;
CREATE CONSTRAINT TRIGGER trg_tile_cell_flushes_at_commit AFTER INSERT ON tile_cell_flushes
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION zh_tile_cells_at_commit();

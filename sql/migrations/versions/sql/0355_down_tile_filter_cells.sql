-- Migration 0355's downgrade: the per-statement filter-cell triggers of 0353, as 0353 made them
-- (the function definitions below are those 0353 created, read back from a database at 0354).
CREATE OR REPLACE FUNCTION public.zh_tile_filter_cells_ins()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
            
    WITH d AS (
        SELECT geom_3857 AS g, 1 AS sign, station_type, scale, facility_types, payments, connectors_free > 0 AS available, max_power_kw, connectors_total AS total, connectors_free AS free FROM new_rows WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL
    ), b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, d.station_type, coalesce(d.scale, '') AS scale, d.facility_types, d.payments,
               d.available, coalesce(d.max_power_kw, -1) AS max_power_kw,
               coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM d
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

            RETURN NULL;
        END
        $function$
;

CREATE OR REPLACE FUNCTION public.zh_tile_filter_cells_upd()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
            -- most updates (names, fees, timestamps) change nothing here: leave at once
            PERFORM 1 FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE (o.geom_3857, o.connectors_total, o.connectors_free, o.feed_state, o.interconnected, o.station_type, o.scale, o.facility_types, o.payments, o.max_power_kw) IS DISTINCT FROM (n.geom_3857, n.connectors_total, n.connectors_free, n.feed_state, n.interconnected, n.station_type, n.scale, n.facility_types, n.payments, n.max_power_kw) LIMIT 1;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            
    WITH d AS (
        SELECT v.g, v.sign, v.station_type, v.scale, v.facility_types, v.payments,
                              v.free > 0 AS available, v.max_power_kw, v.total, v.free
                       FROM old_rows o JOIN new_rows n ON n.id = o.id
                       CROSS JOIN LATERAL (VALUES (o.geom_3857, o.station_type, o.scale, o.facility_types, o.payments, o.max_power_kw, o.connectors_total, o.connectors_free, -1, o.feed_state = 'active' AND o.interconnected AND o.geom_3857 IS NOT NULL),
                                                  (n.geom_3857, n.station_type, n.scale, n.facility_types, n.payments, n.max_power_kw, n.connectors_total, n.connectors_free, 1, n.feed_state = 'active' AND n.interconnected AND n.geom_3857 IS NOT NULL))
                           AS v(g, station_type, scale, facility_types, payments, max_power_kw, total, free,
                                sign, visible)
                       WHERE (o.geom_3857, o.connectors_total, o.connectors_free, o.feed_state, o.interconnected, o.station_type, o.scale, o.facility_types, o.payments, o.max_power_kw) IS DISTINCT FROM (n.geom_3857, n.connectors_total, n.connectors_free, n.feed_state, n.interconnected, n.station_type, n.scale, n.facility_types, n.payments, n.max_power_kw) AND v.visible
    ), b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, d.station_type, coalesce(d.scale, '') AS scale, d.facility_types, d.payments,
               d.available, coalesce(d.max_power_kw, -1) AS max_power_kw,
               coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM d
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

            RETURN NULL;
        END
        $function$
;

CREATE OR REPLACE FUNCTION public.zh_tile_filter_cells_del()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
        BEGIN
            
    WITH d AS (
        SELECT geom_3857 AS g, -1 AS sign, station_type, scale, facility_types, payments, connectors_free > 0 AS available, max_power_kw, connectors_total AS total, connectors_free AS free FROM old_rows WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL
    ), b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, d.station_type, coalesce(d.scale, '') AS scale, d.facility_types, d.payments,
               d.available, coalesce(d.max_power_kw, -1) AS max_power_kw,
               coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM d
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

            RETURN NULL;
        END
        $function$
;
CREATE OR REPLACE FUNCTION public.zh_tile_filter_cells_rebuild()
 RETURNS bigint
 LANGUAGE plpgsql
AS $function$
        DECLARE
            n bigint;
        BEGIN
            TRUNCATE tile_filter_cells;
            
    WITH d AS (
        SELECT geom_3857 AS g, 1 AS sign, station_type, scale, facility_types, payments, connectors_free > 0 AS available, max_power_kw, connectors_total AS total, connectors_free AS free FROM stations WHERE feed_state = 'active' AND interconnected AND geom_3857 IS NOT NULL
    ), b AS (
        SELECT floor((ST_X(d.g) + 20037508.342789244) / (40075016.685578488 / 16384))::int AS cx,
               floor((20037508.342789244 - ST_Y(d.g)) / (40075016.685578488 / 16384))::int AS cy,
               d.sign, d.station_type, coalesce(d.scale, '') AS scale, d.facility_types, d.payments,
               d.available, coalesce(d.max_power_kw, -1) AS max_power_kw,
               coalesce(d.total, 0) AS total, coalesce(d.free, 0) AS free, ST_X(d.g) AS x, ST_Y(d.g) AS y
        FROM d
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

            SELECT count(*) INTO n FROM tile_filter_cells;
            RETURN n;
        END
        $function$
;

CREATE TRIGGER trg_stations_tile_filter_cells_ins AFTER INSERT ON stations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_ins();
CREATE TRIGGER trg_stations_tile_filter_cells_upd AFTER UPDATE ON stations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_upd();
CREATE TRIGGER trg_stations_tile_filter_cells_del AFTER DELETE ON stations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION zh_tile_filter_cells_del();

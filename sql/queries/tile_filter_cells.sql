-- Filtered clusters from the per-facet cells (migration 0353, table tile_filter_cells): used for
-- the cluster zooms up to tiles.render.FILTER_CELL_MAX_Z when every predicate of the filter is a
-- function of the table's key (station type, scale, facility types, payments, available,
-- min_power). A GROUP BY cell over the matching rows of the tile's 8 x 8 cells: same grid, ids,
-- counts and positions (members' mean) as tile_clusters.sql with the same filter.
-- Filled in by tiles.render: {{where}} the predicates over c. Bind parameters: z, x, y, the filter's.
WITH b AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env
), cells AS (
    SELECT c.cx, c.cy, sum(c.point_count)::int AS point_count,
           sum(c.connectors_total)::int AS connectors_total, sum(c.connectors_free)::int AS connectors_free,
           sum(c.sum_x) AS sx, sum(c.sum_y) AS sy
    FROM tile_filter_cells c
    WHERE c.z = %(z)s AND c.cx BETWEEN %(x)s * 8 AND %(x)s * 8 + 7 AND c.cy BETWEEN %(y)s * 8 AND %(y)s * 8 + 7
      AND c.point_count > 0 AND {{where}}
    GROUP BY c.cx, c.cy
)
SELECT ST_AsMVT(t, 'stations', 4096, 'geom', 'id')
FROM (
    SELECT c.cx::bigint * 4294967296 + c.cy AS id, c.point_count, c.connectors_total, c.connectors_free,
           ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.sx / c.point_count, c.sy / c.point_count), 3857),
                        b.env, 4096, 64, true) AS geom
    FROM cells c CROSS JOIN b
    WHERE c.point_count > 0
) t
WHERE t.geom IS NOT NULL

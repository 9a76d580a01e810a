-- Clusters from the precomputed cells (sql/functions/tile_cluster_cells.sql): used for the cluster
-- zooms when the request has no filter and no datum shift; same grid, ids and positions as
-- tile_clusters.sql. Bind parameters: z, x, y.
WITH b AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env
)
SELECT ST_AsMVT(t, 'stations', 4096, 'geom', 'id')
FROM (
    SELECT c.cx::bigint * 4294967296 + c.cy AS id, c.point_count, c.connectors_total::int AS connectors_total,
           c.connectors_free::int AS connectors_free,
           ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.sum_x / c.point_count, c.sum_y / c.point_count), 3857),
                        b.env, 4096, 64, true) AS geom
    FROM tile_cluster_cells c CROSS JOIN b
    WHERE c.z = %(z)s AND (c.cx >> 3) = %(x)s AND (c.cy >> 3) = %(y)s AND c.point_count > 0
) t
WHERE t.geom IS NOT NULL

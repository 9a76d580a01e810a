-- Clusters for zooms below TileSettings.cluster_below_zoom: a grid anchored to the world (not to
-- the tile), cell = %(cell)s metres of Web Mercator, a whole number of cells per tile, so every
-- cell lies in exactly one tile and neighbouring tiles agree; a cluster sits at its members' mean
-- and its id is the cell key (stable while panning). Placeholders as in tile_stations.sql.
WITH b AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env
), pts AS (
    SELECT {{geom}} AS g, s.connectors_total, s.connectors_free
    FROM stations s, b
    WHERE {{prefilter}} AND {{where}}
), cells AS (
    SELECT floor((ST_X(g) + 20037508.342789244) / %(cell)s)::bigint AS cx,
           floor((20037508.342789244 - ST_Y(g)) / %(cell)s)::bigint AS cy,
           count(*)::int AS point_count,
           sum(connectors_total)::int AS connectors_total,
           sum(connectors_free)::int AS connectors_free,
           avg(ST_X(g)) AS mx, avg(ST_Y(g)) AS my
    FROM pts
    GROUP BY 1, 2
)
SELECT ST_AsMVT(t, 'stations', 4096, 'geom', 'id')
FROM (
    SELECT c.cx * 4294967296 + c.cy AS id, c.point_count, c.connectors_total, c.connectors_free,
           ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.mx, c.my), 3857), b.env, 4096, 64, true) AS geom
    FROM cells c CROSS JOIN b
) t
WHERE t.geom IS NOT NULL

-- One station per feature, for zooms at or above TileSettings.cluster_below_zoom. price_now is the
-- price per kWh now (yuan, a number; absent when unknown), kept current by services.prices.store.
-- Filled in by tiles.render: {{geom}} the 3857 position (s.geom_3857, or the GCJ-02-shifted
-- point), {{prefilter}} the GiST-indexed envelope test, {{where}} StationFilter.where_sql().
-- Bind parameters: z, x, y, margin (buffer as a fraction of the tile), limit, and the filter's.
WITH b AS (
    SELECT ST_TileEnvelope(%(z)s, %(x)s, %(y)s) AS env,
           ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s) AS benv
), pts AS (
    SELECT s.id, s.name, s.operator_id, s.station_type, s.facility_types, s.max_power_kw,
           s.connectors_total, s.connectors_free, s.availability, s.price_now, {{geom}} AS g
    FROM stations s, b
    WHERE {{prefilter}} AND {{where}}
    LIMIT %(limit)s
)
SELECT ST_AsMVT(t, 'stations', 4096, 'geom', 'id')
FROM (
    SELECT p.id, p.name, p.operator_id AS operator, coalesce(o.short_name, o.name) AS operator_name,
           p.station_type, array_to_string(p.facility_types, ',') AS facility_types,
           p.max_power_kw::float8 AS max_power_kw, p.connectors_total, p.connectors_free,
           p.availability, p.availability AS status, p.price_now::float8 AS price_now,
           ST_AsMVTGeom(p.g, b.env, 4096, 64, true) AS geom
    FROM pts p
    CROSS JOIN b
    LEFT JOIN operators o ON o.operator_id = p.operator_id
) t
WHERE t.geom IS NOT NULL

-- The districts tile: three MVT layers in one bytea.
--   districts        polygons (adcode, name, name_en, city_adcode)
--   district_labels  label points (same properties)
--   cities           the city outline: districts of a city merged in tile coordinates
-- dx/dy (3857 units) translate everything; the tile server passes the GCJ-02 offset at the tile
-- centre for crs=gcj02 (boundaries are not point data: a per-tile translation is within a few
-- metres of shifting every vertex, and costs nothing).
CREATE OR REPLACE FUNCTION tile_districts(z integer, x integer, y integer,
                                          dx float8 DEFAULT 0, dy float8 DEFAULT 0)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
WITH b AS (
    SELECT ST_TileEnvelope(z, x, y) AS env,
           ST_Transform(ST_Translate(ST_TileEnvelope(z, x, y, margin => 64.0 / 4096), -dx, -dy), 4326) AS qenv
), polys AS (
    SELECT d.adcode AS fid, d.adcode, d.name, d.name_en, d.city_adcode,
           ST_AsMVTGeom(ST_Translate(ST_Transform(d.geom, 3857), dx, dy), b.env, 4096, 64, true) AS geom
    FROM districts d, b
    WHERE d.geom && b.qenv
), labels AS (
    SELECT d.adcode AS fid, d.adcode, d.name, d.name_en, d.city_adcode,
           ST_AsMVTGeom(ST_Translate(ST_Transform(d.label_point, 3857), dx, dy), b.env, 4096, 64, true) AS geom
    FROM districts d, b
    WHERE d.label_point && b.qenv
), cities AS (
    SELECT city_adcode AS fid, city_adcode, ST_Union(geom) AS geom
    FROM polys WHERE geom IS NOT NULL
    GROUP BY city_adcode
)
SELECT coalesce((SELECT ST_AsMVT(p, 'districts', 4096, 'geom', 'fid') FROM polys p WHERE p.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(l, 'district_labels', 4096, 'geom', 'fid') FROM labels l WHERE l.geom IS NOT NULL), ''::bytea)
    || coalesce((SELECT ST_AsMVT(c, 'cities', 4096, 'geom', 'fid') FROM cities c), ''::bytea)
$fn$;

-- WGS84 -> GCJ-02 for points, in SQL, so tiles asked with crs=gcj02 shift positions before they
-- are projected (PostGIS has no GCJ-02 CRS). Same published formula as geo/gcj02.py (Krasovsky
-- ellipsoid, the rough "out of China" rectangle leaves points unchanged); tested against it.
CREATE OR REPLACE FUNCTION zh_wgs84_to_gcj02(g geometry) RETURNS geometry
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
    lng float8 := ST_X(g);
    lat float8 := ST_Y(g);
    x float8 := lng - 105.0;
    y float8 := lat - 35.0;
    a CONSTANT float8 := 6378245.0;
    ee CONSTANT float8 := 0.00669342162296594323;
    common float8;
    dlat float8;
    dlng float8;
    radlat float8;
    magic float8;
    sqrtmagic float8;
BEGIN
    IF lng < 72.004 OR lng > 137.8347 OR lat < 0.8293 OR lat > 55.8271 THEN
        RETURN g;
    END IF;
    common := (20.0 * sin(6.0 * x * pi()) + 20.0 * sin(2.0 * x * pi())) * 2.0 / 3.0;
    dlat := -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(abs(x)) + common
            + (20.0 * sin(y * pi()) + 40.0 * sin(y / 3.0 * pi())) * 2.0 / 3.0
            + (160.0 * sin(y / 12.0 * pi()) + 320.0 * sin(y * pi() / 30.0)) * 2.0 / 3.0;
    dlng := 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(abs(x)) + common
            + (20.0 * sin(x * pi()) + 40.0 * sin(x / 3.0 * pi())) * 2.0 / 3.0
            + (150.0 * sin(x / 12.0 * pi()) + 300.0 * sin(x / 30.0 * pi())) * 2.0 / 3.0;
    radlat := lat / 180.0 * pi();
    magic := 1.0 - ee * sin(radlat) * sin(radlat);
    sqrtmagic := sqrt(magic);
    dlat := (dlat * 180.0) / ((a * (1.0 - ee)) / (magic * sqrtmagic) * pi());
    dlng := (dlng * 180.0) / (a / sqrtmagic * cos(radlat) * pi());
    RETURN ST_SetSRID(ST_MakePoint(lng + dlng, lat + dlat), ST_SRID(g));
END
$fn$;

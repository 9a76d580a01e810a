"""The foundation against the real database: migrations, districts, trigram index, health."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import create_engine, text

from services import migrate
from services.geography import locate
from tests.conftest import create_database, drop_database


def test_migrations_downgrade_to_base_and_upgrade_again() -> None:
    name = f"zhcharge_mig_{secrets.token_hex(4)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        heads = migrate.head_revisions(engine)
        assert migrate.current_revisions(engine) == heads
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('stations')")).scalar() == "stations"
        migrate.downgrade(engine, "base")
        assert migrate.current_revisions(engine) == []
        with engine.connect() as conn:
            tables = conn.execute(text(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename NOT IN ('spatial_ref_sys', 'alembic_version')")).scalar()
        assert tables == 0
        migrate.upgrade(engine)
        assert migrate.current_revisions(engine) == heads
    finally:
        engine.dispose()
        drop_database(name)


def test_database_is_utf8_with_a_utf8_ctype(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        assert conn.execute(text("SHOW server_encoding")).scalar() == "UTF8"
        assert conn.execute(text("SELECT datctype FROM pg_database WHERE datname = current_database()")).scalar() == "C.UTF-8"
        # pg_trgm extracts trigrams from Chinese only under a UTF-8 LC_CTYPE
        assert conn.execute(text("SELECT array_length(show_trgm('星星充电站'), 1)")).scalar() > 0


@pytest.mark.parametrize(
    ("lng", "lat", "adcode"),
    [
        (113.5767, 22.2710, 440402),  # 香洲 city centre
        (113.6000, 22.3700, 440402),  # 唐家湾
        (113.2940, 22.2090, 440403),  # 斗门 井岸
        (113.2300, 22.3800, 440403),  # 斗门 莲洲
        (113.3760, 22.0700, 440404),  # 金湾 三灶
        (113.2500, 22.0500, 440404),  # 金湾 平沙
    ],
)
def test_point_in_each_district(engine, lng: float, lat: float, adcode: int) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        hit = locate(conn, lng, lat)
    assert hit is not None and hit.adcode == adcode


@pytest.mark.parametrize(("lng", "lat"), [(113.80, 22.05), (113.65, 21.85), (116.4, 39.9)])
def test_points_in_the_sea_or_elsewhere_have_no_district(engine, lng: float, lat: float) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        assert locate(conn, lng, lat) is None


def test_gcj02_input_is_converted_before_lookup(engine) -> None:  # noqa: ANN001
    from geo.gcj02 import wgs84_to_gcj02

    g = wgs84_to_gcj02(113.5767, 22.2710)
    with engine.connect() as conn:
        assert locate(conn, *g, gcj=True).adcode == 440402


def test_chinese_substring_search_uses_the_trigram_index(engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO operators (operator_id, name) VALUES ('TRGMTEST1', '星星充电') "
                          "ON CONFLICT DO NOTHING"))
        conn.execute(text("""
            INSERT INTO stations (operator_id, station_id, name, station_type, station_status,
                                  lng_gcj02, lat_gcj02, geom, geom_3857)
            SELECT 'TRGMTEST1', 'T' || g, '珠海' || (ARRAY['香洲','拱北','吉大','前山'])[1 + g % 4] || '星星充电站' || g,
                   1, 50, 113.5, 22.2, ST_SetSRID(ST_MakePoint(113.5, 22.2), 4326),
                   ST_Transform(ST_SetSRID(ST_MakePoint(113.5, 22.2), 4326), 3857)
            FROM generate_series(1, 300) g
            ON CONFLICT DO NOTHING"""))
        conn.execute(text("ANALYZE stations"))
    with engine.connect() as conn:
        conn.execute(text("SET enable_seqscan = off"))
        plan = "\n".join(r[0] for r in conn.execute(text(
            "EXPLAIN SELECT id FROM stations WHERE name ILIKE '%拱北星星%'")))
        found = conn.execute(text("SELECT count(*) FROM stations WHERE name ILIKE '%拱北星星%'")).scalar()
    assert "ix_stations_name_trgm" in plan
    assert found == 75
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM operators WHERE operator_id = 'TRGMTEST1'"))


def test_healthz_reports_postgis_and_revision(client, engine) -> None:  # noqa: ANN001
    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["database"]["reachable"] is True
    assert body["database"]["postgis"].startswith("3.")
    assert body["database"]["postgresql"].split(".")[0].isdigit()
    assert body["database"]["revision"] == ",".join(migrate.head_revisions(engine))


def test_healthz_when_the_database_is_down_is_503_without_details(tmp_path) -> None:  # noqa: ANN001
    from litestar.testing import TestClient

    from portal_site.app import create_app
    from tests.conftest import make_settings

    settings = make_settings("postgresql+psycopg2://nobody:wrong@127.0.0.1:9/none", tmp_path)
    with TestClient(create_app(settings)) as c:
        r = c.get("/healthz")
    assert r.status_code == 503
    assert r.json()["database"]["reachable"] is False
    assert "password" not in r.text and "psycopg2" not in r.text


def test_unknown_path_is_a_json_404(client) -> None:  # noqa: ANN001
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json()["message"].startswith("no such page")

"""The foundation against the real database: migrations, districts, trigram index, health."""

from __future__ import annotations

import secrets

import pytest
from alembic import command
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers  # noqa: F401 - registers op.create_geospatial_table, as env.py does
from sqlalchemy import Connection, create_engine, text

from services import migrate
from services.geography import locate
from services.models import Base
from tests.conftest import ROOT, create_database, drop_database

# Our objects in the public schema: what an extension (PostGIS, pg_trgm) made, and Alembic's own
# table, are left out.
_OURS = ("n.nspname = 'public' AND {oid} IS DISTINCT FROM to_regclass('alembic_version')::oid "
         "AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = {oid} AND e.deptype = 'e')")
_SCHEMA = {
    "relation": f"""SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE {_OURS.format(oid="c.oid")} AND c.relkind NOT IN ('i', 'I', 'c')""",
    "column": f"""SELECT c.relname || '.' || a.attname,
                         format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                         || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                         || coalesce(' IDENTITY ' || nullif(a.attidentity::text, ''), '')
                  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                  WHERE {_OURS.format(oid="c.oid")} AND a.attnum > 0 AND NOT a.attisdropped
                    AND c.relkind IN ('r', 'p', 'v', 'm')""",
    "index": f"""SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_OURS.format(oid="i.indrelid")}""",
    "constraint": f"""SELECT r.relname || '.' || k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k
                      JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                      WHERE {_OURS.format(oid="r.oid")}""",
    "function": f"""SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p
                    JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_OURS.format(oid="p.oid")} AND p.prokind IN ('f', 'p')""",
    "trigger": f"""SELECT r.relname || '.' || t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t
                   JOIN pg_class r ON r.oid = t.tgrelid JOIN pg_namespace n ON n.oid = r.relnamespace
                   WHERE {_OURS.format(oid="r.oid")} AND NOT t.tgisinternal""",
}


def schema(conn: Connection) -> dict[str, dict[str, str]]:
    """Every table, column, index, constraint, function (its full definition) and trigger of ours,
    as PostgreSQL prints them back."""
    return {kind: dict(conn.execute(text(q)).all()) for kind, q in _SCHEMA.items()}


def differences(a: dict[str, dict[str, str]], b: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    """The names, per kind, whose definitions differ (or exist on one side only)."""
    out = {kind: sorted(k for k in a[kind].keys() | b[kind].keys() if a[kind].get(k) != b[kind].get(k)) for kind in a}
    return {kind: names for kind, names in out.items() if names}


def assert_models_match_schema(url: str) -> None:
    """``alembic check``: autogenerate finds no difference between the models and the database."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            cfg = migrate.alembic_config(url)
            cfg.attributes["connection"] = conn
            command.check(cfg)
    finally:
        engine.dispose()


def test_migrations_downgrade_to_base_and_upgrade_again() -> None:
    """Base to the heads, down to base, up again: the second schema is the first one exactly, and
    the models describe it (``alembic check``)."""
    name = f"zhcharge_mig_{secrets.token_hex(4)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        heads = migrate.head_revisions(engine)
        assert migrate.current_revisions(engine) == heads
        with engine.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('stations')")).scalar() == "stations"
            first = schema(conn)
        migrate.downgrade(engine, "base")
        assert migrate.current_revisions(engine) == []
        with engine.connect() as conn:
            left = schema(conn)
        assert left == {kind: {} for kind in _SCHEMA}
        migrate.upgrade(engine)
        assert migrate.current_revisions(engine) == heads
        with engine.connect() as conn:
            again = schema(conn)
        assert differences(again, first) == {}
        assert_models_match_schema(url)
    finally:
        engine.dispose()
        drop_database(name)


def _in_order(script: ScriptDirectory) -> list[str]:
    """Every revision, each after those it revises or depends on (ties by id)."""
    revisions = {r.revision: r for r in script.walk_revisions()}
    order: list[str] = []
    while len(order) < len(revisions):
        order.append(min(r for r in revisions if r not in order
                         and set(revisions[r]._all_down_revisions) <= set(order)))
    return order


def test_every_revision_downgrades_to_exactly_the_schema_before_it() -> None:
    """Revision by revision from base (each after those it revises or depends on): its upgrade(),
    its downgrade(), and the schema is the one before it, character for character (a restored
    function included); then its upgrade() again for the next one. The revisions' own functions are
    called, so Alembic's choice of targets plays no part."""
    name = f"zhcharge_mig_{secrets.token_hex(4)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        script = ScriptDirectory.from_config(migrate.alembic_config(url))
        # as sql/migrations/env.py configures it: the metadata's naming convention names constraints
        context = {"target_metadata": Base.metadata}
        with engine.connect() as conn, Operations.context(MigrationContext.configure(conn, opts=context)):
            for rev in _in_order(script):
                module = script.get_revision(rev).module
                before = schema(conn)
                module.upgrade()
                module.downgrade()
                assert differences(schema(conn), before) == {}, rev
                module.upgrade()
                conn.commit()
    finally:
        engine.dispose()
        drop_database(name)


def test_head_functions_and_triggers_are_those_of_sql_functions(engine) -> None:  # noqa: ANN001
    """``sql/functions`` holds the current definitions: running its files on the migrated database
    (in a transaction that is rolled back) changes no function, trigger or anything else."""
    files = sorted((ROOT / "sql" / "functions").glob("*.sql"))
    assert files
    with engine.connect() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '20s'"))  # the triggers on stations are re-created
        migrated = schema(conn)
        cursor = conn.connection.cursor()  # the DB-API cursor: the files' text is sent as it is
        for path in files:
            cursor.execute(path.read_text(encoding="utf-8"))
        applied = schema(conn)
        conn.rollback()
    assert differences(applied, migrated) == {}


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

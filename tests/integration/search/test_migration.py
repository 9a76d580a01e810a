"""Migrations 0300–0303 on a database of their own: up to the heads with stations already in it
(the narrow tables are backfilled), the search branch down to 0001 (its tables, triggers and
functions go, stations stay and still accept writes), and up again."""

from __future__ import annotations

import secrets

from alembic import command
from sqlalchemy import create_engine, text

from bench.generate import generate_stations
from services import migrate
from tests.conftest import create_database, drop_database

TABLES = ("api_keys", "api_rate", "station_search", "station_text")


def _present(engine) -> dict[str, bool]:  # noqa: ANN001
    with engine.connect() as conn:
        return {t: conn.execute(text("SELECT to_regclass(:t)"), {"t": t}).scalar() is not None for t in TABLES}


def test_search_branch_up_down_up() -> None:
    name = f"zhcharge_test_mig0300_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            cfg = migrate.alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "search@0001")  # down to the shared root, not past it
        assert not any(_present(engine).values())
        with engine.connect() as conn:
            assert not conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'zh_station_search%' "
                                         "OR proname LIKE 'zh_station_text%'")).scalar()
        with engine.begin() as conn:  # stations work without the search branch
            generate_stations(conn, 50, region="zhuhai", seed=2, operators=2, prefix="MIG")
        migrate.upgrade(engine)
        assert all(_present(engine).values())
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM station_search")).scalar() == 50  # backfilled
            assert conn.execute(text("SELECT count(*) FROM station_text")).scalar() == 50
        with engine.begin() as conn:
            conn.execute(text("UPDATE stations SET interconnected = false WHERE id IN "
                              "(SELECT id FROM stations ORDER BY id LIMIT 5)"))
            assert conn.execute(text("SELECT count(*) FROM station_search")).scalar() == 45
            conn.execute(text("TRUNCATE stations CASCADE"))
            assert conn.execute(text("SELECT count(*) FROM station_text")).scalar() == 0
    finally:
        engine.dispose()
        drop_database(name)

"""Migration 0500 on a database of its own: upgrade to the heads, the archives branch down to its
base (its tables go, the rest stays), and up again."""

from __future__ import annotations

import secrets

from alembic import command
from sqlalchemy import create_engine, text

from services import migrate
from tests.conftest import create_database, drop_database

TABLES = ("station_archives", "report_archives", "report_files", "facility_archives", "interconnection_applications")


def _present(engine) -> dict[str, bool]:  # noqa: ANN001
    with engine.connect() as conn:
        return {t: conn.execute(text("SELECT to_regclass(:t)"), {"t": t}).scalar() is not None for t in TABLES + ("stations",)}


def test_archives_branch_up_down_up() -> None:
    name = f"zhcharge_test_mig0500_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        assert all(_present(engine).values())
        with engine.connect() as conn:
            checks = set(conn.execute(text("SELECT conname FROM pg_constraint WHERE conname LIKE 'ck_%_archives_state'")).scalars())
        assert {"ck_station_archives_state", "ck_facility_archives_state"} <= checks
        with engine.begin() as conn:
            cfg = migrate.alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "archives@base")
        present = _present(engine)
        assert not any(present[t] for t in TABLES) and present["stations"]
        assert not {"0500", "0600"} & set(migrate.current_revisions(engine))  # 0600 (subsidy) depends on 0500
        migrate.upgrade(engine)
        assert all(_present(engine).values())
    finally:
        engine.dispose()
        drop_database(name)

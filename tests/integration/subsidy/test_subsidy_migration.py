"""Migration 0600 goes up (to itself, with what it depends on), down alone, and up again with
every other head, in a database of its own."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, inspect

from services import migrate
from tests.conftest import create_database, drop_database

TABLES = {"subsidy_rules", "subsidy_applications", "subsidy_application_facilities", "subsidy_accounting_runs"}


def test_subsidy_migration_up_down_up() -> None:
    name = f"zhcharge_test_submig_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0600")
        tables = set(inspect(engine).get_table_names())
        assert TABLES <= tables and {"station_archives", "facility_archives", "workflow_events", "users"} <= tables
        uniques = {u["name"] for u in inspect(engine).get_unique_constraints("subsidy_application_facilities")}
        assert "uq_subsidy_application_facilities_rule_facility" in uniques
        migrate.downgrade(engine, "subsidy@-1")
        tables = set(inspect(engine).get_table_names())
        assert not TABLES & tables and "facility_archives" in tables
        migrate.upgrade(engine, "heads")
        assert TABLES <= set(inspect(engine).get_table_names())
        assert "0600" in migrate.current_revisions(engine)
    finally:
        engine.dispose()
        drop_database(name)

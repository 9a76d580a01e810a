"""Migration 0200 goes up, down exactly, and up again (a database of its own)."""

from __future__ import annotations

import secrets

from sqlalchemy import create_engine, inspect, text

from services import migrate
from tests.conftest import create_database, drop_database


def test_feed_migration_up_down_up() -> None:
    name = f"zhcharge_test_feedmig_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine, "0200")
        insp = inspect(engine)
        assert {"feed_push_seen", "feed_tokens"} <= set(insp.get_table_names())
        cols = {c["name"]: c for c in insp.get_columns("stations")}
        assert cols["geom"]["nullable"] and "content_hash" in cols
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'feed_store_status_push'")).scalar() == 1
            conn.execute(text("INSERT INTO operators (operator_id, name) VALUES ('MA0000001', 'x')"))
            conn.execute(text("INSERT INTO stations (operator_id, station_id, name, station_type, station_status, "
                              "feed_state, reject_reason) VALUES ('MA0000001', 'S1', 'x', 1, 50, 'rejected', 'r')"))
            bad = conn.begin_nested()
            try:
                conn.execute(text("INSERT INTO stations (operator_id, station_id, name, station_type, "
                                  "station_status) VALUES ('MA0000001', 'S2', 'x', 1, 50)"))
                raise AssertionError("an active station without a position must be refused")
            except Exception as exc:  # noqa: BLE001
                assert "ck_stations_position" in str(exc)
                bad.rollback()
        migrate.downgrade(engine, "0001")
        insp = inspect(engine)
        assert not {"feed_push_seen", "feed_tokens"} & set(insp.get_table_names())
        cols = {c["name"]: c for c in insp.get_columns("stations")}
        assert not cols["geom"]["nullable"] and not cols["lng_gcj02"]["nullable"] and "content_hash" not in cols
        assert "last_error" not in {c["name"] for c in insp.get_columns("feed_endpoints")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname = 'feed_store_status_push'")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM stations")).scalar() == 0  # the position-less one
        migrate.upgrade(engine, "0200")
        assert "feed_tokens" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
        drop_database(name)

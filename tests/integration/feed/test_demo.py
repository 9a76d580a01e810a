"""`zhcharge demo load` twice (idempotent) and `zhcharge demo stop`, on a database of its own."""

from __future__ import annotations

import secrets

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from portal_site.cli import main
from tests.conftest import create_database, drop_database

from .conftest import free_port


def test_demo_load_is_idempotent_and_stops(tmp_path) -> None:  # noqa: ANN001
    name = f"zhcharge_test_demo_{secrets.token_hex(3)}"
    url = create_database(name)
    port = free_port()
    env = {"ZHCHARGE_DATABASE_URL": url, "ZHCHARGE_DATA_DIR": str(tmp_path),
           "ZHCHARGE_PUBLIC_URL": f"http://127.0.0.1:{free_port()}"}
    runner = CliRunner()
    args = ["demo", "load", "--stations", "60", "--operators", "2", "--port", str(port), "--rate", "0"]
    try:
        first = runner.invoke(main, args, env=env, catch_exceptions=False)
        assert first.exit_code == 0, first.output
        assert "simulator started" in first.output and first.output.count("registered ") == 2
        assert (tmp_path / "simulator" / "simulator.pid").exists()
        second = runner.invoke(main, args, env=env, catch_exceptions=False)
        assert second.exit_code == 0, second.output
        assert "already running" in second.output and second.output.count("already registered") == 2
        engine = create_engine(url)
        with engine.connect() as conn:
            row = conn.execute(text("SELECT count(*) AS n, count(DISTINCT operator_id) AS ops, bool_and(interconnected) "
                                    "AS ic FROM stations WHERE feed_state = 'active'")).one()
            endpoints = conn.execute(text("SELECT count(*) FROM feed_endpoints")).scalar()
        engine.dispose()
        assert row.n + 5 >= 60 and row.ops == 2 and row.ic and endpoints == 2
    finally:
        stop = runner.invoke(main, ["demo", "stop"], env=env, catch_exceptions=False)
        drop_database(name)
    assert "stopped the simulator" in stop.output
    assert not (tmp_path / "simulator" / "simulator.pid").exists()

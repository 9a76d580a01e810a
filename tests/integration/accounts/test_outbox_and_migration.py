"""The developer's outbox (CLI and /dev/outbox) and the accounts migration's exact downgrade."""

from __future__ import annotations

import json
import secrets

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from services import migrate
from services.accounts.messaging import messenger_for
from services.settings import MailSettings
from tests.conftest import create_database, drop_database, make_settings


def test_outbox_cli_lists_messages(db_url, engine, monkeypatch) -> None:  # noqa: ANN001
    to = f"cli-{secrets.token_hex(3)}@example.com"
    with engine.begin() as conn:
        assert messenger_for(MailSettings()).email(conn, to, "主题", "验证码 123456")
    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    from portal_site.cli import main

    r = CliRunner().invoke(main, ["outbox", "--json", "--limit", "50"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert any(m["recipient"] == to and m["body"] == "验证码 123456" and m["channel"] == "email" for m in rows)
    r = CliRunner().invoke(main, ["outbox", "--limit", "50", "--channel", "email"])
    assert r.exit_code == 0 and to in r.output and "验证码 123456" in r.output


def test_dev_outbox_page_only_in_dev(client, db_url, database, tmp_path) -> None:  # noqa: ANN001
    from litestar.testing import TestClient

    from portal_site.app import create_app

    assert client.get("/dev/outbox", headers={"accept": "text/html"}).status_code == 404  # env=test
    settings = make_settings(db_url, tmp_path)
    settings.app = settings.app.model_copy(update={"env": "dev"})
    dev = create_app(settings, database=database)
    with TestClient(dev) as c:
        r = c.get("/dev/outbox", headers={"accept": "text/html"})
    assert r.status_code == 200 and "outbox" in r.text.lower()


def _schema(engine) -> tuple:  # noqa: ANN001
    with engine.connect() as conn:
        cols = conn.execute(text("SELECT table_name, column_name, data_type, is_nullable, column_default "
                                 "FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2")).all()
        cons = conn.execute(text("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                 "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2")).all()
        idx = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1")).all()
    return cols, cons, idx


def test_accounts_migration_downgrades_exactly() -> None:
    name = f"zhcharge_test_acc_mig_{secrets.token_hex(3)}"
    url = create_database(name)
    eng = create_engine(url)
    try:
        migrate.upgrade(eng, "0001")
        before = _schema(eng)
        migrate.upgrade(eng, "0400")
        with eng.connect() as conn:
            assert conn.execute(text("SELECT to_regclass('users')")).scalar() == "users"
        migrate.downgrade(eng, "0001")
        assert _schema(eng) == before
        migrate.upgrade(eng, "0400")  # and up again
    finally:
        eng.dispose()
        drop_database(name)

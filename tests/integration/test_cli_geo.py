"""``zhcharge geo`` against the test database."""

from __future__ import annotations

from click.testing import CliRunner

from portal_site.cli import main


def test_locate_prints_the_district(db_url: str, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    r = CliRunner().invoke(main, ["geo", "locate", "113.5767", "22.2710"])
    assert r.exit_code == 0, r.output
    assert r.output.strip() == "440402 香洲区"
    r = CliRunner().invoke(main, ["geo", "locate", "113.80", "22.05"])
    assert r.exit_code == 1 and "outside" in r.output
    r = CliRunner().invoke(main, ["geo", "locate", "190", "22"])
    assert r.exit_code == 2 and "longitude" in r.output


def test_load_districts_is_idempotent(db_url: str, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    r = CliRunner().invoke(main, ["geo", "load-districts"])
    assert r.exit_code == 0, r.output
    assert "3 loaded for 440400, 0 changed" in r.output

"""``zhcharge ocpi``: add-party prints a token (stored hashed) that opens the OCPI endpoints; list,
revoke and the operators' publishing parties."""

from __future__ import annotations

import json

from click.testing import CliRunner
from litestar.testing import TestClient

from portal_site.cli import main
from tests.integration.ocpi.conftest import OCPI_OP, auth, envelope


def test_add_party_prints_a_token_that_opens_ocpi(db_url, monkeypatch, api_app, world) -> None:  # noqa: ANN001
    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    r = CliRunner().invoke(main, ["ocpi", "add-party", "--country-code", "cn", "--party-id", "Hub",
                                  "--name", "省级漫游平台", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["country_code"] == "CN" and out["party_id"] == "HUB"
    token = out["token"]
    assert len(token) >= 40
    with TestClient(api_app, base_url="http://127.0.0.1:8000") as c:
        assert envelope(c.get("/ocpi/2.2.1/locations", params={"limit": 1}, headers=auth(token)))
        listed = CliRunner().invoke(main, ["ocpi", "list-parties", "--json"])
        assert listed.exit_code == 0 and token not in listed.output
        party = next(p for p in json.loads(listed.output) if p["party_id"] == "HUB")
        assert party["name"] == "省级漫游平台" and party["last_used_at"] and party["revoked_at"] is None
        r = CliRunner().invoke(main, ["ocpi", "revoke-party", "--country-code", "CN", "--party-id", "HUB"])
        assert r.exit_code == 0 and "revoked CN*HUB" in r.output
        envelope(c.get("/ocpi/versions", headers=auth(token)), status_code=4001, http=401)


def test_bad_party_identity_is_refused(db_url, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    for args in (["--country-code", "CHN", "--party-id", "ABC"], ["--country-code", "CN", "--party-id", "AB"],
                 ["--country-code", "CN", "--party-id", "A-C"], ["--country-code", "C1", "--party-id", "ABC"]):
        r = CliRunner().invoke(main, ["ocpi", "add-party", *args, "--name", "x", "--json"])
        assert r.exit_code == 1 and r.output.startswith("error: "), (args, r.output)
    r = CliRunner().invoke(main, ["ocpi", "revoke-party", "--country-code", "CN", "--party-id", "ZZZ"])
    assert r.exit_code == 1 and "no OCPI party" in r.output


def test_operators_show_their_publishing_party(db_url, monkeypatch, world) -> None:  # noqa: ANN001
    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    r = CliRunner().invoke(main, ["ocpi", "operators", "--json"])
    assert r.exit_code == 0, r.output
    rows = {x["operator_id"]: x for x in json.loads(r.output)}
    assert rows[OCPI_OP]["party_id"] == OCPI_OP[-3:] and rows[OCPI_OP]["country_code"] == "CN"

"""``zhcharge ocpi``: the parties that may read our OCPI 2.2.1 Locations and Tariffs, and the party
each charging operator publishes as."""

from __future__ import annotations

import json

import click

from services.settings import load_settings


def _engine():  # noqa: ANN202
    from services.db import make_engine

    settings = load_settings()
    return make_engine(settings.db, start=settings.db.embedded)


@click.group()
def ocpi() -> None:
    """OCPI 2.2.1 (zhcharge as Sender of Locations and Tariffs under /ocpi/)."""


@ocpi.command("add-party")
@click.option("--country-code", required=True, help="ISO 3166-1 alpha-2 of the party, e.g. CN")
@click.option("--party-id", required=True, help="its three-character OCPI party id, e.g. ABC")
@click.option("--name", required=True, help="its name (for people)")
@click.option("--json", "as_json", is_flag=True, help='print {"token": ...} and nothing else')
def add_party_cmd(country_code: str, party_id: str, name: str, as_json: bool) -> None:
    """Add a party, or give an existing one a new token (the old one stops working at once), and print
    the token once: only its hash is stored. The party sends 'Authorization: Token <Base64 of it>'."""
    from services.ocpi.parties import add_party

    with _engine().begin() as conn:
        party, token = add_party(conn, country_code, party_id, name)
    if as_json:
        click.echo(json.dumps({"token": token, "country_code": party.country_code, "party_id": party.party_id}))
        return
    click.echo(f"party: {party.country_code}*{party.party_id} {party.name}")
    click.echo(f"token: {token}")
    url = load_settings().app.public_url.rstrip("/") + "/ocpi/versions"
    click.echo(f"Store the token now: it cannot be shown again. Versions endpoint: {url}", err=True)


@ocpi.command("list-parties")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_parties_cmd(as_json: bool) -> None:
    """The parties (never their tokens) with when they last called."""
    from services.ocpi.parties import list_parties

    with _engine().connect() as conn:
        parties = list_parties(conn)
    if as_json:
        click.echo(json.dumps(parties, ensure_ascii=False, indent=2, default=str))
        return
    if not parties:
        click.echo("no OCPI parties")
        return
    for p in parties:
        used = f"{p['last_used_at']:%Y-%m-%d %H:%M}" if p["last_used_at"] else "never"
        state = f"revoked {p['revoked_at']:%Y-%m-%d %H:%M}" if p["revoked_at"] else "active"
        click.echo(f"{p['country_code']}*{p['party_id']}  {p['name'][:30]:<30}  last used {used:<16}  {state}")


@ocpi.command("revoke-party")
@click.option("--country-code", required=True)
@click.option("--party-id", required=True)
def revoke_party_cmd(country_code: str, party_id: str) -> None:
    """Revoke a party's token: its requests get HTTP 401 (4001) from then on."""
    from services.ocpi.parties import revoke_party

    with _engine().begin() as conn:
        at = revoke_party(conn, country_code, party_id)
    click.echo(f"revoked {country_code.upper()}*{party_id.upper()} at {at:%Y-%m-%d %H:%M:%S %Z}")


@ocpi.command("operators")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def operators_cmd(as_json: bool) -> None:
    """The party_id each charging operator publishes as (assigned now where missing)."""
    from sqlalchemy import text

    from services.ocpi.parties import publishing_parties

    with _engine().begin() as conn:
        ops = {r[0]: r[1] for r in conn.execute(text("SELECT operator_id, name FROM operators ORDER BY operator_id"))}
        parties = publishing_parties(conn, ops)
    rows = [{"operator_id": op, "name": name, "country_code": "CN", "party_id": parties[op]} for op, name in ops.items()]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(f"{r['operator_id']}  CN*{r['party_id']}  {r['name']}")

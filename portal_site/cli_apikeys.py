"""``zhcharge apikeys``: create, list and revoke keys of the open API (stored hashed)."""

from __future__ import annotations

import json

import click

from services.settings import load_settings


def _engine():  # noqa: ANN202
    from services.db import make_engine

    settings = load_settings()
    return make_engine(settings.db, start=settings.db.embedded)


@click.group()
def apikeys() -> None:
    """Keys of the open API: a key raises the per-minute rate limit of /api/v1."""


@apikeys.command("create")
@click.argument("name")
@click.option("--owner", "owner_user_id", type=int, default=None, help="user id of the owner (open platform account)")
@click.option("--rate", "rate_per_min", type=int, default=None,
              help="requests per minute for this key (default: ZHCHARGE_SEARCH_KEY_RATE_PER_MIN)")
def create_cmd(name: str, owner_user_id: int | None, rate_per_min: int | None) -> None:
    """Create a key named NAME and print it once (only its hash is stored)."""
    from services.search.apikeys import create_key

    with _engine().begin() as conn:
        key_id, plaintext = create_key(conn, owner_user_id, name, rate_per_min=rate_per_min)
    click.echo(f"id: {key_id}")
    click.echo(f"key: {plaintext}")
    click.echo("Store the key now: it cannot be shown again. Send it as the X-API-Key header.", err=True)


@apikeys.command("list")
@click.option("--owner", "owner_user_id", type=int, default=None, help="only this owner's keys")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_cmd(owner_user_id: int | None, as_json: bool) -> None:
    """List keys (prefix, name, owner, limit, created, last used, revoked)."""
    from services.search.apikeys import list_keys

    with _engine().connect() as conn:
        keys = list_keys(conn, owner_user_id)
    if as_json:
        click.echo(json.dumps(keys, ensure_ascii=False, indent=2, default=str))
        return
    if not keys:
        click.echo("no API keys")
        return
    click.echo(f"{'id':>5}  {'prefix':<12}  {'name':<24}  {'owner':>6}  {'rate':>6}  {'last used':<20}  state")
    for k in keys:
        state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "active"
        used = f"{k['last_used_at']:%Y-%m-%d %H:%M}" if k["last_used_at"] else "never"
        click.echo(f"{k['id']:>5}  {k['key_prefix']:<12}  {k['name'][:24]:<24}  {k['owner_user_id'] or '':>6}  "
                   f"{k['rate_per_min'] or 'default':>6}  {used:<20}  {state}")


@apikeys.command("revoke")
@click.argument("key_id", type=int)
def revoke_cmd(key_id: int) -> None:
    """Revoke key KEY_ID (requests with it get 401 from then on)."""
    from services.search.apikeys import revoke_key

    with _engine().begin() as conn:
        at = revoke_key(conn, key_id)
    click.echo(f"revoked key {key_id} at {at:%Y-%m-%d %H:%M:%S %Z}")

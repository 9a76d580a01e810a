"""``zhcharge upstream add | list | remove``: the higher platforms that read our data through T/CEC 102.

Registered in ``portal_site.cli._COMMANDS``; this module imports nothing from ``portal_site``. Bad
input is an :class:`services.errors.AppError`, which the ``zhcharge`` group prints as one
``error: ...`` line (exit status 1).
"""

from __future__ import annotations

import json

import click

__all__ = ["upstream"]


def _engine(settings):  # noqa: ANN001, ANN202
    from services.db import make_engine

    return make_engine(settings.db, start=settings.db.embedded)


@click.group()
def upstream() -> None:
    """Higher platforms (e.g. the provincial supervision platform) that pull our stations through
    T/CEC 102 and receive our status pushes."""


@upstream.command("add")
@click.option("--platform-id", required=True, help="The OperatorID the platform calls us with (its own, 9 characters).")
@click.option("--name", required=True, help="The platform's name.")
@click.option("--push-base-url", default=None,
              help="Where we push notification_stationStatus: the part before /evcs/<version>/ (a URL up to the "
                   "version is accepted too). Without it we do not push to the platform.")
@click.option("--their-operator-id", default=None,
              help="The platform's OperatorID on its push side (default: --platform-id); our envelopes carry our "
                   "own OperatorID, ZHCHARGE_OPERATOR_ID.")
@click.option("--operator-secret", default=None, help="OperatorSecret it issued to us, for its query_token.")
@click.option("--data-secret", default=None, help="DataSecret (16 characters) it issued to us.")
@click.option("--data-iv", default=None, help="DataSecretIV (16 characters) it issued to us.")
@click.option("--sig-secret", default=None, help="SigSecret it issued to us.")
@click.option("--api-version", default=None, help="Version path segment of its push URL (default v20160701).")
@click.option("--json", "as_json", is_flag=True, help="Print the inbound credentials as one JSON object.")
def add_upstream(platform_id: str, name: str, push_base_url: str | None, their_operator_id: str | None,
                 operator_secret: str | None, data_secret: str | None, data_iv: str | None, sig_secret: str | None,
                 api_version: str | None, as_json: bool) -> None:
    """Register a platform (or update it) and print the credentials it calls us with.

    It calls our /evcs/v20160701/query_token and the queries with its own OperatorID and these
    fresh random 16-character secrets; running the command again updates the push settings and
    keeps them.
    """
    from ingest.upstream.platforms import register_platform
    from services.settings import load_settings

    settings = load_settings()
    engine = _engine(settings)
    try:
        with engine.begin() as conn:
            creds, created = register_platform(
                conn, platform_id=platform_id, name=name, push_base_url=push_base_url,
                their_operator_id=their_operator_id, operator_secret=operator_secret, data_secret=data_secret,
                data_iv=data_iv, sig_secret=sig_secret, api_version=api_version or settings.feed.api_version)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(creds.as_dict(), ensure_ascii=False))
        return
    base = f"{settings.app.public_url.rstrip('/')}/evcs/{settings.feed.api_version}"
    click.echo(f"{'added' if created else 'updated'} upstream platform {platform_id} ({name}); "
               + (f"status pushes go to {push_base_url}" if push_base_url else "no status pushes"))
    click.echo(f"credentials for the platform (it calls {base}/query_token, query_stations_info, "
               "query_station_status, query_station_stats, query_equip_business_policy):")
    for key, value in creds.as_dict().items():
        click.echo(f"  {key:<16} {value}")
    click.echo(f"our OperatorID (ZHCHARGE_OPERATOR_ID): {settings.app.operator_id}")


@upstream.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_upstream(as_json: bool) -> None:
    """The platforms (never their secrets), their pushes and what is still queued for them."""
    from ingest.upstream.platforms import list_platforms
    from services.settings import load_settings

    engine = _engine(load_settings())
    try:
        with engine.connect() as conn:
            platforms = list_platforms(conn)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(platforms, ensure_ascii=False, indent=2, default=str))
        return
    if not platforms:
        click.echo("no upstream platforms (zhcharge upstream add)")
    for p in platforms:
        token = f"{p['last_token_at']:%Y-%m-%d %H:%M}" if p["last_token_at"] else "never"
        push = "no pushes"
        if p["push_base_url"]:
            push = f"pushes to {p['push_base_url']}: {p['pushed']} sent, {p['queued']} queued"
            if p["push_error"]:
                push += f", {p['push_failures']} failures, last error: {p['push_error'][:80]}"
        click.echo(f"{p['platform_id']}  {p['name'][:30]:<30}  last token {token:<16}  {push}")


@upstream.command("remove")
@click.option("--platform-id", required=True)
def remove_upstream(platform_id: str) -> None:
    """Forget a platform: its credentials and tokens stop working at once, its queued pushes are dropped."""
    from ingest.upstream.platforms import remove_platform
    from services.errors import NotFound
    from services.settings import load_settings

    engine = _engine(load_settings())
    try:
        with engine.begin() as conn:
            if not remove_platform(conn, platform_id):
                raise NotFound(f"no upstream platform {platform_id[:32]!r}")
    finally:
        engine.dispose()
    click.echo(f"removed upstream platform {platform_id}")

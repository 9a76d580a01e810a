"""``zhcharge outbox``: read the e-mails and SMS the platform sent (the local default delivery)."""

from __future__ import annotations

import json

import click

from services.settings import load_settings


@click.command("outbox")
@click.option("--json", "as_json", is_flag=True, help="one JSON array instead of text")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--channel", type=click.Choice(["email", "sms"]), default=None)
def outbox(as_json: bool, limit: int, channel: str | None) -> None:
    """Print the newest messages of the outbox (codes, review results), newest first."""
    from services.accounts.messaging import list_outbox
    from services.db import make_engine

    settings = load_settings()
    engine = make_engine(settings.db, start=settings.db.embedded)
    with engine.connect() as conn:
        rows = list_outbox(conn, limit=limit, channel=channel)
    engine.dispose()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    if not rows:
        click.echo("the outbox is empty")
        return
    for m in rows:
        state = "error: " + m["error"] if m["error"] else ("sent" if m["sent_at"] else "outbox")
        click.echo(f"#{m['id']} {m['created_at']:%Y-%m-%d %H:%M:%S} {m['channel']} → {m['recipient']} [{state}]")
        if m["subject"]:
            click.echo(f"  subject: {m['subject']}")
        for line in m["body"].splitlines():
            click.echo(f"  {line}")

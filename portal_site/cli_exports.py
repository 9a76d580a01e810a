"""``zhcharge exports``: the daily snapshots of the public dataset (``/api/v1/export/``)."""

from __future__ import annotations

import json

import click

from services.settings import load_settings


@click.group()
def exports() -> None:
    """Open dumps: daily snapshots of every public station (GeoJSON and CSV, gzipped)."""


@exports.command("snapshot")
@click.option("--force", is_flag=True, help="write today's snapshot again even if it exists")
def snapshot_cmd(force: bool) -> None:
    """Write today's snapshot now (China date) and delete the expired ones; the app's daily job does
    the same by itself."""
    from portal_site.routes.api import CSV_COLUMNS
    from portal_site.routes.exports import snapshot_root
    from services.db import make_engine
    from services.exports.snapshots import write_snapshot

    settings = load_settings()
    engine = make_engine(settings.db, start=settings.db.embedded)
    snap = write_snapshot(engine, snapshot_root(settings), CSV_COLUMNS, keep_days=settings.exports.keep_days,
                          force=force)
    if snap is None:
        click.echo("nothing written: today's snapshot exists (--force writes it again) or another process is "
                   "writing one")
        return
    click.echo(f"{snap.day}: {snap.count} stations, " + ", ".join(
        f"{name} {f['bytes']} bytes" for name, f in sorted(snap.files.items())))


@exports.command("list")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_cmd(as_json: bool) -> None:
    """The snapshots kept, newest first."""
    from portal_site.routes.exports import snapshot_root
    from services.exports.snapshots import list_snapshots

    snaps = list_snapshots(snapshot_root(load_settings()))
    if as_json:
        click.echo(json.dumps([{"date": s.day.isoformat(), "generated_at": s.generated_at.isoformat(),
                                "count": s.count, "files": s.files} for s in snaps], indent=2))
        return
    if not snaps:
        click.echo("no snapshots")
    for s in snaps:
        click.echo(f"{s.day}  {s.count:>7} stations  generated {s.generated_at:%Y-%m-%d %H:%M:%S %Z}")

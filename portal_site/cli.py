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


@db.command("cluster")
@click.option("--lock-timeout", default=10.0, show_default=True, help="seconds to wait for the table's lock")
def db_cluster(lock_timeout: float) -> None:
    """Re-order the search table (station_search) in space, as the daily job does: facet counts in a map
    box then read a few hundred pages instead of the whole table. Holds the table's lock while it runs
    (seconds at national scale)."""
    from services.db import make_engine
    from services.search.maintenance import cluster_station_search

    settings = load_settings()
    result = cluster_station_search(make_engine(settings.db, start=settings.db.embedded), lock_timeout_s=lock_timeout)
    if not result.ran:
        raise click.ClickException(f"not clustered: {result.reason}")
    click.echo(f"station_search clustered: {result.rows} rows in {result.seconds:.1f} s")


@db.command("downgrade")
@click.argument("revision", default="base")
def db_downgrade(revision: str) -> None:
    """Undo migrations down to REVISION (default: base, an empty schema)."""
    from services import migrate
    from services.db import make_engine

    engine = make_engine(load_settings().db)
    migrate.downgrade(engine, revision)
    click.echo("schema at " + (", ".join(migrate.current_revisions(engine)) or "base"))


# --- scaling out: a read replica and PgBouncer of the private cluster ----------------------------
def _private_only(what: str) -> Cluster:
    cluster = _cluster_or_external()
    if cluster is None:
        raise ClusterError(f"ZHCHARGE_DATABASE_URL is set: {what} only applies to the private cluster "
                           "(README, Running at scale, for your own servers)")
    return cluster


@db.group("replica")
def replica() -> None:
    """A streaming read replica of the private cluster (.data/pg-replica, port ZHCHARGE_PG_PORT + 1).

    Public reads go to it when ZHCHARGE_READ_DATABASE_URL is set to its URL, or with
    `zhcharge serve --replica`."""


def _replica():  # noqa: ANN202 - a services.dbcluster.Replica
    from services.dbcluster import Replica

    _private_only("the replica")
    return Replica(load_settings().db)


@replica.command("start")
def replica_start() -> None:
    """Create the replica (pg_basebackup -R of the running private cluster) if needed and start it."""
    rep = _replica()
    started = rep.start()
    click.echo(("started: " if started else "already running: ") + rep.status().describe())
    click.echo('use it: export ZHCHARGE_READ_DATABASE_URL="$(zhcharge db replica url)" (or zhcharge serve --replica)')


@replica.command("stop")
def replica_stop() -> None:
    """Stop the replica (its slot on the primary keeps the WAL it needs, up to 4 GB)."""
    click.echo("stopped" if _replica().stop() else "not running")


@replica.command("status")
def replica_status() -> None:
    """Say whether the replica runs and how far behind it is (exit status 0 when it runs)."""
    status = _replica().status()
    click.echo(status.describe())
    sys.exit(0 if status.running else 3)


@replica.command("url")
@click.option("--sqlalchemy", "as_sqlalchemy", is_flag=True, help="the SQLAlchemy form (postgresql+psycopg2://…)")
def replica_url(as_sqlalchemy: bool) -> None:
    """Print the replica's URL (libpq form, or --sqlalchemy)."""
    from services.dbcluster import libpq_url

    url = _replica().url()
    click.echo(url if as_sqlalchemy else libpq_url(url))


@replica.command("reset")
@click.option("--yes", is_flag=True, help="do not ask")
def replica_reset(yes: bool) -> None:
    """Stop the replica and delete its copy and its replication slot (the next start copies the primary again)."""
    rep = _replica()
    if not yes:
        click.confirm(f"Delete the replica in {rep.data_dir}?", abort=True)
    rep.reset()
    click.echo("reset: the next `zhcharge db replica start` copies the primary again")


@db.group("pgbouncer")
def pgbouncer() -> None:
    """PgBouncer in transaction mode in front of the private cluster (.data/pgbouncer, port
    ZHCHARGE_PG_PORT + 2); the replica is pooled as the database <name>_read.

    The app uses it with `zhcharge serve --pgbouncer` (ZHCHARGE_DATABASE_URL = its URL,
    ZHCHARGE_DB_PGBOUNCER=true, ZHCHARGE_DIRECT_DATABASE_URL = the cluster for LISTEN)."""


def _bouncer():  # noqa: ANN202 - a services.pgbouncer.PgBouncer
    from portal_site.serving import private_pgbouncer

    _private_only("the PgBouncer")
    return private_pgbouncer(load_settings().db)


@pgbouncer.command("start")
def pgbouncer_start() -> None:
    """Start it (a no-op when it runs)."""
    b = _bouncer()
    started = b.start()
    click.echo(("started: " if started else "already running: ") + b.status().describe())


@pgbouncer.command("stop")
def pgbouncer_stop() -> None:
    """Stop it."""
    click.echo("stopped" if _bouncer().stop() else "not running")


@pgbouncer.command("status")
def pgbouncer_status() -> None:
    """Say whether it runs (exit status 0 when it does)."""
    status = _bouncer().status()
    click.echo(status.describe())
    sys.exit(0 if status.running else 3)


@pgbouncer.command("url")
@click.option("--replica", "read", is_flag=True, help="the replica through PgBouncer")
@click.option("--sqlalchemy", "as_sqlalchemy", is_flag=True, help="the SQLAlchemy form (postgresql+psycopg2://…)")
def pgbouncer_url(read: bool, as_sqlalchemy: bool) -> None:
    """Print the URL of the database (or, with --replica, of the replica) through PgBouncer."""
    from services.dbcluster import libpq_url

    name = load_settings().db.pg_database + ("_read" if read else "")
    url = _bouncer().url(name)
    click.echo(url if as_sqlalchemy else libpq_url(url))


# --- serving --------------------------------------------------------------------------------
@main.command()
@click.option("--host", default=None, help="default 127.0.0.1 (ZHCHARGE_HOST)")
@click.option("--port", default=None, type=int, help="default 8000 (ZHCHARGE_PORT)")
@click.option("--workers", default=1, show_default=True, type=int,
              help="worker processes (each with its own pools, caches and scheduler; all state is in the database)")
@click.option("--keep-alive", default=5, show_default=True, type=int,
              help="seconds an idle HTTP connection is kept; behind a load balancer, longer than its idle timeout")
@click.option("--replica", is_flag=True, help="public reads from the private read replica (zhcharge db replica)")
@click.option("--pgbouncer", "through_pgbouncer", is_flag=True,
              help="connect through the private PgBouncer (zhcharge db pgbouncer)")
def serve(host: str | None, port: int | None, workers: int, keep_alive: int, replica: bool,
          through_pgbouncer: bool) -> None:
    """Serve the web application.

    Forwarding headers (X-Forwarded-For) are believed only from ZHCHARGE_TRUSTED_PROXIES, by the
    app itself (portal_site.edge), so uvicorn's own proxy-header handling is off. --replica and
    --pgbouncer set the ZHCHARGE_* variables of README "Running at scale" for the private cluster's
    replica and PgBouncer before the workers start."""
    import os

    import uvicorn

    from services.settings import ConfigurationError, check_production

    if replica or through_pgbouncer:
        from portal_site.serving import scale_env

        env = scale_env(load_settings().db, replica=replica, pgbouncer=through_pgbouncer)
        os.environ.update(env)  # the workers read their settings from the environment
        click.echo("scale-out: " + ", ".join(sorted(env)), err=True)
    settings = load_settings()
    try:
        check_production(settings)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None
    uvicorn.run("portal_site.app:create_app", factory=True, host=host or settings.app.host,
                port=port or settings.app.port, workers=workers, timeout_keep_alive=keep_alive, **UVICORN_OPTIONS)


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

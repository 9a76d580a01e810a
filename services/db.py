"""Engine, sessions and SQL files.

One engine per app (built from settings by :func:`make_engine`); big SQL lives in ``sql/queries``
and ``sql/functions`` and is read with :func:`read_sql`.

Behind PgBouncer in transaction mode (``ZHCHARGE_DB_PGBOUNCER``) a client connection is lent a
server connection for one transaction at a time, so nothing may live in a server session:

* no startup ``options`` (PgBouncer refuses them): the time zone is set once per client
  connection with ``SET TIME ZONE`` — one of the parameters PgBouncer tracks per client and
  carries over to whichever server connection runs the next transaction — and the statement
  timeout is the pool's (its ``connect_query``, or the role's default): a ``SET`` of it would stay
  on a server connection and leak to other clients;
* no ``PREPARE`` (``services.search.prepared`` reads ``zh_prepared`` from the pooled connection's
  ``info``: ``None`` means plain statements);
* locks that span transactions are held by an open transaction (:class:`TransactionLock`), not by
  a session; ``LISTEN`` runs on a direct connection (``ZHCHARGE_DIRECT_DATABASE_URL``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from services.dbcluster import database_url
from services.errors import DatabaseUnavailable
from services.settings import DatabaseSettings

__all__ = ["Database", "TransactionLock", "connect_args", "configure_engine", "make_engine", "read_sql",
           "is_disconnect"]


def connect_args(settings: DatabaseSettings, *, application_name: str = "zhcharge",
                 statement_timeout_ms: int | None = None, connect_timeout: int = 5) -> dict[str, Any]:
    """psycopg2 connection arguments: our session settings as startup options on a direct
    connection, none behind PgBouncer (see the module docstring and :func:`configure_engine`).

    >>> connect_args(DatabaseSettings(statement_timeout_ms=1000))["options"]
    '-c statement_timeout=1000 -c timezone=UTC'
    >>> "options" in connect_args(DatabaseSettings(pgbouncer=True))
    False
    """
    args: dict[str, Any] = {"connect_timeout": connect_timeout, "application_name": application_name}
    if not settings.pgbouncer:
        timeout = settings.statement_timeout_ms if statement_timeout_ms is None else statement_timeout_ms
        args["options"] = f"-c statement_timeout={timeout} -c timezone=UTC"
    return args


def configure_engine(engine: Engine, settings: DatabaseSettings) -> Engine:
    """What every new connection of ``engine`` needs beyond :func:`connect_args`: behind PgBouncer
    the UTC time zone (tracked by PgBouncer per client), and whether statements may be prepared."""
    prepared, pgbouncer = settings.use_prepared, settings.pgbouncer
    if prepared and not pgbouncer:
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, record: Any) -> None:
        if not prepared:
            record.info["zh_prepared"] = None  # services.search.prepared: run plain statements
        if pgbouncer:
            autocommit = dbapi_conn.autocommit
            dbapi_conn.autocommit = True
            with dbapi_conn.cursor() as cur:
                cur.execute("SET TIME ZONE 'UTC'")
            dbapi_conn.autocommit = autocommit

    return engine


def make_engine(settings: DatabaseSettings, *, url: str | None = None, start: bool = False,
                application_name: str = "zhcharge", statement_timeout_ms: int | None = None,
                **kw: Any) -> Engine:
    """The engine of ``url`` (default: the database of ``settings``); ``kw`` overrides the pool options."""
    options: dict[str, Any] = {
        "pool_size": settings.pool_size, "max_overflow": settings.max_overflow, "pool_pre_ping": True,
        "pool_recycle": 1800,
        "connect_args": connect_args(settings, application_name=application_name,
                                     statement_timeout_ms=statement_timeout_ms),
    }
    options.update(kw)
    return configure_engine(create_engine(url or database_url(settings, start=start), **options), settings)


class Database:
    """The engine and a session factory; ``session()`` maps lost connections to 503."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False)

    @property
    def primary(self) -> Database:
        """The database that takes writes (this one; a read-routed database returns its primary)."""
        return self

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        try:
            with self.sessionmaker.begin() as session:
                yield session
        except OperationalError as exc:
            raise DatabaseUnavailable("the database is unavailable; please retry shortly") from exc

    def dispose(self) -> None:
        self.engine.dispose()


class TransactionLock:
    """An advisory lock held by an open transaction on a connection of its own, for work that spans
    many transactions on other connections (a feed pull, a maintenance job); one holder across
    every process.

    ``pg_try_advisory_xact_lock`` in a transaction left open (idle in transaction: in READ COMMITTED
    it holds no snapshot, so it holds back no vacuum) rather than the session-level
    ``pg_try_advisory_lock``: behind PgBouncer in transaction mode a session lock stays on whichever
    server connection ran it once the transaction ends — held for nobody, and re-granted to any
    other client lent that server connection — while an open transaction keeps its server
    connection, and its lock, to itself. Released by ending the transaction; a lost connection
    releases it too.

    ``key_sql``: the lock's arguments in SQL, e.g. ``":k"`` or ``"hashtext('ns'), hashtext(:name)"``.
    """

    def __init__(self, engine: Engine, key_sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.engine = engine
        self._try = text(f"SELECT pg_try_advisory_xact_lock({key_sql})")
        self.params = dict(params or {})
        self.conn: Connection | None = None

    @property
    def held(self) -> bool:
        return self.conn is not None

    def acquire(self, wait_s: float = 0.0) -> bool:
        """Take the lock, trying for up to ``wait_s`` seconds; False when another holder keeps it."""
        deadline = time.monotonic() + wait_s
        conn = self.engine.connect()
        try:
            conn.begin()
            while not conn.execute(self._try, self.params).scalar():
                if time.monotonic() >= deadline:
                    conn.rollback()
                    conn.close()
                    return False
                time.sleep(0.2)
        except BaseException:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()
            raise
        self.conn = conn
        return True

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        except SQLAlchemyError:
            conn.invalidate()  # the connection (and its lock) died with the server
        finally:
            with contextlib.suppress(SQLAlchemyError):
                conn.close()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


@cache
def read_sql(name: str) -> str:
    """Text of ``sql/<name>`` (e.g. ``queries/healthz.sql``), read once."""
    return resources.files("sql").joinpath(name).read_text(encoding="utf-8")


def sql(name: str):  # noqa: ANN201 - a TextClause
    return text(read_sql(name))

"""Engine, sessions and SQL files.

One engine per app (built from settings by :func:`make_engine`); big SQL lives in ``sql/queries``
and ``sql/functions`` and is read with :func:`read_sql`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from importlib import resources

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from services.dbcluster import database_url
from services.errors import DatabaseUnavailable
from services.settings import DatabaseSettings

__all__ = ["Database", "make_engine", "read_sql", "is_disconnect"]


def make_engine(settings: DatabaseSettings, *, url: str | None = None, start: bool = False, **kw: object) -> Engine:
    engine = create_engine(
        url or database_url(settings, start=start),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "zhcharge",
                      "options": f"-c statement_timeout={settings.statement_timeout_ms} -c timezone=UTC"},
        **kw,
    )
    return engine


class Database:
    """The engine and a session factory; ``session()`` maps lost connections to 503."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker(engine, expire_on_commit=False)

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


def is_disconnect(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


@cache
def read_sql(name: str) -> str:
    """Text of ``sql/<name>`` (e.g. ``queries/healthz.sql``), read once."""
    return resources.files("sql").joinpath(name).read_text(encoding="utf-8")


def sql(name: str):  # noqa: ANN201 - a TextClause
    return text(read_sql(name))

"""Shared fixtures: every test session gets its own PostGIS database built by the migrations.

Without ``ZHCHARGE_DATABASE_URL`` the private cluster (``zhcharge db start``) hosts it; with it,
that server does (the role needs CREATEDB). Databases are named ``zhcharge_test_<random>`` so
several test runs can share one server, and are dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

from services import migrate
from services.db import Database
from services.dbcluster import Cluster, database_url, ensure_database
from services.settings import AppSettings, DatabaseSettings, FeedSettings, Settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"


def _server_url() -> str:
    settings = DatabaseSettings()
    if settings.embedded:
        Cluster(settings).start()
    return database_url(settings)


def create_database(name: str) -> str:
    """Create an empty database on the test server and return its URL."""
    return ensure_database(_server_url(), name, exist_ok=False)


def drop_database(name: str) -> None:
    url = make_url(_server_url())
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def db_url() -> Iterator[str]:
    """A fresh database at the newest schema, for the whole test session."""
    name = f"zhcharge_test_{os.getpid()}_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url)
    migrate.upgrade(engine)
    from services.geography import load_districts_into_db

    with engine.begin() as conn:
        load_districts_into_db(conn)
    engine.dispose()
    yield url
    drop_database(name)


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url, pool_size=5, max_overflow=10)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def database(engine: Engine) -> Database:
    return Database(engine)


def make_settings(db_url: str, tmp: Path, **app: object) -> Settings:
    return Settings(
        db=DatabaseSettings(database_url=db_url),
        app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp / "uploads", **app),
        feed=FeedSettings(backoff_s=0.01, timeout_s=5.0),
    )


@pytest.fixture(scope="session")
def settings(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(db_url, tmp_path_factory.mktemp("app"))


@pytest.fixture(scope="session")
def app(settings: Settings, database: Database):  # noqa: ANN201
    from portal_site.app import create_app

    return create_app(settings, database=database)


@pytest.fixture()
def client(app):  # noqa: ANN001, ANN201
    from litestar.testing import TestClient

    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def truncate(engine: Engine, *tables: str) -> None:
    """Empty tables (and what references them) between tests that need a clean slate."""
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE " + ", ".join(tables) + " RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- live servers and the browser (shared by every browser test) --------------------------------
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerThread:
    """uvicorn serving an ASGI app in a daemon thread on a free (or given) loopback port."""

    def __init__(self, app, port: int | None = None) -> None:  # noqa: ANN001
        import threading

        import uvicorn

        self.app = app
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="on", timeout_graceful_shutdown=2,
                                                    proxy_headers=False, server_header=False))  # as `zhcharge serve`
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@contextlib.contextmanager
def serve_app(app) -> Iterator[str]:  # noqa: ANN001
    """Serve an ASGI app with uvicorn in a daemon thread on a free loopback port; yields its URL."""
    with ServerThread(app) as srv:
        yield srv.url


@pytest.fixture(scope="module")
def server(settings: Settings, database: Database) -> Iterator[str]:
    """The whole app under uvicorn, for browser tests (modules may override it to seed data first)."""
    from portal_site.app import create_app

    with serve_app(create_app(settings, database=database)) as url:
        yield url


@pytest.fixture(scope="module")
def browser():  # noqa: ANN201
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()

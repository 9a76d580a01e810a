"""Scale-out fixtures: a private primary with a real streaming replica, an operator pushing envelopes
it builds itself (:class:`tests.pushing.Pusher`, given the client per call: a test chooses which
server, or which worker, each one reaches), and the queries each server ran (pg_stat_statements)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from services import migrate
from services.dbcluster import Cluster, ClusterError, Replica
from services.settings import PROJECT_ROOT, DatabaseSettings
from tests import pushing
from tests.conftest import free_port

Pusher = pushing.Pusher  # the scale tests import it from here


def free_ports(n: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < n:
        p = free_port()
        if p not in ports:
            ports.append(p)
    return ports


class Statements:
    """What one server ran, from pg_stat_statements (reset with :meth:`reset`)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")

    def reset(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT pg_stat_statements_reset()"))

    def calls(self, *fragments: str) -> int:
        """Calls of the statements whose text contains every fragment (case-insensitive)."""
        where = " AND ".join(f"query ILIKE :f{i}" for i in range(len(fragments)))
        with self.engine.connect() as conn:
            return int(conn.execute(text(f"SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE {where} "
                                         "AND query NOT ILIKE '%pg_stat_statements%'"),
                                    {f"f{i}": f"%{f}%" for i, f in enumerate(fragments)}).scalar())

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture(scope="module")
def cluster_pair() -> Iterator[tuple[Cluster, Replica]]:
    """A primary of our own (own directory and port, pg_stat_statements loaded), the schema migrated,
    and a real streaming replica of it (``pg_basebackup -R``)."""
    primary_port, replica_port = free_ports(2)
    data_dir = PROJECT_ROOT / ".data" / f"test-scale-{os.getpid()}"
    settings = DatabaseSettings(data_dir=data_dir, pg_port=primary_port, pg_replica_port=replica_port,
                                database_url=None)
    primary = Cluster(settings)
    try:
        primary.init()
        with (primary.data_dir / "postgresql.conf").open("a") as fh:
            fh.write("shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = 'all'\n"
                     "shared_buffers = 64MB\n")
        primary.start()
    except ClusterError as exc:
        shutil.rmtree(data_dir, ignore_errors=True)
        pytest.skip(f"no private cluster possible here: {exc.message}")
    replica = Replica(settings)
    try:
        engine = create_engine(primary.url())
        migrate.upgrade(engine)
        from services.geography import load_districts_into_db

        with engine.begin() as conn:
            load_districts_into_db(conn)
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        engine.dispose()
        replica.start()
        yield primary, replica
    finally:
        for c in (replica, primary):
            try:
                c.stop()
            except ClusterError:
                pass
        shutil.rmtree(data_dir, ignore_errors=True)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Poll ``predicate()`` until it returns something truthy; return it (fail after ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {predicate}")
        time.sleep(interval)


def tile_of(lng: float, lat: float, z: int) -> tuple[int, int, int]:
    """The Web Mercator tile (z, x, y) holding a WGS84 point."""
    import math

    n = 2 ** z
    return z, int((lng + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


ZHUHAI = (113.55, 22.27)


def tmp_dir(name: str) -> Path:
    return PROJECT_ROOT / ".data" / f"{name}-{os.getpid()}"

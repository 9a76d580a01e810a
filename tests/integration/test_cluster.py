"""Lifecycle of a private cluster: start twice, status, stop (a cluster of its own, on another port)."""

from __future__ import annotations

import os
import shutil
import socket

import psycopg2
import pytest

from services.dbcluster import Cluster
from services.settings import PROJECT_ROOT, DatabaseSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def cluster():  # noqa: ANN201
    data_dir = PROJECT_ROOT / ".data" / f"test-cluster-{os.getpid()}"
    c = Cluster(DatabaseSettings(data_dir=data_dir, pg_port=_free_port(), database_url=None))
    yield c
    try:
        c.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.skipif(bool(os.environ.get("ZHCHARGE_DATABASE_URL")), reason="external database in use")
def test_start_twice_status_stop(cluster: Cluster) -> None:
    assert cluster.status().initialised is False
    assert cluster.start() is True
    assert cluster.start() is False  # already running: a no-op
    status = cluster.status()
    assert status.running and status.pid
    conn = psycopg2.connect(host="127.0.0.1", port=cluster.port, user="zhcharge", password=cluster.password(),
                            dbname="zhcharge")
    with conn.cursor() as cur:
        cur.execute("SELECT datctype FROM pg_database WHERE datname = 'zhcharge'")
        assert cur.fetchone()[0] == "C.UTF-8"
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone()[0] == "127.0.0.1"
        cur.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'")
        assert cur.fetchone()[0] == 1
    conn.close()
    assert (cluster.data_dir / "log" / "postgresql.log").exists()
    assert cluster.stop() is True
    assert cluster.status().running is False
    assert cluster.stop() is False
    assert cluster.start() is True  # restarts on the existing data
    assert cluster.status().running


def test_missing_binaries_give_one_clear_sentence(monkeypatch) -> None:  # noqa: ANN001
    import services.dbcluster as dbc

    monkeypatch.setattr(dbc, "_SEARCH_DIRS", ("/nonexistent",))
    monkeypatch.setattr(dbc.shutil, "which", lambda name: None)
    with pytest.raises(dbc.ClusterError) as info:
        dbc._find_bindir()
    assert "apt-get install postgresql" in info.value.message

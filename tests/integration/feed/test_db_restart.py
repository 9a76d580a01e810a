"""The database going away: restarted in the middle of a sync, and down while operators push.

A private PostgreSQL cluster of its own (own data directory under .data/test-…, own port), so
stopping it disturbs nobody else's tests.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

import pytest
from sqlalchemy import create_engine, text

from services import migrate
from services.db import Database
from services.dbcluster import Cluster, ClusterError
from services.settings import PROJECT_ROOT, AppSettings, DatabaseSettings, FeedSettings, Settings

from .conftest import ServerThread, counts, forget_operators, free_port, make_sim, register_sim, sim_truth


@pytest.fixture(scope="module")
def cluster():  # noqa: ANN201
    data_dir = PROJECT_ROOT / ".data" / f"test-feed-{os.getpid()}"
    c = Cluster(DatabaseSettings(data_dir=data_dir, pg_port=free_port(), database_url=None))
    try:
        c.start()
    except ClusterError as exc:
        shutil.rmtree(data_dir, ignore_errors=True)
        pytest.skip(f"no private cluster possible here: {exc.message}")
    engine = create_engine(c.url())
    migrate.upgrade(engine)
    from services.geography import load_districts_into_db

    with engine.begin() as conn:
        load_districts_into_db(conn)
    engine.dispose()
    yield c
    try:
        c.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _settings(url: str, tmp, **feed: object) -> Settings:  # noqa: ANN001
    values = {"backoff_s": 0.05, "timeout_s": 5.0, "retries": 2, "db_retry_s": 40.0, "page_size": 10,
              "write_chunk": 20}
    values.update(feed)
    return Settings(db=DatabaseSettings(database_url=url),
                    app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp / "uploads"),
                    feed=FeedSettings(**values))


def _restart(cluster: Cluster, down_s: float) -> None:
    cluster.stop()
    time.sleep(down_s)
    cluster.start()


def test_database_restart_in_the_middle_of_a_sync(cluster, tmp_path) -> None:  # noqa: ANN001
    from ingest.sync import load_endpoints, sync_operator

    url = cluster.url()
    engine = create_engine(url, pool_pre_ping=True)
    sim = make_sim(stations=150, operators=1)
    with sim.server:
        register_sim(engine, sim)
        op_id = sim.operator_ids[0]
        sim.faults(slow_seconds=0.2)  # 15+ pages: about 3 s of paging, writes every 2 pages
        settings = _settings(url, tmp_path)
        with engine.connect() as conn:
            ep = load_endpoints(conn, op_id)[0]
        out = []
        t = threading.Thread(target=lambda: out.append(sync_operator(engine, settings, ep, full=True)))
        t.start()
        time.sleep(1.2)
        with engine.connect() as conn:
            partial = conn.execute(text("SELECT count(*) FROM stations")).scalar()
        _restart(cluster, 1.0)
        t.join(120)
        first = out[0]
        # Writes waited for the database and the run went on; had it failed, it would say so cleanly.
        assert first.ok or first.error, first
        sim.faults(reset=True)
        with engine.connect() as conn:
            ep = load_endpoints(conn, op_id)[0]
        second = sync_operator(engine, settings, ep, full=True)
        assert second.ok, second.error
        truth = sim_truth(sim)
        c = counts(engine, [op_id])
        assert c["active"] + c["rejected"] == truth["stations"]
        with engine.connect() as conn:
            dupes = conn.execute(text("SELECT count(*) - count(DISTINCT (operator_id, station_id)) FROM stations")).scalar()
            runs = conn.execute(text("SELECT ok, error FROM sync_runs WHERE operator_id = :op ORDER BY id"),
                                {"op": op_id}).all()
            conns = conn.execute(text("SELECT count(*) FROM connectors c JOIN stations s ON s.id = c.station_pk "
                                      "WHERE s.feed_state = 'active'")).scalar()
        assert dupes == 0 and runs[-1].ok is True and len(runs) == 2
        assert conns == sum(len(s.connectors()) for s in sim.state.operators[op_id].stations) \
            - _rejected_connectors(engine, sim, op_id)
        assert 0 < partial or first.ok  # the restart happened while the run was writing
        if first.ok:
            assert second.inserted == 0
        forget_operators(engine, [op_id])
    engine.dispose()


def _rejected_connectors(engine, sim, op_id) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        rejected = set(conn.execute(text("SELECT station_id FROM stations WHERE feed_state = 'rejected' "
                                         "AND operator_id = :op"), {"op": op_id}).scalars())
    return sum(len(s.connectors()) for s in sim.state.operators[op_id].stations if s.station_id in rejected)


def _synced_and_pushing(engine, settings: Settings, sim, url: str) -> str:  # noqa: ANN001
    """Register the simulator's one operator, sync it in full and point its pushes at ``url``."""
    from ingest.sync import sync_all

    creds = register_sim(engine, sim)
    op_id = sim.operator_ids[0]
    assert all(r.ok for r in sync_all(engine, settings, operator_id=op_id, full=True))
    sim.admin("POST", "/_admin/push-targets", json={"operator_id": op_id, "base_url": url,
                                                    **{k: v for k, v in creds[op_id].items() if k != "operator_id"}})
    return op_id


def test_pushes_while_the_database_is_down(cluster, tmp_path) -> None:  # noqa: ANN001
    from portal_site.app import create_app

    url = cluster.url()
    engine = create_engine(url, pool_pre_ping=True)
    settings = _settings(url, tmp_path, page_size=50, write_chunk=1000)
    sim = make_sim(stations=40, operators=1, push_retries=8)
    sim.state.config.push_backoff_seconds = 0.5
    app = create_app(settings, database=Database(engine))
    with sim.server, ServerThread(app) as web:
        op_id = _synced_and_pushing(engine, settings, sim, web.url)
        warm = sim.admin("POST", "/_admin/tick", json={"changes": 1, "wait": True})
        assert warm["pushes_drained"] and sim.admin("GET", "/_admin/pushes")["acknowledged"] == 1

        cluster.stop()
        try:
            down = sim.admin("POST", "/_admin/tick", json={"changes": 1})
            time.sleep(0.3)
            down2 = sim.admin("POST", "/_admin/tick", json={"changes": 1})
            time.sleep(1.5)
            stats = sim.admin("GET", "/_admin/pushes")
            assert stats["acknowledged"] == 1  # nothing acknowledged while nothing can be stored
            assert stats["retries"] >= 1 and stats["failed"] == 0
            assert "Ret -1" in (stats["operators"][op_id]["last_error"] or "")
        finally:
            cluster.start()
        drained = sim.admin("POST", "/_admin/tick", json={"changes": 0, "wait": True, "wait_seconds": 60})
        assert drained["pushes_drained"]
        stats = sim.admin("GET", "/_admin/pushes")
        assert stats["failed"] == 0 and stats["acknowledged"] == 3
        with engine.connect() as conn:
            for change in down["changed"] + down2["changed"]:
                got = conn.execute(text("SELECT status, source FROM connector_status WHERE operator_id = :op "
                                        "AND connector_id = :c"), {"op": op_id, "c": change["ConnectorID"]}).one()
                truth = next(x for x in sim.state.operators[op_id].station(change["StationID"]).connectors()
                             if x.connector_id == change["ConnectorID"])
                assert got.status == truth.status
        forget_operators(engine, [op_id])
    engine.dispose()


def test_push_storm_and_the_api_during_an_outage(cluster, tmp_path) -> None:  # noqa: ANN001
    """Issue 13: while the database is down the receiver answers Ret -1 (HTTP 503), the open API and
    the health check answer 503 with Retry-After and a plain JSON message (no stack trace); after
    the restart every acknowledged push is stored exactly once."""
    from litestar.testing import TestClient

    from portal_site.app import create_app

    url = cluster.url()
    engine = create_engine(url, pool_pre_ping=True)
    settings = _settings(url, tmp_path, page_size=50, write_chunk=1000)
    sim = make_sim(stations=60, operators=1, push_retries=12)
    sim.state.config.push_backoff_seconds = 0.5
    app = create_app(settings, database=Database(engine))
    with sim.server, ServerThread(app) as web, TestClient(app, base_url="http://127.0.0.1:8000") as api:
        op_id = _synced_and_pushing(engine, settings, sim, web.url)
        with engine.connect() as conn:
            seen_before = conn.execute(text("SELECT count(*) FROM feed_push_seen WHERE operator_id = :o"),
                                       {"o": op_id}).scalar()
        storm = [sim.admin("POST", "/_admin/tick", json={"changes": 15}) for _ in range(3)]
        cluster.stop()
        try:
            storm += [sim.admin("POST", "/_admin/tick", json={"changes": 15}) for _ in range(4)]
            time.sleep(1.0)
            for path in ("/api/v1/stations", "/api/v1/stats", "/healthz"):
                r = api.get(path)
                assert r.status_code == 503, (path, r.status_code, r.text[:200])
                assert r.headers.get("retry-after"), path
                assert "Traceback" not in r.text and "psycopg2" not in r.text and "OperationalError" not in r.text
            stats = sim.admin("GET", "/_admin/pushes")
            assert "Ret -1" in (stats["operators"][op_id]["last_error"] or "")
        finally:
            cluster.start()
        drained = sim.admin("POST", "/_admin/tick", json={"changes": 0, "wait": True, "wait_seconds": 90})
        assert drained["pushes_drained"]
        stats = sim.admin("GET", "/_admin/pushes")
        assert stats["failed"] == 0
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*) FROM feed_push_seen WHERE operator_id = :o"),
                                  {"o": op_id}).scalar() - seen_before
            changed = {ch["ConnectorID"] for t in storm for ch in t["changed"]}
            rows = dict(conn.execute(text("SELECT connector_id, status FROM connector_status WHERE operator_id = :op "
                                          "AND connector_id = ANY(:ids)"), {"op": op_id, "ids": list(changed)}).all())
        assert stored == stats["acknowledged"] and stored >= 15 * 7 * 0.9  # acknowledged = stored, once each
        truth = {x.connector_id: x.status for s in sim.state.operators[op_id].stations for x in s.connectors()}
        assert all(rows[cid] == truth[cid] for cid in changed)
        forget_operators(engine, [op_id])
    engine.dispose()

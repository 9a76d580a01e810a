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


def test_pushes_while_the_database_is_down(cluster, tmp_path) -> None:  # noqa: ANN001
    from ingest.sync import sync_all
    from portal_site.app import create_app

    url = cluster.url()
    engine = create_engine(url, pool_pre_ping=True)
    settings = _settings(url, tmp_path, page_size=50, write_chunk=1000)
    sim = make_sim(stations=40, operators=1, push_retries=8)
    sim.state.config.push_backoff_seconds = 0.5
    app = create_app(settings, database=Database(engine))
    with sim.server, ServerThread(app) as web:
        creds = register_sim(engine, sim)
        op_id = sim.operator_ids[0]
        assert all(r.ok for r in sync_all(engine, settings, operator_id=op_id, full=True))
        c = creds[op_id]
        sim.admin("POST", "/_admin/push-targets", json={"operator_id": op_id, "base_url": web.url,
                                                        **{k: v for k, v in c.items() if k != "operator_id"}})
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

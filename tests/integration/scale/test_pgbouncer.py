"""Issue 18, item 2: the app behind a real PgBouncer in transaction mode.

A PgBouncer of our own (config in its own directory, its own port) in front of the test database's
server, with fewer server connections than the app opens client connections, so a transaction
lands on whichever server connection is free: anything kept in a server session (a SET, a PREPARE,
a session advisory lock, LISTEN) would break. The API, the receiver (the simulator pushing over
HTTP), the sync and the feed's lock all run through it.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg2
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.engine import Engine

from ingest.runs import OperatorLock
from ingest.sync import load_endpoints, sync_all, sync_operator
from services.db import Database, make_engine
from services.pgbouncer import PgBouncer, PgBouncerError
from services.settings import PROJECT_ROOT, AppSettings, DatabaseSettings, FeedSettings, SearchSettings, Settings
from tests.conftest import ServerThread, free_port
from tests.integration.feed.conftest import forget_operators, make_sim, register_sim

from .conftest import ZHUHAI, tile_of, wait_for


def _bouncer(db_url: str, name: str, pool_size: int) -> PgBouncer:
    u = make_url(db_url)
    return PgBouncer(PROJECT_ROOT / ".data" / f"test-{name}-{os.getpid()}", port=free_port(),
                     server_host=u.host or "127.0.0.1", server_port=u.port or 5432, user=u.username or "",
                     password=u.password or "", pool_size=pool_size, statement_timeout_ms=30_000)


@pytest.fixture(scope="module")
def bouncer(db_url: str) -> Iterator[PgBouncer]:
    b = _bouncer(db_url, "pgbouncer", pool_size=3)
    try:
        b.start()
    except PgBouncerError as exc:
        pytest.skip(exc.message)
    try:
        yield b
    finally:
        b.stop()
        shutil.rmtree(b.directory, ignore_errors=True)


def _settings(db_url: str, bouncer: PgBouncer, tmp: Any) -> Settings:
    return Settings(db=DatabaseSettings(database_url=bouncer.url(make_url(db_url).database), pgbouncer=True,
                                        direct_database_url=db_url, pool_size=8, max_overflow=4),
                    app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp / "uploads"),
                    feed=FeedSettings(backoff_s=0.01, timeout_s=5.0, page_size=20, write_chunk=200),
                    search=SearchSettings(anonymous_rate_per_min=100_000))


def _transactions(bouncer: PgBouncer, database: str) -> int:
    """Transactions PgBouncer has passed to ``database`` (its admin console's SHOW STATS)."""
    conn = psycopg2.connect(host="127.0.0.1", port=bouncer.port, user=bouncer.user, password=bouncer.password,
                            dbname="pgbouncer")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW STATS")
            cols = [d.name for d in cur.description]
            return sum(int(dict(zip(cols, r))["total_xact_count"]) for r in cur.fetchall()
                       if dict(zip(cols, r))["database"] == database)
    finally:
        conn.close()


def test_api_receiver_and_sync_through_pgbouncer(db_url: str, bouncer: PgBouncer, tmp_path) -> None:  # noqa: ANN001
    from portal_site.app import create_app

    settings = _settings(db_url, bouncer, tmp_path)
    assert settings.db.use_prepared is False
    database = make_url(db_url).database
    engine = make_engine(settings.db)  # through PgBouncer, as the CLI and the app build it
    with engine.connect() as conn:
        assert conn.connection.info["zh_prepared"] is None  # plain statements on these connections
        assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
    sim = make_sim(stations=40, operators=1, push_retries=8)
    before = _transactions(bouncer, database)
    app = create_app(settings)
    with sim.server, ServerThread(app) as web:
        creds = register_sim(engine, sim)
        op = sim.operator_ids[0]
        try:
            # the sync, through PgBouncer
            assert all(r.ok for r in sync_all(engine, settings, operator_id=op, full=True))
            svc = app.state.tiles
            assert svc.versions.listening and not svc.renderer.prepare  # LISTEN on the direct URL
            # the receiver: the simulator pushes status changes over HTTP
            sim.admin("POST", "/_admin/push-targets", json={"operator_id": op, "base_url": web.url,
                                                            **{k: v for k, v in creds[op].items() if k != "operator_id"}})
            with engine.connect() as conn:
                pks = list(conn.execute(text("SELECT id FROM stations WHERE operator_id = :op AND feed_state = "
                                             "'active' ORDER BY id"), {"op": op}).scalars())
            tile = "/tiles/stations/{}/{}/{}.mvt".format(*tile_of(*ZHUHAI, 9))  # unfiltered: PREPAREd directly
            etag = httpx.get(web.url + tile).headers["etag"]
            ticked = sim.admin("POST", "/_admin/tick", json={"changes": 20, "wait": True, "wait_seconds": 30})
            assert ticked["pushes_drained"] and sim.admin("GET", "/_admin/pushes")["failed"] == 0
            # a connector drawn twice in one tick holds its last change (the pushes go one at a time)
            last = {ch["ConnectorID"]: ch["Status"] for ch in ticked["changed"]}
            with engine.connect() as conn:
                for cid, status in last.items():
                    got = conn.execute(text("SELECT status FROM connector_status WHERE operator_id = :op "
                                            "AND connector_id = :c"), {"op": op, "c": cid}).scalar()
                    assert got == status, cid
            wait_for(lambda: httpx.get(web.url + tile).headers["etag"] != etag, timeout=5)

            # the API: more concurrent requests than PgBouncer has server connections, each of the
            # statements that used to be PREPAREd (station detail, unfiltered tiles) many times over
            def call(i: int) -> int:
                paths = [f"/api/v1/stations/{pks[i % len(pks)]}",
                         "/tiles/stations/{}/{}/{}.mvt?v={}".format(*tile_of(*ZHUHAI, 10 + i % 6), i),
                         f"/api/v1/stations?operator={op}&limit={1 + i % 7}", "/api/v1/stats",
                         f"/map/stations/{pks[i % len(pks)]}.json"]
                with httpx.Client(base_url=web.url, timeout=30) as c:
                    return max(c.get(p).status_code for p in paths)

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                assert set(pool.map(call, range(48))) == {200}
            assert _transactions(bouncer, database) - before > 200  # it all went through PgBouncer
        finally:
            forget_operators(engine, [op])
    engine.dispose()


def test_the_feed_lock_holds_through_pgbouncer(db_url: str, tmp_path) -> None:  # noqa: ANN001
    b = _bouncer(db_url, "pgbouncer-lock", pool_size=2)
    try:
        b.start()
    except PgBouncerError as exc:
        pytest.skip(exc.message)
    engine = make_engine(DatabaseSettings(database_url=b.url(make_url(db_url).database), pgbouncer=True),
                         pool_size=4)
    try:
        # why not a session lock: once its transaction ends the server connection returns to the pool
        # still holding it, and the next client lent that connection "gets" the lock too
        with engine.connect() as one, engine.connect() as two:
            assert one.execute(text("SELECT pg_try_advisory_lock(4242)")).scalar()
            one.commit()
            assert two.execute(text("SELECT pg_try_advisory_lock(4242)")).scalar()  # broken: both hold it
            two.commit()
        # the feed's lock is held by an open transaction: one holder across clients
        first, second = OperatorLock(engine, "MA-LOCK"), OperatorLock(engine, "MA-LOCK")
        assert first.acquire()
        assert not second.acquire(0.5)
        direct = make_engine(DatabaseSettings(database_url=db_url), pool_size=1)
        with direct.connect() as conn:  # the holder is idle in transaction and holds no snapshot (no vacuum held back)
            held = conn.execute(text("SELECT count(*) FILTER (WHERE backend_xmin IS NULL), count(*) FROM pg_stat_activity "
                                     "WHERE datname = current_database() AND state = 'idle in transaction'")).one()
        direct.dispose()
        assert held[1] >= 1 and held[0] == held[1]
        got = threading.Event()
        t = threading.Thread(target=lambda: second.acquire(10) and got.set())
        t.start()
        assert not got.wait(0.5)
        first.release()
        t.join(15)
        assert got.is_set()
        second.release()
        with engine.connect() as conn:  # and released
            assert conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtext('zhcharge.feed'), "
                                     "hashtext('MA-LOCK'))")).scalar()
    finally:
        engine.dispose()
        b.stop()
        shutil.rmtree(b.directory, ignore_errors=True)


def test_one_pull_per_operator_through_pgbouncer(db_url: str, bouncer: PgBouncer, tmp_path) -> None:  # noqa: ANN001
    settings = _settings(db_url, bouncer, tmp_path)
    engine = make_engine(settings.db)
    sim = make_sim(stations=30, operators=1)
    with sim.server:
        register_sim(engine, sim)
        op = sim.operator_ids[0]
        try:
            with engine.connect() as conn:
                ep = load_endpoints(conn, op)[0]
            sim.faults(slow_seconds=0.3)  # a pull of a few seconds
            results: list[Any] = []
            threads = [threading.Thread(target=lambda: results.append(
                sync_operator(engine, settings, ep, full=True, lock_wait_s=0))) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            ran = [r for r in results if not r.skipped]
            skipped = [r for r in results if r.skipped]
            assert len(ran) == 1 and ran[0].ok, results
            assert len(skipped) == 1 and "another process" in skipped[0].skipped
        finally:
            sim.faults(reset=True)
            forget_operators(engine, [op])
    engine.dispose()


def test_database_object_reads_plain_statements(db_url: str, bouncer: PgBouncer) -> None:
    """The station detail's statements (PREPAREd on direct connections) run plain behind PgBouncer."""
    from services.search.prepared import prepared_rows

    engine = make_engine(DatabaseSettings(database_url=bouncer.url(make_url(db_url).database), pgbouncer=True))
    try:
        for _ in range(20):
            with Database(engine).engine.connect() as conn:
                assert prepared_rows(conn, "SELECT %(n)s::int + 1 AS m", {"n": 41}) == [{"m": 42}]
                mine = conn.execute(text("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'zh_%'")).scalar()
                assert mine == 0
    finally:
        engine.dispose()

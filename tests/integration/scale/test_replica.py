"""Issue 18, item 1: a real streaming replica (``pg_basebackup -R``) serving the public reads.

A primary of our own with a replica of it (``cluster_pair``), the app built from settings alone
(``ZHCHARGE_READ_DATABASE_URL`` = the replica) under uvicorn, the operator simulator pushing to it.
Where each route class's queries ran is read from ``pg_stat_statements`` on each server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx
import mapbox_vector_tile
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from ingest.sync import sync_all
from services.dbcluster import Cluster, Replica
from services.settings import AppSettings, DatabaseSettings, FeedSettings, Settings
from tests.accounts_helpers import create_regulator, csrf_from, login
from tests.conftest import ServerThread
from tests.integration.feed.conftest import Sim, forget_operators, make_sim, register_sim

from .conftest import Pusher, Statements, tile_of, wait_for

MAX_LAG_S = 1.5
# what the replica runs whatever the requests: the monitor's checks
MONITOR = ("pg_is_in_recovery", "FROM data_versions")


@dataclass
class World:
    primary: Cluster
    replica: Replica
    engine: Engine  # the primary, for the test's own reads and writes
    url: str  # the app
    sim: Sim
    creds: dict
    op: str
    ocpi_token: str
    on_primary: Statements
    on_replica: Statements

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def health(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/healthz", timeout=30).json()

    def replica_sql(self, sql: str) -> Any:
        eng = create_engine(self.replica.url(), isolation_level="AUTOCOMMIT")
        try:
            with eng.connect() as conn:
                return conn.execute(text(sql)).scalar()
        finally:
            eng.dispose()

    def replica_calls_besides_the_monitor(self) -> int:
        with self.on_replica.engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query NOT ILIKE '%pg_stat_statements%' "
                + "".join(f" AND query NOT ILIKE '%{m}%'" for m in MONITOR))).scalar())


@pytest.fixture(scope="module")
def world(cluster_pair, tmp_path_factory) -> Any:  # noqa: ANN001
    from portal_site.app import create_app
    from services.ocpi.parties import add_party

    primary, replica = cluster_pair
    tmp = tmp_path_factory.mktemp("replica-app")
    settings = Settings(db=DatabaseSettings(database_url=primary.url(), read_database_url=replica.url(),
                                            read_max_lag_s=MAX_LAG_S, read_check_s=0.2, pool_size=4),
                        app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp / "uploads"),
                        feed=FeedSettings(backoff_s=0.01, timeout_s=5.0, page_size=50, write_chunk=1000))
    engine = create_engine(primary.url(), pool_pre_ping=True)
    sim = make_sim(stations=30, operators=1, push_retries=12)
    sim.state.config.push_backoff_seconds = 0.3
    app = create_app(settings)  # every engine from the settings, as `zhcharge serve` builds them
    with sim.server, ServerThread(app) as web:
        creds = register_sim(engine, sim)
        op = sim.operator_ids[0]
        assert all(r.ok for r in sync_all(engine, settings, operator_id=op, full=True))
        sim.admin("POST", "/_admin/push-targets", json={"operator_id": op, "base_url": web.url,
                                                        **{k: v for k, v in creds[op].items() if k != "operator_id"}})
        with engine.begin() as conn:
            _, token = add_party(conn, "CN", "TST", "scale test")
        w = World(primary, replica, engine, web.url, sim, creds[op], op, token,
                  Statements(primary.url()), Statements(replica.url()))
        wait_for(lambda: w.health().get("reads_from") == "replica")
        yield w
        forget_operators(engine, [op])
        w.on_primary.dispose()
        w.on_replica.dispose()
    engine.dispose()


def _station(w: World, status: int = 1) -> dict[str, Any]:
    """A public station of the simulated operator with a connector in ``status``, and where it is."""
    with w.engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT s.id AS pk, s.station_id, s.name, ST_X(s.geom) AS lng, ST_Y(s.geom) AS lat, c.connector_id, "
            "s.district_adcode AS district FROM stations s JOIN connectors c ON c.station_pk = s.id "
            "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
            "WHERE s.operator_id = :op AND s.feed_state = 'active' AND cs.status = :st ORDER BY s.id LIMIT 1"),
            {"op": w.op, "st": status}).mappings().one())


def _public_reads(w: World, c: httpx.Client, salt: int, st: dict[str, Any] | None = None) -> dict[str, int]:
    """One request of each kind of public read (about station ``st``); returns path -> status. ``salt``
    makes the tiles and the searches new ones (no cache hit)."""
    st = st or _station(w)
    z, x, y = tile_of(st["lng"], st["lat"], 13 + salt % 4)
    ocpi = {"Authorization": f"Token {w.ocpi_token}"}
    out = {}
    for path, params, headers in [
        ("/api/v1/stations", {"q": st["name"][:2], "limit": 5 + salt}, {}),
        ("/api/v1/stations", {"district": st["district"], "facets": "true", "limit": 3 + salt}, {}),
        (f"/api/v1/stations/{st['pk']}", {}, {}),
        ("/api/v1/stations.geojson", {"limit": 10 + salt}, {}),
        ("/api/v1/reference", {}, {}),
        ("/api/v1/stats", {}, {}),
        (f"/tiles/stations/{z}/{x}/{y}.mvt", {}, {}),
        ("/ocpi/2.2.1/locations", {"limit": 2 + salt}, ocpi),
        ("/", {}, {"accept": "text/html"}),
        ("/api/v1/export/stations.csv", {}, {}),
    ]:
        r = c.get(path, params=params, headers=headers)
        out[f"{path}?{params}"] = r.status_code
    return out


def test_each_route_class_queries_where_it_should(world: World) -> None:
    w = world
    P, R = w.on_primary, w.on_replica
    with w.client() as c:
        P.reset()
        R.reset()
        statuses = _public_reads(w, c, 0)
        assert set(statuses.values()) == {200}, statuses
        # public reads ran on the replica, and none of them on the primary
        for what in ("station_search", "ST_AsMVT", "FROM news", "LEFT JOIN ocpi_cpo_parties"):
            assert R.calls(what) > 0, what
            assert P.calls(what) == 0, (what, P.calls(what))
        # what they write (rate-limit windows, OCPI credentials bookkeeping) went to the primary
        assert P.calls("api_rate") >= 7 and P.calls("ocpi_parties") >= 1
        with R.engine.connect() as conn:
            apps = set(conn.execute(text("SELECT application_name FROM pg_stat_activity "
                                         "WHERE datname = 'zhcharge'")).scalars())
        assert {"zhcharge-read", "zhcharge-tiles", "zhcharge-monitor"} <= apps, apps

        # writes, the receiver, logins and the back office: the primary only
        P.reset()
        R.reset()
        st = _station(w)
        p = Pusher(w.creds)
        p.get_token(c)
        resp, ans = p.post(c, "notification_stationStatus", p.status_envelope(st["connector_id"], 3))
        assert resp.status_code == 200 and ans.ret == 0
        reg = create_regulator(w.engine)
        bad = c.post("/login", data={"login": reg["account_name"], "password": "wrong-password-1",
                                     "_csrf": csrf_from(c)}, headers={"accept": "text/html"})
        assert bad.status_code in (200, 400, 401, 403, 429)
        login(c, reg["account_name"])
        assert c.get("/admin/stations", headers={"accept": "text/html"}).status_code == 200
        assert P.calls("feed_store_status_push") == 1 and P.calls("login_failures") >= 1
        assert P.calls("user_sessions") >= 1
        assert w.replica_calls_besides_the_monitor() == 0


def test_a_pushed_status_shows_on_the_replica_backed_api_within_the_lag_bound(world: World) -> None:
    w = world
    st = _station(w)
    z, x, y = tile_of(st["lng"], st["lat"], 15)
    tile = f"/tiles/stations/{z}/{x}/{y}.mvt"
    with w.client() as c:
        before = c.get(tile)
        assert before.status_code == 200
        etag = before.headers["etag"]
        p = Pusher(w.creds)
        p.get_token(c)
        t0 = time.monotonic()
        _, ans = p.post(c, "notification_stationStatus", p.status_envelope(st["connector_id"], 3))
        assert ans.ret == 0

        def replica_reads() -> int:
            return w.health()["read_replica"]["reads"].get("replica", 0)

        def shown_by_the_replica() -> bool:
            # a read right after the push may go to the primary (the router's version check: the
            # replica has not replayed it yet); wait for one the replica answered
            before = replica_reads()
            body = c.get(f"/api/v1/stations/{st['pk']}").json()
            return replica_reads() > before and any(cn["connector_id"] == st["connector_id"] and cn["status"] == 3
                                                    for eq in body["equipment"] for cn in eq["connectors"])

        wait_for(shown_by_the_replica, timeout=MAX_LAG_S)
        elapsed = time.monotonic() - t0
        assert elapsed < MAX_LAG_S
        # the tile has a new ETag and what it says is new (never an old tile under the new tag)
        after = c.get(tile)
        assert after.headers["etag"] != etag
        feats = mapbox_vector_tile.decode(after.content)["stations"]["features"]
        mine = next(f["properties"] for f in feats if f["id"] == st["pk"])
        with w.engine.connect() as conn:
            free = conn.execute(text("SELECT connectors_free FROM stations WHERE id = :id"), {"id": st["pk"]}).scalar()
        assert mine["connectors_free"] == free


def test_reads_fall_back_to_the_primary_when_the_replica_stops(world: World) -> None:
    w = world
    w.replica.stop()
    try:
        with w.client() as c:
            w.on_primary.reset()
            for salt in (1, 2):  # at once (before any check noticed) and again
                statuses = _public_reads(w, c, salt)
                assert set(statuses.values()) == {200}, statuses
            h = w.health()
            assert h["status"] == "ok" and h["reads_from"] == "primary"
            assert h["read_replica"]["state"] == "down" and not h["read_replica"]["serving_reads"]
            assert w.on_primary.calls("station_search") > 0 and w.on_primary.calls("ST_AsMVT") > 0
    finally:
        w.replica.start()
    wait_for(lambda: w.health().get("reads_from") == "replica", timeout=15)
    with w.client() as c:
        w.on_replica.reset()
        assert set(_public_reads(w, c, 3).values()) == {200}
        assert w.on_replica.calls("station_search") > 0


def test_a_replica_further_behind_than_the_bound_serves_no_reads(world: World) -> None:
    w = world
    st = _station(w)
    w.replica_sql("SELECT pg_wal_replay_pause()")
    try:
        with w.client() as c:
            p = Pusher(w.creds)
            p.get_token(c)
            _, ans = p.post(c, "notification_stationStatus", p.status_envelope(st["connector_id"], 3))
            assert ans.ret == 0
            h = wait_for(lambda: (h := w.health())["read_replica"]["state"] == "lagging" and h,
                         timeout=MAX_LAG_S + 5)
            assert h["reads_from"] == "primary" and h["read_replica"]["lag_s"] >= MAX_LAG_S  # rounded to ms
            w.on_primary.reset()
            w.on_replica.reset()
            assert set(_public_reads(w, c, 4).values()) == {200}
            assert w.on_primary.calls("station_search") > 0 and w.replica_calls_besides_the_monitor() == 0
    finally:
        w.replica_sql("SELECT pg_wal_replay_resume()")
    h = wait_for(lambda: (h := w.health())["reads_from"] == "replica" and h, timeout=10)
    assert h["read_replica"]["state"] == "streaming" and h["read_replica"]["lag_s"] <= MAX_LAG_S


def test_with_the_primary_down_reads_keep_working_and_writes_answer_503(world: World) -> None:
    w = world
    st = _station(w)
    with w.client() as c:
        p = Pusher(w.creds)
        p.get_token(c)
        c.get("/", headers={"accept": "text/html"})  # a visitor's session cookie
        # every route read once with the primary up: OCPI assigns a new operator its publishing party
        # on the first read (a write), and with the primary down only operators seen before are listed
        assert set(_public_reads(w, c, 7, st).values()) == {200}
        acknowledged = w.sim.admin("GET", "/_admin/pushes")["acknowledged"]
        w.primary.stop()
        try:
            wait_for(lambda: (h := w.health())["status"] == "degraded" and h["reads_from"] == "replica", timeout=10)
            for salt in (5, 6):
                statuses = _public_reads(w, c, salt, st)
                assert set(statuses.values()) == {200}, statuses
            h = httpx.get(f"{w.url}/healthz")
            assert h.status_code == 200 and h.json()["database"]["reachable"] is False
            # writes: nothing acknowledged that was not stored
            resp, ans = p.post(c, "notification_stationStatus", p.status_envelope(st["connector_id"], 2))
            assert resp.status_code == 503 and ans.ret == -1
            w.sim.admin("POST", "/_admin/tick", json={"changes": 2})
            r = c.post("/login", data={"login": "x", "password": "y", "_csrf": "z"}, headers={"accept": "text/html"})
            assert r.status_code in (403, 503)  # the CSRF check or the database: never a login
            time.sleep(0.5)
            assert w.sim.admin("GET", "/_admin/pushes")["acknowledged"] == acknowledged
        finally:
            w.primary.start()
        wait_for(lambda: w.health()["database"]["reachable"], timeout=15)
        drained = w.sim.admin("POST", "/_admin/tick", json={"changes": 0, "wait": True, "wait_seconds": 60})
        assert drained["pushes_drained"]
        assert w.sim.admin("GET", "/_admin/pushes")["acknowledged"] >= acknowledged + 2


def test_the_cli_and_the_serving_helper(world: World, tmp_path) -> None:  # noqa: ANN001
    """`zhcharge db replica …` and `zhcharge db pgbouncer …` on this private cluster, and
    `zhcharge serve --workers 2 --replica --pgbouncer` started by the benchmarks' helper."""
    import psycopg2
    from click.testing import CliRunner

    from portal_site.cli import main
    from portal_site.serving import AppProcess
    from tests.conftest import free_port

    s = world.primary.settings
    env = {"ZHCHARGE_DATABASE_URL": None, "ZHCHARGE_DATA_DIR": str(s.data_dir), "ZHCHARGE_PG_PORT": str(s.pg_port),
           "ZHCHARGE_PG_REPLICA_PORT": str(world.replica.port), "ZHCHARGE_PGBOUNCER_PORT": str(free_port())}
    cli = CliRunner()
    # the replica may still be reconnecting to a primary that restarted (the test before stops it): its
    # status says so until its WAL receiver streams again (it retries every 5 s)
    out = wait_for(lambda: (o := cli.invoke(main, ["db", "replica", "status"], env=env)).exit_code == 0
                   and "streaming from" in o.output and o, timeout=30, interval=0.5)
    url = cli.invoke(main, ["db", "replica", "url"], env=env).output.strip()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_is_in_recovery()")
        assert cur.fetchone()[0] is True
    out = cli.invoke(main, ["db", "pgbouncer", "start"], env=env)
    assert out.exit_code == 0 and "transaction pooling" in out.output, out.output
    try:
        for args, in_recovery in ((["db", "pgbouncer", "url"], False), (["db", "pgbouncer", "url", "--replica"], True)):
            with psycopg2.connect(cli.invoke(main, args, env=env).output.strip()) as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_is_in_recovery()")
                assert cur.fetchone()[0] is in_recovery
        app_env = {**env, "ZHCHARGE_ENV": "test", "ZHCHARGE_RUN_SCHEDULER": "false",
                   "ZHCHARGE_UPLOAD_DIR": str(tmp_path / "uploads")}
        with AppProcess(workers=2, env=app_env, args=["--replica", "--pgbouncer"], log=tmp_path / "serve.log") as app:
            h = httpx.get(f"{app.url}/healthz").json()
            assert h["reads_from"] == "replica" and h["read_replica"]["state"] == "streaming", h
            world.on_replica.reset()
            with httpx.Client(base_url=app.url) as c:  # one connection: one worker
                assert c.get("/api/v1/stations", params={"limit": 3}).status_code == 200
                reads = c.get("/healthz").json()["read_replica"]["reads"]
            assert reads.get("replica") == 1 and world.on_replica.calls("station_search") > 0, reads
    finally:
        assert cli.invoke(main, ["db", "pgbouncer", "stop"], env=env).exit_code == 0


def test_a_replica_behind_every_sample_is_not_called_streaming() -> None:
    """The lag from the monitor's samples of the primary's WAL position (no database needed): a
    monitor that has just started holds one sample taken a moment ago, and a replica behind it may be
    disconnected and far behind, so its lag is unknown (state 'starting', no reads) until it replays
    past a sample or the samples show it beyond the bound."""
    from services.routing import ReplicaMonitor

    settings = DatabaseSettings(read_max_lag_s=5.0, read_check_s=1.0)
    m = ReplicaMonitor("postgresql+psycopg2://u:p@127.0.0.1:1/db", "postgresql+psycopg2://u:p@127.0.0.1:2/db", settings)
    m._samples.append((100.0, 5000))
    assert m._lag(4000, 100.01) is None  # behind the only sample, taken 10 ms ago: unknown
    assert m._lag(5000, 100.01) == 0.0  # replayed the newest sample
    m._samples.append((101.0, 6000))
    assert m._lag(5500, 101.2) == pytest.approx(1.2)  # past the first sample only: 1.2 s behind
    assert m._lag(4000, 103.0) is None  # behind both, for at least 3 s: within the bound or not, unknown
    assert m._lag(4000, 106.0) == pytest.approx(6.0)  # behind both for at least 6 s: beyond the bound

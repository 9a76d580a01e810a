"""Issue 18, item 3: ``zhcharge serve --workers 2`` — two real worker processes sharing one database.

Each test talks to a chosen worker: an HTTP connection stays with the process that accepted it, so a
keep-alive client whose ``/healthz`` names worker A reaches A until it closes (the server keeps idle
connections for minutes here: ``--keep-alive``). Every property that must hold across processes is
driven through one worker and checked through the other: the open API's rate limit, login
throttling and lockout, tile cache invalidation after a push, the receiver's replay protection, the
feed scheduler (one pull per operator at a time) and the background jobs (one writer).
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from portal_site.serving import AppProcess
from tests.accounts_helpers import create_regulator, csrf_from
from tests.integration.feed.conftest import Sim, forget_operators, make_sim, register_sim

from .conftest import ZHUHAI, Pusher, tile_of, wait_for

RATE_PER_MIN = 20
LOCKOUT_FAILURES = 4
SYNC_INTERVAL_S = 3
_ADDRESSES = itertools.count(10)


class Worker:
    """A keep-alive connection to one worker process, from one client address (X-Forwarded-For)."""

    def __init__(self, client: httpx.Client, pid: int) -> None:
        self.client = client
        self.pid = pid

    def still_mine(self) -> None:
        assert int(self.client.get("/healthz").json()["worker"]) == self.pid, "the connection moved"

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.post(path, **kw)


def _workers(url: str, address: str, n: int = 2) -> list[Worker]:
    """One keep-alive client per worker process, all as ``address``."""
    found: dict[int, Worker] = {}
    spare: list[httpx.Client] = []
    for _ in range(200):
        client = httpx.Client(base_url=url, timeout=30, headers={"X-Forwarded-For": address},
                              limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        pid = int(client.get("/healthz").json()["worker"])
        if pid in found:
            spare.append(client)
        else:
            found[pid] = Worker(client, pid)
        if len(found) == n:
            break
    for c in spare:
        c.close()
    assert len(found) == n, f"reached {len(found)} of {n} workers"
    return list(found.values())


def _address() -> str:
    return f"198.51.100.{next(_ADDRESSES)}"


@pytest.fixture(scope="module")
def world(db_url: str, engine: Engine, tmp_path_factory) -> Iterator[dict[str, Any]]:  # noqa: ANN001
    tmp = tmp_path_factory.mktemp("workers")
    with engine.begin() as conn:  # the scheduler pulls every enabled operator: only ours
        conn.execute(text("UPDATE feed_endpoints SET enabled = false WHERE enabled"))
    sim: Sim = make_sim(stations=30, operators=1)
    with sim.server:
        creds = register_sim(engine, sim)
        op = sim.operator_ids[0]
        sim.faults(slow_seconds=0.15)  # a pull takes a while: overlapping pulls would show
        started = datetime.now(UTC)
        env = {"ZHCHARGE_DATABASE_URL": db_url, "ZHCHARGE_ENV": "test", "ZHCHARGE_RUN_SCHEDULER": "true",
               "ZHCHARGE_TRUSTED_PROXIES": "127.0.0.1", "ZHCHARGE_UPLOAD_DIR": str(tmp / "uploads"),
               "ZHCHARGE_SEARCH_ANONYMOUS_RATE_PER_MIN": str(RATE_PER_MIN),
               "ZHCHARGE_ACCOUNTS_SLOW_AFTER": "100", "ZHCHARGE_ACCOUNTS_LOCKOUT_FAILURES": str(LOCKOUT_FAILURES),
               "ZHCHARGE_FEED_SYNC_INTERVAL_S": str(SYNC_INTERVAL_S), "ZHCHARGE_FEED_STATUS_INTERVAL_S": "2",
               "ZHCHARGE_FEED_PAGE_SIZE": "10", "ZHCHARGE_FEED_BACKOFF_S": "0.01",
               "ZHCHARGE_EXPORTS_SNAPSHOT_DIR": str(tmp / "exports"), "ZHCHARGE_EXPORTS_CHECK_INTERVAL_S": "1",
               "ZHCHARGE_SUPERVISION_SNAPSHOT_INTERVAL_S": "50"}
        with AppProcess(workers=2, env=env, keep_alive_s=600, log=tmp / "serve.log") as app:
            assert len(app.pids) == 2
            # the scheduler's first pull of the operator stored its stations and statuses: the tests
            # below push to its connectors (and the first sync moving the data versions would hide
            # whether a push did)
            wait_for(lambda: _first_pull_stored(engine, op), timeout=60, interval=0.2)
            try:
                yield {"url": app.url, "sim": sim, "op": op, "creds": creds[op], "started": started,
                       "engine": engine, "tmp": tmp, "app": app}
            finally:
                sim.faults(reset=True)
        forget_operators(engine, [op])


def test_the_rate_limit_counts_requests_on_both_workers(world: dict[str, Any]) -> None:
    for _attempt in range(2):  # once more if a minute boundary (a new window) fell in between
        a, b = _workers(world["url"], _address())
        answers = [w.get("/api/v1/reference") for w in [a, b] * 12]
        a.still_mine()
        b.still_mine()
        if len({r.headers.get("x-ratelimit-reset") for r in answers}) == 1:
            break
    statuses = [r.status_code for r in answers]
    assert statuses[:RATE_PER_MIN] == [200] * RATE_PER_MIN and statuses[RATE_PER_MIN:] == [429] * 4, statuses
    remaining = [int(r.headers["x-ratelimit-remaining"]) for r in answers]
    assert remaining[:RATE_PER_MIN] == list(range(RATE_PER_MIN - 1, -1, -1))  # one count, both workers


def test_login_failures_lock_the_account_on_both_workers(world: dict[str, Any]) -> None:
    engine = world["engine"]
    user = create_regulator(engine)
    a, b = _workers(world["url"], _address())

    def attempt(w: Worker, password: str) -> httpx.Response:
        return w.post("/login", data={"login": user["account_name"], "password": password,
                                      "_csrf": csrf_from(w.client)},
                      headers={"accept": "text/html"}, follow_redirects=False)

    for w in [a, b, a, b][:LOCKOUT_FAILURES]:
        assert attempt(w, "not-the-password-1").status_code in (400, 401, 403)
    for w in (a, b):  # the right password now: locked for this address on both
        r = attempt(w, user["password"])
        assert r.status_code == 429 and "locked" in r.text
        w.still_mine()
    c, _ = _workers(world["url"], _address())  # another address: the owner is not locked out
    assert attempt(c, user["password"]).status_code in (302, 303)


def test_a_push_through_one_worker_changes_the_tile_etag_on_both(world: dict[str, Any]) -> None:
    a, b = _workers(world["url"], _address())
    tile = "/tiles/stations/{}/{}/{}.mvt".format(*tile_of(*ZHUHAI, 10))
    before = {w.pid: w.get(tile).headers["etag"] for w in (a, b)}
    assert len(set(before.values())) == 1  # the same data version in both processes
    p = Pusher(world["creds"])
    p.get_token(a.client)
    cid = _connector(world, status=1)
    resp, ans = p.post(a.client, "notification_stationStatus", p.status_envelope(cid, 3))
    assert ans.ret == 0
    for w in (b, a):
        wait_for(lambda w=w: w.get(tile).headers["etag"] != before[w.pid], timeout=5)
        w.still_mine()


def test_a_replayed_envelope_is_refused_by_the_other_worker(world: dict[str, Any]) -> None:
    a, b = _workers(world["url"], _address())
    p = Pusher(world["creds"])
    p.get_token(a.client)
    cid = _connector(world, status=1)
    ts = datetime.now(UTC)
    seq = 7000 + secrets.randbelow(999)
    env = p.status_envelope(cid, 3, seq=seq, ts=ts)
    _, ans = p.post(a.client, "notification_stationStatus", env)
    assert ans.ret == 0
    _, ans = p.post(b.client, "notification_stationStatus", env)  # the same envelope: acknowledged again
    assert ans.ret == 0
    other = p.status_envelope(cid, 1, seq=seq, ts=ts)  # another envelope with that second and Seq
    _, ans = p.post(b.client, "notification_stationStatus", other)
    assert ans.ret == 4003 and f"Seq {seq:04d}" in ans.msg
    a.still_mine()
    b.still_mine()
    with world["engine"].connect() as conn:
        assert conn.execute(text("SELECT status FROM connector_status WHERE operator_id = :op AND connector_id = :c"),
                            {"op": world["op"], "c": cid}).scalar() == 3


def test_the_schedulers_pull_each_operator_once_at_a_time(world: dict[str, Any]) -> None:
    engine, op = world["engine"], world["op"]

    def runs() -> list[Any]:
        with engine.connect() as conn:
            return conn.execute(text("SELECT mode, started_at, finished_at, ok FROM sync_runs WHERE operator_id = :op "
                                     "AND mode <> 'push' ORDER BY started_at"), {"op": op}).all()

    wait_for(lambda: len([r for r in runs() if r.finished_at and r.mode != "policy"]) >= 4, timeout=60, interval=0.5)
    done = [r for r in runs() if r.finished_at]
    assert all(r.ok for r in done), done
    # never two pulls of the operator at once: stations and statuses share its lock, business policies
    # (prices) have one of their own
    for family in (("full", "incremental", "status"), ("policy",)):
        pulls = [r for r in done if r.mode in family]
        for earlier, later in zip(pulls, pulls[1:]):
            assert later.started_at >= earlier.finished_at, (earlier, later)
    syncs = [r for r in done if r.mode in ("full", "incremental")]
    for earlier, later in zip(syncs, syncs[1:]):  # and no second sync right after one (re-check under the lock)
        assert (later.started_at - earlier.started_at).total_seconds() >= SYNC_INTERVAL_S * 0.9


def test_background_jobs_write_once(world: dict[str, Any]) -> None:
    """The daily open-data snapshot (both workers look every second) and the connector-state snapshot
    (both look every 10 s): one writer each."""
    exports = world["tmp"] / "exports"
    engine = world["engine"]

    def taken() -> list[Any]:
        with engine.connect() as conn:
            return list(conn.execute(text("SELECT DISTINCT taken_at FROM status_snapshots WHERE taken_at >= :t"),
                                     {"t": world["started"]}).scalars())

    wait_for(lambda: list(exports.glob("*/manifest.json")) and taken(), timeout=30, interval=0.5)
    # each worker has looked at least twice more since (the jobs start 5 s in, then every 1 s and 10 s)
    time.sleep(max(0.0, 27 - (datetime.now(UTC) - world["started"]).total_seconds()))
    assert len(list(exports.glob("*/manifest.json"))) == 1 and not list(exports.glob(".tmp-*"))
    assert len(taken()) == 1


def _first_pull_stored(engine: Engine, op: str) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT EXISTS (SELECT 1 FROM sync_runs WHERE operator_id = :op AND mode = 'full' AND ok) "
            "AND EXISTS (SELECT 1 FROM connector_status WHERE operator_id = :op AND status = 1)"), {"op": op}).scalar())


def _connector(world: dict[str, Any], status: int) -> str:
    with world["engine"].connect() as conn:
        return conn.execute(text(
            "SELECT c.connector_id FROM connectors c JOIN stations s ON s.id = c.station_pk "
            "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
            "WHERE s.operator_id = :op AND s.feed_state = 'active' AND cs.status = :st ORDER BY random() LIMIT 1"),
            {"op": world["op"], "st": status}).scalar_one()

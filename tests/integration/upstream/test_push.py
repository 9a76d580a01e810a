"""Pushing status changes up: the simulated operators change connector statuses and push them to our
real receiver; the push job sends ``notification_stationStatus`` to a stand-in higher platform (a
Litestar app on loopback speaking the codec: its own ``query_token``, Ret -1 when told, slow when
told), once per change, retried until it is taken, never twice across runs or app processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from litestar import Litestar, Request, Response, post
from litestar.params import FromPath
from litestar.testing import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ingest.protocol import ProtocolError, Ret, Secrets, build_response, parse_request
from ingest.upstream.push import StatusPusher
from services.db import Database, make_engine
from tests.conftest import ServerThread

from .conftest import City, add_platform, drop_platforms, upstream_settings

THEIRS = {"operator_secret": "ProvOpSecret0001", "data_secret": "ProvDataSecret01", "data_iv": "ProvDataIV000001",
          "sig_secret": "ProvSigSecret001"}


@dataclass
class StandIn:
    """A higher platform: issues tokens to our OperatorID, takes status notifications."""

    our_id: str
    received: list[dict] = field(default_factory=list)
    """Every ConnectorStatusInfo answered Ret 0."""
    attempts: int = 0
    busy: int = 0
    """Answer Ret -1 to this many notifications (then Ret 0)."""
    discard: set[str] = field(default_factory=set)
    """ConnectorIDs answered Status 1 (discarded)."""
    delay_s: float = 0.0
    tokens: set[str] = field(default_factory=set)
    senders: set[str] = field(default_factory=set)

    @property
    def secrets(self) -> Secrets:
        return Secrets(self.our_id, **THEIRS)

    def of(self, connector_id: str) -> list[int]:
        return [x["Status"] for x in list(self.received) if x["ConnectorID"] == connector_id]

    def app(self) -> Litestar:
        rec = self

        @post("/evcs/{version:str}/{interface:str}", status_code=200)
        async def handle(request: Request, version: FromPath[str], interface: FromPath[str]) -> Response:
            s = rec.secrets
            try:
                parsed = parse_request(await request.body(), lambda op: s if op == rec.our_id else None)
            except ProtocolError as exc:
                return Response(build_response(exc.ret, exc.msg, None, s))
            rec.senders.add(parsed.operator_id)
            if interface == "query_token":
                ok = parsed.data.get("OperatorSecret") == s.operator_secret
                token = f"T{len(rec.tokens) + 1:04d}"
                rec.tokens.add(token)
                return Response(build_response(0, "", {"OperatorID": parsed.operator_id, "SuccStat": 0 if ok else 1,
                                                       "AccessToken": token if ok else "",
                                                       "TokenAvailableTime": 3600, "FailReason": 0 if ok else 2}, s))
            if request.headers.get("authorization", "")[7:] not in rec.tokens:
                return Response(build_response(Ret.TOKEN, "token unknown", None, s))
            rec.attempts += 1
            if rec.delay_s:
                await asyncio.sleep(rec.delay_s)
            if rec.busy > 0:
                rec.busy -= 1
                return Response(build_response(Ret.BUSY, "busy (stand-in)", None, s))
            info = parsed.data["ConnectorStatusInfo"]
            rec.received.append(info)
            return Response(build_response(0, "", {"Status": 1 if info["ConnectorID"] in rec.discard else 0}, s))

        return Litestar([handle])


@pytest.fixture()
def stand_in(city: City) -> Iterator[tuple[StandIn, str]]:
    s = StandIn(city.settings.app.operator_id)
    with ServerThread(s.app()) as server:
        yield s, server.url


@pytest.fixture()
def pushing(engine: Engine, db_url: str, city: City, stand_in: tuple[StandIn, str]) -> Iterator[dict[str, str]]:
    """A platform registered with the stand-in as its push URL."""
    _, url = stand_in
    creds = add_platform(db_url, "--push-base-url", f"{url}/evcs/v20160701", "--their-operator-id", "GDPROV001",
                         *(x for k, v in THEIRS.items() for x in (f"--{k.replace('_', '-')}", v)))
    yield creds
    drop_platforms(engine, creds["operator_id"])


def _connectors(engine: Engine, city: City, n: int, *, skip: int = 0) -> list[tuple[str, str, int]]:
    """(OperatorID, ConnectorID, status) of ``n`` connectors of public stations, free or faulty."""
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT c.operator_id, c.connector_id, cs.status FROM connectors c JOIN stations s ON s.id = c.station_pk "
            "JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
            "WHERE c.operator_id = ANY(:ops) AND s.feed_state = 'active' AND s.interconnected AND cs.status IN (1, 4) "
            "ORDER BY c.id OFFSET :skip LIMIT :n"), {"ops": city.operator_ids, "n": n, "skip": skip})]


def _change(city: City, connectors: list[tuple[str, str, int]]) -> dict[str, int]:
    """Move each connector between free (1) and reserved (4) through the operator's push to our receiver."""
    out = {}
    for op, cid, status in connectors:
        new = 4 if status == 1 else 1
        city.set_status(op, cid, new)
        out[cid] = new
    return out


def _queued(engine: Engine, platform_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM upstream_push_queue q JOIN upstream_platforms p "
                                 "ON p.id = q.platform_pk WHERE p.platform_id = :p"), {"p": platform_id}).scalar()


def _pusher(city: City, **upstream: object) -> StatusPusher:
    """A job on an engine of its own, as each app process has."""
    settings = upstream_settings(city.settings.db.database_url, city.settings.app.upload_dir.parent, **upstream)
    return StatusPusher(make_engine(settings.db, pool_size=2, max_overflow=4), settings)


def _done(pusher: StatusPusher) -> None:
    pusher.stop()
    pusher.engine.dispose()


def test_each_change_is_pushed_once_with_the_status_it_has(city, engine, stand_in, pushing) -> None:  # noqa: ANN001
    rec, _ = stand_in
    changes = _change(city, _connectors(engine, city, 6))
    assert _queued(engine, pushing["operator_id"]) == 6
    pusher = _pusher(city)
    try:
        [result] = pusher.run_once()
        assert result.ok and result.accepted == 6 and result.platform_id == pushing["operator_id"]
        assert sorted((x["ConnectorID"], x["Status"]) for x in rec.received) == sorted(changes.items())
        assert all(set(x) == {"ConnectorID", "Status", "ParkStatus", "LockStatus"} for x in rec.received)
        assert rec.senders == {city.settings.app.operator_id} and len(rec.tokens) == 1  # one token, ours
        assert _queued(engine, pushing["operator_id"]) == 0
        assert pusher.run_once()[0].accepted == 0 and len(rec.received) == 6  # a second run sends nothing again
        # a connector changed twice before the job ran is one notification, with the status it has now
        (op, cid, status), = _connectors(engine, city, 1, skip=10)
        city.set_status(op, cid, 4 if status == 1 else 1)
        city.set_status(op, cid, status)
        pusher.run_once()
        assert rec.of(cid) == [status]
    finally:
        _done(pusher)


def test_busy_answers_are_retried_and_failures_wait_and_resend(city, engine, stand_in, pushing) -> None:  # noqa: ANN001
    rec, _ = stand_in
    pusher = _pusher(city, push_retries=3, push_concurrency=2)
    try:
        changes = _change(city, _connectors(engine, city, 3, skip=20))
        rec.busy = 2  # within one notification's retries
        [result] = pusher.run_once()
        assert result.ok and result.accepted == 3 and rec.attempts == 5
        assert Counter(x["ConnectorID"] for x in rec.received) == Counter(list(changes))
        # a platform that keeps answering Ret -1: nothing is lost, the platform waits, then gets it all once
        more = _change(city, _connectors(engine, city, 3, skip=30))
        rec.busy = 10_000
        [result] = pusher.run_once()
        assert not result.ok and "Ret -1" in result.error and result.accepted == 0
        assert _queued(engine, pushing["operator_id"]) == 3
        with engine.connect() as conn:
            state = conn.execute(text("SELECT push_failures, push_next_at > now() AS waiting, push_error "
                                      "FROM upstream_platforms WHERE platform_id = :p"),
                                 {"p": pushing["operator_id"]}).one()
        assert state.push_failures == 1 and state.waiting and "Ret -1" in state.push_error
        assert pusher.run_once() == []  # waiting out its backoff (2 s)
        rec.busy = 0
        time.sleep(2.1)
        [result] = pusher.run_once()
        assert result.ok and result.accepted == 3
        assert Counter(x["ConnectorID"] for x in rec.received) == Counter(list({**changes, **more}))
        assert {x["ConnectorID"]: x["Status"] for x in rec.received} == {**changes, **more}
        # Status 1 (discarded) is final: not sent again
        (op, cid, status), = _connectors(engine, city, 1, skip=40)
        rec.discard.add(cid)
        city.set_status(op, cid, 4 if status == 1 else 1)
        [result] = pusher.run_once()
        assert result.discarded == 1 and pusher.run_once()[0].discarded == 0 and len(rec.of(cid)) == 1
    finally:
        _done(pusher)


def test_two_processes_send_each_change_once(city, engine, stand_in, pushing) -> None:  # noqa: ANN001
    rec, _ = stand_in
    rec.delay_s = 0.05  # runs overlap
    changes = _change(city, _connectors(engine, city, 12, skip=50))
    pushers = [_pusher(city, push_concurrency=3), _pusher(city, push_concurrency=3)]
    stop = time.monotonic() + 4

    def loop(p: StatusPusher) -> None:
        while time.monotonic() < stop:
            p.run_once()
            time.sleep(0.05)

    try:
        threads = [threading.Thread(target=loop, args=(p,)) for p in pushers]
        for t in threads:
            t.start()
        time.sleep(0.5)
        more = _change(city, _connectors(engine, city, 4, skip=70))  # while both run
        for t in threads:
            t.join()
        assert Counter(x["ConnectorID"] for x in rec.received) == Counter(list({**changes, **more}))
        assert {x["ConnectorID"]: x["Status"] for x in rec.received} == {**changes, **more}
    finally:
        for p in pushers:
            _done(p)


def test_the_apps_push_in_the_background_without_holding_up_the_receiver(
        city, engine, database, db_url, stand_in, pushing, tmp_path) -> None:  # noqa: ANN001
    """Two app processes (each its own engine, job and advisory locks in PostgreSQL) push every change
    once, and while the platform is slow the operators' pushes are answered at once."""
    from portal_site.app import create_app

    rec, _ = stand_in
    apps = []
    for i in range(2):
        settings = upstream_settings(db_url, tmp_path / str(i), push_interval_s=0.3)
        settings.app = settings.app.model_copy(update={"run_scheduler": True})
        settings.feed = settings.feed.model_copy(update={"sync_interval_s": 3600, "status_interval_s": 3600,
                                                         "policy_interval_s": 86400})
        apps.append(create_app(settings, database=Database(make_engine(settings.db, pool_size=2))))
    with engine.begin() as conn:  # the scheduler pulls only this city (other tests' operators are gone)
        conn.execute(text("UPDATE feed_endpoints SET enabled = (operator_id = ANY(:ops))"), {"ops": city.operator_ids})
    with TestClient(apps[0]), TestClient(apps[1]):
        changes = _change(city, _connectors(engine, city, 8, skip=80))
        deadline = time.monotonic() + 20
        while len(rec.received) < len(changes) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # a few more rounds of both jobs
        assert Counter(x["ConnectorID"] for x in rec.received) == Counter(list(changes))
        # a slow platform (2 s a notification): the operators' pushes to our receiver are not held up
        rec.delay_s = 2.0
        started = time.monotonic()
        slow = _change(city, _connectors(engine, city, 3, skip=90))
        assert time.monotonic() - started < 3.0, "status pushes waited for the upward push"
        deadline = time.monotonic() + 30
        while len(rec.received) < len(changes) + len(slow) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert Counter(x["ConnectorID"] for x in rec.received) == Counter(list({**changes, **slow}))


def test_pushes_only_public_stations_and_nothing_without_a_push_url(city, engine, stand_in, pushing, db_url) -> None:  # noqa: ANN001
    rec, _ = stand_in
    quiet = add_platform(db_url)  # no push URL: nothing is queued for it
    pusher = _pusher(city)
    try:
        candidates = _connectors(engine, city, 40, skip=100)
        with engine.connect() as conn:
            station_of = dict(conn.execute(text("SELECT connector_id, station_pk FROM connectors WHERE connector_id = "
                                                "ANY(:c)"), {"c": [c for _, c, _ in candidates]}).all())
        op, cid, status = candidates[0]
        op2, cid2, status2 = next(x for x in candidates if station_of[x[1]] != station_of[cid])
        with engine.begin() as conn:
            conn.execute(text("UPDATE stations SET interconnected = false WHERE id = (SELECT station_pk FROM "
                              "connectors WHERE operator_id = :op AND connector_id = :c)"), {"op": op, "c": cid})
        city.set_status(op, cid, 4 if status == 1 else 1)
        city.set_status(op2, cid2, 4 if status2 == 1 else 1)
        [result] = pusher.run_once()
        assert result.dropped >= 1 and rec.of(cid) == [] and len(rec.of(cid2)) == 1
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM upstream_push_queue q JOIN upstream_platforms p "
                                     "ON p.id = q.platform_pk WHERE p.platform_id = :p"),
                                {"p": quiet["operator_id"]}).scalar() == 0
    finally:
        with engine.begin() as conn:
            conn.execute(text("UPDATE stations SET interconnected = true WHERE operator_id = ANY(:ops)"),
                         {"ops": city.operator_ids})
        drop_platforms(engine, quiet["operator_id"])
        _done(pusher)

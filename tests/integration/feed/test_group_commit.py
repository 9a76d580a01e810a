"""Group commit of status pushes (issue 18, item 4): concurrent pushes stored in one statement and one
commit, each acknowledged only after it. A batch stores exactly what the same pushes one by one
store; one refused push fails alone; a lost connection acknowledges none of its batch."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from ingest.protocol import Ret, build_request, parse_response
from ingest.receiver import Receiver
from ingest.sync import sync_all

from .conftest import feed_settings
from .test_receiver import _secrets

STATUS = "notification_stationStatus"


@pytest.fixture()
def city(engine, sim, registered, fsettings):  # noqa: ANN001, ANN201
    assert all(r.ok for r in sync_all(engine, fsettings, full=True))
    return registered


@pytest.fixture()
def receiver(engine, db_url, tmp_path: Path):  # noqa: ANN001, ANN201
    r = Receiver(engine, feed_settings(db_url, tmp_path))
    yield r
    r.close()


class Operator:
    """One simulated operator pushing straight into ``Receiver.handle`` (the route's worker threads)."""

    def __init__(self, receiver: Receiver, creds: dict) -> None:
        self.receiver = receiver
        self.s = _secrets(creds)
        self.seq = 0
        code, env = receiver.handle("query_token", json.dumps(build_request(
            self.s.operator_id, {"OperatorID": self.s.operator_id, "OperatorSecret": self.s.operator_secret},
            self.s)).encode(), None)
        self.token = parse_response(env, self.s).data["AccessToken"]

    def envelope(self, cid: str, status: int, *, ts: datetime | None = None, seq: int | None = None) -> bytes:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return json.dumps(build_request(self.s.operator_id, {"ConnectorStatusInfo": {
            "ConnectorID": cid, "Status": status, "ParkStatus": 10, "LockStatus": 10}}, self.s,
            timestamp=ts or datetime.now(UTC), seq=seq)).encode()

    def push(self, body: bytes) -> tuple[int, int, str]:
        code, env = self.receiver.handle(STATUS, body, f"Bearer {self.token}")
        answer = parse_response(env, self.s)
        return code, int(answer.ret), answer.msg


def _connectors(engine, op: str, n: int) -> list[str]:  # noqa: ANN001
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT c.connector_id FROM connectors c JOIN stations s ON s.id = c.station_pk "
            "WHERE c.operator_id = :op AND s.feed_state = 'active' ORDER BY c.connector_id LIMIT :n"),
            {"op": op, "n": n}).scalars())


def _stored(engine, op: str, bodies: list[bytes]) -> list[bool]:  # noqa: ANN001
    """Whether each envelope's replay claim is in feed_push_seen (it is only there once stored)."""
    envs = [json.loads(b) for b in bodies]
    with engine.connect() as conn:
        seen = {(r[0], r[1]) for r in conn.execute(text(
            "SELECT seq, upper(sig) FROM feed_push_seen WHERE operator_id = :op"), {"op": op})}
    return [(e["Seq"], e["Sig"].upper()) in seen for e in envs]


def _concurrently(pushes: list[tuple[Operator, bytes]]) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str] | None] = [None] * len(pushes)

    def run(i: int) -> None:
        op, body = pushes[i]
        out[i] = op.push(body)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pushes))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(o is not None for o in out)
    return out  # type: ignore[return-value]


def _first_then_batch(engine, receiver: Receiver, pushes: list[tuple[Operator, bytes]]):  # noqa: ANN001, ANN202
    """Hold feed_push_seen, send the first push (it waits in the database, alone), then the others
    (they queue behind it in the committer: the next batch); returns (held lock, threads, results)."""
    held = _Held(engine)
    first: list = []
    rest: list = []
    t1 = threading.Thread(target=lambda: first.extend(_concurrently(pushes[:1])))
    t1.start()
    _until(lambda: held.waiting() >= 1)
    t2 = threading.Thread(target=lambda: rest.extend(_concurrently(pushes[1:])))
    t2.start()
    _until(lambda: len(receiver.committer._queue) == len(pushes) - 1)
    return held, (t1, t2), (first, rest)


def _until(check, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class _Held:
    """An exclusive lock on feed_push_seen from another session: every push's first statement waits
    behind it, so the pushes sent meanwhile queue up in the committer and go as one batch."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.conn = engine.connect()
        self.conn.execute(text("LOCK TABLE feed_push_seen IN EXCLUSIVE MODE"))

    def waiting(self, *, any_application: bool = False) -> int:
        """Receiver connections waiting for the lock (any connection: behind PgBouncer, which passes
        no application_name)."""
        self.conn.execute(text("SELECT pg_stat_clear_snapshot()"))  # a transaction sees one snapshot otherwise
        return self.conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE (application_name = 'zhcharge-receiver' OR :any) "
            "AND datname = current_database() AND wait_event_type = 'Lock'"), {"any": any_application}).scalar()

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def test_concurrent_pushes_are_all_acknowledged_and_all_stored(engine, sim, city, receiver) -> None:  # noqa: ANN001
    ops = [Operator(receiver, city[op]) for op in sim.operator_ids]
    pushes: list[tuple[Operator, bytes]] = []
    last: dict[tuple[str, str], int] = {}
    for op in ops:
        for i, cid in enumerate(_connectors(engine, op.s.operator_id, 40)):
            for status in (3, 1, 2)[: 1 + i % 3]:  # one, two or three reports of a connector
                pushes.append((op, op.envelope(cid, status)))
                last[(op.s.operator_id, cid)] = status
    held, threads, (first, rest) = _first_then_batch(engine, receiver, pushes)
    held.release()
    for t in threads:
        t.join(60)
    results = first + rest
    assert [r[:2] for r in results] == [(200, 0)] * len(pushes)
    for op in ops:
        assert all(_stored(engine, op.s.operator_id, [b for o, b in pushes if o is op]))
    with engine.connect() as conn:
        now = {(r[0], r[1]): r[2] for r in conn.execute(text(
            "SELECT operator_id, connector_id, status FROM connector_status WHERE operator_id = ANY(:ops)"),
            {"ops": sim.operator_ids})}
    # the pushes of one connector may be stored in any order (sent at once), all in the same second
    assert all(now[k] in (3, 1, 2) for k in last)
    assert receiver.committer.largest > 1  # they really went in batches
    assert receiver.committer.fallbacks == 0


def _snapshot(conn, op: str) -> dict:  # noqa: ANN001
    statuses = [tuple(r) for r in conn.execute(text(
        "SELECT connector_id, status, park_status, lock_status, source, status_since, reported_at "
        "FROM connector_status WHERE operator_id = :op ORDER BY connector_id"), {"op": op})]
    history = [tuple(r) for r in conn.execute(text(
        "SELECT cs.connector_id, h.at, h.status, h.source FROM connector_status_history h "
        "JOIN connector_status cs ON cs.id = h.connector_key WHERE cs.operator_id = :op "
        "ORDER BY cs.connector_id, h.at"), {"op": op})]
    stations = [tuple(r) for r in conn.execute(text(
        "SELECT id, connectors_free, availability, silent_since FROM stations WHERE operator_id = :op ORDER BY id"),
        {"op": op})]
    seen = [tuple(r) for r in conn.execute(text(
        "SELECT ts, seq, sig FROM feed_push_seen WHERE operator_id = :op ORDER BY ts, seq"), {"op": op})]
    return {"connector_status": statuses, "connector_status_history": history, "stations": stations,
            "feed_push_seen": seen}


def test_a_batch_stores_what_the_same_pushes_one_by_one_store(engine, sim, city) -> None:  # noqa: ANN001
    """The same sequence through feed_store_status_push one at a time and through
    feed_store_status_pushes at once (each in a transaction rolled back): the same statuses, history,
    stations and replay claims, and the same outcomes."""
    op = sim.operator_ids[0]
    a, b, c, d = _connectors(engine, op, 4)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    s = lambda k: t0 + timedelta(seconds=k)  # noqa: E731
    sig = lambda k: f"{k:032X}"  # noqa: E731
    #        connector, time, seq, sig, status
    sequence = [
        (a, s(0), "0001", sig(1), 3),     # a change
        (a, s(0), "0002", sig(2), 2),     # another in the same second (+1 µs)
        (a, s(10), "0001", sig(3), 2),    # a repeat: same
        (a, s(5), "0001", sig(4), 1),     # older than what is held: late, into its place
        (b, s(1), "0001", sig(5), 255),   # b: a fault
        (b, s(1), "0001", sig(5), 255),   # the very same envelope again: duplicate
        (b, s(2), "0001", sig(6), 1),     # back
        (c, s(3), "0001", sig(7), 3),     # c: one change
        (c, s(3), "0001", sig(8), 1),     # another envelope on the same second and Seq: seq_reused
        (d, s(4), "0001", sig(9), 1),     # d: the status it has (same)
        ("NOSUCHCONNECTOR1", s(5), "0002", sig(10), 2),  # not a known connector: stored, no station
        (a, s(20), "0001", sig(11), 4),   # a again, later
    ]
    args = [(op, ts, seq, sg, cid, st, 10, 10) for cid, ts, seq, sg, st in sequence]

    def rewind(conn) -> None:  # noqa: ANN001 - as if the sync had pulled them free an hour before the sequence
        conn.execute(text(
            "DELETE FROM connector_status_history h USING connector_status cs WHERE cs.id = h.connector_key "
            "AND cs.operator_id = :op AND cs.connector_id = ANY(:c)"), {"op": op, "c": [a, b, c, d]})
        conn.execute(text("UPDATE connector_status SET status = 1, status_since = :t, reported_at = :t "
                          "WHERE operator_id = :op "
                          "AND connector_id = ANY(:c)"), {"op": op, "c": [a, b, c, d], "t": t0 - timedelta(hours=1)})

    with engine.connect() as conn:
        rewind(conn)
        one = [conn.exec_driver_sql("SELECT feed_store_status_push(%s, %s, %s, %s, %s, %s::smallint, %s::smallint, "
                                    "%s::smallint)", x).scalar() for x in args]
        singly = _snapshot(conn, op)
        conn.rollback()
        rewind(conn)
        batch = conn.exec_driver_sql(
            "SELECT feed_store_status_pushes(%s, %s::timestamptz[], %s, %s, %s, %s::smallint[], %s::smallint[], "
            "%s::smallint[])", tuple(list(col) for col in zip(*args))).scalar()
        together = _snapshot(conn, op)
        conn.rollback()
    assert one == ["stored", "stored", "same", "late", "stored", "duplicate", "stored", "stored", "seq_reused",
                   "same", "stored", "stored"]
    assert batch == one
    for table in singly:
        assert together[table] == singly[table], table


def test_a_batch_of_one_push_per_connector_stores_what_they_store_one_by_one(engine, sim, city) -> None:  # noqa: ANN001
    """The batch function's set path (migration 1512: one push per connector with a status row, not
    late) beside its other cases in one batch: changes, repeats, a late report, a first report, a
    duplicate and a reused Seq of envelopes stored before the batch; the same outcomes and rows as the
    pushes one by one."""
    op = sim.operator_ids[0]
    cids = _connectors(engine, op, 8)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    s = lambda k: t0 + timedelta(seconds=k)  # noqa: E731
    sig = lambda k: f"{k:032X}"  # noqa: E731
    before = [(cids[6], s(1), "0009", sig(90), 3), (cids[7], s(1), "0010", sig(91), 3)]  # stored first
    sequence = [(cids[0], s(2), "0001", sig(1), 3),   # a change
                (cids[1], s(2), "0002", sig(2), 1),   # the status it has: same
                (cids[2], s(3), "0001", sig(3), 255),  # a change (fault)
                (cids[3], s(-7200), "0001", sig(4), 2),  # older than the report held: late
                (cids[4], s(4), "0001", sig(5), 4),   # a change
                ("FIRSTREPORT0001", s(4), "0002", sig(6), 2),  # no status row yet: first report
                (cids[5], s(5), "0001", sig(7), 2),   # a change
                (cids[6], s(1), "0009", sig(90), 3),  # the envelope stored before: duplicate
                (cids[7], s(1), "0010", sig(92), 1)]  # its second and Seq, another envelope: seq_reused

    def args(rows: list[tuple]) -> list[tuple]:
        return [(op, ts, seq, sg, cid, st, 10, 10) for cid, ts, seq, sg, st in rows]

    def rewind(conn) -> None:  # noqa: ANN001
        conn.execute(text("UPDATE connector_status SET status = 1, status_since = :t, reported_at = :t "
                          "WHERE operator_id = :op AND connector_id = ANY(:c)"),
                     {"op": op, "c": cids, "t": t0 - timedelta(hours=1)})
        for x in args(before):
            conn.exec_driver_sql("SELECT feed_store_status_push(%s, %s, %s, %s, %s, %s::smallint, %s::smallint, "
                                 "%s::smallint)", x)

    with engine.connect() as conn:
        rewind(conn)
        one = [conn.exec_driver_sql("SELECT feed_store_status_push(%s, %s, %s, %s, %s, %s::smallint, %s::smallint, "
                                    "%s::smallint)", x).scalar() for x in args(sequence)]
        singly = _snapshot(conn, op)
        conn.rollback()
        rewind(conn)
        batch = conn.exec_driver_sql(
            "SELECT feed_store_status_pushes(%s, %s::timestamptz[], %s, %s, %s, %s::smallint[], %s::smallint[], "
            "%s::smallint[])", tuple(list(col) for col in zip(*args(sequence)))).scalar()
        together = _snapshot(conn, op)
        conn.rollback()
    assert one == ["stored", "same", "stored", "late", "stored", "stored", "stored", "duplicate", "seq_reused"]
    assert batch == one
    for table in singly:
        assert together[table] == singly[table], table


def test_one_refused_push_fails_alone(engine, sim, city, receiver) -> None:  # noqa: ANN001
    op = Operator(receiver, city[sim.operator_ids[0]])
    cids = _connectors(engine, op.s.operator_id, 12)
    bad = cids[5]
    with engine.begin() as conn:
        conn.execute(text(f"""
            CREATE OR REPLACE FUNCTION test_refuse_status() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
            CREATE TRIGGER test_refuse_status BEFORE UPDATE ON connector_status FOR EACH ROW
            WHEN (NEW.connector_id = '{bad}') EXECUTE FUNCTION test_refuse_status()"""))
    try:
        with engine.connect() as conn:
            before = conn.execute(text("SELECT status FROM connector_status WHERE operator_id = :op "
                                       "AND connector_id = :c"), {"op": op.s.operator_id, "c": bad}).scalar()
        bodies = [op.envelope(cid, 255) for cid in cids]
        held, threads, (first, rest) = _first_then_batch(engine, receiver, [(op, b) for b in bodies])
        held.release()
        for t in threads:
            t.join(60)
        results = first + rest
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TRIGGER test_refuse_status ON connector_status; "
                              "DROP FUNCTION test_refuse_status()"))
    assert receiver.committer.fallbacks == 1  # the batch failed as a whole, then each went alone
    for cid, body, (code, ret, msg) in zip(cids, bodies, results, strict=True):
        if cid == bad:
            assert (code, ret) == (500, Ret.SYSTEM) and "not stored" in msg
        else:
            assert (code, ret) == (200, 0)
    stored = _stored(engine, op.s.operator_id, bodies)
    assert stored == [cid != bad for cid in cids]  # acknowledged = stored, exactly
    with engine.connect() as conn:
        after = dict(conn.execute(text("SELECT connector_id, status FROM connector_status WHERE operator_id = :op "
                                       "AND connector_id = ANY(:c)"), {"op": op.s.operator_id, "c": cids}).all())
    assert after[bad] == before and all(after[c] == 255 for c in cids if c != bad)


def test_a_lost_connection_acknowledges_none_of_the_batch(engine, sim, city, receiver) -> None:  # noqa: ANN001
    """The committer's connection dies while its batch waits (as in a crash of the server process):
    every push of it is answered Ret -1 (HTTP 503, retry), none is stored; the same envelopes sent again
    are stored and acknowledged."""
    op = Operator(receiver, city[sim.operator_ids[0]])
    cids = _connectors(engine, op.s.operator_id, 10)
    bodies = [op.envelope(cid, 255) for cid in cids]
    held, threads, (first, rest) = _first_then_batch(engine, receiver, [(op, b) for b in bodies])

    def kill_waiting() -> int:
        held.conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return held.conn.execute(text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'zhcharge-receiver' AND datname = current_database() "
            "AND wait_event_type = 'Lock'")).scalar()

    try:
        assert kill_waiting() == 1  # the first push, alone
        _until(lambda: held.waiting() >= 1 and not receiver.committer._queue)
        assert kill_waiting() == 1  # the batch of the nine others
        for t in threads:
            t.join(60)
    finally:
        held.release()
    results = first + rest
    assert [(code, ret) for code, ret, _ in results] == [(503, Ret.BUSY)] * len(bodies)
    assert _stored(engine, op.s.operator_id, bodies) == [False] * len(bodies)
    # the sender retries: stored and acknowledged now
    assert [r[:2] for r in _concurrently([(op, b) for b in bodies])] == [(200, 0)] * len(bodies)
    assert _stored(engine, op.s.operator_id, bodies) == [True] * len(bodies)


def test_concurrent_orders_are_stored_in_one_batch_each_with_its_answer(engine, sim, city, receiver,  # noqa: ANN001
                                                                        fsettings) -> None:
    """Orders sent at once go in one batch (zh_store_orders): each answered with its own ConfirmResult,
    a repeat with the same figures as the first, a revision as version 2, all stored once."""
    from decimal import Decimal

    from ingest.policies import pull_policies_all
    from services.orders.sample import billed_order
    from services.prices.tariff import CHINA_TZ, Tariff

    op = Operator(receiver, city[sim.operator_ids[0]])
    assert all(r.ok for r in pull_policies_all(engine, fsettings, operator_id=op.s.operator_id))
    with engine.connect() as conn:
        pool = conn.execute(text(
            "SELECT c.connector_id, c.power_kw, t.periods FROM connectors c JOIN connector_tariffs v "
            "ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id AND v.valid_to IS NULL "
            "JOIN tariffs t ON t.id = v.tariff_id WHERE c.operator_id = :op ORDER BY c.connector_id LIMIT 8"),
            {"op": op.s.operator_id}).all()
    end = datetime.now(CHINA_TZ).replace(microsecond=0) - timedelta(minutes=10)
    orders = [billed_order(Tariff.from_json(periods), end - timedelta(minutes=30 + i), end, Decimal(power),
                           connector_id=cid, seq=f"{op.s.operator_id}{i:018d}")
              for i, (cid, power, periods) in enumerate(pool)]
    over = billed_order(Tariff.from_json(pool[0][2]), end - timedelta(minutes=40), end, Decimal(pool[0][1]),
                        bump=Decimal("0.5"), connector_id=pool[0][0], seq=f"{op.s.operator_id}{99:018d}")
    revised = json.loads(json.dumps(orders[1]))
    revised["TotalPower"] = round(float(revised["TotalPower"]) - 0.5, 2)
    sent = [*orders, over, orders[2], revised]  # a repeat of the third and a revision of the second
    bodies = [json.dumps(build_request(op.s.operator_id, o, op.s, seq=k + 1)).encode() for k, o in enumerate(sent)]
    order_push = lambda body: receiver.handle("notification_charge_order_info", body, f"Bearer {op.token}")  # noqa: E731

    held = _Held(engine)
    answers: list = [None] * len(bodies)

    def run(k: int) -> None:
        answers[k] = parse_response(order_push(bodies[k])[1], op.s)

    threads = [threading.Thread(target=run, args=(0,))]
    threads[0].start()
    try:
        _until(lambda: held.waiting() >= 1)
        threads += [threading.Thread(target=run, args=(k,)) for k in range(1, len(bodies))]
        for t in threads[1:]:
            t.start()
        _until(lambda: len(receiver.order_committer._queue) == len(bodies) - 1)
    finally:
        held.release()
    for t in threads:
        t.join(60)
    assert all(int(a.ret) == 0 for a in answers), [a.msg for a in answers]
    confirm = [a.data["ConfirmResult"] for a in answers]
    n = len(orders)
    assert confirm[:n] == [0] * n and confirm[n] == 1 and confirm[n + 1] == 0
    assert receiver.order_committer.largest == len(bodies) - 1 and receiver.order_committer.fallbacks == 0
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT start_charge_seq, version, latest, confirm_result FROM charge_orders "
                                 "WHERE operator_id = :op ORDER BY start_charge_seq, version"),
                            {"op": op.s.operator_id}).all()
    by_seq: dict[str, list] = {}
    for r in rows:
        by_seq.setdefault(r.start_charge_seq, []).append((r.version, r.latest))
    assert len(by_seq) == n + 1  # each order once; the repeat stored nothing
    assert by_seq[orders[1]["StartChargeSeq"]] == [(1, False), (2, True)]
    assert all(v == [(1, True)] for s, v in by_seq.items() if s != orders[1]["StartChargeSeq"])


def test_group_commit_through_pgbouncer(engine, sim, city, db_url, tmp_path) -> None:  # noqa: ANN001
    """Behind PgBouncer in transaction mode (fewer server connections than clients): a batch is one
    statement on whatever server connection, nothing kept in a session."""
    from sqlalchemy import make_url

    from services.db import make_engine
    from tests.integration.scale.test_pgbouncer import _bouncer, _settings

    b = _bouncer(db_url, "group-commit", pool_size=2)
    try:
        b.start()
    except Exception as exc:  # noqa: BLE001 - no pgbouncer on this machine
        pytest.skip(str(exc))
    try:
        settings = _settings(db_url, b, tmp_path)
        pooled = make_engine(settings.db)
        receiver = Receiver(pooled, settings)
        assert make_url(str(receiver.push_engine.url)).port == b.port
        try:
            op = Operator(receiver, city[sim.operator_ids[0]])
            bodies = [op.envelope(cid, 4) for cid in _connectors(engine, op.s.operator_id, 30)]
            held = _Held(engine)
            first: list = []
            rest: list = []
            t1 = threading.Thread(target=lambda: first.extend(_concurrently([(op, bodies[0])])))
            t1.start()
            try:
                _until(lambda: held.waiting(any_application=True) >= 1)
                t2 = threading.Thread(target=lambda: rest.extend(_concurrently([(op, x) for x in bodies[1:]])))
                t2.start()
                _until(lambda: len(receiver.committer._queue) == len(bodies) - 1)
            finally:
                held.release()
            t1.join(60)
            t2.join(60)
            assert [r[:2] for r in first + rest] == [(200, 0)] * len(bodies)
            assert receiver.committer.largest == len(bodies) - 1
            assert all(_stored(engine, op.s.operator_id, bodies))
        finally:
            receiver.close()
            pooled.dispose()
    finally:
        b.stop()
        import shutil

        shutil.rmtree(b.directory, ignore_errors=True)


def test_a_batch_makes_a_missing_partition(tmp_path) -> None:  # noqa: ANN001
    """The history has no partition for this month (in a database of its own: the DDL would disturb the
    shared one): the batch fails on it, the partition is made, the batch stored on the second try."""
    import secrets

    from sqlalchemy import create_engine

    from services import migrate
    from services.feed.endpoints import register_operator
    from services.reliability.partitions import month_of, partition_name
    from tests.conftest import create_database, drop_database, make_settings

    name = f"zhcharge_gc_{secrets.token_hex(4)}"
    url = create_database(name)
    own = create_engine(url)
    try:
        migrate.upgrade(own)
        this = month_of(datetime.now(UTC))
        with own.begin() as conn:
            conn.execute(text(f'DROP TABLE IF EXISTS "{partition_name(this)}"'))
            creds, _ = register_operator(conn, operator_id="GCPART001", name="分区", base_url="http://127.0.0.1:9/x",
                                         platform_operator_id="MA0000000", operator_secret="s" * 16,
                                         data_secret="d" * 16, data_iv="i" * 16, sig_secret="g" * 16)
        receiver = Receiver(own, make_settings(url, tmp_path))
        try:
            op = Operator(receiver, creds.as_dict())
            bodies = [op.envelope(f"GCPARTC{k:02d}", 3) for k in range(8)]
            # the first push is one stored before (its claim is there): it touches no history while the
            # seven others queue behind it and go as one batch
            first = json.loads(bodies[0])
            with own.begin() as conn:
                conn.execute(text("INSERT INTO feed_push_seen (operator_id, ts, seq, sig) VALUES (:op, :ts, :seq, :sig)"),
                             {"op": op.s.operator_id, "ts": datetime.strptime(first["TimeStamp"], "%Y%m%d%H%M%S")
                              .replace(tzinfo=timezone(timedelta(hours=8))), "seq": first["Seq"], "sig": first["Sig"]})
            held, threads, (one, rest) = _first_then_batch(own, receiver, [(op, b) for b in bodies])
            held.release()
            for t in threads:
                t.join(60)
            assert [r[:2] for r in one + rest] == [(200, 0)] * len(bodies)
            assert receiver.committer.largest == len(bodies) - 1 and receiver.committer.fallbacks == 0
            with own.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM connector_status_history h JOIN connector_status cs "
                                         "ON cs.id = h.connector_key WHERE cs.operator_id = :op AND h.status = 3"),
                                    {"op": op.s.operator_id}).scalar() == len(bodies) - 1
                assert conn.execute(text("SELECT to_regclass(:p) IS NOT NULL"), {"p": partition_name(this)}).scalar()
        finally:
            receiver.close()
    finally:
        own.dispose()
        drop_database(name)


def test_pushes_on_the_event_loop_hold_no_worker_thread(engine, sim, city, receiver, monkeypatch) -> None:  # noqa: ANN001
    """Receiver.handle_async (the route's path for pushes): with the sender's secrets and token cached,
    status pushes and orders are read on the event loop and await their batch's commit there; none
    takes a worker thread, each is answered after it is stored."""
    import asyncio

    ops = [Operator(receiver, city[op]) for op in sim.operator_ids]  # query_token: secrets and token cached
    pushes = [(op, op.envelope(cid, 3)) for op in ops for cid in _connectors(engine, op.s.operator_id, 25)]

    def no_thread(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a push took a worker thread")

    monkeypatch.setattr("ingest.receiver.anyio.to_thread.run_sync", no_thread)

    async def push_all() -> list:
        return await asyncio.gather(*(receiver.handle_async(STATUS, body, f"Bearer {op.token}") for op, body in pushes))

    results = asyncio.run(push_all())
    assert [(code, int(parse_response(env, op.s).ret)) for (op, _), (code, env) in zip(pushes, results)] \
        == [(200, 0)] * len(pushes)
    for op in ops:
        assert all(_stored(engine, op.s.operator_id, [b for o, b in pushes if o is op]))
    assert receiver.committer.largest > 1


def test_a_push_whose_token_is_not_cached_is_answered_from_a_thread(engine, sim, city, db_url, tmp_path) -> None:  # noqa: ANN001
    """A fresh process knows no token yet: the push goes to a worker thread (which reads the token
    from the database) and is stored and acknowledged as any other."""
    import asyncio

    first = Receiver(engine, feed_settings(db_url, tmp_path))
    fresh = Receiver(engine, feed_settings(db_url, tmp_path))
    try:
        op = Operator(first, city[sim.operator_ids[0]])
        (cid,) = _connectors(engine, op.s.operator_id, 1)
        body = op.envelope(cid, 2)
        code, env = asyncio.run(fresh.handle_async(STATUS, body, f"Bearer {op.token}"))
        assert code == 200 and int(parse_response(env, op.s).ret) == 0
        assert _stored(engine, op.s.operator_id, [body]) == [True]
        # a wrong token is refused with Ret 4002, from the thread as well
        code, env = asyncio.run(fresh.handle_async(STATUS, op.envelope(cid, 1), "Bearer " + "0" * 32))
        assert code == 200 and int(parse_response(env, op.s).ret) == int(Ret.TOKEN)
    finally:
        first.close()
        fresh.close()

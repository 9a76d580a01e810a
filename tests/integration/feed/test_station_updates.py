"""The index of ``stations.updated_at`` lives in ``station_updates`` (migration 1511, issue 18): a
status push's UPDATE of its station writes only columns that no index of ``stations`` reads, so it
is a HOT update, and ``station_updates`` follows ``updated_at`` through syncs, pushes and deletes,
which the open API's ``updated_since`` and the dumps' Last-Modified read."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from .test_group_commit import Operator, _connectors, city, receiver  # noqa: F401 (fixtures)

#: what zh_status_push_stations writes (sql/functions/feed_status_push.sql)
PUSH_COLUMNS = {"connectors_free", "availability", "silent_since", "status_changed_at", "updated_at"}


def test_no_index_of_stations_reads_a_column_a_status_push_writes(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        source = conn.execute(text(
            "SELECT pg_get_functiondef('zh_status_push_stations(bigint[], boolean)'::regprocedure)")).scalar()
        written = set(re.findall(r"\n\s+(?:SET\s+)?(\w+) = ", source.split("UPDATE stations s", 1)[1].split("FROM", 1)[0]))
        indexes = conn.execute(text("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                                    "WHERE indrelid = 'stations'::regclass")).all()
    assert written == PUSH_COLUMNS, written  # the guard below checks what the push really writes
    for name, definition in indexes:
        used = set(re.findall(r"\w+", definition.split(" USING ", 1)[1]))
        assert not used & PUSH_COLUMNS, (name, definition)


def _mismatches(engine) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM stations s FULL JOIN station_updates u ON u.station_pk = s.id "
            "WHERE u.updated_at IS DISTINCT FROM s.updated_at")).scalar()


def test_station_updates_follow_updated_at_through_sync_pushes_and_deletes(engine, city, receiver) -> None:  # noqa: ANN001, F811
    assert _mismatches(engine) == 0  # the sync's inserts and upserts
    op_id = next(iter(city))
    op = Operator(receiver, city[op_id])
    before = datetime.now(UTC) - timedelta(seconds=1)
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT connector_id, status FROM connector_status WHERE operator_id = :o"),
                                     {"o": op_id}).all())
    changed = []
    for cid in _connectors(engine, op_id, 4):
        new = 3 if statuses.get(cid) == 1 else 1
        assert op.push(op.envelope(cid, new))[1] == 0
        changed.append(cid)
    assert _mismatches(engine) == 0  # the pushes' station updates
    with engine.connect() as conn:
        pushed = set(conn.execute(text(
            "SELECT DISTINCT c.station_pk FROM connectors c WHERE c.operator_id = :o AND c.connector_id = ANY(:c)"),
            {"o": op_id, "c": changed}).scalars())
        since = set(conn.execute(text("SELECT station_pk FROM station_updates WHERE updated_at >= :t"),
                                 {"t": before}).scalars())
        assert pushed and pushed <= since
        gone = next(iter(pushed))
        conn.execute(text("DELETE FROM stations WHERE id = :i"), {"i": gone})  # (rolled back on leaving)
        assert conn.execute(text("SELECT count(*) FROM station_updates WHERE station_pk = :i"),
                            {"i": gone}).scalar() == 0

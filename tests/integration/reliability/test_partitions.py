"""Monthly partitions in a database of their own (their DDL would disturb the shared one): made
ahead, carried over at each month's start, dropped after the retention without losing the state
that runs on; a push whose month has no partition makes it; the job's run end to end."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from litestar.testing import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from ingest.protocol import Secrets, build_request, parse_response
from services import migrate
from services.db import Database
from services.feed.endpoints import register_operator
from services.reliability.history import status_history
from services.reliability.jobs import maintain
from services.reliability.partitions import (
    add_months,
    carry_months,
    drop_expired,
    ensure_partitions,
    month_of,
    month_start,
    partition_name,
)
from services.reliability.settings import ReliabilitySettings
from tests.conftest import create_database, drop_database, make_settings

from .conftest import OP, build_station, history


@pytest.fixture(scope="module")
def own() -> Iterator[Engine]:
    name = f"zhcharge_rel_{secrets.token_hex(4)}"
    url = create_database(name)
    engine = create_engine(url)
    migrate.upgrade(engine)
    from services.geography import load_districts_into_db

    with engine.begin() as conn:
        load_districts_into_db(conn)
    yield engine
    engine.dispose()
    drop_database(name)


def _partitions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'connector_status_history'::regclass")).scalars())


def test_made_ahead_carried_and_dropped(own: Engine) -> None:
    this = month_of(datetime.now(UTC))
    assert _partitions(own) == [partition_name(add_months(this, i)) for i in range(3)]  # by the migration
    with own.begin() as conn:
        pk, (k1, k2) = build_station(conn, "RLBP", 2)
        history(conn, k1, [(month_start(this) + timedelta(days=1), 3)])
        history(conn, k2, [(month_start(this) + timedelta(days=2), 255)])
    later = month_start(add_months(this, 4)) + timedelta(days=3)  # four months on
    with own.begin() as conn:
        made = ensure_partitions(conn, later, ahead=2)
        carried = carry_months(conn, later)
    assert made == [partition_name(add_months(this, i)) for i in (3, 4, 5, 6)]  # no month missing
    assert carried == [add_months(this, i) for i in (1, 2, 3, 4)]  # in order, each from the one before
    with own.connect() as conn:
        starts = conn.execute(text("SELECT at, status FROM connector_status_history WHERE connector_key = :k "
                                   "AND source = 'c' ORDER BY at"), {"k": k1}).all()
    assert starts == [(month_start(add_months(this, i)), 3) for i in (1, 2, 3, 4)]
    # keep two months: the oldest go, the state that runs on stays known
    with own.begin() as conn:
        dropped = drop_expired(conn, later, retention_months=2, daily_retention_months=2)
        conn.execute(text("INSERT INTO reliability_days (day, aggregated_until) VALUES (:d, :u)"),
                     {"d": this, "u": month_start(this)})
    assert dropped == [partition_name(add_months(this, i)) for i in (0, 1, 2)]
    assert _partitions(own)[0] == partition_name(add_months(this, 3))
    with own.connect() as conn:
        body = status_history(conn, pk, later - timedelta(days=1), later, later)
        months = conn.execute(text("SELECT min(month) FROM reliability_months")).scalar()
    assert [c["intervals"] for c in body["connectors"]] == [
        [{"status": 3, "from": (later - timedelta(days=1)).astimezone(UTC).isoformat(), "to": None}],
        [{"status": 255, "from": (later - timedelta(days=1)).astimezone(UTC).isoformat(), "to": None}]]
    assert months == add_months(this, 3)
    with own.begin() as conn:
        drop_expired(conn, later, retention_months=2, daily_retention_months=2)
        assert conn.execute(text("SELECT count(*) FROM reliability_days WHERE day = :d"), {"d": this}).scalar() == 0


def test_a_push_makes_a_missing_partition(own: Engine, tmp_path) -> None:  # noqa: ANN001
    from portal_site.app import create_app

    this = month_of(datetime.now(UTC))
    with own.begin() as conn:
        conn.execute(text(f'DROP TABLE IF EXISTS "{partition_name(this)}"'))
        conn.execute(text("DELETE FROM reliability_months WHERE month = :m"), {"m": this})
        creds, _ = register_operator(conn, operator_id="RLBPUSH01", name="推送", base_url="http://127.0.0.1:9/x",
                                     platform_operator_id="MA0000000", operator_secret="s" * 16,
                                     data_secret="d" * 16, data_iv="i" * 16, sig_secret="g" * 16)
    c = creds.as_dict()
    s = Secrets(c["operator_id"], c["operator_secret"], c["data_secret"], c["data_iv"], c["sig_secret"])
    app = create_app(make_settings(str(own.url.render_as_string(hide_password=False)), tmp_path),
                     database=Database(own))
    with TestClient(app) as tc:
        r = tc.post("/evcs/v20160701/query_token",
                    json=build_request(s.operator_id, {"OperatorID": s.operator_id,
                                                       "OperatorSecret": s.operator_secret}, s))
        token = parse_response(r.content, s).data["AccessToken"]
        env = build_request(s.operator_id, {"ConnectorStatusInfo": {"ConnectorID": "RLBPUSHC1", "Status": 3}}, s)
        r = tc.post("/evcs/v20160701/notification_stationStatus", json=env,
                    headers={"Authorization": f"Bearer {token}"})
        assert parse_response(r.content, s).ret == 0
    assert partition_name(this) in _partitions(own)
    with own.connect() as conn:
        assert conn.execute(text("SELECT h.status FROM connector_status_history h JOIN connector_status cs "
                                 "ON cs.id = h.connector_key WHERE cs.connector_id = 'RLBPUSHC1'")).scalar() == 3


def test_the_job_runs_once_at_a_time(own: Engine) -> None:
    cfg = ReliabilitySettings(silence_s=600, rollup_margin_s=0)
    with own.begin() as conn:
        conn.execute(text("UPDATE connector_status SET updated_at = now() - interval '1 hour' "
                          "WHERE operator_id = :op"), {"op": OP})
    with own.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": 0x7A68_1500})
        assert not maintain(own, cfg).ran  # another process has it
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": 0x7A68_1500})
        holder.commit()
    run = maintain(own, cfg)
    assert run.ran and run.silenced_stations == 1 and run.hours >= 0
    with own.connect() as conn:
        assert conn.execute(text("SELECT availability, silent_since IS NOT NULL FROM stations "
                                 "WHERE operator_id = :op"), {"op": OP}).one() == ("unknown", True)
        today = conn.execute(text("SELECT aggregated_until FROM reliability_days WHERE day = :d"),
                             {"d": (datetime.now(UTC) + timedelta(hours=8)).date()}).scalar()
    assert today is None or today <= datetime.now(UTC)  # today so far, up to its last hour


def test_no_partition_before_the_history_begins(own: Engine) -> None:
    """A late report older than the oldest month kept changes nothing (and does not fail)."""
    with own.begin() as conn:
        key = conn.execute(text("SELECT id FROM connector_status WHERE operator_id = :op LIMIT 1"),
                           {"op": OP}).scalar()
        assert conn.execute(text("SELECT zh_status_history_late(:k, :t, CAST(1 AS smallint), 'p')"),
                            {"k": key, "t": datetime(2020, 1, 1, tzinfo=UTC)}).scalar() is False
    assert date(2020, 1, 1) < month_of(datetime.now(UTC))

"""Keeping station_search in spatial order (services.search.maintenance, issue 18): clustering puts
neighbours in neighbouring rows, changes no answer, is recorded, gives way to a busy table, runs
once a day at its hour, and is what ``zhcharge db cluster`` does."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner
from litestar.datastructures import MultiDict
from sqlalchemy import text

from portal_site.cli import main
from services.search import parse_search, search
from services.search.maintenance import JOB, cluster_due, cluster_station_search

from .conftest import search_settings

QUERIES = [{"bbox": "113.45,22.15,113.65,22.35", "facility_type": "dc", "limit": "20"},
           {"q": "充电", "limit": "20"}, {"lng": "113.55", "lat": "22.25", "sort": "distance", "limit": "10"},
           {"operator": "", "sort": "id", "limit": "50"}]


def _answers(engine) -> list:  # noqa: ANN001
    out = []
    with engine.connect() as conn:
        for p in QUERIES:
            r = search(conn, parse_search(MultiDict({k: v for k, v in p.items() if v}), search_settings()))
            out.append(([i["id"] for i in r.items], r.total, r.facets))
    return out


def _neighbour_gap(engine) -> float:  # noqa: ANN001
    """Mean distance in degrees between rows next to each other in the table's physical order."""
    with engine.connect() as conn:
        return conn.execute(text(
            "SELECT avg(d) FROM (SELECT ST_Distance(geom, lag(geom) OVER (ORDER BY ctid)) AS d "
            "FROM station_search) x WHERE d IS NOT NULL")).scalar()


def test_clustering_puts_neighbours_together_and_changes_no_answer(engine, search_data) -> None:  # noqa: ANN001
    with engine.begin() as conn:  # the feeds' order: rows written in no order of space
        conn.execute(text("CREATE TEMP TABLE shuffled AS SELECT * FROM station_search ORDER BY md5(id::text)"))
        conn.execute(text("DELETE FROM station_search"))
        conn.execute(text("INSERT INTO station_search SELECT * FROM shuffled"))
        conn.execute(text("DROP TABLE shuffled"))
    before, answers = _neighbour_gap(engine), _answers(engine)
    run = cluster_station_search(engine)
    assert run.ran and run.rows > 100
    assert _neighbour_gap(engine) < before / 4
    assert _answers(engine) == answers
    with engine.connect() as conn:
        ran_at, detail = conn.execute(text("SELECT ran_at, detail FROM maintenance_runs WHERE job = :j"),
                                      {"j": JOB}).one()
        assert datetime.now(UTC) - ran_at < timedelta(minutes=1) and detail == f"{run.rows} rows"
        options = conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'station_search'")).scalar()
        assert "fillfactor=90" in options  # updates stay in their page: the order holds between runs


def test_a_busy_table_postpones_clustering(engine, search_data) -> None:  # noqa: ANN001
    held = threading.Event()
    release = threading.Event()

    def reader() -> None:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE station_search IN ACCESS SHARE MODE"))
            held.set()
            release.wait(10)

    t = threading.Thread(target=reader)
    t.start()
    try:
        assert held.wait(5)
        run = cluster_station_search(engine, lock_timeout_s=0.2)
        assert not run.ran and "busy" in run.reason
    finally:
        release.set()
        t.join()
    assert cluster_station_search(engine).ran


def test_the_daily_run_is_due_once_at_its_hour(engine) -> None:  # noqa: ANN001
    at_four = datetime(2026, 12, 7, 20, 30, tzinfo=UTC)  # 04:30 in China
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM maintenance_runs WHERE job = :j"), {"j": JOB})
        assert cluster_due(conn, 4, at_four)
        assert not cluster_due(conn, 5, at_four) and not cluster_due(conn, -1, at_four)
        conn.execute(text("INSERT INTO maintenance_runs (job, ran_at) VALUES (:j, :t)"),
                     {"j": JOB, "t": at_four - timedelta(minutes=20)})
        assert not cluster_due(conn, 4, at_four)  # ran this morning already
        assert cluster_due(conn, 4, at_four + timedelta(days=1))
        conn.rollback()


def test_cli_cluster(db_url, engine, search_data) -> None:  # noqa: ANN001
    result = CliRunner().invoke(main, ["db", "cluster"], env={"ZHCHARGE_DATABASE_URL": db_url})
    assert result.exit_code == 0, result.output
    assert "station_search clustered" in result.output

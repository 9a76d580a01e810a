"""The background scheduler: due pulls, and one pull per operator across several app processes
(two schedulers stand in for two processes: they coordinate through the database only)."""

from __future__ import annotations

from sqlalchemy import text

from ingest.scheduler import FeedScheduler

from .conftest import feed_settings


def _wait(s: FeedScheduler) -> list:
    return [f.result(60) for f in s._running.values()]


def test_two_schedulers_pull_each_operator_once(engine, sim, registered, db_url, tmp_path) -> None:
    settings = feed_settings(db_url, tmp_path, sync_interval_s=300, status_interval_s=1)
    sim.faults(slow_seconds=0.3)
    a, b = FeedScheduler(engine, settings), FeedScheduler(engine, settings)
    try:
        started_a, started_b = a.tick(), b.tick()
        assert sorted(started_a) == sorted(f"{op}:sync" for op in sim.operator_ids)
        results = _wait(a) + _wait(b)
        done = [r for r in results if not r.skipped and r.operator_id in sim.operator_ids]
        assert sorted(r.operator_id for r in done) == sorted(sim.operator_ids) and all(r.ok for r in done)
        with engine.connect() as conn:
            runs = conn.execute(text("SELECT operator_id, mode FROM sync_runs WHERE operator_id = ANY(:ids)"),
                                {"ids": sim.operator_ids}).all()
        assert sorted(runs) == sorted((op, "full") for op in sim.operator_ids)
        # the info pull is not due again; statuses are (status_interval_s = 1)
        import time

        time.sleep(1.1)
        sim.faults(reset=True)
        started = a.tick()
        # statuses are due, and the business policies after the first full sync (issue 15)
        assert sorted(started) == sorted([f"{op}:status" for op in sim.operator_ids]
                                         + [f"{op}:policies" for op in sim.operator_ids])
        statuses = _wait(a)
        assert all(r.ok and r.statuses > 0 for r in statuses if r.operator_id in sim.operator_ids)
        for fut in a._policies.values():
            assert fut.result(timeout=60).ok
        assert not [s for s in b.tick() if s.endswith(":policies")]  # pulled once, not again by the other
        with engine.connect() as conn:
            policy_runs = conn.execute(text("SELECT operator_id FROM sync_runs WHERE operator_id = ANY(:ids) "
                                            "AND mode = 'policy' AND ok"), {"ids": sim.operator_ids}).scalars().all()
        assert sorted(policy_runs) == sorted(sim.operator_ids)
    finally:
        a.stop()
        b.stop()


def test_app_starts_the_scheduler_when_asked(engine, sim, registered, db_url, tmp_path, database) -> None:
    from litestar.testing import TestClient

    from portal_site.app import create_app

    settings = feed_settings(db_url, tmp_path)
    settings.app.run_scheduler = True
    app = create_app(settings, database=database)
    with TestClient(app) as client:
        scheduler = app.state["feed_scheduler"]
        assert scheduler._thread is not None and scheduler._thread.is_alive()
        assert client.get("/healthz").status_code in (200, 503)
    assert not scheduler._thread.is_alive()

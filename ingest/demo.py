"""``zhcharge demo load``: a living city on the first ``make run``.

Starts the operator simulator as a detached background process (pidfile and log under
``<data_dir>/simulator``; reused when it already answers), registers every simulated operator
like ``feed add-operator`` would, points the simulator's pushes at ``settings.app.public_url``
with the inbound credentials, runs a full sync and turns on a modest rate of live changes.
Running it again changes nothing but the live rate and a fresh sync.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from services.prices.tariff import CHINA_TZ
from services.settings import PROJECT_ROOT, Settings

__all__ = ["load_demo", "start_simulator", "stop_simulator"]


def _sim_dir(settings: Settings) -> Path:
    return Path(settings.db.data_dir) / "simulator"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(url: str) -> dict | None:
    try:
        r = httpx.get(f"{url}/_admin/health", timeout=2.0)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def start_simulator(settings: Settings, *, stations: int = 1500, operators: int = 6, port: int = 9100,
                    seed: int = 1, echo: Callable[[str], None] = print) -> str:
    """Start (or reuse) the detached simulator; returns its base URL."""
    url = f"http://127.0.0.1:{port}"
    d = _sim_dir(settings)
    d.mkdir(parents=True, exist_ok=True)
    pidfile, logfile = d / "simulator.pid", d / "simulator.log"
    health = _healthy(url)
    if health:
        pid = pidfile.read_text().strip() if pidfile.exists() else "?"
        echo(f"simulator already running on {url} (pid {pid}): {health.get('operators')} operators, "
             f"{health.get('stations')} stations")
        return url
    if pidfile.exists():
        try:
            old = int(pidfile.read_text().strip())
            if _pid_alive(old):
                os.kill(old, signal.SIGTERM)
        except (ValueError, ProcessLookupError):
            pass
        pidfile.unlink(missing_ok=True)
    with open(logfile, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.simulator", "--seed", str(seed), "--stations", str(stations),
             "--operators", str(operators), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(PROJECT_ROOT),
            start_new_session=True)
    pidfile.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited (code {proc.returncode}); see {logfile}")
        if _healthy(url):
            echo(f"simulator started on {url} (pid {proc.pid}, log {logfile})")
            return url
        time.sleep(0.3)
    raise RuntimeError(f"the simulator did not answer on {url} within 60 s; see {logfile}")


def stop_simulator(settings: Settings) -> str:
    pidfile = _sim_dir(settings) / "simulator.pid"
    if not pidfile.exists():
        return "no demo simulator is running"
    try:
        pid = int(pidfile.read_text().strip())
    except ValueError:
        pidfile.unlink(missing_ok=True)
        return "removed a broken pidfile"
    if not _pid_alive(pid):
        pidfile.unlink(missing_ok=True)
        return f"the simulator (pid {pid}) was not running"
    os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not _pid_alive(pid):
            break
        time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    return f"stopped the simulator (pid {pid})"


def load_demo(settings: Settings, *, stations: int = 1500, operators: int = 6, port: int = 9100,
              rate: float = 2.0, echo: Callable[[str], None] = print) -> bool:
    """Everything ``zhcharge demo load`` does; returns False when a sync failed."""
    from sqlalchemy import text

    from ingest.sync import sync_all
    from services import migrate
    from services.db import make_engine
    from services.feed.endpoints import register_operator
    from services.geography import load_districts_into_db

    engine = make_engine(settings.db, start=settings.db.embedded)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            load_districts_into_db(conn, settings.app.city_adcode)
        url = start_simulator(settings, stations=stations, operators=operators, port=port, echo=echo)
        with httpx.Client(base_url=url, timeout=30.0) as admin:
            sim_ops = admin.get("/_admin/operators").raise_for_status().json()
            targets = []
            with engine.begin() as conn:
                for op in sim_ops:
                    creds, created = register_operator(
                        conn, operator_id=op["operator_id"], name=op["name"], base_url=op["base_url"],
                        platform_operator_id=op["platform_operator_id"], operator_secret=op["operator_secret"],
                        data_secret=op["data_secret"], data_iv=op["data_iv"], sig_secret=op["sig_secret"],
                        api_version=settings.feed.api_version, interconnected=True)
                    echo(f"{'registered' if created else 'already registered'} {op['operator_id']} {op['name']}")
                    targets.append({"operator_id": op["operator_id"], "base_url": settings.app.public_url.rstrip("/"),
                                    **{k: v for k, v in creds.as_dict().items() if k != "operator_id"}})
            admin.post("/_admin/push-targets", json=targets).raise_for_status()
            echo(f"the simulator pushes status changes to {settings.app.public_url}")
            results = sync_all(engine, settings, full=True, lock_wait_s=30.0,
                               on_result=lambda r: echo(r.line()))
            from ingest.policies import pull_policies_all

            for p in pull_policies_all(engine, settings):
                echo(f"{p.operator_id}: prices {'ok' if p.ok else 'FAILED: ' + str(p.error)} ({p.policies} business "
                     f"policies, {p.fallback} from fee texts)")
            # Charge orders and daily reconciliations are pushed to the same platform (issue 15): a day
            # of finished sessions and yesterday's reconciliation are queued now and delivered (the
            # simulator retries like a real platform) once the app is up; live sessions follow.
            admin.post("/_admin/live", json={"changes_per_second": rate, "push_orders": True}).raise_for_status()
            yesterday = (datetime.now(CHINA_TZ) - timedelta(days=1)).date().isoformat()
            made = admin.post("/_admin/sessions", json={"count": 40 * len(sim_ops), "minutes": [15, 150]},
                              timeout=120.0).raise_for_status().json()
            for op in sim_ops:
                admin.post("/_admin/reconcile", json={"operator_id": op["operator_id"], "day": yesterday}
                           ).raise_for_status()
            echo(f"live changes: {rate:g} per second; {made.get('made', 0)} charge orders of the last day and "
                 f"{yesterday}'s reconciliation queued for the platform")
        with engine.connect() as conn:
            active = conn.execute(text("SELECT count(*) FROM stations WHERE feed_state = 'active'")).scalar()
        echo(f"{active} active stations on the map")
        _demo_back_office(engine, settings, [(op["operator_id"], op["name"]) for op in sim_ops], echo)
        return all(r.ok for r in results)
    finally:
        engine.dispose()


def _demo_back_office(engine, settings: Settings, operators: list[tuple[str, str]],  # noqa: ANN001
                      echo: Callable[[str], None]) -> None:
    """Demo accounts, archives in several states, subsidy rules and messages, so every page has content."""
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from services.accounts.demo import ensure_demo_accounts
    from services.archives.demo import ensure_demo_archives
    from services.subsidy.demo import ensure_demo_subsidy

    with engine.begin() as conn:
        logins = ensure_demo_accounts(conn, operators)
        pks = [r[0] for r in conn.execute(text("SELECT id FROM operators WHERE operator_id = ANY(:ids) ORDER BY id"),
                                          {"ids": [op for op, _ in operators]})]
        ensure_demo_archives(conn, pks, upload_dir=settings.app.upload_dir)
    with Session(engine) as session, session.begin():
        ensure_demo_subsidy(session)
        _demo_messages(session)
    echo("demo logins (http://127.0.0.1:8000/login):")
    for item in logins:
        echo("  " + "  ".join(f"{k}={v}" for k, v in item.items()))


def _demo_messages(session) -> None:  # noqa: ANN001
    from services.messaging.demo import ensure_demo_content

    ensure_demo_content(session)

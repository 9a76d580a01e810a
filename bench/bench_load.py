"""Load test (issue 18, item 5): locust, headless, against ``zhcharge serve --workers 2`` over the
national set, without and with the read replica.

``python -m bench load`` (``make bench``). The users are in ``bench/load_users.py``: map users
(pan/zoom tile requests over realistic zooms and places, name searches, station popups) and apps
(open-API paging with the cursor), 3 to 1. The server is ``zhcharge serve --workers 2`` on the
private cluster's database of the national set (``bench.generate.scale_database``: 250,000
stations, the search benchmark's database, reused), started by ``portal_site.serving.AppProcess``
exactly as an operator would start it (``ZHCHARGE_PG_DATABASE`` names the database); the second
round adds ``--replica`` (``zhcharge db replica``: created, with ``pg_basebackup``, when it does not
exist, and then removed again, slot and all, so the machine is left as found).

Users are stepped up (``BENCH_LOAD_STEPS``, default 2,5,10,20,40,80,160), each step a headless
locust run of ``BENCH_LOAD_STEP_S`` seconds (default 40) after the users have spawned (statistics
reset then); a step with p95 >= 200 ms or an error is run once more (the machine is shared), and
the ladder stops at the first step that misses twice. Reported: each step's requests/s, p50, p95,
errors and slowest kind of request, and the users sustained (the largest step with p95 < 200 ms
and no error), per server configuration. ``BENCH_LOAD_REPLICA=0`` skips the replica round,
``BENCH_LOAD_STATIONS`` picks another size of the national set.

Locust runs on the same machine as the server and the database (one process, one core at most):
the figures are a floor for the server, not a capacity plan.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
USERS_FILE = Path(__file__).resolve().parent / "load_users.py"
TARGET_P95_MS = 200.0
SAMPLE_STATIONS = 5000


def _steps() -> list[int]:
    return [int(s) for s in os.environ.get("BENCH_LOAD_STEPS", "2,5,10,20,40,80,160").split(",") if s.strip()]


def _sample(url: str, path: Path) -> None:
    """Stations the users go to (a random sample of the published ones) and the operators."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT setseed(0.18)"))  # the same sample every run
            rows = conn.execute(text(
                "SELECT id, ST_X(geom) AS lng, ST_Y(geom) AS lat, name, address, operator_id FROM stations "
                "WHERE feed_state = 'active' ORDER BY random() LIMIT :n"), {"n": SAMPLE_STATIONS}).mappings().all()
            ops = list(conn.execute(text("SELECT DISTINCT operator_id FROM stations WHERE operator_id LIKE 'GEN%' "
                                         "ORDER BY 1")).scalars())
    finally:
        engine.dispose()
    path.write_text(json.dumps({"stations": [dict(r) for r in rows], "operators": ops}, ensure_ascii=False))


def _locust(url: str, users: int, seconds: int, data: Path, prefix: Path) -> dict[str, Any]:
    """One headless locust run; the aggregated and per-name statistics from its CSV."""
    cmd = [sys.executable, "-m", "locust", "-f", str(USERS_FILE), "--headless", "--host", url,
           "-u", str(users), "-r", str(max(1, users)), "-t", f"{seconds + 2}s", "--reset-stats",
           "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"]
    env = {**os.environ, "BENCH_LOAD_DATA": str(data)}
    subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
                   timeout=seconds + 120)
    with open(f"{prefix}_stats.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_name = {r["Name"]: r for r in rows}
    agg = by_name.pop("Aggregated")

    def num(r: dict[str, str], key: str) -> float:
        v = r.get(key, "")
        return float(v) if v not in ("", "N/A") else float("nan")

    return {"users": users, "requests": int(num(agg, "Request Count")), "errors": int(num(agg, "Failure Count")),
            "rps": num(agg, "Requests/s"), "p50": num(agg, "50%"), "p95": num(agg, "95%"), "p99": num(agg, "99%"),
            "by_name": {n: {"requests": int(num(r, "Request Count")), "p50": num(r, "50%"), "p95": num(r, "95%")}
                        for n, r in by_name.items()}}


def _ladder(label: str, url: str, data: Path, work: Path) -> list[dict[str, Any]]:
    slug = label.replace(" + ", "-").replace(" ", "-")
    seconds = int(os.environ.get("BENCH_LOAD_STEP_S", "40"))
    steps = _steps()
    _locust(url, steps[0], 15, data, work / f"{slug}-warmup")  # cold caches: not counted
    out = []
    for users in steps:
        for attempt in (1, 2):  # a step that misses is run once more: others share the machine
            load = os.getloadavg()[0]
            r = _locust(url, users, seconds, data, work / f"{slug}-{users}-{attempt}")
            r["load"] = (load + os.getloadavg()[0]) / 2
            r["attempt"] = attempt
            print(f"   {label}: {users:4d} users  {r['rps']:7.1f} req/s  p50 {r['p50']:5.0f} ms  "
                  f"p95 {r['p95']:5.0f} ms  errors {r['errors']}  (load {r['load']:.1f})", flush=True)
            if _passed(r):
                break
        out.append(r)
        if not _passed(r):
            break
    return out


def _passed(r: dict[str, Any]) -> bool:
    return r["p95"] < TARGET_P95_MS and not r["errors"]


def _serve_env(database: str) -> dict[str, str | None]:
    return {"ZHCHARGE_DATABASE_URL": None, "ZHCHARGE_READ_DATABASE_URL": None, "ZHCHARGE_PG_DATABASE": database,
            "ZHCHARGE_ENV": "test", "ZHCHARGE_RUN_SCHEDULER": "false",
            "ZHCHARGE_SEARCH_ANONYMOUS_RATE_PER_MIN": "100000000"}


def _rows(label: str, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    good = [s for s in steps if _passed(s)]
    best = good[-1] if good else None
    rows = [{"benchmark": "load", "metric": f"{label}: users sustained (p95 < 200 ms, 0 errors)",
             "value": best["users"] if best else 0, "unit": "users", "target": "", "ok": None,
             "note": (f"{best['rps']:.0f} req/s, p95 {best['p95']:.0f} ms, load {best['load']:.1f}" if best
                      else "not even the first step")}]
    for s in steps:
        worst = max(s["by_name"].items(), key=lambda kv: kv[1]["p95"] if kv[1]["p95"] == kv[1]["p95"] else 0)
        rows.append({"benchmark": "load", "metric": f"{label}: {s['users']} users", "value": s["p95"], "unit": "ms p95",
                     "target": f"< {TARGET_P95_MS:.0f}", "ok": _passed(s),
                     "note": (f"{s['rps']:.0f} req/s, p50 {s['p50']:.0f} ms, {s['errors']} errors of "
                              f"{s['requests']}; slowest: {worst[0]} p95 {worst[1]['p95']:.0f} ms; "
                              f"load {s['load']:.1f}" + ("; second try" if s["attempt"] == 2 else ""))})
    return rows


def main() -> list[dict[str, Any]]:
    from bench.generate import scale_database
    from portal_site.serving import AppProcess
    from services.dbcluster import Replica
    from services.settings import DatabaseSettings

    n = int(os.environ.get("BENCH_LOAD_STATIONS", os.environ.get("BENCH_STATIONS", "250000")))
    url = scale_database(n)
    database = url.rsplit("/", 1)[1].split("?")[0]
    work = Path(tempfile.mkdtemp(prefix="zhcharge-load-"))
    data = work / "stations.json"
    _sample(url, data)
    rows: list[dict[str, Any]] = []
    configs = [("2 workers", [])]
    if os.environ.get("BENCH_LOAD_REPLICA", "1") != "0":
        configs.append(("2 workers + replica", ["--replica"]))
    for label, args in configs:
        replica = Replica(DatabaseSettings()) if args else None
        made = False
        if replica is not None and not replica.status().running:
            print("   starting the read replica (zhcharge db replica start) ...", flush=True)
            t0 = time.perf_counter()
            made = not (replica.data_dir / "PG_VERSION").exists()
            replica.start()
            print(f"   replica ready in {time.perf_counter() - t0:.0f} s", flush=True)
        try:
            log = work / ("serve-replica.log" if args else "serve.log")
            with AppProcess(workers=2, env=_serve_env(database), args=args, log=log, keep_alive_s=75) as app:
                if args:
                    import httpx

                    deadline = time.monotonic() + 600  # a replica still replaying what others wrote
                    while (health := httpx.get(f"{app.url}/healthz", timeout=10).json()).get("reads_from") != "replica":
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"the replica serves no reads: {health.get('read_replica')}")
                        time.sleep(2)
                steps = _ladder(label, app.url, data, work)
                if args:
                    reads = httpx.get(f"{app.url}/healthz", timeout=10).json()["read_replica"]["reads"]
                    print(f"   reads in the worker asked last: {reads}", flush=True)
            rows.extend(_rows(label, steps))
        finally:
            if replica is not None and made and os.environ.get("BENCH_LOAD_KEEP_REPLICA") != "1":
                replica.reset()  # made here: leave the machine as found (no copy, no slot holding WAL)
    print(f"   locust statistics in {work}", flush=True)
    return rows

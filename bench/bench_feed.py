"""Feed benchmarks: full sync (3,000 stations / ~30,000 connectors), incremental with 1 % changed,
and sustained status pushes durably stored.

Everything runs over loopback HTTP: the operator simulator and the app (``zhcharge serve``, two
workers) each in their own process, against a fresh database of their own. The push load is
pre-built (signed, encrypted envelopes with Seq counted per operator and second) and replayed by a
small raw HTTP/1.1 client on keep-alive connections, so the figure measures the receiver, not the
load generator. "Durably stored" = acknowledged with Ret 0 after the commit (synchronous_commit
as configured on the server), checked against the rows afterwards. Each worker stores the pushes
that arrive together in one statement and one commit (group commit, ``ingest.group_commit``).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

STATIONS = 3000
OPERATORS = 6
PUSH_SECONDS = 10.0
PUSH_CONCURRENCY = 64


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer")


def _row(metric: str, value: float, unit: str, target: str, ok: bool | None, note: str = "",
         benchmark: str = "feed") -> dict:
    # The load average says whether the figure was taken on a quiet machine (2 cores: above ~2, other
    # work competed for the CPU and the figures drop accordingly).
    note = f"{note}; load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else note
    return {"benchmark": benchmark, "metric": metric, "value": value, "unit": unit, "target": target, "ok": ok,
            "note": note}


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU time (user + system) used so far by each process still running, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _children(pid: int) -> list[int]:
    """``pid`` and its child processes (uvicorn's workers)."""
    kids = [pid]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


class CpuMeter:
    """CPU seconds spent by the app's processes and by this database's PostgreSQL backends between
    ``start`` and ``stop``: a cost per push that other work on the machine changes far less than the
    rate (which, on 2 shared cores, it halves)."""

    def __init__(self, engine, app_pid: int) -> None:  # noqa: ANN001
        self.engine, self.app_pid = engine, app_pid

    def _backends(self) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                                          "AND pid <> pg_backend_pid()")).scalars())

    def start(self) -> None:
        self.app0 = _cpu_seconds(_children(self.app_pid))
        self.db0 = _cpu_seconds(self._backends())

    def stop(self) -> tuple[float, float]:
        """(app seconds, database seconds) since ``start``."""
        app1 = _cpu_seconds(_children(self.app_pid))
        db1 = _cpu_seconds(self._backends())
        return (sum(v - self.app0.get(k, 0.0) for k, v in app1.items()),
                sum(v - self.db0.get(k, 0.0) for k, v in db1.items()))


async def _blast(port: int, requests: list[bytes], concurrency: int) -> tuple[int, int, float, list[int]]:
    """Send pre-built HTTP/1.1 requests on keep-alive connections; (ok, other, seconds, rets)."""
    queue: asyncio.Queue = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    ok = other = 0
    rets: list[int] = []

    async def worker() -> None:
        nonlocal ok, other
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                try:
                    req = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                writer.write(req)
                await writer.drain()
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                ret = json.loads(body).get("Ret")
                if ret == 0:
                    ok += 1
                else:
                    other += 1
                    if len(rets) < 20:
                        rets.append(ret)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return ok, other, time.perf_counter() - t0, rets


def serve_app(url: str, env: dict, workers: int, **settings: str) -> tuple[subprocess.Popen, int]:
    """The app on a free port as ``zhcharge serve`` runs it (UVICORN_OPTIONS: no proxy headers, no
    server header), background jobs off, once it answers; (process, port)."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "portal_site.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(workers), "--log-level", "warning", "--no-access-log",
         "--no-proxy-headers", "--no-server-header"],
        cwd=ROOT, env={**env, "ZHCHARGE_DATABASE_URL": url, "ZHCHARGE_RUN_SCHEDULER": "false",
                       "ZHCHARGE_ENV": "test", **settings},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(f"http://127.0.0.1:{port}/healthz")
    return proc, port


def push_tokens(port: int, creds: dict) -> dict:
    """Each operator's (Secrets, AccessToken) from the app's query_token."""
    from ingest.protocol import Secrets, build_request, parse_response

    tokens = {}
    for op_id, c in creds.items():
        s = Secrets(op_id, c.operator_secret, c.data_secret, c.data_iv, c.sig_secret)
        r = httpx.post(f"http://127.0.0.1:{port}/evcs/v20160701/query_token",
                       json=build_request(op_id, {"OperatorID": op_id, "OperatorSecret": c.operator_secret}, s))
        tokens[op_id] = (s, parse_response(r.content, s).data["AccessToken"])
    return tokens


def _push_phase(engine, url: str, env: dict, creds: dict, workers: int, procs: list,  # noqa: ANN001
                after: datetime) -> tuple[dict, datetime]:
    """Sustained status pushes through ``workers`` app processes (each process stores the pushes waiting in
    it in one statement and one commit, so fewer processes make larger batches); the result row and the
    last TimeStamp used (a later phase starts after it: the same operator, second and Seq in another
    envelope would be a reused Seq)."""
    from ingest.protocol import build_request

    server, app_port = serve_app(url, env, workers)
    procs.append(server)
    with engine.connect() as conn:
        pool = conn.execute(text("SELECT operator_id, connector_id FROM connectors ORDER BY random()")).all()
    tokens = push_tokens(app_port, creds)
    # Pre-build the load: ~1,800 pushes per second of wall clock for PUSH_SECONDS, Seq counted per
    # operator within each second, timestamps starting now (well inside the window).
    per_second = 1800
    total = int(per_second * PUSH_SECONDS)
    start = max(datetime.now(UTC) + timedelta(seconds=2), after + timedelta(seconds=1))
    reqs: list[bytes] = []
    last_status: dict[tuple[str, str], int] = {}
    seqs: dict[tuple[str, int], int] = {}
    for i in range(total):
        op_id, cid = pool[i % len(pool)]
        s, token = tokens[op_id]
        sec = i // per_second
        seq = seqs[(op_id, sec)] = seqs.get((op_id, sec), 0) + 1
        status = (1, 3, 2, 1, 3)[i % 5]
        env_ = build_request(op_id, {"ConnectorStatusInfo": {"ConnectorID": cid, "Status": status,
                                                               "ParkStatus": 50, "LockStatus": 10}},
                             s, timestamp=start + timedelta(seconds=sec), seq=seq)
        body = json.dumps(env_).encode()
        reqs.append(b"POST /evcs/v20160701/notification_stationStatus HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    b"Content-Type: application/json;charset=utf-8\r\nAuthorization: Bearer "
                    + token.encode() + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        last_status[(op_id, cid)] = status
    with engine.connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM feed_push_seen")).scalar()
    meter = CpuMeter(engine, procs[-1].pid)
    meter.start()
    acked, refused, secs, rets = asyncio.run(_blast(app_port, reqs, PUSH_CONCURRENCY))
    app_cpu, db_cpu = meter.stop()
    server = procs.pop()
    server.terminate()
    server.wait(15)
    rate = acked / secs
    with engine.connect() as conn:
        seen = conn.execute(text("SELECT count(*) FROM feed_push_seen")).scalar() - before
        pushed = {(r[0], r[1]): r[2] for r in conn.execute(text(
            "SELECT operator_id, connector_id, status FROM connector_status WHERE source = 'push'"))}
    durable = seen == acked and all(pushed.get(k) == v for k, v in last_status.items()) if not refused else \
        seen >= acked
    return _row(f"status pushes, sustained, {workers} app process{'es' if workers > 1 else ''}", round(rate, 0),
                "pushes/s", ">= 3,000 /s", rate >= 3000 and durable and not refused,
                f"{acked} acknowledged in {secs:.1f} s ({refused} refused{' ' + str(rets) if rets else ''}), "
                f"{PUSH_CONCURRENCY} connections, {workers} uvicorn worker{'s' if workers > 1 else ''}; "
                f"every ack stored: {durable}; "
                f"CPU per push: app {app_cpu / max(acked, 1) * 1e3:.3f} ms, PostgreSQL "
                f"{db_cpu / max(acked, 1) * 1e3:.3f} ms; "
                "group commit: the pushes waiting in a worker stored in one statement and one commit "
                "(replay checks, statuses, history, station summaries, version), each answered after it"), \
        start + timedelta(seconds=total // per_second)


def main() -> list[dict]:
    from ingest.endpoints import register_operator
    from ingest.sync import sync_all
    from services import migrate
    from services.geography import load_districts_into_db
    from services.settings import AppSettings, DatabaseSettings, FeedSettings, Settings
    from tests.conftest import create_database, drop_database

    rows: list[dict] = []
    name = f"zhcharge_bench_feed_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url, pool_size=10, max_overflow=10)
    procs: list[subprocess.Popen] = []
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            load_districts_into_db(conn)
        sim_port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "ingest.simulator", "--seed", "7", "--stations", str(STATIONS), "--operators",
             str(OPERATORS), "--port", str(sim_port), "--token-ttl", "7200"], cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sim = f"http://127.0.0.1:{sim_port}"
        _wait(f"{sim}/_admin/health")
        settings = Settings(db=DatabaseSettings(database_url=url),
                            app=AppSettings(env="test", run_scheduler=False),
                            feed=FeedSettings(page_size=100, max_workers=OPERATORS))
        ops = httpx.get(f"{sim}/_admin/operators", timeout=30).json()
        creds = {}
        with engine.begin() as conn:
            for op in ops:
                c, _ = register_operator(conn, operator_id=op["operator_id"], name=op["name"],
                                         base_url=op["base_url"], platform_operator_id=op["platform_operator_id"],
                                         operator_secret=op["operator_secret"], data_secret=op["data_secret"],
                                         data_iv=op["data_iv"], sig_secret=op["sig_secret"])
                creds[op["operator_id"]] = c
        n_conn = sum(op["connectors"] for op in ops)

        # 1. full sync (the pinyin dictionary loaded first, as in a running app: once per process, ~1 s)
        from services.stations.vocab import pinyin_of

        pinyin_of("充电站")
        t0 = time.perf_counter()
        results = sync_all(engine, settings, full=True)
        full_s = time.perf_counter() - t0
        ok = all(r.ok for r in results)
        stored = sum(r.inserted + r.rejected for r in results)
        rows.append(_row("full sync", round(full_s, 2), "s", "< 10 s", ok and full_s < 10,
                         f"{stored} stations, {n_conn} connectors, {sum(r.statuses for r in results)} statuses, "
                         f"{OPERATORS} operators concurrently, page size {settings.feed.page_size}"))

        # 2. incremental with 1 % of the stations changed
        changed = STATIONS // 100
        httpx.post(f"{sim}/_admin/tick", json={"changes": 0, "info_changes": changed}, timeout=30).raise_for_status()
        t0 = time.perf_counter()
        results = sync_all(engine, settings)
        inc_s = time.perf_counter() - t0
        got = sum(r.updated + r.inserted for r in results)
        rows.append(_row("incremental sync, 1 % changed", round(inc_s, 2), "s", "< 2 s",
                         all(r.ok for r in results) and inc_s < 2,
                         f"{sum(r.received for r in results)} stations received, {got} updated"))

        # 3. sustained status pushes: one app process, then two (each process commits its own batches)
        last = datetime.now(UTC)
        for workers in (1, 2):
            row, last = _push_phase(engine, url, env, creds, workers, procs, last)
            rows.append(row)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        engine.dispose()
        drop_database(name)
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)

"""Prices and orders benchmarks (issue 15): business policies of ~30,000 connectors pulled from a
local simulator, order pushes durably stored through the real receiver, and a reconciliation of
50,000 orders.

As ``bench_feed``: the simulator and the app (``uvicorn``, two workers) run in their own processes
on loopback against a fresh database; the order load is pre-built (signed, encrypted envelopes,
orders billed exactly by each connector's stored tariff) and replayed on keep-alive connections,
so the figure measures the receiver: each order is read, checked (arithmetic, physics, references,
the tariff in force) and committed before Ret 0 goes back. The reconciliation list is one
``check_charge_orders`` request carrying 50,000 orders (about 5 MB of Base64) for orders stored
beforehand in bulk.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bench_feed import CpuMeter, _blast, _free_port, _row, _wait, push_tokens, serve_app  # noqa: E402

STATIONS = 3000
OPERATORS = 6
ORDERS = 12_000
PUSH_CONCURRENCY = 64
RECONCILE = 50_000


def _request(path: str, token: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json;charset=utf-8\r\n"
            f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def main() -> list[dict]:
    from ingest.endpoints import register_operator
    from ingest.policies import pull_policies_all
    from ingest.protocol import build_request, parse_response
    from ingest.sync import sync_all
    from services import migrate
    from services.geography import load_districts_into_db
    from services.orders.sample import billed_order
    from services.prices.tariff import CHINA_TZ, Tariff
    from services.settings import AppSettings, DatabaseSettings, FeedSettings, Settings
    from tests.conftest import create_database, drop_database

    rows: list[dict] = []
    name = f"zhcharge_bench_orders_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url, pool_size=10, max_overflow=10)
    procs: list[subprocess.Popen] = []
    row = lambda *a, **k: _row(*a, benchmark="orders", **k)  # noqa: E731
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
        settings = Settings(db=DatabaseSettings(database_url=url), app=AppSettings(env="test", run_scheduler=False),
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
        assert all(r.ok for r in sync_all(engine, settings, full=True))

        # 1. every connector's business policy
        t0 = time.perf_counter()
        results = pull_policies_all(engine, settings)
        secs = time.perf_counter() - t0
        n = sum(r.connectors for r in results)
        rows.append(row("business policies pulled", round(secs, 1), "s", "< 60 s for 30,000 connectors",
                        all(r.ok for r in results) and secs < 60 * max(1.0, n / 30000),
                        f"{n} connectors ({sum(r.policies for r in results)} policies, "
                        f"{sum(r.counts['new'] for r in results)} versions stored), {OPERATORS} operators at once, "
                        f"{settings.feed.policy_concurrency} requests in flight each: {n / secs:,.0f} connectors/s"))

        # 2. order pushes through the real receiver
        server, app_port = serve_app(url, env, 2, ZHCHARGE_FEED_TIMESTAMP_WINDOW_S="3600")
        procs.append(server)
        app = f"http://127.0.0.1:{app_port}"
        with engine.connect() as conn:
            pool = conn.execute(text(
                "SELECT c.operator_id, c.connector_id, c.power_kw, t.periods FROM connectors c "
                "JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id "
                "AND v.valid_to IS NULL JOIN tariffs t ON t.id = v.tariff_id ORDER BY random() LIMIT 5000")).all()
        tariffs = {}
        tokens = push_tokens(app_port, creds)
        now = datetime.now(CHINA_TZ).replace(microsecond=0)
        per_second = 1200
        start = datetime.now(UTC) + timedelta(seconds=2)
        reqs: list[bytes] = []
        seqs: dict[tuple[str, int], int] = {}
        for i in range(ORDERS):
            op_id, cid, power, periods = pool[i % len(pool)]
            tariff = tariffs.get(json.dumps(periods, sort_keys=True)) or Tariff.from_json(periods)
            tariffs[json.dumps(periods, sort_keys=True)] = tariff
            end = now - timedelta(minutes=5 + i % 600)
            order = billed_order(tariff, end - timedelta(minutes=20 + i % 90), end, Decimal(power),
                                 connector_id=cid, seq=f"{op_id}{i:018d}")
            s, token = tokens[op_id]
            sec = i // per_second
            seq = seqs[(op_id, sec)] = seqs.get((op_id, sec), 0) + 1
            body = json.dumps(build_request(op_id, order, s, timestamp=start + timedelta(seconds=sec), seq=seq)).encode()
            reqs.append(_request("/evcs/v20160701/notification_charge_order_info", token, body))
        meter = CpuMeter(engine, procs[-1].pid)
        meter.start()
        acked, refused, secs, rets = asyncio.run(_blast(app_port, reqs, PUSH_CONCURRENCY))
        app_cpu, db_cpu = meter.stop()
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT count(*), count(*) FILTER (WHERE confirm_result = 0 AND at_tariff) "
                                       "FROM charge_orders")).one()
        rate = acked / secs
        rows.append(row("order pushes, sustained", round(rate, 0), "orders/s", ">= 1,000 /s",
                        rate >= 1000 and stored[0] == acked and not refused,
                        f"{acked} acknowledged in {secs:.1f} s ({refused} refused{' ' + str(rets) if rets else ''}), "
                        f"{stored[0]} stored ({stored[1]} accepted at the tariff), {PUSH_CONCURRENCY} connections, "
                        "2 uvicorn workers; each order checked against its tariff history and committed before Ret 0 "
                        "(group commit: the orders waiting in a worker stored in one statement and one commit); "
                        f"CPU per order: app {app_cpu / max(acked, 1) * 1e3:.3f} ms, PostgreSQL "
                        f"{db_cpu / max(acked, 1) * 1e3:.3f} ms"))

        # 3. a reconciliation of 50,000 orders (stored in bulk first, all on one operator's day)
        op_id = next(iter(creds))
        day = (now - timedelta(days=2)).date()
        with engine.begin() as conn:
            conn.execute(text("""
                INSERT INTO charge_orders (operator_id, start_charge_seq, version, digest, connector_id, start_time,
                    end_time, day, total_power, total_elec_money, total_service_money, total_money, details,
                    confirm_result, raw)
                SELECT :op, :op || '8' || lpad(g::text, 17, '0'), 1, md5(g::text), 'C', :d + interval '1 hour',
                       :d + interval '2 hours', :day, 10 + g % 50, 5, 5 + g % 50, 10 + g % 50, '[]', 0, '{}'
                FROM generate_series(1, :n) g"""),
                {"op": op_id, "d": datetime.combine(day, datetime.min.time(), CHINA_TZ), "day": day, "n": RECONCILE})
            listed = [{"StartChargeSeq": r[0], "TotalPower": float(r[1]), "TotalMoney": float(r[2])} for r in conn.execute(
                text("SELECT start_charge_seq, total_power, total_money FROM charge_orders WHERE operator_id = :op "
                     "AND day = :day"), {"op": op_id, "day": day})]
        listed[0]["TotalMoney"] += 1  # one dispute the answer must name
        s, token = tokens[op_id]
        data = {"CheckOrderSeq": f"{op_id}{'1' * 18}", "StartTime": f"{day} 00:00:00", "EndTime": f"{day} 23:59:59",
                "OrderCount": len(listed), "TotalOrderPower": round(sum(x["TotalPower"] for x in listed), 2),
                "TotalOrderMoney": round(sum(x["TotalMoney"] for x in listed), 2), "ChargeOrders": listed}
        env_ = build_request(op_id, data, s, seq=9999)  # the order pushes above used Seqs 1.. in these seconds
        t0 = time.perf_counter()
        r = httpx.post(f"{app}/evcs/v20160701/check_charge_orders", json=env_, timeout=120,
                       headers={"Authorization": f"Bearer {token}"})
        secs = time.perf_counter() - t0
        answer = parse_response(r.content, s)
        ok = int(answer.ret) == 0 and answer.data.get("TotalDisputeOrder") == 1
        rows.append(row("reconciliation of 50,000 orders", round(secs, 2), "s", "< 5 s", ok and secs < 5,
                        f"one check_charge_orders of {len(r.request.content) / 1e6:.1f} MB answered with "
                        f"{answer.data.get('TotalDisputeOrder') if answer.data else answer.msg} dispute(s); "
                        "decrypt, compare with our latest versions, mark each order, answer"))
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

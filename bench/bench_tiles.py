"""Tile benchmark: our endpoint vs TiPg vs the raw SQL, at national and city scale.

``python -m bench tiles`` (``make bench``). National scale: 250,000 synthetic stations (about
2.5 million connectors) placed over China by ``bench.generate``; city scale: 5,000 over Zhuhai.
Each scale lives in its own database (``zhcharge_bench_tiles_<scale>``, kept between runs and
regenerated only when the station count differs).

Per zoom (5, 8, 11, 14, 16) on tiles sampled where stations are (denser areas more often):
median and p95 of
  * raw SQL: the exact statement the endpoint runs, on a psycopg2 connection (the floor);
  * ours: ``GET /tiles/stations/z/x/y.mvt`` on uvicorn in a subprocess, in-process cache off
    (every request renders), ``Accept-Encoding: identity`` so bytes match the SQL's;
  * TiPg 1.6 serving the same table (same properties, same visibility filter, buffer 64, no
    feature cap) on uvicorn in a subprocess;
and bytes per tile, the HTTP overhead (ours minus raw SQL, per request), cache hits and 304s on a
second server with the cache on, and tiles/s with 2 concurrent clients over all sampled tiles.

Environment: ``BENCH_TILES_NATIONAL_N`` / ``BENCH_TILES_CITY_N`` change the sizes,
``BENCH_TILES_SECONDS`` the length of the throughput runs, ``BENCH_TILES_SKIP_TIPG=1`` skips TiPg.
``python -m bench tiles --stations N`` (``BENCH_STATIONS``) runs the national scale only, on the
scaling table's database of N stations (``bench.generate.scale_database``).
"""

from __future__ import annotations

import http.client
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
ZOOMS = (5, 8, 11, 14, 16)
TILES_PER_ZOOM = 30
REPEATS = 3
MIN_SAMPLES = 30  # zooms with few sampled tiles (a city at z5) repeat them more
TARGET_P95_MS = 50.0
TARGET_BYTES = 500 * 1024
TARGET_OVERHEAD_MS = 1.5
FILTERED_QUERIES = ("facility_type=dc", "available=true&min_power=60", "scale=large,xlarge&payment=card",
                    "station_type=1&facility_type=ac,acdc&available=true", "operator=GEN000001,GEN000002,GEN000003")
FILTERED_ZOOMS = (3, 5, 8, 11)
FILTERED_TILES = 10
TIPG_PROPERTIES = "id,name,operator_id,station_type,facility_types,max_power_kw,connectors_total,connectors_free,availability"


# --- databases -------------------------------------------------------------------------------------
def ensure_database(scale: str, n: int, region: str) -> str:
    """The benchmark database of a scale, with exactly ``n`` generated stations."""
    from bench.generate import bench_database

    return bench_database(f"zhcharge_bench_tiles_{scale}", n, region=region, label=scale,
                          operators=10 if region == "zhuhai" else 40, analyze=("stations", "operators"))


# --- servers -----------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive HTTP/1.1 connection; ``get`` returns (status, body, seconds)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, float]:
        for attempt in (1, 2):
            try:
                t0 = time.perf_counter()
                self.conn.request("GET", path, headers=headers or {})
                r = self.conn.getresponse()
                body = r.read()
                return r.status, body, time.perf_counter() - t0
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


@contextmanager
def serve(app: list[str], env: dict[str, str], health: str, log: Path, cwd: Path = ROOT):  # noqa: ANN201
    """``app`` under uvicorn in a subprocess started in ``cwd`` (another tree serves its own code)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", *app, "--host", "127.0.0.1", "--port", str(port),
           "--no-access-log", "--log-level", "warning"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env={**os.environ, **env}, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{' '.join(app)} exited; see {log}")
                try:
                    c = Client(port)
                    status, _, _ = c.get(health)
                    c.close()
                    if status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{' '.join(app)} did not become ready; see {log}")
                time.sleep(0.2)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def our_env(url: str, *, cache: bool) -> dict[str, str]:
    env = {"ZHCHARGE_DATABASE_URL": url, "ZHCHARGE_RUN_SCHEDULER": "false", "ZHCHARGE_ENV": "test",
           "ZHCHARGE_SEARCH_ANONYMOUS_RATE_PER_MIN": "100000000"}
    if not cache:
        env["ZHCHARGE_TILES_CACHE_BYTES"] = "0"
    return env


def tipg_env(url: str) -> dict[str, str]:
    u = make_url(url)
    dsn = f"postgresql://{u.username}:{u.password or ''}@{u.host or '127.0.0.1'}:{u.port or 5432}/{u.database}"
    return {"DATABASE_URL": dsn, "TIPG_DB_SCHEMAS": '["public"]', "TIPG_DB_TABLES": '["public.stations"]',
            "TIPG_DB_FUNCTIONS": "[]", "TIPG_MAX_FEATURES_PER_TILE": "10000000", "TIPG_TILE_BUFFER": "64",
            "TIPG_DB_SPATIAL_EXTENT": "false", "TIPG_DB_DATETIME_EXTENT": "false", "TIPG_DB_MAX_CONN_SIZE": "10"}


def tipg_path(z: int, x: int, y: int) -> str:
    from urllib.parse import quote

    return (f"/collections/public.stations/tiles/WebMercatorQuad/{z}/{x}/{y}?geom-column=geom_3857"
            f"&properties={TIPG_PROPERTIES}&filter-lang=cql2-text"
            f"&filter={quote(chr(39).join(['feed_state=', 'active', ' AND interconnected=true']))}")


# --- sampling and statistics ---------------------------------------------------------------------------
def sample_tiles(url: str, zooms=ZOOMS, per_zoom: int = TILES_PER_ZOOM, seed: int = 5) -> dict[int, list[tuple[int, int, int]]]:
    """Tiles where stations are, drawn by picking random stations (dense areas come up more often)."""
    import math

    engine = create_engine(url)
    with engine.connect() as conn:
        conn.execute(text("SELECT setseed(:s)"), {"s": seed / 100})
        pts = conn.execute(text(
            "SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE feed_state = 'active' AND interconnected "
            "ORDER BY random() LIMIT 5000")).all()
    engine.dispose()
    out: dict[int, list[tuple[int, int, int]]] = {}
    for z in zooms:
        n = 1 << z
        seen: dict[tuple[int, int, int], None] = {}
        for lng, lat in pts:
            x = min(n - 1, int((lng + 180) / 360 * n))
            y = min(n - 1, int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n))
            seen.setdefault((z, x, y), None)
            if len(seen) >= per_zoom:
                break
        out[z] = list(seen)
    return out


def ms(seconds: float) -> float:
    return seconds * 1000.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def throughput(port: int, paths: list[str], seconds: float, clients: int = 2,
               headers: dict[str, str] | None = None) -> float:
    """Tiles per second with ``clients`` concurrent keep-alive clients over ``paths`` (shuffled)."""
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        c = Client(port)
        order = paths[:]
        random.Random(i).shuffle(order)
        k = 0
        while time.perf_counter() < stop:
            status, _, _ = c.get(order[k % len(order)], headers)
            if status != 200:
                raise RuntimeError(f"status {status}")
            counts[i] += 1
            k += 1
        c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


# --- the benchmark -----------------------------------------------------------------------------------
def _row(metric: str, value: Any, unit: str, target: str | None = None, ok: bool | None = None,
         note: str = "") -> dict[str, Any]:
    return {"benchmark": "tiles", "metric": metric, "value": value, "unit": unit, "target": target, "ok": ok,
            "note": note}


def bench_scale(scale: str, url: str, *, with_tipg: bool, seconds: float, logs: Path) -> list[dict[str, Any]]:
    import psycopg2

    from services.settings import TileSettings
    from services.stations.filters import StationFilter
    from tiles.grid import TileAddress
    from tiles.render import TileRenderer, station_tile_sql

    national = scale == "national"
    tiles = sample_tiles(url)
    settings = TileSettings()
    renderer = TileRenderer(url, settings, maxconn=2)
    raw_conn = psycopg2.connect(**renderer.kwargs)
    raw_conn.autocommit = True
    flt = StationFilter()

    def raw(z: int, x: int, y: int) -> tuple[float, int]:
        """The endpoint's own statement (prepared, as the endpoint runs it) on a psycopg2 connection."""
        addr = TileAddress(z, x, y)
        t0 = time.perf_counter()
        data = renderer.stations(addr, flt, "wgs84")
        return time.perf_counter() - t0, len(data)

    rows: list[dict[str, Any]] = []
    identity = {"Accept-Encoding": "identity"}
    gz = {"Accept-Encoding": "gzip"}
    tipg_cm = serve(["tipg.main:app"], tipg_env(url), "/healthz", logs / f"tipg-{scale}.log") if with_tipg else None
    with serve(["--factory", "portal_site.app:create_app"], our_env(url, cache=False), "/healthz",
               logs / f"ours-{scale}.log") as port, \
            serve(["--factory", "portal_site.app:create_app"], our_env(url, cache=True), "/healthz",
                  logs / f"ours-cached-{scale}.log") as cport, \
            (tipg_cm if tipg_cm is not None else _null()) as tport:
        ours, cached = Client(port), Client(cport)
        tipg = Client(tport) if tport else None
        all_paths: list[str] = []
        all_tipg: list[str] = []
        for z in ZOOMS:
            sample = tiles[z]
            paths = [f"/tiles/stations/{z}/{x}/{y}.mvt" for _, x, y in sample]
            tpaths = [tipg_path(z, x, y) for _, x, y in sample]
            all_paths += paths
            all_tipg += tpaths
            # warm up: buffers, plans, connections (not recorded)
            for (_, x, y), p, tp in zip(sample, paths, tpaths, strict=True):
                raw(z, x, y)
                ours.get(p, identity)
                if tipg:
                    status, _, _ = tipg.get(tp, identity)
                    if status != 200:
                        raise RuntimeError(f"TiPg answered {status} for {tp}")
            t_raw, t_ours, t_tipg, over = [], [], [], []
            b_ours, b_gz, b_tipg = [], [], []
            for _ in range(max(REPEATS, -(-MIN_SAMPLES // len(sample)))):
                for (_, x, y), p, tp in zip(sample, paths, tpaths, strict=True):
                    dr, nbytes = raw(z, x, y)
                    status, body, do = ours.get(p, identity)
                    assert status == 200 and len(body) == nbytes, (p, status, len(body), nbytes)
                    t_raw.append(dr)
                    t_ours.append(do)
                    over.append(do - dr)
                    b_ours.append(len(body))
                    if tipg:
                        status, tbody, dt = tipg.get(tp, identity)
                        t_tipg.append(dt)
                        b_tipg.append(len(tbody))
            for p in paths:
                _, body, _ = ours.get(p, gz)
                b_gz.append(len(body))
            p95 = ms(pct(t_ours, 95))
            note = (f"median {ms(med(t_ours)):.2f} ms; raw SQL median {ms(med(t_raw)):.2f} / p95 {ms(pct(t_raw, 95)):.2f} ms"
                    + (f"; TiPg median {ms(med(t_tipg)):.2f} / p95 {ms(pct(t_tipg, 95)):.2f} ms" if t_tipg else "")
                    + f"; {len(sample)} tiles, {len(t_ours)} requests" + ("; clusters" if z < settings.cluster_below_zoom else ""))
            rows.append(_row(f"{scale} z{z} tile time p95, uncached", round(p95, 2), "ms",
                             f"< {TARGET_P95_MS:.0f}" if national else None,
                             (p95 < TARGET_P95_MS) if national else None, note))
            mx = max(b_ours)
            rows.append(_row(f"{scale} z{z} bytes per tile, max", round(mx / 1024, 1), "KB", "< 500",
                             mx < TARGET_BYTES,
                             f"median {med(b_ours) / 1024:.1f} KB, gzip median {med(b_gz) / 1024:.1f} KB"
                             + (f"; TiPg (no clusters) median {med(b_tipg) / 1024:.1f} / max {max(b_tipg) / 1024:.1f} KB"
                                if b_tipg else "")))
            ov = ms(med(over))
            rows.append(_row(f"{scale} z{z} HTTP overhead, median", round(ov, 3), "ms", f"< {TARGET_OVERHEAD_MS}",
                             ov < TARGET_OVERHEAD_MS, "endpoint time minus raw SQL time, per request"))
            if t_tipg:
                ratio = med(t_tipg) / med(t_ours)
                rows.append(_row(f"{scale} z{z} speed vs TiPg (median)", round(ratio, 2), "x", "> 1", ratio > 1,
                                 f"ours {ms(med(t_ours)):.2f} ms, TiPg {ms(med(t_tipg)):.2f} ms"))
            print(f"   {scale} z{z}: ours {ms(med(t_ours)):.2f}/{p95:.2f} ms, raw {ms(med(t_raw)):.2f} ms, "
                  f"tipg {ms(med(t_tipg)) if t_tipg else float('nan'):.2f} ms, max {mx / 1024:.1f} KB", flush=True)

        # cache hits and revalidation (second server, cache on)
        hit, rev = [], []
        for p in all_paths:
            _, _, _ = cached.get(p, gz)
        for p in all_paths:
            status, _, d = cached.get(p, gz)
            hit.append(d)
        etags = {}
        for p in all_paths:
            c = cached.conn
            c.request("GET", p, headers=gz)
            r = c.getresponse()
            r.read()
            etags[p] = r.getheader("ETag")
        for p in all_paths:
            status, _, d = cached.get(p, {**gz, "If-None-Match": etags[p]})
            assert status == 304, status
            rev.append(d)
        rows.append(_row(f"{scale} cached tile (in-process LRU), median", round(ms(med(hit)), 3), "ms", None, None,
                         f"p95 {ms(pct(hit, 95)):.3f} ms, gzip; 304 on If-None-Match median {ms(med(rev)):.3f} ms"))

        # throughput, 2 concurrent clients, all sampled tiles of every zoom
        tps = throughput(port, all_paths, seconds, headers=gz)
        tps_c = throughput(cport, all_paths, seconds, headers=gz)
        note = f"uncached, gzip, {len(all_paths)} tiles over z{ZOOMS[0]}–z{ZOOMS[-1]}; cached: {tps_c:,.0f} tiles/s"
        if tipg:
            tps_t = throughput(tport, all_tipg, seconds, headers=gz)
            note += f"; TiPg {tps_t:,.0f} tiles/s"
            rows.append(_row(f"{scale} tiles/s, 2 clients", round(tps, 1), "tiles/s", "> TiPg", tps > tps_t, note))
        else:
            rows.append(_row(f"{scale} tiles/s, 2 clients", round(tps, 1), "tiles/s", None, None, note))
        ours.close()
        cached.close()
        if tipg:
            tipg.close()

    # filtered cluster tiles: facet filters read tile_filter_cells (migration 0353) up to z8; the
    # same filter forced onto the per-request path (exclude_operator of nobody) is the reference
    ftiles = sample_tiles(url, zooms=FILTERED_ZOOMS)
    for query in FILTERED_QUERIES:
        params = dict(p.split("=") for p in query.split("&"))
        fl = StationFilter.from_params(params)
        live = StationFilter.from_params({**params, "exclude_operator": "NOBODY0"})
        for z in FILTERED_ZOOMS:
            addrs = [TileAddress(z, x, y) for _, x, y in ftiles[z][:FILTERED_TILES]]
            path = "per-facet cells" if renderer.uses_filter_cells(addrs[0], fl, "wgs84") else "per request"
            times: list[float] = []
            ref: list[float] = []
            for addr in addrs:
                renderer.stations(addr, fl, "wgs84")
                for _ in range(REPEATS):
                    t0 = time.perf_counter()
                    renderer.stations(addr, fl, "wgs84")
                    times.append(time.perf_counter() - t0)
                if path != "per request":
                    renderer.stations(addr, live, "wgs84")
                    t0 = time.perf_counter()
                    renderer.stations(addr, live, "wgs84")
                    ref.append(time.perf_counter() - t0)
            p95 = ms(pct(times, 95))
            note = f"median {ms(med(times)):.2f} ms over {len(addrs)} tiles x {REPEATS}; {path}"
            if ref:
                note += f"; clustered per request instead: median {ms(med(ref)):.2f} / p95 {ms(pct(ref, 95)):.2f} ms"
            rows.append(_row(f"{scale} z{z} filtered ({query}) raw SQL p95", round(p95, 2), "ms",
                             f"< {TARGET_P95_MS:.0f}" if national else None,
                             (p95 < TARGET_P95_MS) if national else None, note))
            print(f"   {scale} z{z} filtered {query}: {ms(med(times)):.2f}/{p95:.2f} ms ({path})", flush=True)

    rows += push_cost(scale, url)

    # what clustering saves: the densest z5 tile drawn as points
    z, x, y = tiles[5][0]
    sql = station_tile_sql(flt, clusters=False, crs="wgs84")
    params = {**flt.sql_params(), "z": z, "x": x, "y": y, "margin": 64 / 4096, "limit": 10_000_000}
    with raw_conn.cursor() as cur:
        t0 = time.perf_counter()
        cur.execute(sql, params)
        data = bytes(cur.fetchone()[0] or b"")
        dt = time.perf_counter() - t0
    rows.append(_row(f"{scale} z5 without clustering (reference)", round(len(data) / 1024, 1), "KB", None, None,
                     f"raw SQL {ms(dt):.1f} ms for tile {z}/{x}/{y} as points; clusters make it "
                     f"{[r for r in rows if r['metric'] == f'{scale} z5 bytes per tile, max'][0]['value']} KB at most"))
    raw_conn.close()
    renderer.close()
    return rows


def push_cost(scale: str, url: str, n: int = 200) -> list[dict[str, Any]]:
    """What a status push costs in PostgreSQL with the cluster-cell triggers: one-station UPDATEs of
    connectors_free (each rolled back, so the data stay as generated)."""
    import psycopg2

    from tiles.render import connect_kwargs

    conn = psycopg2.connect(**{**connect_kwargs(url), "options": "-c jit=off"})
    cur = conn.cursor()
    cur.execute("SELECT id FROM stations WHERE feed_state = 'active' AND interconnected AND connectors_free >= 2 "
                "ORDER BY id LIMIT %s", (n,))
    ids = [r[0] for r in cur.fetchall()]
    conn.rollback()
    rows = []
    for label, sql in (
            ("status push, station stays available",
             "UPDATE stations SET connectors_free = connectors_free - 1, status_changed_at = now() WHERE id = %s"),
            ("status push, station becomes busy",
             "UPDATE stations SET connectors_free = 0, availability = 'busy', status_changed_at = now() WHERE id = %s")):
        times = []
        for rep in range(3):
            for i in ids:
                t0 = time.perf_counter()
                cur.execute(sql, (i,))
                if rep:
                    times.append(time.perf_counter() - t0)
                conn.rollback()
        rows.append(_row(f"{scale} {label}, UPDATE time p95", round(ms(pct(times, 95)), 3), "ms", None, None,
                         f"median {ms(med(times)):.3f} ms over {len(times)} one-station updates (rolled back), "
                         "cluster-cell triggers included"))
        print(f"   {scale} {label}: {ms(med(times)):.3f}/{ms(pct(times, 95)):.3f} ms", flush=True)
    conn.close()
    return rows


def uncached_http(url: str, zooms: tuple[int, ...] = ZOOMS) -> dict[int, list[float]]:
    """Milliseconds of ``GET /tiles/stations/z/x/y.mvt`` per zoom, cache off (every request renders),
    on the sampled tiles (each at least :data:`MIN_SAMPLES` times over, after one warm-up pass)."""
    tiles = sample_tiles(url, zooms)
    logs = ROOT / "bench" / "results"
    logs.mkdir(parents=True, exist_ok=True)
    out: dict[int, list[float]] = {}
    with serve(["--factory", "portal_site.app:create_app"], our_env(url, cache=False), "/healthz",
               logs / "ours-scaling.log") as port:
        client = Client(port)
        for z in zooms:
            paths = [f"/tiles/stations/{z}/{x}/{y}.mvt" for _, x, y in tiles[z]]
            for p in paths:
                client.get(p, {"Accept-Encoding": "identity"})
            times: list[float] = []
            for _ in range(max(REPEATS, -(-MIN_SAMPLES // len(paths)))):
                for p in paths:
                    status, _, secs = client.get(p, {"Accept-Encoding": "identity"})
                    assert status == 200, (p, status)
                    times.append(ms(secs))
            out[z] = times
        client.close()
    return out


@contextmanager
def _null():  # noqa: ANN202
    yield None


def main() -> list[dict[str, Any]]:
    n_nat = int(os.environ.get("BENCH_TILES_NATIONAL_N", "250000"))
    n_city = int(os.environ.get("BENCH_TILES_CITY_N", "5000"))
    seconds = float(os.environ.get("BENCH_TILES_SECONDS", "8"))
    with_tipg = os.environ.get("BENCH_TILES_SKIP_TIPG", "") != "1"
    if with_tipg:
        try:
            import tipg  # noqa: F401
        except ImportError:
            print("   TiPg is not installed (pip install tipg, the 'bench' extra); skipping the comparison")
            with_tipg = False
    logs = ROOT / "bench" / "results"
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    scales = os.environ.get("BENCH_TILES_SCALES", "national,city").split(",")
    if os.environ.get("BENCH_STATIONS"):
        n_nat, scales = int(os.environ["BENCH_STATIONS"]), ["national"]
    for scale, n, region in (("national", n_nat, "china"), ("city", n_city, "zhuhai")):
        if scale not in scales:
            continue
        if os.environ.get("BENCH_STATIONS"):
            from bench.generate import scale_database

            url = scale_database(n)
        else:
            url = ensure_database(scale, n, region)
        engine = create_engine(url)
        with engine.connect() as conn:
            stations, connectors = conn.execute(text(
                "SELECT (SELECT count(*) FROM stations), (SELECT count(*) FROM connectors)")).one()
        engine.dispose()
        rows.append(_row(f"{scale} data", stations, "stations", None, None, f"{connectors:,} connectors"))
        rows += bench_scale(scale, url, with_tipg=with_tipg, seconds=seconds, logs=logs)
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)

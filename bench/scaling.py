"""The scaling table: the same search and tile figures at 10,000, 100,000, 250,000 and 1,000,000
stations, so the growth of each cost is visible (``python -m bench scaling``; not part of
``make bench``: the 1,000,000-station database takes about 20 minutes to generate once).

Each size is its own database from ``bench.generate.scale_database`` (the national generator,
seed 1, 40 operators; kept between runs). Per size, one client: the search benchmark's
``name``, ``facets national``, ``facets+bbox`` and ``nearest-20`` scenarios through
``services.search.search`` (p50 / p95), and uncached tiles over HTTP at z5, z8, z11, z14, z16
(p50 / p95 per zoom, as ``bench_tiles``). The database's size on disk is printed too.

Environment: ``BENCH_SCALING_SIZES`` (comma-separated, default the four sizes), or
``python -m bench scaling --stations N`` for one size; ``BENCH_SEARCH_QUERIES`` as in ``bench_search``.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

from sqlalchemy import create_engine, text

SCENARIOS = ("name", "facets national", "facets+bbox", "nearest-20")
TARGETS_1M = {"name": (30.0, 60.0), "facets national": (50.0, None), "facets+bbox": (30.0, None)}


def sizes() -> list[int]:
    from bench.generate import SCALE_SIZES

    if os.environ.get("BENCH_STATIONS"):
        return [int(os.environ["BENCH_STATIONS"])]
    raw = os.environ.get("BENCH_SCALING_SIZES")
    return [int(x) for x in raw.split(",")] if raw else list(SCALE_SIZES)


def measure(n: int) -> dict[str, Any]:
    from bench.bench_search import _pct, _run, workloads
    from bench.bench_tiles import ZOOMS, pct, uncached_http
    from bench.generate import scale_database

    url = scale_database(n)
    engine = create_engine(url, pool_size=2)
    with engine.connect() as conn:
        operators = [r[0] for r in conn.execute(text(
            "SELECT operator_id FROM operators WHERE operator_id LIKE 'GEN%' ORDER BY 1"))]
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar()
    out: dict[str, Any] = {"n": n, "db_bytes": size, "load": os.getloadavg()[0]}
    work = workloads("national", operators, seed=11)
    for scenario in SCENARIOS:
        params = work[scenario]
        _run(engine, params[: max(5, len(params) // 6)], 1)  # warm caches and plans
        times = _run(engine, params, 1)
        out[scenario] = (statistics.median(times), _pct(times, 0.95))
        print(f"   {n:>9,} {scenario:16} p50 {out[scenario][0]:7.2f} ms  p95 {out[scenario][1]:7.2f} ms", flush=True)
    engine.dispose()
    tiles = uncached_http(url)
    for z in ZOOMS:
        out[f"z{z}"] = (statistics.median(tiles[z]), pct(tiles[z], 95))
        print(f"   {n:>9,} tiles z{z:<2}           p50 {out[f'z{z}'][0]:7.2f} ms  p95 {out[f'z{z}'][1]:7.2f} ms",
              flush=True)
    out["load_after"] = os.getloadavg()[0]
    return out


def table(results: list[dict[str, Any]]) -> str:
    from bench.bench_tiles import ZOOMS

    cols = [*SCENARIOS, *(f"z{z}" for z in ZOOMS)]
    head = ["stations", *(f"{c} (tile)" if c.startswith("z") else c for c in cols), "database", "load"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in results:
        cells = [f"{r['n']:,}"] + [f"{r[c][0]:.1f} / {r[c][1]:.1f}" for c in cols]
        cells += [f"{r['db_bytes'] / 2**30:.1f} GB", f"{r['load']:.1f}–{r['load_after']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> list[dict[str, Any]]:
    results = [measure(n) for n in sizes()]
    print("\nScaling (p50 / p95, ms; one client; tiles uncached over HTTP; load average before–after)\n")
    print(table(results), flush=True)
    rows: list[dict[str, Any]] = []
    for r in results:
        for c, (p50, p95) in ((c, r[c]) for c in r if isinstance(r[c], tuple)):
            target = TARGETS_1M.get(c) if r["n"] == 1_000_000 else None
            if c.startswith("z"):
                target = (None, 50.0)
            rows.append({"benchmark": f"scaling {r['n']:,}", "metric": f"{c} p50 / p95", "value": f"{p50:.2f} / {p95:.2f}",
                         "unit": "ms",
                         "target": " ".join(x for x in ((f"p50 < {target[0]:g}" if target and target[0] else ""),
                                                        (f"p95 < {target[1]:g}" if target and target[1] else "")) if x),
                         "ok": None if not target else ((target[0] is None or p50 < target[0])
                                                        and (target[1] is None or p95 < target[1])),
                         "note": f"db {r['db_bytes'] / 2**30:.1f} GB, load {r['load']:.1f}"})
    return rows


if __name__ == "__main__":
    main()

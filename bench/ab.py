"""Before/after under the same load: ``python -m bench.ab REV [city|national]``.

The tree at ``REV`` (``git archive``, into a temporary folder) and the working tree are both served
by uvicorn against the same search benchmark database (``bench.bench_search``), and every request
goes to one and then the other, so both see the same load: on a shared machine absolute figures
move with the neighbours, the difference does not. Measured (p50 / p95, ms, one keep-alive
client each): ``GET /api/v1/stations/{id}`` of priced stations (now also with ``?kwh=30``), faceted
search with a city-sized bbox (now also with ``max_price``), the 20 first by name in a bbox (now
also by price), and uncached station tiles at z14 and z16.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, text

from bench.bench_search import _city_bbox, _facet_params, ensure_database
from bench.bench_tiles import ROOT, Client, our_env, sample_tiles, serve
from bench.generate import CITY_CENTRES, ZHUHAI_CENTRES


def run(rev: str, scale: str = "city") -> dict[str, list[float]]:
    url = ensure_database(scale)
    engine = create_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT station_pk FROM station_tariffs WHERE tariff_id IS NOT NULL ORDER BY md5(station_pk::text) "
            "LIMIT 150"))]
        ops = [r[0] for r in conn.execute(text("SELECT operator_id FROM operators WHERE operator_id LIKE 'GEN%'"))]
    engine.dispose()
    rng = random.Random(3)
    centres, half = (ZHUHAI_CENTRES, 0.12) if scale == "city" else (CITY_CENTRES, 0.25)
    boxes = [{**_facet_params(rng, sorted(ops)), "bbox": _city_bbox(rng, centres, half)} for _ in range(80)]
    tiles = [t for ts in sample_tiles(url, zooms=(14, 16), per_zoom=40).values() for t in ts]
    env = our_env(url, cache=False)
    logs = ROOT / "bench" / "results"
    logs.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[float]] = {}

    def timed(key: str, client: Client, path: str, keep: bool) -> None:
        status, _, seconds = client.get(path, {"Accept-Encoding": "identity"})
        assert status == 200, (key, path, status)
        if keep:
            out.setdefault(key, []).append(seconds * 1000)

    with tempfile.TemporaryDirectory(prefix="zhcharge-ab-") as tmp:
        subprocess.run(f"git archive {rev} | tar -x -C {tmp}", shell=True, check=True, cwd=ROOT)
        app = ["--factory", "portal_site.app:create_app"]
        with serve(app, env, "/healthz", logs / "ab-before.log", cwd=Path(tmp)) as old, \
                serve(app, env, "/healthz", logs / "ab-now.log") as new:
            before, now = Client(old), Client(new)
            for rep in (0, 1):  # the first round warms caches and plans
                keep = rep == 1
                for pk in ids:
                    timed("detail before", before, f"/api/v1/stations/{pk}", keep)
                    timed("detail now", now, f"/api/v1/stations/{pk}", keep)
                    timed("detail?kwh=30 now", now, f"/api/v1/stations/{pk}?kwh=30", keep)
                for p in boxes:
                    q, q20 = urlencode(p), urlencode({"bbox": p["bbox"], "limit": 20})
                    timed("facets+bbox before", before, f"/api/v1/stations?{q}", keep)
                    timed("facets+bbox now", now, f"/api/v1/stations?{q}", keep)
                    timed("max_price+facets+bbox now", now, f"/api/v1/stations?{q}&max_price=1.2", keep)
                    timed("sort=name+bbox before", before, f"/api/v1/stations?{q20}&sort=name", keep)
                    timed("sort=name+bbox now", now, f"/api/v1/stations?{q20}&sort=name", keep)
                    timed("sort=price+bbox now", now, f"/api/v1/stations?{q20}&sort=price", keep)
                for z, x, y in tiles:
                    timed(f"tile z{z} before", before, f"/tiles/stations/{z}/{x}/{y}.mvt?v={rep}", keep)
                    timed(f"tile z{z} now", now, f"/tiles/stations/{z}/{x}/{y}.mvt?v={rep}", keep)
            before.close()
            now.close()
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    rev, scale = argv[0], (argv[1] if len(argv) > 1 else "city")
    for key, values in run(rev, scale).items():
        values.sort()
        print(f"| {scale} | {key} | {statistics.median(values):.2f} | {values[int(len(values) * 0.95)]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

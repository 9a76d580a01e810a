"""PMTiles export benchmark: ``zhcharge tiles export`` at city and national scale.

``python -m bench pmtiles`` (``make bench``). City scale: 1,500 synthetic stations over Zhuhai (the
demo's size, ``zhcharge_bench_pmtiles_city``); national scale: the search benchmark's 250,000
stations over China (``zhcharge_bench_search_national``, shared so that no third national database
is generated). Both kept between runs, regenerated only when the count differs.

Each export is :func:`tiles.export.export_stations` with the defaults of the command (z0 to
cluster_below_zoom + 2 = z14, 2 render threads), written to a temporary file: seconds, tiles
(addressed and distinct), archive size, tiles per second, and a read-back check with the ``pmtiles``
reader (every tile present and gzip). Targets (2 cores): city < 10 s, national < 300 s (the
export is a periodic job: hourly or nightly).

Environment: ``BENCH_PMTILES_SCALES`` (default ``city,national``), ``BENCH_PMTILES_JOBS`` (2),
``BENCH_PMTILES_CITY_N`` (1500), ``BENCH_SEARCH_NATIONAL_N`` (the national size, 250000).
"""

from __future__ import annotations

import gzip
import os
import tempfile
from pathlib import Path
from typing import Any

TARGETS_S = {"city": 10.0, "national": 300.0}


def ensure_database(scale: str) -> str:
    if scale == "national":
        from bench.bench_search import ensure_database as search_database

        return search_database("national")
    from bench.generate import bench_database

    n = int(os.environ.get("BENCH_PMTILES_CITY_N", "1500"))
    return bench_database("zhcharge_bench_pmtiles_city", n, region="zhuhai", operators=6, label="city")


def read_back(path: Path) -> int:
    """Every tile of the archive through the pmtiles reader; returns how many were read."""
    from pmtiles.reader import MmapSource, all_tiles

    n = 0
    with open(path, "rb") as f:
        for _, data in all_tiles(MmapSource(f)):
            gzip.decompress(data)
            n += 1
    return n


def bench_scale(scale: str) -> list[dict[str, Any]]:
    from services.settings import DatabaseSettings, Settings
    from tiles.export import export_stations

    url = ensure_database(scale)
    jobs = int(os.environ.get("BENCH_PMTILES_JOBS", "2"))
    settings = Settings(db=DatabaseSettings(database_url=url))
    with tempfile.TemporaryDirectory(prefix="zh-pmtiles-") as tmp:
        out = Path(tmp) / f"{scale}.pmtiles"
        print(f"   exporting {scale} ...", flush=True)
        r = export_stations(settings, url, out, jobs=jobs)
        read = read_back(out)
    label = f"export {scale} {r.stations:,} stations z{r.minzoom}-z{r.maxzoom}"
    note = (f"{r.tiles:,} tiles ({r.contents:,} distinct), {r.tiles / r.seconds:,.0f} tiles/s, "
            f"{jobs} threads; read back {read:,}")
    return [
        {"benchmark": "pmtiles", "metric": label, "value": r.seconds, "unit": "s",
         "target": f"< {TARGETS_S[scale]:g}", "ok": r.seconds < TARGETS_S[scale] and read == r.tiles, "note": note},
        {"benchmark": "pmtiles", "metric": f"archive size {scale}", "value": r.bytes / 1e6, "unit": "MB",
         "note": ", ".join(f"z{z} {s.tiles:,}" for z, s in sorted(r.zooms.items()) if z >= 10)},
    ]


def main() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for scale in os.environ.get("BENCH_PMTILES_SCALES", "city,national").split(","):
        rows += bench_scale(scale)
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)

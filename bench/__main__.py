"""Run the benchmarks and print a table: ``python -m bench [name ...] [--stations N]`` (names: feed,
tiles, search, ...; ``scaling`` runs ``bench/scaling.py``, the scaling table, and only when named).
``--stations N`` runs the search and tile benchmarks (and ``scaling``) on the national set of N
stations (``bench.generate.scale_database``; environment ``BENCH_STATIONS``).

Each ``bench/bench_<name>.py`` exports ``main() -> list[dict]`` with rows
``{benchmark, metric, value, unit, target, ok, note}``. The table is also written to
``bench/results/latest.md`` so figures can be copied into ``bench/README.md``.
"""

from __future__ import annotations

import importlib
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if v < 1000 else f"{v:,.0f}"
    return "" if v is None else str(v)


def main(argv: list[str]) -> int:
    argv = list(argv)
    if "--stations" in argv:
        i = argv.index("--stations")
        if i + 1 >= len(argv) or not argv[i + 1].replace("_", "").isdigit():
            print("--stations needs a number of stations, e.g. --stations 1000000", file=sys.stderr)
            return 2
        os.environ["BENCH_STATIONS"] = str(int(argv[i + 1]))
        del argv[i:i + 2]
    names = argv or sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    rows: list[dict] = []
    failed = False
    for name in names:
        started = time.perf_counter()
        print(f"== bench {name} ...", flush=True)
        try:
            mod = importlib.import_module("bench.scaling" if name == "scaling" else f"bench.bench_{name}")
            rows.extend(mod.main())
        except Exception:  # noqa: BLE001 - one broken benchmark must not hide the others
            traceback.print_exc()
            rows.append({"benchmark": name, "metric": "run", "value": "failed", "ok": False})
            failed = True
        print(f"   done in {time.perf_counter() - started:.0f} s", flush=True)
    header = ["benchmark", "metric", "value", "unit", "target", "ok", "note"]
    lines = [
        f"Machine: {_machine()}  ",
        f"Run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        ok = r.get("ok")
        r = {**r, "ok": "" if ok is None else ("yes" if ok else "NO")}
        lines.append("| " + " | ".join(_fmt(r.get(h)) for h in header) + " |")
    table = "\n".join(lines)
    print(table)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.md").write_text(table + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Search benchmark: faceted search, name query and nearest-20 at city and national scale.

``python -m bench search`` (``make bench``). National scale: 250,000 synthetic stations over China
(``bench.generate``, 40 operators); city scale: 5,000 over Zhuhai. Each scale has its own database
(``zhcharge_bench_search_<scale>``, kept between runs, regenerated when the count differs).

Measured through :func:`services.search.search` (parameter parsing, the one SQL statement,
labelling, item shaping), each client on its own connection, 1 and 4 concurrent clients:
  * ``facets+bbox``: all six facets, three dimensions selected, a city-sized bbox (~50 km);
  * ``facets national``: the same with no bbox (the whole country);
  * ``name``: ``q`` (2-character Chinese, full pinyin, initials) with facets, no bbox;
  * ``nearest-20``: ``lat``/``lng`` without radius, ``facets=false&total=false`` (pure KNN; counting
    every station in the country is what a nearest-N caller does not ask for);
  * ``max_price+facets+bbox``: facets+bbox with ``max_price`` (the price now, ``station_search.price4``);
  * ``sort=price+bbox``: the cheapest 20 in a city-sized bbox, with facets (the map's list sorted by price),
    and ``sort=name+bbox``, the same boxes by name (for comparison);
  * measured reliability (issue 16): ``min_uptime+facets+bbox`` and ``min_uptime national`` (facets+bbox and
    facets national with ``min_uptime`` 0.9-0.99, ``station_search.up4``), ``sort=uptime+bbox`` (the 20 most
    reliable in a city-sized bbox, with facets) and ``sort=uptime national`` (the 20 most reliable of the
    country, ``facets=false&total=false``: the index of migration 1501). The stations get synthetic 30-day
    figures (:func:`synthetic_uptime`: 90 % measured, mostly above 0.9; what the reliability job would write);
and over HTTP (the app under uvicorn, one keep-alive client): ``GET /api/v1/stations/{id}`` of
priced stations (tariff of the station and of every connector) and the same with ``?kwh=30``
(an estimate per connector). The generated stations get tariffs (``bench.generate.generate_tariffs``).
Targets (national, 2 cores): facets+bbox p50 < 30 ms and p95 < 80 ms; national p50 < 150 ms;
nearest-20 p50 < 5 ms; at city scale everything p50 < 5 ms; the station detail with tariff and
estimate p50 < 5 ms (issue 15).

Environment: ``BENCH_SEARCH_NATIONAL_N``, ``BENCH_SEARCH_CITY_N``, ``BENCH_SEARCH_QUERIES``
(queries per client and scenario, default 60), ``BENCH_SEARCH_SCALES`` (default ``city,national``).
``python -m bench search --stations N`` (``BENCH_STATIONS``) runs the national scale only, on the
scaling table's database of N stations (``bench.generate.scale_database``: the same generator;
unpriced except at 250,000, so the price scenarios and the detail run only where there are prices).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from typing import Any

from litestar.datastructures import MultiDict
from sqlalchemy import create_engine, text

from bench.generate import CITY_CENTRES, ZHUHAI_CENTRES

QUERIES = int(os.environ.get("BENCH_SEARCH_QUERIES", "60"))
SCALES = {
    "city": (int(os.environ.get("BENCH_SEARCH_CITY_N", "5000")), "zhuhai", 10),
    "national": (int(os.environ.get("BENCH_SEARCH_NATIONAL_N", "250000")), "china", 40),
}
NAME_QUERIES = ["长隆", "拱北", "星星充电", "changlong", "gongbei", "xxcd", "停车场", "huafa", "南方电网", "kjy"]


# --- database --------------------------------------------------------------------------------------
def ensure_database(scale: str) -> str:
    from bench.generate import bench_database

    n, region, operators = SCALES[scale]
    return bench_database(f"zhcharge_bench_search_{scale}", n, region=region, operators=operators, label=scale,
                          analyze=("stations", "station_search", "operators", "equipment", "connectors"))


# --- workload ----------------------------------------------------------------------------------------
def _city_bbox(rng: random.Random, centres: list[tuple[float, float, float]], half: float) -> str:
    lng, lat, _ = rng.choices(centres, weights=[c[2] for c in centres])[0]
    lng += rng.uniform(-0.05, 0.05)
    lat += rng.uniform(-0.05, 0.05)
    return f"{lng - half:.5f},{lat - half:.5f},{lng + half:.5f},{lat + half:.5f}"


def _facet_params(rng: random.Random, operators: list[str]) -> dict[str, str]:
    return {
        "operator": ",".join(rng.sample(operators, k=rng.randint(1, 3))),
        "facility_type": rng.choice(["dc", "ac", "dc,ac", "acdc"]),
        "payment": rng.choice(["online", "card", "card,cash"]),
        "limit": "20",
    }


def workloads(scale: str, operators: list[str], seed: int) -> dict[str, list[dict[str, str]]]:
    rng = random.Random(seed)
    centres = ZHUHAI_CENTRES if scale == "city" else CITY_CENTRES
    half = 0.12 if scale == "city" else 0.25  # ~25 km in Zhuhai, ~50 km around a national city
    out: dict[str, list[dict[str, str]]] = {"facets+bbox": [], "facets national": [], "name": [], "nearest-20": [],
                                            "max_price+facets+bbox": [], "sort=price+bbox": [], "sort=name+bbox": [],
                                            "min_uptime+facets+bbox": [], "min_uptime national": [],
                                            "sort=uptime+bbox": [], "sort=uptime national": []}
    for _ in range(QUERIES):
        out["facets+bbox"].append({**_facet_params(rng, operators), "bbox": _city_bbox(rng, centres, half)})
        out["max_price+facets+bbox"].append({**_facet_params(rng, operators), "bbox": _city_bbox(rng, centres, half),
                                             "max_price": rng.choice(["1.0", "1.1", "1.2", "1.3"])})
        bbox = _city_bbox(rng, centres, half)
        out["sort=price+bbox"].append({"sort": "price", "limit": "20", "bbox": bbox})
        out["sort=name+bbox"].append({"sort": "name", "limit": "20", "bbox": bbox})  # the same without prices
        out["facets national"].append(_facet_params(rng, operators))
        min_uptime = rng.choice(["0.9", "0.95", "0.97", "0.99"])
        out["min_uptime+facets+bbox"].append({**_facet_params(rng, operators), "bbox": _city_bbox(rng, centres, half),
                                              "min_uptime": min_uptime})
        out["min_uptime national"].append({**_facet_params(rng, operators), "min_uptime": min_uptime})
        out["sort=uptime+bbox"].append({"sort": "uptime", "limit": "20", "bbox": _city_bbox(rng, centres, half)})
        out["sort=uptime national"].append({"sort": "uptime", "limit": "20", "facets": "false", "total": "false",
                                             **({"min_uptime": min_uptime} if rng.random() < 0.5 else {})})
        out["name"].append({"q": rng.choice(NAME_QUERIES), "limit": "20"})
        lng, lat, _ = rng.choices(centres, weights=[c[2] for c in centres])[0]
        out["nearest-20"].append({"lng": f"{lng + rng.uniform(-0.1, 0.1):.5f}",
                                  "lat": f"{lat + rng.uniform(-0.1, 0.1):.5f}", "limit": "20", "facets": "false",
                                  "total": "false"})
    if scale == "city":  # the city bbox already covers the whole city
        del out["facets national"], out["min_uptime national"], out["sort=uptime national"]
    return out


def synthetic_uptime(engine) -> int:  # noqa: ANN001
    """Give the generated stations 30-day figures once (repeatable: seeded), as the reliability job
    would (``services.reliability.summary``): 10 % with nothing observed, the rest between 0.8 and 1,
    most above 0.95; returns the stations with a figure."""
    with engine.begin() as conn:
        have = conn.execute(text("SELECT count(*) FROM station_reliability")).scalar()
        if not have:
            conn.execute(text("SELECT setseed(0.16)"))
            conn.execute(text(
                "INSERT INTO station_reliability (station_pk, up4, faults, last_fault_at) "
                "SELECT id, u, CASE WHEN u < 10000 THEN 1 + (10000 - u) / 400 ELSE 0 END, "
                "CASE WHEN u < 10000 THEN now() - interval '3 days' END "
                "FROM (SELECT id, CASE WHEN random() < 0.1 THEN NULL "
                "ELSE (10000 - floor(power(random(), 4) * 2000))::smallint END AS u FROM stations) s"))
            conn.execute(text("UPDATE station_search n SET up4 = r.up4 FROM station_reliability r "
                              "WHERE r.station_pk = n.id AND n.up4 IS DISTINCT FROM r.up4"))
        measured = conn.execute(text("SELECT count(up4) FROM station_reliability")).scalar()
    if not have:  # every row of the narrow table was rewritten: give the other scenarios back its size
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (FULL, ANALYZE) station_search"))
            conn.execute(text("ANALYZE station_reliability"))
    return measured


def _run(engine, params_list: list[dict[str, str]], clients: int) -> list[float]:  # noqa: ANN001
    from services.search import parse_search, search
    from services.settings import SearchSettings

    settings = SearchSettings()
    times: list[float] = []
    lock = threading.Lock()

    def client(offset: int) -> None:
        local: list[float] = []
        with engine.connect() as conn:
            for i in range(len(params_list)):
                p = params_list[(i + offset * 7) % len(params_list)]
                t0 = time.perf_counter()
                q = parse_search(MultiDict(p), settings)
                search(conn, q)
                local.append((time.perf_counter() - t0) * 1000)
                conn.rollback()
        with lock:
            times.extend(local)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return times


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


TARGETS: dict[tuple[str, str], tuple[float, float | None]] = {
    # (scale, scenario): (p50 target, p95 target) in ms; clients=1
    ("national", "facets+bbox"): (30.0, 80.0),
    ("national", "facets national"): (150.0, None),
    ("national", "nearest-20"): (5.0, None),
    ("city", "facets+bbox"): (5.0, None),
    ("city", "name"): (5.0, None),
    ("city", "nearest-20"): (5.0, None),
}
# the price scenarios: as facets+bbox at each scale; the station detail p50 < 5 ms everywhere (issue 15)
TARGETS.update({(scale, s): TARGETS[(scale, "facets+bbox")] for scale in ("city", "national")
                for s in ("max_price+facets+bbox", "sort=price+bbox")})
TARGETS.update({(scale, s): (5.0, None) for scale in ("city", "national") for s in ("detail", "detail?kwh=30")})
# measured reliability: as the scenarios they add to (issue 16: search unchanged in speed with the new fields)
TARGETS.update({(scale, s): TARGETS[(scale, "facets+bbox")] for scale in ("city", "national")
                for s in ("min_uptime+facets+bbox", "sort=uptime+bbox")})
TARGETS.update({("national", "min_uptime national"): TARGETS[("national", "facets national")],
                ("national", "sort=uptime national"): (5.0, None)})


def bench_detail(scale: str, url: str, n: int) -> list[dict[str, Any]]:
    """``GET /api/v1/stations/{id}`` (and ``?kwh=30``) of priced stations over HTTP, one client."""
    from bench.bench_tiles import ROOT, Client, our_env, serve

    engine = create_engine(url)
    with engine.connect() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT station_pk FROM station_tariffs WHERE tariff_id IS NOT NULL ORDER BY md5(station_pk::text) "
            "LIMIT :n"), {"n": QUERIES})]
    engine.dispose()
    logs = ROOT / "bench" / "results"
    logs.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with serve(["--factory", "portal_site.app:create_app"], our_env(url, cache=True), "/healthz",
               logs / f"search-{scale}.log") as port:
        client = Client(port)
        for scenario, query in (("detail", ""), ("detail?kwh=30", "?kwh=30")):
            for pk in ids[:10]:  # warm up
                client.get(f"/api/v1/stations/{pk}{query}")
            times = []
            for pk in ids:
                status, body, secs = client.get(f"/api/v1/stations/{pk}{query}")
                assert status == 200 and b'"tariff"' in body, (status, body[:200])
                times.append(secs * 1000)
            p50, p95 = statistics.median(times), _pct(times, 0.95)
            target = TARGETS[(scale, scenario)]
            note = f"{n:,} stations, {len(times)} priced stations, HTTP (uvicorn, keep-alive)"
            rows.append({"benchmark": f"search {scale}", "metric": f"GET /api/v1/stations/{{id}} {query or 'tariff'} p50",
                         "value": round(p50, 2), "unit": "ms", "target": f"< {target[0]:g}", "ok": p50 < target[0],
                         "note": note})
            rows.append({"benchmark": f"search {scale}", "metric": f"GET /api/v1/stations/{{id}} {query or 'tariff'} p95",
                         "value": round(p95, 2), "unit": "ms", "target": "", "ok": None, "note": note})
            print(f"   {scale:8} {scenario:16} HTTP: p50 {p50:7.2f} ms  p95 {p95:7.2f} ms", flush=True)
        client.close()
    return rows


def bench_scale(scale: str, url: str | None = None, *, scenarios: tuple[str, ...] | None = None,
                clients_list: tuple[int, ...] = (1, 4), detail: bool = True) -> list[dict[str, Any]]:
    url = url or ensure_database(scale)
    engine = create_engine(url, pool_size=6, max_overflow=2)
    with engine.connect() as conn:
        operators = [r[0] for r in conn.execute(text(
            "SELECT operator_id FROM operators WHERE operator_id LIKE 'GEN%' ORDER BY 1"))]
        n = conn.execute(text("SELECT count(*) FROM station_search")).scalar()
        priced = conn.execute(text("SELECT EXISTS (SELECT 1 FROM station_tariffs)")).scalar()
    measured = synthetic_uptime(engine)
    rows: list[dict[str, Any]] = []
    for scenario, params in workloads(scale, operators, seed=11).items():
        if scenarios is not None and scenario not in scenarios:
            continue
        if not priced and scenario in ("max_price+facets+bbox", "sort=price+bbox"):
            continue
        _run(engine, params[: max(5, len(params) // 6)], 1)  # warm caches and plans
        for clients in clients_list:
            times = _run(engine, params, clients)
            p50, p95 = statistics.median(times), _pct(times, 0.95)
            target = TARGETS.get((scale, scenario)) if clients == 1 else None
            note = f"{n:,} stations, {len(times)} queries"
            if "uptime" in scenario:
                note += f", {measured:,} with a 30-day uptime"
            if clients > 1:
                note += f", {clients} clients on 2 cores"
            rows.append({"benchmark": f"search {scale}", "metric": f"{scenario} p50, {clients} client(s)",
                         "value": round(p50, 2), "unit": "ms",
                         "target": f"< {target[0]:g}" if target else "",
                         "ok": (p50 < target[0]) if target else None, "note": note})
            rows.append({"benchmark": f"search {scale}", "metric": f"{scenario} p95, {clients} client(s)",
                         "value": round(p95, 2), "unit": "ms",
                         "target": f"< {target[1]:g}" if target and target[1] else "",
                         "ok": (p95 < target[1]) if target and target[1] else None, "note": note})
            print(f"   {scale:8} {scenario:16} clients={clients}: p50 {p50:7.2f} ms  p95 {p95:7.2f} ms", flush=True)
    engine.dispose()
    return rows + (bench_detail(scale, url, n) if detail and priced else [])


def main() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    if os.environ.get("BENCH_STATIONS"):
        from bench.generate import scale_database

        return bench_scale("national", scale_database(int(os.environ["BENCH_STATIONS"])))
    for scale in os.environ.get("BENCH_SEARCH_SCALES", "city,national").split(","):
        rows += bench_scale(scale)
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)

"""Synthetic stations for tests and benchmarks, written straight into the feed tables.

``generate_stations(conn, n, region="china")`` places stations over China around real city
centres with the spatial spread of Shenzhen's real stations (``geo``-independent, seeded);
``region="zhuhai"`` places them around Zhuhai's centres. Every derived column is filled the way
the sync fills it (vocab.normalize_payments, vocab.pinyin_of, refresh_station_summaries), so
searches and tiles see the same shape of data as from a real feed. 250,000 stations and about
2.5 million connectors take a minute or two on 2 cores.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections import defaultdict
from datetime import datetime
from functools import cache
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from geo.gcj02 import wgs84_to_gcj02_array
from services.stations.summary import bump_version
from services.stations.vocab import normalize_payments, pinyin_of

__all__ = ["bench_database", "scale_database", "SCALE_SIZES", "generate_stations", "generate_tariffs", "clear_generated", "CITY_CENTRES",
           "ZHUHAI_CENTRES", "TARIFF_POLICIES"]

SHENZHEN_CSV = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "shenzhen-stations.csv"

# (lng, lat, weight): big cities weigh more. WGS84, approximate centres.
CITY_CENTRES: list[tuple[float, float, float]] = [
    (116.40, 39.90, 10), (121.47, 31.23, 10), (113.26, 23.13, 8), (114.06, 22.54, 9), (104.07, 30.66, 7),
    (106.55, 29.56, 6), (120.16, 30.27, 7), (114.30, 30.59, 6), (108.94, 34.34, 5), (117.20, 39.13, 5),
    (118.80, 32.06, 5), (113.62, 34.75, 5), (112.94, 28.23, 4), (120.38, 36.07, 4), (123.43, 41.80, 3),
    (117.00, 36.67, 3), (121.62, 38.92, 3), (119.30, 26.08, 3), (118.09, 24.48, 3), (102.71, 25.04, 3),
    (106.71, 26.58, 2), (108.37, 22.82, 3), (110.35, 20.02, 2), (125.32, 43.90, 2), (126.64, 45.76, 2),
    (111.67, 40.82, 1), (103.83, 36.06, 1), (101.78, 36.62, 1), (87.62, 43.83, 1), (106.23, 38.49, 1),
    (112.55, 37.87, 2), (114.51, 38.04, 2), (115.86, 28.68, 2), (117.28, 31.86, 3), (113.12, 23.02, 3),
    (113.75, 23.05, 4), (113.39, 22.52, 2), (113.58, 22.27, 2), (120.30, 31.57, 3), (120.59, 31.30, 4),
    (119.95, 31.78, 2), (121.55, 29.87, 3), (120.70, 28.00, 2), (113.11, 22.61, 1), (114.42, 23.11, 2),
    (116.68, 23.35, 1), (91.13, 29.65, 0.3), (109.50, 18.25, 1), (119.42, 32.39, 1), (120.15, 33.35, 1),
]
ZHUHAI_CENTRES: list[tuple[float, float, float]] = [
    (113.545, 22.225, 5), (113.565, 22.255, 4), (113.548, 22.272, 5), (113.515, 22.262, 3),
    (113.585, 22.355, 2), (113.525, 22.133, 2), (113.365, 22.145, 2), (113.290, 22.210, 2), (113.380, 22.065, 1),
]

_BRANDS = ["星星充电", "特来电", "国家电网", "南方电网", "小桔充电", "云快充", "蔚来能源", "珠海港湾新能源", "依威能源", "万马爱充",
           "能链快电", "华商三优", "普天新能源", "中石化", "深圳巴士"]
_PLACES = ["长隆", "拱北", "吉大", "前山", "香洲", "唐家", "横琴", "金湾", "斗门", "井岸", "三灶", "南屏", "湾仔", "新香洲",
           "华发", "情侣路", "人民路", "迎宾路", "凤凰路", "九洲", "海滨", "梅华", "翠微", "南湾", "明珠", "柠溪", "红旗",
           "白蕉", "乾务", "平沙", "南水", "高栏", "金鼎", "银桦", "科技园", "大学城", "港珠澳", "珠海站", "会展中心", "体育中心"]
_SUFFIXES = ["广场", "停车场", "中心", "花园", "大厦", "公园", "市场", "枢纽站", "产业园", "服务区"]
_PAYMENT_TEXTS = ["刷卡,线上,现金", "线上", "APP,微信,支付宝", "扫码", "刷卡,APP", "微信,支付宝", "刷卡", "现金,刷卡,扫码",
                  "线上,ETC", "充电卡,小程序"]
_HOURS = ["00:00-24:00", "07:00-22:00", "06:00-23:00", "08:00-20:00"]
_FEE = "00:00-08:00 0.35元/度;08:00-12:00 0.85元/度;12:00-14:00 0.65元/度;14:00-22:00 0.95元/度;22:00-24:00 0.45元/度"


@cache
def _shenzhen_offsets() -> np.ndarray:
    """Real offsets of Shenzhen's stations from their centroid, in degrees (the spread of a city)."""
    try:
        with SHENZHEN_CSV.open() as fh:
            pts = np.array([(float(r["longitude"]), float(r["latitude"])) for r in csv.DictReader(fh)])
        return pts - pts.mean(axis=0)
    except OSError:
        rng = np.random.default_rng(0)
        return rng.normal(0, 0.12, size=(1700, 2))


def _positions(n: int, centres: list[tuple[float, float, float]], scale: float, rng: np.random.Generator) -> np.ndarray:
    weights = np.array([c[2] for c in centres])
    idx = rng.choice(len(centres), size=n, p=weights / weights.sum())
    base = np.array([(c[0], c[1]) for c in centres])[idx]
    offsets = _shenzhen_offsets()
    pick = offsets[rng.integers(0, len(offsets), size=n)] * scale
    jitter = rng.normal(0, 0.004 * scale, size=(n, 2))
    return base + pick + jitter


def _copy(conn: Connection, table: str, columns: list[str], rows: io.StringIO) -> None:
    rows.seek(0)
    raw = conn.connection.dbapi_connection  # psycopg2 connection inside the SQLAlchemy transaction
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", rows)


def generate_stations(conn: Connection, n: int, *, region: str = "china", seed: int = 1, operators: int = 10,
                      prefix: str = "GEN") -> int:
    """Insert ``n`` synthetic stations (with piles, connectors and live status); returns n.

    Operators are ``{prefix}000001``…; StationIDs ``{prefix}{i:08d}``. Call inside a transaction.
    """
    if len(prefix) > 3:
        raise ValueError("prefix must be at most 3 characters (OperatorIDs are 9)")
    rng = np.random.default_rng(seed)
    centres, spread = (ZHUHAI_CENTRES, 0.22) if region == "zhuhai" else (CITY_CENTRES, 1.0)
    pos = _positions(n, centres, spread, rng)
    glng, glat = wgs84_to_gcj02_array(pos[:, 0], pos[:, 1])

    ops = [(f"{prefix}{i + 1:06d}", f"{_BRANDS[i % len(_BRANDS)]}{'' if i < len(_BRANDS) else i // len(_BRANDS) + 1}")
           for i in range(operators)]
    for op_id, name in ops:
        conn.execute(text("INSERT INTO operators (operator_id, name) VALUES (:o, :n) ON CONFLICT (operator_id) "
                          "DO UPDATE SET name = EXCLUDED.name"), {"o": op_id, "n": name})
    op_pinyin = {op_id: pinyin_of(name) for op_id, name in ops}

    op_idx = rng.integers(0, operators, size=n)
    place_idx = rng.integers(0, len(_PLACES), size=n)
    suffix_idx = rng.integers(0, len(_SUFFIXES), size=n)
    pay_idx = rng.integers(0, len(_PAYMENT_TEXTS), size=n)
    hours_idx = rng.integers(0, len(_HOURS), size=n)
    stype = rng.choice([1, 1, 1, 1, 1, 1, 100, 103, 102, 50, 255], size=n)
    sstatus = rng.choice([50] * 18 + [1, 6], size=n)
    # piles: mostly 1–9, some 10–40, a few depots of 100+
    piles = np.where(rng.random(n) < 0.8, rng.integers(1, 10, size=n),
                     np.where(rng.random(n) < 0.97, rng.integers(10, 41, size=n), rng.integers(100, 160, size=n)))

    buf = io.StringIO()
    w = csv.writer(buf)
    cols = ["operator_id", "station_id", "equipment_owner_id", "name", "country_code", "area_code", "address",
            "service_tel", "station_type", "station_status", "park_nums", "lng_gcj02", "lat_gcj02", "construction",
            "busine_hours", "electricity_fee", "service_fee", "park_fee", "payment", "payments", "payment_unknown",
            "support_order", "name_pinyin", "name_initials", "search_text", "feed_state", "interconnected",
            "geom", "geom_3857", "pile_count"]
    name_cache: dict[tuple[int, int, int], tuple[str, str, str]] = {}
    pay_cache = {i: normalize_payments(t) for i, t in enumerate(_PAYMENT_TEXTS)}
    for i in range(n):
        op_id, op_name = ops[op_idx[i]]
        key = (int(op_idx[i]), int(place_idx[i]), int(suffix_idx[i]))
        if key not in name_cache:
            nm = f"{op_name.rstrip('0123456789')}{_PLACES[key[1]]}{_SUFFIXES[key[2]]}充电站"[:46]
            name_cache[key] = (nm, *pinyin_of(nm))
        nm, full, initials = name_cache[key]
        name = f"{nm}{i % 100:02d}" if i >= 1000 else nm
        address = f"{_PLACES[key[1]]}{_SUFFIXES[key[2]]}{(i % 300) + 1}号"
        codes, unknown = pay_cache[int(pay_idx[i])]
        opf, opi = op_pinyin[op_id]
        search_text = f"{name} {op_name} {address} {full} {initials} {opf} {opi}"
        lng, lat = float(pos[i, 0]), float(pos[i, 1])
        x = lng * 20037508.342789244 / 180
        y = math.log(math.tan((90 + lat) * math.pi / 360)) * 6378137.0
        w.writerow([op_id, f"{prefix}{i:08d}", op_id, name, "CN", "440402" if region == "zhuhai" else "",
                    address, "400-800-0000", int(stype[i]), int(sstatus[i]), int(piles[i]),
                    round(float(glng[i]), 6), round(float(glat[i]), 6), 255,
                    _HOURS[int(hours_idx[i])], _FEE, "0.80元/度", "免费停车2小时", _PAYMENT_TEXTS[int(pay_idx[i])],
                    "{" + ",".join(codes) + "}", "{" + ",".join(unknown) + "}", 1, full, initials, search_text,
                    "active", "t", f"SRID=4326;POINT({lng!r} {lat!r})", f"SRID=3857;POINT({x!r} {y!r})", int(piles[i])])
    _copy(conn, "stations", cols, buf)
    conn.execute(text("ANALYZE stations"))

    conn.execute(text("SELECT setseed(:s)"), {"s": (seed % 1000) / 1000.0})
    conn.execute(text("""
        INSERT INTO equipment (station_pk, operator_id, equipment_id, equipment_type, power_kw, lng_gcj02, lat_gcj02,
                               manufacturer_name, equipment_model)
        SELECT s.id, s.operator_id, s.station_id || 'E' || lpad(g::text, 3, '0'), t.etype,
               CASE t.etype WHEN 2 THEN 7 WHEN 4 THEN 11
                    ELSE (ARRAY[60, 120, 160, 240])[1 + floor(random() * 4)::int] END,
               s.lng_gcj02, s.lat_gcj02, '模拟制造', 'SIM-1'
        FROM stations s
        CROSS JOIN LATERAL generate_series(1, s.pile_count) g
        CROSS JOIN LATERAL (SELECT CASE WHEN r < 0.55 THEN 1 WHEN r < 0.95 THEN 2 WHEN r < 0.99 THEN 3 ELSE 4 END AS etype
                            FROM (SELECT random() + g * 0 AS r) q) t
        WHERE s.station_id LIKE :p AND s.operator_id LIKE :op
    """), {"p": f"{prefix}%", "op": f"{prefix}%"})
    conn.execute(text("""
        INSERT INTO connectors (equipment_pk, station_pk, operator_id, connector_id, connector_type, power_kw,
                                voltage_upper_limits, voltage_lower_limits, current, national_standard)
        SELECT e.id, e.station_pk, e.operator_id, e.equipment_id || 'C' || g,
               CASE e.equipment_type WHEN 1 THEN 4 WHEN 2 THEN 3 WHEN 3 THEN 4 ELSE 5 END,
               e.power_kw, CASE e.equipment_type WHEN 2 THEN 220 ELSE 750 END,
               CASE e.equipment_type WHEN 2 THEN 220 ELSE 200 END, CASE e.equipment_type WHEN 2 THEN 32 ELSE 250 END, 2
        FROM equipment e
        CROSS JOIN LATERAL generate_series(1, CASE WHEN e.equipment_type = 1 AND (e.id % 2) = 0 THEN 2 ELSE 1 END) g
        WHERE e.operator_id LIKE :op
    """), {"op": f"{prefix}%"})
    conn.execute(text("ANALYZE equipment"))
    conn.execute(text("ANALYZE connectors"))
    conn.execute(text("""
        INSERT INTO connector_status (operator_id, connector_id, status, park_status, lock_status, source)
        SELECT c.operator_id, c.connector_id,
               CASE WHEN r < 0.6 THEN 1 WHEN r < 0.85 THEN 3 WHEN r < 0.9 THEN 2 WHEN r < 0.95 THEN 0 ELSE 255 END,
               0, 0, 'pull'
        FROM (SELECT c.*, random() AS r FROM connectors c WHERE c.operator_id LIKE :op) c
        ON CONFLICT (operator_id, connector_id) DO UPDATE SET status = EXCLUDED.status
    """), {"op": f"{prefix}%"})
    if region == "zhuhai":
        conn.execute(text("""
            UPDATE stations s SET district_adcode = d.adcode, area_code = d.adcode::text
            FROM districts d WHERE s.operator_id LIKE :op AND ST_Intersects(d.geom, s.geom)
        """), {"op": f"{prefix}%"})
    # The same summary the sync computes, in one set-based pass.
    conn.execute(text("""
        WITH eq AS (SELECT station_pk, count(*) piles, max(power_kw) maxp,
                           array_agg(DISTINCT CASE equipment_type WHEN 1 THEN 'dc' WHEN 2 THEN 'ac' WHEN 3 THEN 'acdc'
                                                                  WHEN 4 THEN 'wireless' ELSE 'other' END) ft
                    FROM equipment WHERE operator_id LIKE :op GROUP BY station_pk),
             cn AS (SELECT c.station_pk, count(*) total, count(*) FILTER (WHERE cs.status = 1) free,
                           count(*) FILTER (WHERE cs.status IN (2, 3, 4)) busy, count(cs.status) known
                    FROM connectors c LEFT JOIN connector_status cs USING (operator_id, connector_id)
                    WHERE c.operator_id LIKE :op GROUP BY c.station_pk)
        UPDATE stations s SET pile_count = eq.piles, facility_types = eq.ft, max_power_kw = eq.maxp,
               connectors_total = cn.total, connectors_free = cn.free,
               scale = CASE WHEN eq.piles >= 100 THEN 'xlarge' WHEN eq.piles >= 30 THEN 'large'
                            WHEN eq.piles >= 10 THEN 'medium' ELSE 'small' END,
               availability = CASE WHEN s.station_status <> 50 THEN 'offline' WHEN cn.free > 0 THEN 'free'
                                   WHEN cn.busy > 0 THEN 'busy' WHEN cn.known > 0 THEN 'offline' ELSE 'unknown' END
        FROM eq JOIN cn USING (station_pk)
        WHERE s.id = eq.station_pk
    """), {"op": f"{prefix}%"})
    bump_version(conn, "stations")
    return n


def _guangdong(service: str, valley: str = "0.3094", flat: str = "0.6437", peak: str = "1.0780") -> dict:
    """A time-of-use business policy with Guangdong's periods (valley 0-8, peak 10-12 and 14-19)."""
    starts = [("000000", valley), ("080000", flat), ("100000", peak), ("120000", flat), ("140000", peak),
              ("190000", flat)]
    return {"SumPeriod": len(starts), "PolicyInfos": [{"StartTime": t, "ElecPrice": e, "SevicePrice": service}
                                                      for t, e in starts]}


def _flat(electricity: str, service: str) -> dict:
    return {"SumPeriod": 1, "PolicyInfos": [{"StartTime": "000000", "ElecPrice": electricity, "SevicePrice": service}]}


#: (policy, source): what the generated operators answer; the flat ones stand for fee-text fallbacks
TARIFF_POLICIES: list[tuple[dict, str]] = [
    (_guangdong("0.4000"), "policy"), (_guangdong("0.6000"), "policy"), (_guangdong("0.8000"), "policy"),
    (_guangdong("0.5500", "0.2900", "0.6100", "1.0200"), "policy"), (_guangdong("0.3500", "0.3300", "0.6800", "1.1200"),
                                                                    "policy"),
    (_flat("0.6500", "0.5500"), "fee_text"), (_flat("0.8000", "0.4000"), "fee_text"),
]


def generate_tariffs(conn: Connection, prefix: str = "GEN", *, seed: int = 1, now: datetime | None = None,
                     batch: int = 20_000) -> int:
    """Tariffs for the connectors of generated stations, stored the way a policy pull stores them
    (``services.prices.store.store_tariffs``: versions, each station's cheapest tariff, its price
    now at ``now``): 10 % of the stations stay unpriced, 10 % have two tariffs among their
    connectors (so they vary), the rest one of :data:`TARIFF_POLICIES`. Returns the connectors
    priced. Call inside a transaction."""
    from services.prices.store import TariffWrite, store_tariffs
    from services.prices.tariff import read_policy

    readings = [(read_policy(policy), source) for policy, source in TARIFF_POLICIES]
    rng = random.Random(seed)
    plan: dict[int, tuple[int, ...]] = {}
    seen: dict[int, int] = defaultdict(int)
    writes: dict[str, list[TariffWrite]] = defaultdict(list)
    rows = conn.execute(text("SELECT operator_id, connector_id, station_pk FROM connectors WHERE operator_id LIKE :op "
                             "ORDER BY station_pk, connector_id"), {"op": f"{prefix}%"})
    for op, cid, spk in rows:
        if spk not in plan:
            r = rng.random()
            k = len(readings)
            plan[spk] = () if r < 0.1 else (rng.randrange(k), rng.randrange(k)) if r < 0.2 else (rng.randrange(k),)
        choice = plan[spk]
        if choice:
            reading, source = readings[choice[seen[spk] % len(choice)]]
            seen[spk] += 1
            writes[op].append(TariffWrite(cid, reading, source))
    for op, ws in writes.items():
        for i in range(0, len(ws), batch):
            store_tariffs(conn, op, ws[i:i + batch], now=now)
    return sum(len(ws) for ws in writes.values())


def clear_generated(conn: Connection, prefix: str = "GEN") -> None:
    """Delete every operator (and its stations, cascading) whose OperatorID starts with ``prefix``."""
    conn.execute(text("DELETE FROM connector_status WHERE operator_id LIKE :op"), {"op": f"{prefix}%"})
    conn.execute(text("DELETE FROM connector_tariffs WHERE operator_id LIKE :op"), {"op": f"{prefix}%"})
    conn.execute(text("DELETE FROM operators WHERE operator_id LIKE :op"), {"op": f"{prefix}%"})
    bump_version(conn, "stations")


#: tables whose plain (non-constraint) indexes are dropped during a bulk generation and rebuilt after
_DEFERRED_INDEX_TABLES = ("stations", "equipment", "connectors", "station_search", "station_text")


def _drop_plain_indexes(conn: Connection, tables: tuple[str, ...]) -> list[str]:
    """Drop the indexes of ``tables`` that back no constraint; return their definitions (to rebuild
    after a bulk load: one sort per index instead of an insertion per row)."""
    rows = conn.execute(text("""
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
        WHERE i.indrelid = ANY(CAST(:t AS regclass[]))
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
    """), {"t": list(tables)}).all()
    for name, _ in rows:
        conn.execute(text(f"DROP INDEX {name}"))
    return [d for _, d in rows]


def bench_database(name: str, n: int, *, region: str, operators: int, analyze: tuple[str, ...] = ("stations",),
                   label: str = "", tariffs: bool = True) -> str:
    """URL of a benchmark database with exactly ``n`` generated stations (kept between runs).

    Created on the database server in use (the private cluster is started if needed), migrated,
    with Zhuhai's districts; regenerated only when its station count differs. Generation COPYs the
    stations with the plain indexes of the big tables dropped and rebuilds them after the load.
    ``tariffs=False`` leaves the stations unpriced (the scaling databases: 1,000,000 stations'
    tariffs would take an hour through ``store_tariffs``). ``station_search`` is clustered in space
    after a generation (``services.search.maintenance``, as the app's daily job keeps it).
    """
    import time

    from sqlalchemy import create_engine

    from services import migrate
    from services.dbcluster import Cluster, database_url, ensure_database
    from services.geography import load_districts_into_db
    from services.prices.store import tick_prices
    from services.search.maintenance import JOB as CLUSTER_JOB
    from services.search.maintenance import cluster_station_search
    from services.settings import DatabaseSettings

    settings = DatabaseSettings()
    if settings.embedded:
        Cluster(settings).start()
    url = ensure_database(database_url(settings), name)
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        load_districts_into_db(conn)
        have = conn.execute(text("SELECT count(*) FROM stations WHERE operator_id LIKE 'GEN%'")).scalar()
    if have != n:
        print(f"   generating {n:,} stations ({label or region}) ...", flush=True)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            clear_generated(conn, "GEN")
            conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            indexes = _drop_plain_indexes(conn, _DEFERRED_INDEX_TABLES)
            generate_stations(conn, n, region=region, seed=1, operators=operators, prefix="GEN")
            t1 = time.perf_counter()
            for ddl in indexes:
                conn.execute(text(ddl))
            print(f"   {len(indexes)} indexes rebuilt in {time.perf_counter() - t1:.0f} s", flush=True)
        print(f"   generated in {time.perf_counter() - t0:.0f} s", flush=True)
    with engine.begin() as conn:
        priced = conn.execute(text("SELECT EXISTS (SELECT 1 FROM station_tariffs)")).scalar()
    if not priced and tariffs:  # databases generated before prices existed get their tariffs once
        print(f"   generating tariffs ({label or region}) ...", flush=True)
        t0 = time.perf_counter()
        with engine.begin() as conn:
            generate_tariffs(conn, "GEN", seed=1)
        print(f"   tariffs in {time.perf_counter() - t0:.0f} s", flush=True)
    tick_prices(engine)  # the prices in force now, as the price job keeps them
    with engine.connect() as conn:
        clustered = conn.execute(text("SELECT EXISTS (SELECT 1 FROM maintenance_runs WHERE job = :j)"),
                                 {"j": CLUSTER_JOB}).scalar()
    if not clustered or have != n:  # the search table in spatial order, as the daily job keeps it
        run = cluster_station_search(engine, lock_timeout_s=60)
        print(f"   station_search clustered in {run.seconds:.1f} s", flush=True)
    with engine.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
        for table in analyze:
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()
    return url


#: the scaling table's sizes (``python -m bench scaling``)
SCALE_SIZES = (10_000, 100_000, 250_000, 1_000_000)


def scale_database(n: int) -> str:
    """The national benchmark database with ``n`` stations (the same generator, seed and 40
    operators as the search benchmark's national set; 250,000 is that database itself)."""
    if n == 250_000:
        name, tariffs = "zhcharge_bench_search_national", True
    else:
        name, tariffs = f"zhcharge_bench_national_{n}", False
    return bench_database(name, n, region="china", operators=40, label=f"national {n:,}", tariffs=tariffs,
                          analyze=("stations", "station_search", "station_text", "operators", "equipment",
                                   "connectors"))

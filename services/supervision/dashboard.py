"""The regulator dashboard: live connector and station states, the online rate over time,
long faults, feed health per operator, prices by period with the stations above the cap, the
price execution of the orders and the charging statistics (issue 15).

Every table is a :class:`Table` (columns + rows) so the page, the charts and the CSV export all
read the same numbers. Connector states follow T/CEC 102 ``ConnectorStatus``: 1 free; 2, 3, 4
in use ("charging"); 255 fault; 0 or no status yet offline. "Online" means free or in use.

Prices come from the tariffs (``station_tariffs``: each station's cheapest price per moment, read
from the operators' business policies or their fee texts, ``source`` says which); a station
without any tariff falls back to parsing its StationInfo fee texts here, as before tariffs
existed. The cap is the regulators' (``price_caps``) in force, the settings' default before one
is set. Order-based tables cover the last 30 China days.

The online-rate series comes from ``status_snapshots``, written every ``snapshot_interval_s`` by
:func:`take_snapshot`; several app processes may call it, a transaction-scoped advisory lock and
a re-check of the newest snapshot under it make exactly one of them write.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from services.jobs import PeriodicJob
from services.orders.daily import DIMENSIONS, charging_daily
from services.orders.execution import execution_report
from services.orders.window import Window
from services.prices.oversight import over_cap
from services.prices.store import cap_at
from services.prices.tariff import Cap, Tariff
from services.settings import SupervisionSettings
from services.supervision.fees import PERIODS, parse_fee, period_average, total_schedule

__all__ = ["snapshot_job", "Table", "dashboard", "take_snapshot", "to_csv"]

SNAPSHOT_LOCK = 0x7A68_0700  # pg advisory lock key of the snapshot job
STATES = ("free", "charging", "offline", "fault")
STATE_LABELS = {"free": ("空闲", "free"), "charging": ("使用中", "in use"), "offline": ("离线", "offline"),
                "fault": ("故障", "fault")}

_CONNECTOR_STATE = """
CASE WHEN cs.status = 1 THEN 'free' WHEN cs.status IN (2, 3, 4) THEN 'charging'
     WHEN cs.status = 255 THEN 'fault' ELSE 'offline' END
"""
_CONNECTORS = text(f"""
SELECT st.operator_id, st.district_adcode,
       count(*) FILTER (WHERE s = 'free') AS free, count(*) FILTER (WHERE s = 'charging') AS charging,
       count(*) FILTER (WHERE s = 'offline') AS offline, count(*) FILTER (WHERE s = 'fault') AS fault
FROM (SELECT c.station_pk, {_CONNECTOR_STATE} AS s
      FROM connectors c LEFT JOIN connector_status cs
        ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id) x
JOIN stations st ON st.id = x.station_pk AND st.feed_state = 'active'
GROUP BY st.operator_id, st.district_adcode
""")
# a station is what a driver would see: free if any connector is free, else in use, else fault, else offline
_STATIONS = text(f"""
SELECT operator_id, district_adcode,
       count(*) FILTER (WHERE s = 'free') AS free, count(*) FILTER (WHERE s = 'charging') AS charging,
       count(*) FILTER (WHERE s = 'offline') AS offline, count(*) FILTER (WHERE s = 'fault') AS fault
FROM (SELECT st.operator_id, st.district_adcode,
             CASE WHEN bool_or(x.s = 'free') THEN 'free' WHEN bool_or(x.s = 'charging') THEN 'charging'
                  WHEN bool_or(x.s = 'fault') THEN 'fault' ELSE 'offline' END AS s
      FROM stations st
      LEFT JOIN (SELECT c.station_pk, {_CONNECTOR_STATE} AS s
                 FROM connectors c LEFT JOIN connector_status cs
                   ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id) x ON x.station_pk = st.id
      WHERE st.feed_state = 'active'
      GROUP BY st.id) y
GROUP BY operator_id, district_adcode
""")
_NAMES = text("SELECT operator_id, name FROM operators")
_DISTRICTS = text("SELECT adcode, name, name_en FROM districts")
_SERIES = text("""
SELECT taken_at, sum(free + charging) AS online, sum(free + charging + offline + fault + other) AS total,
       sum(fault) AS fault
FROM status_snapshots WHERE taken_at > now() - make_interval(hours => :hours)
GROUP BY taken_at ORDER BY taken_at
""")
_FAULTS = text("""
SELECT o.name AS operator_name, cs.operator_id, st.name AS station_name, st.station_id, d.name AS district,
       cs.connector_id, cs.status_since,
       floor(extract(epoch FROM now() - cs.status_since) / 60)::int AS minutes
FROM connector_status cs
LEFT JOIN connectors c ON c.operator_id = cs.operator_id AND c.connector_id = cs.connector_id
LEFT JOIN stations st ON st.id = c.station_pk
LEFT JOIN operators o ON o.operator_id = cs.operator_id
LEFT JOIN districts d ON d.adcode = st.district_adcode
WHERE cs.status = 255 AND cs.status_since < now() - make_interval(mins => :mins)
  AND (st.id IS NULL OR st.feed_state = 'active')
ORDER BY cs.status_since LIMIT :limit
""")
_FEED = text("""
SELECT o.operator_id, o.name, fe.enabled, fe.circuit_state, fe.circuit_failures, fe.last_push_at,
       fe.last_full_sync_at, fe.last_error,
       (SELECT max(finished_at) FROM sync_runs r WHERE r.operator_id = o.operator_id
          AND r.mode IN ('full', 'incremental')) AS last_sync,
       (SELECT max(finished_at) FROM sync_runs r WHERE r.operator_id = o.operator_id AND r.ok) AS last_ok,
       d.runs_24h, d.errors_24h, d.pushes_1h,
       (SELECT count(*) FROM stations st WHERE st.operator_id = o.operator_id AND st.feed_state = 'active') AS stations
FROM operators o
LEFT JOIN feed_endpoints fe ON fe.operator_id = o.operator_id
CROSS JOIN LATERAL (
  SELECT count(*) FILTER (WHERE r.mode <> 'push') AS runs_24h,
         count(*) FILTER (WHERE r.ok IS FALSE) AS errors_24h,
         coalesce(sum(r.statuses) FILTER (WHERE r.mode = 'push' AND r.started_at > now() - interval '1 hour'), 0)
           AS pushes_1h
  FROM sync_runs r WHERE r.operator_id = o.operator_id AND r.started_at > now() - interval '24 hours') d
WHERE fe.id IS NOT NULL OR EXISTS (SELECT 1 FROM stations st WHERE st.operator_id = o.operator_id)
ORDER BY o.name
""")
_PRICES = text("""
SELECT st.id, st.station_id, st.name, st.operator_id, st.district_adcode, st.electricity_fee, st.service_fee,
       stt.source, t.id AS tariff_id, t.periods
FROM stations st
LEFT JOIN station_tariffs stt ON stt.station_pk = st.id
LEFT JOIN tariffs t ON t.id = stt.tariff_id
WHERE st.feed_state = 'active'
""")
ORDER_DAYS = 30
SOURCES = {"policy": ("业务策略", "business policy"), "fee_text": ("收费文本（已存电价）", "fee text (stored tariff)"),
           "mixed": ("混合", "mixed"), "text": ("收费文本（无电价，现场解析）", "fee text (no tariff, parsed here)")}


@dataclass
class Table:
    """One dashboard table: ``columns`` are ``(key, zh, en)``; rows are dicts by key."""

    name: str
    title: tuple[str, str]
    columns: list[tuple[str, str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)


def to_csv(table: Table, lang: str = "zh") -> str:
    """CSV text (with a BOM so spreadsheet programs read the Chinese right)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([en if lang == "en" else zh for _, zh, en in table.columns])
    for r in table.rows:
        w.writerow(["" if r.get(k) is None else (r[k].isoformat() if isinstance(r.get(k), datetime) else r[k])
                    for k, _, _ in table.columns])
    return "\ufeff" + buf.getvalue()


def _rate(online: int, total: int) -> float | None:
    return round(100.0 * online / total, 1) if total else None


def _state_tables(s: Session, sql: Any, what: str, names: dict[str, str], districts: dict[int, str]) -> list[Table]:
    rows = s.execute(sql).mappings().all()
    by_d: dict[Any, dict[str, Any]] = {}
    by_o: dict[Any, dict[str, Any]] = {}
    for r in rows:
        for key, label, acc in ((r["district_adcode"], districts.get(r["district_adcode"], "未知 / unknown"), by_d),
                                (r["operator_id"], names.get(r["operator_id"], r["operator_id"]), by_o)):
            a = acc.setdefault(key, {"key": key, "label": label, **{k: 0 for k in STATES}})
            for k in STATES:
                a[k] += r[k]
    out = []
    zh_what, en_what = ("充电站", "Stations") if what == "stations" else ("充电接口", "Connectors")
    for acc, dim, zh, en in ((by_d, "district", "区", "District"), (by_o, "operator", "运营商", "Operator")):
        table_rows = []
        for a in sorted(acc.values(), key=lambda x: -sum(x[k] for k in STATES)):
            total = sum(a[k] for k in STATES)
            table_rows.append({**a, "total": total, "online_rate": _rate(a["free"] + a["charging"], total)})
        cols = [("label", zh, en)] + [(k, *STATE_LABELS[k]) for k in STATES] + [
            ("total", "合计", "total"), ("online_rate", "在线率 %", "online %")]
        out.append(Table(f"{what}_by_{dim}", (f"{zh_what}状态（按{zh}）", f"{en_what} by state and {en.lower()}"),
                         cols, table_rows))
    return out


def _fmt(v: float | None) -> float | None:
    return None if v is None else round(v, 4)


def _tariff_averages(t: Tariff) -> dict[str, float]:
    """Time-weighted average electricity (``e_<period>``) and service (``s_<period>``) prices of a
    tariff over each of Zhuhai's TOU periods."""
    out: dict[str, float] = {}
    for name, (_, ranges) in PERIODS.items():
        seconds = 0
        e = sv = Decimal(0)
        for a, b in ranges:
            for i, p in enumerate(t.periods):
                overlap = min(b * 60, t.end_of(i)) - max(a * 60, p.start)
                if overlap > 0:
                    seconds += overlap
                    e += p.electricity * overlap
                    sv += p.service * overlap
        out[f"e_{name}"] = _fmt(float(e / seconds)) if seconds else None
        out[f"s_{name}"] = _fmt(float(sv / seconds)) if seconds else None
    return out


def _station_prices(s: Session, names: dict[str, str], districts: dict[int, str]) -> list[dict[str, Any]]:
    """Each active station's prices by period: from its tariff where it has one, else from its
    fee texts parsed here (``source`` "text"; None when they cannot be read)."""
    per_tariff: dict[int, tuple[dict[str, float], Tariff]] = {}
    out = []
    for r in s.execute(_PRICES).mappings():
        row = {"id": r["id"], "station_id": r["station_id"], "name": r["name"], "operator_id": r["operator_id"],
               "operator": names.get(r["operator_id"], r["operator_id"]),
               "district": districts.get(r["district_adcode"], "未知 / unknown"),
               "electricity_fee": r["electricity_fee"], "service_fee": r["service_fee"]}
        if r["periods"] is not None:
            if r["tariff_id"] not in per_tariff:
                t = Tariff.from_json(r["periods"])
                per_tariff[r["tariff_id"]] = (_tariff_averages(t), t)
            averages, t = per_tariff[r["tariff_id"]]
            row.update(averages, source=r["source"] or "policy", parsed=True, max_total=_fmt(float(t.max_total)),
                       max_service=_fmt(float(max(p.service for p in t.periods))))
        else:
            e, sv = parse_fee(r["electricity_fee"]), parse_fee(r["service_fee"])
            tot = total_schedule(e, sv)
            row.update(source="text" if e is not None and sv is not None else None, parsed=e is not None and sv is not None,
                       max_total=_fmt(tot.max_price) if tot and any(p is not None for p in tot.slots) else None,
                       max_service=_fmt(sv.max_price) if sv else None)
            for p in PERIODS:
                row[f"e_{p}"] = period_average(e, p)
                row[f"s_{p}"] = period_average(sv, p)
        out.append(row)
    return out


def _price_tables(s: Session, cap: Cap, names: dict[str, str], districts: dict[int, str]) -> list[Table]:
    per_station = _station_prices(s, names, districts)

    def group(key: str, dim: str, zh: str, en: str) -> Table:
        acc: dict[str, dict[str, Any]] = {}
        for r in per_station:
            a = acc.setdefault(r[key], {"label": r[key], "stations": 0, **{k: 0 for k in SOURCES}, "unparsed": 0,
                                        **{f"{x}_{p}": [] for x in "es" for p in PERIODS}})
            a["stations"] += 1
            if r["source"] is None:
                a["unparsed"] += 1
            else:
                a[r["source"]] += 1
            for x in "es":
                for p in PERIODS:
                    if r[f"{x}_{p}"] is not None:
                        a[f"{x}_{p}"].append(r[f"{x}_{p}"])
        rows = []
        for a in sorted(acc.values(), key=lambda x: -x["stations"]):
            row = {k: (_fmt(sum(v) / len(v)) if v else None) if isinstance(v, list) else v for k, v in a.items()}
            rows.append(row)
        cols = [("label", zh, en), ("stations", "站点数", "stations")]
        cols += [(k, f"来源：{szh}", f"source: {sen}") for k, (szh, sen) in SOURCES.items()]
        cols.append(("unparsed", "无电价且无法解析", "no tariff, unparsed"))
        for x, xzh, xen in (("e", "电费", "electricity"), ("s", "服务费", "service")):
            for p, ((pzh, pen), _) in PERIODS.items():
                cols.append((f"{x}_{p}", f"{xzh} {pzh}（元/度）", f"{xen} {pen} (yuan/kWh)"))
        return Table(f"prices_by_{dim}", (f"平均电价与服务费（按{zh}、时段）", f"Average fees by {en.lower()} and period"),
                     cols, rows)

    basis = "max_service" if cap.basis == "service" else "max_total"
    limit = float(cap.yuan_per_kwh)
    by_pk = {r["id"]: r for r in per_station}
    over: dict[int, dict[str, Any]] = {}
    for v in over_cap(s, cap):  # current connector tariffs over the cap
        st = by_pk.get(v["station_pk"])
        if st is None:
            continue
        row = over.setdefault(st["id"], {**st, basis: None, "connectors": 0, "source": v["source"]})
        row[basis] = max(row[basis] or 0, _fmt(float(v["value"])))
        row["connectors"] += int(v["connectors"])
        if row["source"] != v["source"]:
            row["source"] = "mixed"
    for r in per_station:  # stations without any tariff: their fee texts, parsed here
        if r["source"] == "text" and r[basis] is not None and r[basis] > limit:
            over.setdefault(r["id"], {**r, "connectors": None})
    rows = sorted(over.values(), key=lambda r: -(r[basis] or 0))
    for r in rows:
        r["source_label"] = "/".join(SOURCES.get(r["source"], (r["source"], r["source"])))
    what = ("服务费", "service fee") if basis == "max_service" else ("电费+服务费", "electricity + service fee")
    over_table = Table("over_cap", (f"超过限价（{what[0]} > {cap.yuan_per_kwh} 元/度）的站点",
                                    f"Stations above the cap ({what[1]} > {cap.yuan_per_kwh} yuan/kWh)"),
                       [("station_id", "站点编号", "StationID"), ("name", "站点", "station"), ("operator", "运营商", "operator"),
                        ("district", "区", "district"), (basis, "最高收费（元/度）", "highest fee (yuan/kWh)"),
                        ("connectors", "超限接口数", "connectors over"), ("source_label", "来源", "source"),
                        ("electricity_fee", "电费", "electricity fee"), ("service_fee", "服务费", "service fee")],
                       rows)
    return [group("operator", "operator", "运营商", "Operator"), group("district", "district", "区", "District"),
            over_table]


_EXECUTION_COLUMNS = [("label", "运营商", "operator"), ("orders", "订单数", "orders"),
                      ("energy_kwh", "充电量（度）", "energy (kWh)"), ("money_yuan", "金额（元）", "money (yuan)"),
                      ("avg_price", "平均单价（元/度）", "average price (yuan/kWh)"),
                      ("at_tariff_share", "按公示电价结算 %", "billed at the tariff %"),
                      ("overcharged", "超收订单", "overcharged orders"), ("overcharge_yuan", "超收金额（元）", "overcharge (yuan)"),
                      ("disputed", "存疑订单", "disputed orders"), ("reconcile_disputes", "对账争议", "reconciliation disputes"),
                      ("unreconciled_days", "未对账天数", "unreconciled days"),
                      ("over_cap_connectors", "超限价接口", "connectors over the cap")]
_CHARGING_COLUMNS = [("sessions", "充电次数", "sessions"), ("energy_kwh", "充电量（度）", "energy (kWh)"),
                     ("money_yuan", "金额（元）", "money (yuan)"), ("avg_price", "平均单价（元/度）", "average price (yuan/kWh)")]


def _order_tables(s: Session, cap: Cap, lang: str) -> tuple[list[Table], dict[str, Any]]:
    """Price execution per operator and charging per day (city, district, operator, facility
    type) over the last :data:`ORDER_DAYS` days; and the city's totals for the page."""
    window = Window.last(ORDER_DAYS)
    report = execution_report(s, window, cap)
    rows = [{"label": r["operator_name"], **{k: r[k] for k, _, _ in _EXECUTION_COLUMNS[1:]}} for r in report["operators"]]
    tables = [Table("price_execution", (f"价格执行（近 {ORDER_DAYS} 天订单）", f"Price execution (orders of the last {ORDER_DAYS} days)"),
                    _EXECUTION_COLUMNS, rows)]
    charging = charging_daily(s, window)
    daily = [{"day": d.isoformat(), **charging.daily[d].as_row(exact=True)} for d in sorted(charging.daily, reverse=True)]
    tables.append(Table("charging_daily", (f"每日充电（近 {ORDER_DAYS} 天）", f"Charging per day (last {ORDER_DAYS} days)"),
                        [("day", "日期", "day"), *_CHARGING_COLUMNS], daily))
    for dim, (_, _, zh, en) in DIMENSIONS.items():
        tables.append(Table(f"charging_by_{dim}", (f"每日充电（按{zh}）", f"Charging per day by {en}"),
                            [("day", "日期", "day"), ("label", zh, en), *_CHARGING_COLUMNS], charging.rows(dim, lang)))
    return tables, {"window": window, "total": report["total"], "charging": charging.total.as_row(exact=True),
                    "daily": list(reversed(daily))}


def dashboard(s: Session, cfg: SupervisionSettings, *, hours: int = 24, lang: str = "zh") -> dict[str, Any]:
    """Everything the page shows: ``tables`` by name, ``series`` for the online-rate chart, ``totals``."""
    names = dict(s.execute(_NAMES).all())
    districts = {a: (ne if lang == "en" and ne else n) for a, n, ne in s.execute(_DISTRICTS).all()}
    tables = _state_tables(s, _STATIONS, "stations", names, districts)
    tables += _state_tables(s, _CONNECTORS, "connectors", names, districts)
    totals = {k: sum(r[k] for r in tables[2].rows) for k in STATES}  # connectors_by_district
    totals["total"] = sum(totals.values())
    totals["online_rate"] = _rate(totals["free"] + totals["charging"], totals["total"])
    totals["stations"] = sum(r["total"] for r in tables[0].rows)

    series_rows = [{"taken_at": r["taken_at"], "online": r["online"], "total": r["total"], "fault": r["fault"],
                    "online_rate": _rate(r["online"], r["total"])} for r in s.execute(_SERIES, {"hours": hours}).mappings()]
    tables.append(Table("online_rate", ("在线率（快照）", "Online rate (snapshots)"),
                        [("taken_at", "时间", "time"), ("online", "在线接口", "online"), ("total", "接口总数", "total"),
                         ("fault", "故障", "fault"), ("online_rate", "在线率 %", "online %")], series_rows))

    faults = [dict(r) for r in s.execute(_FAULTS, {"mins": cfg.fault_threshold_min, "limit": 2000}).mappings()]
    tables.append(Table("faults", (f"故障超过 {cfg.fault_threshold_min} 分钟的接口",
                                   f"Connectors in fault for more than {cfg.fault_threshold_min} minutes"),
                        [("operator_name", "运营商", "operator"), ("station_name", "站点", "station"),
                         ("station_id", "站点编号", "StationID"), ("district", "区", "district"),
                         ("connector_id", "接口编号", "ConnectorID"), ("status_since", "故障开始", "fault since"),
                         ("minutes", "持续分钟", "minutes")], faults))

    feed = []
    for r in s.execute(_FEED).mappings():
        r = dict(r)
        r["push_per_min"] = round(r.pop("pushes_1h") / 60.0, 2)
        r["circuit_state"] = r["circuit_state"] or "—"
        feed.append(r)
    tables.append(Table("feed_health", ("数据接入健康度", "Feed health"),
                        [("name", "运营商", "operator"), ("operator_id", "OperatorID", "OperatorID"),
                         ("stations", "站点数", "stations"), ("last_sync", "最近同步", "last sync"),
                         ("last_ok", "最近成功", "last success"), ("runs_24h", "24小时同步次数", "syncs 24 h"),
                         ("errors_24h", "24小时错误", "errors 24 h"), ("circuit_state", "熔断状态", "circuit"),
                         ("last_push_at", "最近推送", "last push"), ("push_per_min", "推送/分钟（1小时）", "pushes/min (1 h)"),
                         ("last_error", "最近错误", "last error")], feed))
    cap = cap_at(s, default=cfg)
    tables += _price_tables(s, cap, names, districts)
    order_tables, orders = _order_tables(s, cap, lang)
    tables += order_tables
    return {"tables": {t.name: t for t in tables}, "order": [t.name for t in tables], "totals": totals,
            "series": series_rows, "cap": cap, "orders": orders}


# --- snapshots --------------------------------------------------------------------------------
_SNAPSHOT = text(f"""
INSERT INTO status_snapshots (taken_at, operator_id, district_adcode, free, charging, offline, fault)
SELECT now(), st.operator_id, st.district_adcode,
       count(*) FILTER (WHERE s = 'free'), count(*) FILTER (WHERE s = 'charging'),
       count(*) FILTER (WHERE s = 'offline'), count(*) FILTER (WHERE s = 'fault')
FROM (SELECT c.station_pk, {_CONNECTOR_STATE} AS s
      FROM connectors c LEFT JOIN connector_status cs
        ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id) x
JOIN stations st ON st.id = x.station_pk AND st.feed_state = 'active'
GROUP BY st.operator_id, st.district_adcode
""")


def take_snapshot(engine: Engine, cfg: SupervisionSettings, *, force: bool = False) -> bool:
    """Write one snapshot unless another process holds the job or wrote one less than an interval ago."""
    with engine.begin() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SNAPSHOT_LOCK}).scalar():
            return False
        if not force:
            fresh = conn.execute(text("SELECT max(taken_at) > now() - make_interval(secs => :s) FROM status_snapshots"),
                                 {"s": cfg.snapshot_interval_s * 0.9}).scalar()
            if fresh:
                return False
        conn.execute(_SNAPSHOT)
        conn.execute(text("DELETE FROM status_snapshots WHERE taken_at < now() - make_interval(days => :d)"),
                     {"d": cfg.snapshot_keep_days})
    return True


def snapshot_job(engine: Engine, cfg: SupervisionSettings) -> PeriodicJob:
    """A daemon thread calling :func:`take_snapshot` about every interval (safe in several processes)."""
    return PeriodicJob("status-snapshots", lambda: take_snapshot(engine, cfg), max(10.0, cfg.snapshot_interval_s / 5))

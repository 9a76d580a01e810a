"""Tariffs in the database: versions per connector, each station's cheapest price, the cap.

* :func:`store_tariffs` writes what a policy pull (or the fee-text fallback) found for a batch of
  connectors: an unchanged tariff only moves ``last_seen_at``; a changed one closes the current
  version (``valid_to``) and opens a new one, so :func:`tariff_history` can answer for any past
  moment. Then the stations of the connectors are refreshed.
* :func:`refresh_stations` recomputes ``station_tariffs`` (the cheapest total per moment of the
  day over a station's priced connectors) and ``stations.price_now``/``price_until``.
* :func:`tick_prices` moves ``price_now`` of the stations whose period ended (run every minute
  by :func:`price_job`; distinct tariffs are few, so the new prices are computed per tariff and
  applied with one UPDATE).
* :func:`cap_at` / :func:`set_cap`: the regulator's cap with its history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from psycopg2.extras import execute_values
from sqlalchemy import Engine, text

from services.prices.tariff import Cap, PolicyReading, Tariff, merge_cheapest, price

__all__ = ["TariffVersion", "TariffWrite", "cap_at", "cap_history", "connector_tariffs", "price_job",
           "refresh_stations", "set_cap", "store_tariffs", "stored_tariff", "tariff_history", "tick_prices"]

log = logging.getLogger("zhcharge.prices")

PRICE_LOCK = 0x7A68_1400  # pg advisory lock of the price tick

#: Bumped whenever this process stores tariff versions: caches of tariff histories (the order
#: checks' in ``services.orders.store``) compare it and read again.
WRITES = [0]
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def _cursor(conn: Any) -> Any:
    """A psycopg2 cursor in ``conn``'s transaction (for ``execute_values``)."""
    return conn.connection.dbapi_connection.cursor()


# --- the cap ------------------------------------------------------------------------------------
def cap_at(conn: Any, moment: datetime | None = None, default: Any = None) -> Cap:
    """The cap in force at ``moment`` (now by default); ``default`` (SupervisionSettings) before
    any regulator set one."""
    row = conn.execute(text("SELECT yuan_per_kwh, basis FROM price_caps WHERE valid_from <= coalesce(:m, now()) "
                            "ORDER BY valid_from DESC, id DESC LIMIT 1"), {"m": moment}).first()
    if row is not None:
        return Cap(Decimal(row.yuan_per_kwh), row.basis)
    if default is not None:
        return Cap(price(default.fee_cap_yuan_per_kwh), "service" if default.fee_cap_basis == "service" else "total")
    return Cap(Decimal("2.0000"))


def set_cap(conn: Any, yuan_per_kwh: Decimal, basis: str, *, user_id: int | None, note: str | None = None,
            valid_from: datetime | None = None) -> int:
    return conn.execute(text("INSERT INTO price_caps (yuan_per_kwh, basis, valid_from, set_by, note) "
                             "VALUES (:y, :b, coalesce(:f, now()), :u, :n) RETURNING id"),
                        {"y": yuan_per_kwh, "b": basis, "f": valid_from, "u": user_id, "n": note}).scalar_one()


def cap_history(conn: Any) -> list[dict[str, Any]]:
    rows = conn.execute(text("SELECT c.id, c.yuan_per_kwh, c.basis, c.valid_from, c.note, u.account_name AS set_by "
                             "FROM price_caps c LEFT JOIN users u ON u.id = c.set_by ORDER BY c.valid_from DESC, c.id DESC"))
    return [dict(r._mapping) for r in rows]


# --- writing versions ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TariffWrite:
    """What was found for one connector: the reading (tariff and problems), where it came from
    (``policy`` or ``fee_text``) and the policy as answered."""

    connector_id: str
    reading: PolicyReading
    source: str
    raw: Any = None


def _tariff_ids(conn: Any, tariffs: Iterable[Tariff]) -> dict[str, int]:
    """Ids of the given tariffs by digest, inserting the new ones."""
    by_digest = {t.digest(): t.compact() for t in tariffs}
    if not by_digest:
        return {}
    with _cursor(conn) as cur:
        execute_values(cur, "INSERT INTO tariffs (digest, periods, min_total, max_total) VALUES %s "
                            "ON CONFLICT (digest) DO NOTHING",
                       [(d, json.dumps(t.to_json()), t.min_total, t.max_total) for d, t in by_digest.items()])
    rows = conn.execute(text("SELECT digest, id FROM tariffs WHERE digest = ANY(:d)"), {"d": list(by_digest)})
    return {r.digest: r.id for r in rows}


def store_tariffs(conn: Any, operator_id: str, writes: Sequence[TariffWrite], *,
                  now: datetime | None = None) -> dict[str, int]:
    """Store a batch of readings of one operator's connectors; returns counts ``{"unchanged",
    "changed", "new", "problems"}``. Stations of changed connectors are refreshed."""
    counts = {"unchanged": 0, "changed": 0, "new": 0, "problems": 0}
    if not writes:
        return counts
    now = now or conn.execute(text("SELECT now()")).scalar_one()
    last = {w.connector_id: w for w in writes}  # one write per connector: the last one wins
    ids = _tariff_ids(conn, (w.reading.tariff for w in last.values() if w.reading.tariff is not None))
    current = {r.connector_id: r for r in conn.execute(text(
        "SELECT id, connector_id, tariff_id, source, problems FROM connector_tariffs "
        "WHERE operator_id = :op AND connector_id = ANY(:c) AND valid_to IS NULL"),
        {"op": operator_id, "c": list(last)})}
    seen: list[int] = []
    close: list[int] = []
    inserts: list[tuple] = []
    for cid, w in last.items():
        tid = ids.get(w.reading.tariff.digest()) if w.reading.tariff is not None else None
        problems = list(w.reading.problems)
        counts["problems"] += bool(problems)
        cur = current.get(cid)
        if cur is not None and (cur.tariff_id, cur.source, list(cur.problems)) == (tid, w.source, problems):
            counts["unchanged"] += 1
            seen.append(cur.id)
            continue
        counts["changed" if cur is not None else "new"] += 1
        if cur is not None:
            close.append(cur.id)
        inserts.append((operator_id, cid, tid, w.source, problems,
                        json.dumps(w.raw, ensure_ascii=False) if w.raw is not None else None, now, now))
    if seen:
        conn.execute(text("UPDATE connector_tariffs SET last_seen_at = :now WHERE id = ANY(:ids)"),
                     {"now": now, "ids": seen})
    if close:
        conn.execute(text("UPDATE connector_tariffs SET valid_to = :now WHERE id = ANY(:ids)"), {"now": now, "ids": close})
    if inserts:
        WRITES[0] += 1
        with _cursor(conn) as cur:
            execute_values(cur, "INSERT INTO connector_tariffs (operator_id, connector_id, tariff_id, source, problems, "
                                "raw, first_seen_at, last_seen_at) VALUES %s", inserts,
                           template="(%s, %s, %s, %s, %s::text[], %s::jsonb, %s, %s)")
        stations = [r[0] for r in conn.execute(text(
            "SELECT DISTINCT station_pk FROM connectors WHERE operator_id = :op AND connector_id = ANY(:c)"),
            {"op": operator_id, "c": [i[1] for i in inserts]})]
        refresh_stations(conn, stations, now=now)
    return counts


# --- reading versions ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TariffVersion:
    id: int
    tariff: Tariff | None
    source: str
    problems: tuple[str, ...]
    first_seen_at: datetime
    last_seen_at: datetime
    valid_to: datetime | None


def _version(row: Any) -> TariffVersion:
    return TariffVersion(row.id, Tariff.from_json(row.periods) if row.periods is not None else None, row.source,
                         tuple(row.problems or ()), row.first_seen_at, row.last_seen_at, row.valid_to)


def tariff_history(conn: Any, operator_id: str, connector_id: str) -> list[TariffVersion]:
    """Every version of a connector's tariff, oldest first."""
    rows = conn.execute(text(
        "SELECT v.id, t.periods, v.source, v.problems, v.first_seen_at, v.last_seen_at, v.valid_to "
        "FROM connector_tariffs v LEFT JOIN tariffs t ON t.id = v.tariff_id "
        "WHERE v.operator_id = :op AND v.connector_id = :c ORDER BY v.first_seen_at, v.id"),
        {"op": operator_id, "c": connector_id})
    return [_version(r) for r in rows]


def in_force(history: Sequence[TariffVersion], moment: datetime) -> tuple[TariffVersion | None, bool]:
    """The version in force at ``moment`` and whether it was only assumed (``moment`` before the
    first version we saw: the earliest is taken, and the caller says so)."""
    priced = [v for v in history if v.tariff is not None]
    for v in priced:
        if v.first_seen_at <= moment and (v.valid_to is None or moment < v.valid_to):
            return v, False
    if priced and moment < priced[0].first_seen_at:
        return priced[0], True
    before = [v for v in priced if v.first_seen_at <= moment]
    return (before[-1], False) if before else (None, False)


def connector_tariffs(conn: Any, station_pk: int) -> dict[str, TariffVersion]:
    """The current version of each connector of a station (connectors without one are absent)."""
    rows = conn.execute(text(
        "SELECT c.connector_id, v.id, t.periods, v.source, v.problems, v.first_seen_at, v.last_seen_at, v.valid_to "
        "FROM connectors c JOIN connector_tariffs v ON v.operator_id = c.operator_id "
        "AND v.connector_id = c.connector_id AND v.valid_to IS NULL LEFT JOIN tariffs t ON t.id = v.tariff_id "
        "WHERE c.station_pk = :s"), {"s": station_pk})
    return {r.connector_id: _version(r) for r in rows}


# --- stations -----------------------------------------------------------------------------------
def _now_and_until(t: Tariff, now: datetime) -> tuple[Decimal, datetime]:
    if len(t.compact().periods) == 1:
        return t.periods[0].total, FAR_FUTURE
    return t.at(now).total, t.until(now)


_PARSED: dict[int, Tariff] = {}


def stored_tariff(tariff_id: int, periods: Any) -> Tariff:
    """The tariff row ``tariff_id`` (its ``periods``) as a :class:`Tariff`. Tariff rows never change
    (a new price is a new row), so each is parsed once per process."""
    t = _PARSED.get(tariff_id)
    if t is None:
        if len(_PARSED) > 50_000:
            _PARSED.clear()
        t = _PARSED[tariff_id] = Tariff.from_json(periods)
    return t


_STATION_CONNECTORS = text("""
SELECT c.station_pk, t.id AS tariff_id, t.periods, v.source, count(*) OVER (PARTITION BY c.station_pk) AS n
FROM connectors c
LEFT JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id
                             AND v.valid_to IS NULL
LEFT JOIN tariffs t ON t.id = v.tariff_id
WHERE c.station_pk = ANY(:s)
""")


def refresh_stations(conn: Any, station_pks: Sequence[int], *, now: datetime | None = None) -> int:
    """Recompute the cheapest tariff and the price now of ``station_pks``; returns stations changed."""
    pks = sorted({int(p) for p in station_pks})
    if not pks:
        return 0
    now = now or conn.execute(text("SELECT now()")).scalar_one()
    per: dict[int, dict[str, Any]] = {pk: {"tariffs": [], "ids": set(), "sources": set(), "n": 0} for pk in pks}
    for r in conn.execute(_STATION_CONNECTORS, {"s": pks}):
        entry = per[r.station_pk]
        entry["n"] = r.n
        if r.periods is not None:
            entry["tariffs"].append(stored_tariff(r.tariff_id, r.periods))
            entry["ids"].add(r.tariff_id)  # one row per distinct tariff (by digest)
            entry["sources"].add(r.source)
    merged = {pk: merge_cheapest(e["tariffs"]) for pk, e in per.items()}
    ids = _tariff_ids(conn, (t for t in merged.values() if t is not None))
    rows = []
    for pk, e in per.items():
        t = merged[pk]
        source = None if not e["sources"] else e["sources"].pop() if len(e["sources"]) == 1 else "mixed"
        varies = len(e["ids"]) > 1
        p_now, until = _now_and_until(t, now) if t is not None else (None, None)
        rows.append((pk, ids.get(t.digest()) if t is not None else None, source, varies, e["n"], len(e["tariffs"]),
                     p_now, until))
    with _cursor(conn) as cur:
        execute_values(cur, """
            INSERT INTO station_tariffs (station_pk, tariff_id, source, varies, connectors, priced, updated_at)
            SELECT v.pk, v.tid, v.source, v.varies, v.n, v.priced, now()
            FROM (VALUES %s) AS v(pk, tid, source, varies, n, priced, p, u)
            ON CONFLICT (station_pk) DO UPDATE SET tariff_id = EXCLUDED.tariff_id, source = EXCLUDED.source,
                varies = EXCLUDED.varies, connectors = EXCLUDED.connectors, priced = EXCLUDED.priced,
                updated_at = now()
            WHERE (station_tariffs.tariff_id, station_tariffs.source, station_tariffs.varies,
                   station_tariffs.connectors, station_tariffs.priced)
                  IS DISTINCT FROM (EXCLUDED.tariff_id, EXCLUDED.source, EXCLUDED.varies, EXCLUDED.connectors,
                                    EXCLUDED.priced)""",
                       rows, template="(%s::bigint, %s::bigint, %s::varchar, %s::boolean, %s::int, %s::int, "
                                      "%s::numeric, %s::timestamptz)")
        execute_values(cur, """
            UPDATE stations s SET price_now = v.p, price_until = v.u
            FROM (VALUES %s) AS v(pk, p, u)
            WHERE s.id = v.pk AND (s.price_now, s.price_until) IS DISTINCT FROM (v.p, v.u)""",
                       [(r[0], r[6], r[7]) for r in rows], template="(%s::bigint, %s::numeric, %s::timestamptz)",
                       page_size=max(1, len(rows)))  # one statement, so rowcount counts them all
        moved = cur.rowcount
    if moved:  # a new price now: cached tiles, list ETags and exports follow the data version
        from services.stations.summary import bump_version

        bump_version(conn, "stations")
    return moved


def tick_prices(engine: Engine, now: datetime | None = None) -> int:
    """Move ``price_now`` of every station whose period ended; one process at a time (advisory
    lock). Returns the stations updated, and bumps the stations' data version when any moved, so
    cached tiles and searches follow."""
    from services.stations.summary import bump_version

    with engine.begin() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": PRICE_LOCK}).scalar():
            return 0
        now = now or conn.execute(text("SELECT now()")).scalar_one()
        due = conn.execute(text(
            "SELECT DISTINCT st.tariff_id, t.periods FROM stations s JOIN station_tariffs st ON st.station_pk = s.id "
            "JOIN tariffs t ON t.id = st.tariff_id WHERE s.price_until <= :now"), {"now": now}).all()
        if not due:
            return 0
        values = []
        for r in due:
            p, u = _now_and_until(Tariff.from_json(r.periods), now)
            values.append((r.tariff_id, p, u, now))
        with _cursor(conn) as cur:
            execute_values(cur, """
                UPDATE stations s SET price_now = v.p, price_until = v.u
                FROM station_tariffs st, (VALUES %s) AS v(tid, p, u, now)
                WHERE st.station_pk = s.id AND st.tariff_id = v.tid AND s.price_until <= v.now""",
                           values, template="(%s::bigint, %s::numeric, %s::timestamptz, %s::timestamptz)",
                           page_size=max(1, len(values)))
            n = cur.rowcount
        if n:
            bump_version(conn, "stations")
        return n


def price_job(engine: Engine):  # noqa: ANN201 - a PeriodicJob
    """The job that keeps ``price_now`` current (every 30 s; a boundary is late by at most that)."""
    from services.jobs import PeriodicJob

    return PeriodicJob("price-tick", lambda: tick_prices(engine), 30.0, first_delay_s=3.0)

"""Locations and Tariffs for OCPI, read from the tables the open API reads, with its visibility rule
(``services.stations.filters.VISIBLE_SQL``: active, interconnected stations).

A request reads in one REPEATABLE READ transaction (:func:`read_snapshot`), so the count, the page
and the piles of the page agree.

``last_updated`` of a Location is the latest change of the station (``updated_at``,
``info_changed_at``, ``status_changed_at``), its operator, its piles and connectors, their
status (``status_since``) and their current tariff versions (OCPI: a Location is updated when
one of its EVSEs or Connectors is). ``date_from``/``date_to`` filter on it through predicates on
``stations`` alone (:func:`_changed_since`), which is what keeps them fast at national scale:
the feed's writers move the station's ``updated_at`` (content, piles, connectors, pushed status)
or ``status_changed_at`` (pulled status) in the same transaction as the change
(``ingest/store.py``, ``feed_store_status_push``), and a new tariff version, which touches no
station, is found by its own index (migration 1601).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from services.ocpi import mapping
from services.ocpi.errors import unknown_location
from services.ocpi.models import Location, Tariff
from services.ocpi.paging import ListQuery
from services.ocpi.parties import publishing_parties
from services.prices.views import _tariff as parsed_tariff  # the process's cache of parsed tariffs rows
from services.stations.filters import VISIBLE_SQL

__all__ = ["Page", "ensure_parties", "location_key", "locations_page", "one_location", "read_snapshot", "tariff_key",
           "tariffs_page"]

#: connector types OCPI can name (services.ocpi.mapping.CONNECTOR_STANDARDS)
_PUBLISHED_TYPES = sorted(mapping.CONNECTOR_STANDARDS)

_CHILDREN_LU = """LEFT JOIN LATERAL (
    SELECT max(greatest(e.updated_at, c.updated_at, cs.status_since, v.first_seen_at)) AS lu
    FROM connectors c JOIN equipment e ON e.id = c.equipment_pk
    LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
    LEFT JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id
                                 AND v.valid_to IS NULL
    WHERE c.station_pk = s.id) x ON true"""
_LOCATION_LU = "greatest(s.updated_at, s.info_changed_at, s.status_changed_at, o.updated_at, x.lu)"

_STATIONS = f"""
SELECT s.id, s.operator_id, p.party_id, s.name, s.address, d.name AS district_name,
       ST_X(s.geom) AS lng, ST_Y(s.geom) AS lat, s.construction, s.park_info, s.busine_hours, s.site_guide,
       s.station_status, s.info_changed_at, o.name AS operator_name, {_LOCATION_LU} AS last_updated
FROM stations s
LEFT JOIN operators o ON o.operator_id = s.operator_id
LEFT JOIN districts d ON d.adcode = s.district_adcode
LEFT JOIN ocpi_cpo_parties p ON p.operator_id = s.operator_id
{_CHILDREN_LU}
WHERE {VISIBLE_SQL} AND s.id = ANY(:ids)
ORDER BY s.id"""

_PILES = text("""
SELECT e.station_pk, e.id AS equipment_pk, e.equipment_id, ST_X(e.geom) AS lng, ST_Y(e.geom) AS lat,
       e.updated_at, c.id AS connector_pk, c.connector_id, c.connector_type, c.voltage_upper_limits, c.current,
       c.power_kw::float8 AS power_kw, greatest(c.updated_at, v.first_seen_at) AS c_last_updated,
       cs.status, cs.status_since, cs.updated_at AS reported_at, v.tariff_id
FROM equipment e
LEFT JOIN connectors c ON c.equipment_pk = e.id
LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id
LEFT JOIN connector_tariffs v ON v.operator_id = c.operator_id AND v.connector_id = c.connector_id
                             AND v.valid_to IS NULL
WHERE e.station_pk = ANY(:ids)
ORDER BY e.station_pk, e.equipment_id, c.connector_id""")


@dataclass
class Page:
    """One page: the objects, how many match in all (``X-Total-Count``), and the key of the last
    object when another page follows (the ``after`` of the next ``Link``)."""

    items: list[Any]
    total: int
    next_after: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Any]:
    """A read-only REPEATABLE READ transaction: every statement of a request sees the same data."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            yield conn


def ensure_parties(engine: Engine) -> None:
    """Give every operator without one its publishing party (before the read: a read-only snapshot
    cannot assign)."""
    with engine.begin() as conn:
        missing = [r[0] for r in conn.execute(text(
            "SELECT o.operator_id FROM operators o WHERE NOT EXISTS "
            "(SELECT 1 FROM ocpi_cpo_parties p WHERE p.operator_id = o.operator_id)"))]
        if missing:
            publishing_parties(conn, missing)


def _fill_parties(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """An operator registered after :func:`ensure_parties` ran (a race): assign it now."""
    missing = {r["operator_id"] for r in rows if r["party_id"] is None}
    if missing:
        with engine.begin() as conn:
            parties = publishing_parties(conn, missing)
        for r in rows:
            if r["party_id"] is None:
                r["party_id"] = parties[r["operator_id"]]


def _piles(conn: Any, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    current: dict[str, Any] | None = None
    for r in conn.execute(_PILES, {"ids": list(ids)}).mappings():
        if current is None or current["equipment_pk"] != r["equipment_pk"]:
            current = {"equipment_pk": r["equipment_pk"], "equipment_id": r["equipment_id"], "lng": r["lng"],
                       "lat": r["lat"], "updated_at": r["updated_at"], "connectors": []}
            out.setdefault(r["station_pk"], []).append(current)
        if r["connector_pk"] is not None:
            current["connectors"].append({
                "connector_pk": r["connector_pk"], "connector_id": r["connector_id"],
                "connector_type": r["connector_type"], "voltage_upper_limits": r["voltage_upper_limits"],
                "current": r["current"], "power_kw": r["power_kw"], "last_updated": r["c_last_updated"],
                "status": r["status"], "status_since": r["status_since"], "reported_at": r["reported_at"],
                "tariff_id": r["tariff_id"]})
    return out


def _locations(conn: Any, engine: Engine, ids: Sequence[int], city: str) -> list[Location]:
    if not ids:
        return []
    stations = [dict(r) for r in conn.execute(text(_STATIONS), {"ids": list(ids)}).mappings()]
    piles = _piles(conn, [s["id"] for s in stations])
    _fill_parties(engine, stations)
    out = []
    for s in stations:
        for p in piles.get(s["id"], ()):
            p["info_changed_at"] = s["info_changed_at"]
        out.append(mapping.location(s, piles.get(s["id"], []), s["party_id"], city))
    return out


# --- locations ----------------------------------------------------------------------------------
def location_key(value: str) -> tuple[int]:
    """The ``after`` of a Locations Link: the last station id sent.

    >>> location_key("42")
    (42,)
    """
    if not value.isdigit() or len(value) > 19:
        raise ValueError(value)
    return (int(value),)


def _date_preds(q: ListQuery, expr: str) -> tuple[list[str], dict[str, Any]]:
    preds, params = [], {}
    if q.date_from is not None:
        preds.append(f"{expr} >= :date_from")
        params["date_from"] = q.date_from
    if q.date_to is not None:
        preds.append(f"{expr} < :date_to")
        params["date_to"] = q.date_to
    return preds, params


def _changed_since(name: str) -> str:
    """A station whose Location ``last_updated`` is at or after the bind parameter ``name``."""
    return (f"(greatest(s.updated_at, s.info_changed_at, s.status_changed_at) >= :{name} "
            f"OR s.operator_id IN (SELECT operator_id FROM operators WHERE updated_at >= :{name}) "
            f"OR s.id IN (SELECT c.station_pk FROM connector_tariffs v JOIN connectors c "
            f"ON c.operator_id = v.operator_id AND c.connector_id = v.connector_id "
            f"WHERE v.valid_to IS NULL AND v.first_seen_at >= :{name}))")


def locations_page(conn: Any, engine: Engine, q: ListQuery, *, city: str) -> Page:
    """A page of Locations ordered by id, after ``q.after`` (keyset) or from ``q.offset``;
    ``date_from`` inclusive, ``date_to`` exclusive."""
    preds, params = [VISIBLE_SQL], {}
    if q.date_from is not None:
        preds.append(_changed_since("date_from"))
        params["date_from"] = q.date_from
    if q.date_to is not None:
        preds.append("NOT " + _changed_since("date_to"))
        params["date_to"] = q.date_to
    where = " AND ".join(preds)
    total = conn.execute(text(f"SELECT count(*) FROM stations s WHERE {where}"), params).scalar_one()
    position = ""
    if q.after is not None:
        position = "AND s.id > :after"
        params["after"] = q.after[0]
    ids = [r[0] for r in conn.execute(text(
        f"SELECT s.id FROM stations s WHERE {where} {position} ORDER BY s.id LIMIT :lim "
        f"{'OFFSET :off' if q.after is None and q.offset else ''}"),
        {**params, "lim": q.limit + 1, "off": q.offset})]
    more = len(ids) > q.limit
    ids = ids[:q.limit]
    items = _locations(conn, engine, ids, city)
    return Page(items, total, str(ids[-1]) if more else None)


def one_location(conn: Any, engine: Engine, location_id: str, *, city: str) -> Location:
    """One published Location by its id; OCPI 2003 (HTTP 404) when there is none."""
    if not location_id.isdigit() or len(location_id) > 18:
        raise unknown_location(f"unknown location '{location_id[:40]}'")
    found = _locations(conn, engine, [int(location_id)], city)
    if not found:
        raise unknown_location(f"unknown location '{location_id[:40]}'")
    return found[0]


# --- tariffs ------------------------------------------------------------------------------------
def tariff_key(value: str) -> tuple[str, int]:
    """The ``after`` of a Tariffs Link: ``<OperatorID>-<tariff id>`` of the last Tariff sent.

    >>> tariff_key("MA5ABCD21-17")
    ('MA5ABCD21', 17)
    """
    op, sep, tid = value.rpartition("-")
    if not sep or not tid.isdigit() or len(tid) > 18 or not 0 < len(op) <= 9:
        raise ValueError(value)
    return op, int(tid)


# The (operator, tariff) pairs of current versions, found by skipping through the index of migration
# 1601 (a loose index scan), each kept when one of its connectors is published (the LIMIT 1 keeps it a
# probe per pair), with the moment the operator first used the tariff among its current versions.
_TARIFF_ROWS = f"""
WITH RECURSIVE pairs AS (
    (SELECT v.operator_id, v.tariff_id FROM connector_tariffs v
     WHERE v.valid_to IS NULL AND v.tariff_id IS NOT NULL ORDER BY v.operator_id, v.tariff_id LIMIT 1)
    UNION ALL
    SELECT n.operator_id, n.tariff_id FROM pairs p CROSS JOIN LATERAL (
        SELECT v.operator_id, v.tariff_id FROM connector_tariffs v
        WHERE v.valid_to IS NULL AND v.tariff_id IS NOT NULL AND (v.operator_id, v.tariff_id) > (p.operator_id, p.tariff_id)
        ORDER BY v.operator_id, v.tariff_id LIMIT 1) n
)
SELECT p.operator_id, p.tariff_id, cp.party_id, t.digest, t.periods,
       greatest(t.created_at, (SELECT min(v.first_seen_at) FROM connector_tariffs v WHERE v.operator_id = p.operator_id
                               AND v.tariff_id = p.tariff_id AND v.valid_to IS NULL)) AS last_updated
FROM pairs p
JOIN tariffs t ON t.id = p.tariff_id
LEFT JOIN ocpi_cpo_parties cp ON cp.operator_id = p.operator_id
CROSS JOIN LATERAL (
    SELECT 1 FROM connector_tariffs v
    JOIN connectors c ON c.operator_id = v.operator_id AND c.connector_id = v.connector_id
    JOIN stations s ON s.id = c.station_pk
    WHERE v.operator_id = p.operator_id AND v.tariff_id = p.tariff_id AND v.valid_to IS NULL
      AND c.connector_type = ANY(:types) AND {VISIBLE_SQL}
    LIMIT 1) published"""


def tariffs_page(conn: Any, engine: Engine, q: ListQuery) -> Page:
    """A page of Tariffs: each tariff an operator's published connectors use now, as that operator's
    (``party_id``), ordered by (OperatorID, tariff id). ``last_updated`` is when the operator first
    used it among its current versions (a tariff's prices never change: a new price is a new tariff)."""
    preds, params = _date_preds(q, "g.last_updated")
    params["types"] = _PUBLISHED_TYPES
    where = " AND ".join(preds) or "TRUE"
    rows = [dict(r) for r in conn.execute(text(f"SELECT * FROM ({_TARIFF_ROWS}) g WHERE {where} "
                                                  f"ORDER BY g.operator_id, g.tariff_id"), params).mappings()]
    total = len(rows)  # a few hundred pairs: read once, counted and paged here
    if q.after is not None:
        rows = [r for r in rows if (r["operator_id"], r["tariff_id"]) > q.after]
    else:
        rows = rows[q.offset:]
    more = len(rows) > q.limit
    rows = rows[:q.limit]
    _fill_parties(engine, rows)
    items = [mapping.tariff(r["tariff_id"], r["party_id"], parsed_tariff(r["digest"], r["periods"]), r["last_updated"])
             for r in rows]
    last = rows[-1] if rows else None
    return Page(items, total, f"{last['operator_id']}-{last['tariff_id']}" if more and last else None)

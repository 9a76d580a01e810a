"""The feed's writes of station data: stations, equipment, connectors and connector statuses.

Shared by the pull sync (:mod:`ingest.sync`) and the push receiver (:mod:`ingest.receiver`), so a
pushed StationInfo is stored exactly like a pulled one. Every write is an idempotent upsert in the
caller's transaction: one ``INSERT .. ON CONFLICT`` per table for a whole chunk (district by
``ST_Intersects`` in PostGIS, rejected stations kept with their reason), then the deletion of the
piles and connectors a station no longer reports; rows whose content did not change are not
written at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extras import Json, execute_values
from sqlalchemy.engine import Connection

from ingest.objects import CONNECTOR_STATUSES
from ingest.rows import content_digest, int_or_none, prepare_rows

__all__ = ["StoreCounts", "asked_at", "store_station_infos", "store_status_batches", "store_statuses"]


#: The columns of a prepared station row (ingest.rows.prepare_rows), as _UPSERT_STATIONS reads them.
_STATION_COLUMNS = (
    "station_id", "equipment_owner_id", "name", "country_code", "area_code", "address", "station_tel",
    "service_tel", "station_type", "station_status", "park_nums", "lng_gcj02", "lat_gcj02", "lng", "lat",
    "site_guide", "construction", "pictures", "match_cars", "park_info", "busine_hours", "electricity_fee",
    "service_fee", "park_fee", "payment", "support_order", "remark", "payments", "payment_unknown", "name_pinyin",
    "name_initials", "search_text", "raw", "content_hash", "problems", "interconnected")

_UPSERT_STATIONS = """
WITH v AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS x(
        station_id varchar, equipment_owner_id varchar, name varchar, country_code varchar, area_code varchar,
        address varchar, station_tel varchar, service_tel varchar, station_type smallint, station_status smallint,
        park_nums int, lng_gcj02 float8, lat_gcj02 float8, lng float8, lat float8, site_guide varchar,
        construction smallint, pictures text[], match_cars varchar, park_info varchar, busine_hours varchar,
        electricity_fee varchar, service_fee varchar, park_fee varchar, payment varchar, support_order smallint,
        remark varchar, payments varchar(10)[], payment_unknown text[], name_pinyin text, name_initials text,
        search_text text, raw jsonb, content_hash varchar, problems text, interconnected boolean)
),
p AS (
    SELECT v.*, CASE WHEN v.lng IS NOT NULL THEN ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326) END AS g FROM v
),
d AS (
    SELECT p.*, (SELECT dd.adcode FROM districts dd
                 WHERE dd.city_adcode = %(city)s AND ST_Intersects(dd.geom, p.g)
                 ORDER BY dd.adcode LIMIT 1) AS adcode
    FROM p
)
INSERT INTO stations AS s (
    operator_id, station_id, equipment_owner_id, name, country_code, area_code, address, station_tel,
    service_tel, station_type, station_status, park_nums, lng_gcj02, lat_gcj02, site_guide, construction,
    pictures, match_cars, park_info, busine_hours, electricity_fee, service_fee, park_fee, payment,
    support_order, remark, geom, geom_3857, district_adcode, area_code_mismatch, feed_state, reject_reason,
    interconnected, payments, payment_unknown, name_pinyin, name_initials, search_text, raw, content_hash,
    info_changed_at, withdrawn_at, updated_at)
SELECT %(op)s, station_id, equipment_owner_id, name, country_code, area_code, address, station_tel,
       service_tel, station_type, station_status, park_nums, lng_gcj02, lat_gcj02, site_guide, construction,
       pictures, match_cars, park_info, busine_hours, electricity_fee, service_fee, park_fee, payment,
       support_order, remark, g, ST_Transform(g, 3857), adcode,
       adcode IS NOT NULL AND area_code IS DISTINCT FROM adcode::text,
       CASE WHEN problems IS NOT NULL OR adcode IS NULL THEN 'rejected' ELSE 'active' END,
       coalesce(problems, CASE WHEN g IS NULL THEN 'StationLng/StationLat are not usable coordinates'
                               WHEN adcode IS NULL THEN format(
                                   'StationLng/StationLat (GCJ-02 %%s, %%s) lie outside the city''s districts',
                                   lng_gcj02, lat_gcj02) END),
       interconnected, payments, payment_unknown, name_pinyin, name_initials, search_text, raw, content_hash,
       now(), NULL, now()
FROM d
ON CONFLICT (operator_id, station_id) DO UPDATE SET
    equipment_owner_id = EXCLUDED.equipment_owner_id, name = EXCLUDED.name, country_code = EXCLUDED.country_code,
    area_code = EXCLUDED.area_code, address = EXCLUDED.address, station_tel = EXCLUDED.station_tel,
    service_tel = EXCLUDED.service_tel, station_type = EXCLUDED.station_type,
    station_status = EXCLUDED.station_status, park_nums = EXCLUDED.park_nums, lng_gcj02 = EXCLUDED.lng_gcj02,
    lat_gcj02 = EXCLUDED.lat_gcj02, site_guide = EXCLUDED.site_guide, construction = EXCLUDED.construction,
    pictures = EXCLUDED.pictures, match_cars = EXCLUDED.match_cars, park_info = EXCLUDED.park_info,
    busine_hours = EXCLUDED.busine_hours, electricity_fee = EXCLUDED.electricity_fee,
    service_fee = EXCLUDED.service_fee, park_fee = EXCLUDED.park_fee, payment = EXCLUDED.payment,
    support_order = EXCLUDED.support_order, remark = EXCLUDED.remark, geom = EXCLUDED.geom,
    geom_3857 = EXCLUDED.geom_3857, district_adcode = EXCLUDED.district_adcode,
    area_code_mismatch = EXCLUDED.area_code_mismatch, feed_state = EXCLUDED.feed_state,
    reject_reason = EXCLUDED.reject_reason, interconnected = EXCLUDED.interconnected,
    payments = EXCLUDED.payments, payment_unknown = EXCLUDED.payment_unknown,
    name_pinyin = EXCLUDED.name_pinyin, name_initials = EXCLUDED.name_initials,
    search_text = EXCLUDED.search_text, raw = EXCLUDED.raw, content_hash = EXCLUDED.content_hash,
    info_changed_at = CASE WHEN s.content_hash IS DISTINCT FROM EXCLUDED.content_hash THEN now()
                           ELSE s.info_changed_at END,
    withdrawn_at = NULL, updated_at = now()
WHERE s.content_hash IS DISTINCT FROM EXCLUDED.content_hash OR s.feed_state IS DISTINCT FROM EXCLUDED.feed_state
   OR s.district_adcode IS DISTINCT FROM EXCLUDED.district_adcode
RETURNING s.id, s.station_id, (s.xmax = 0) AS inserted, s.feed_state
"""

_EQUIPMENT_COLUMNS = ("equipment_id", "manufacturer_id", "manufacturer_name", "equipment_model", "production_date",
                      "equipment_type", "lng_gcj02", "lat_gcj02", "lng", "lat", "power_kw", "equipment_name",
                      "station_pk")

_UPSERT_EQUIPMENT = """
INSERT INTO equipment AS e (station_pk, operator_id, equipment_id, manufacturer_id, manufacturer_name,
                            equipment_model, production_date, equipment_type, lng_gcj02, lat_gcj02, geom,
                            power_kw, equipment_name, updated_at)
SELECT v.station_pk, %(op)s, v.equipment_id, v.manufacturer_id, v.manufacturer_name, v.equipment_model,
       v.production_date, v.equipment_type, v.lng_gcj02, v.lat_gcj02,
       CASE WHEN v.lng IS NOT NULL THEN ST_SetSRID(ST_MakePoint(v.lng, v.lat), 4326) END,
       v.power_kw, v.equipment_name, now()
FROM json_to_recordset(%(rows)s::json) AS v (
    equipment_id varchar, manufacturer_id varchar, manufacturer_name varchar, equipment_model varchar,
    production_date date, equipment_type smallint, lng_gcj02 float8, lat_gcj02 float8, lng float8, lat float8,
    power_kw numeric, equipment_name varchar, station_pk bigint)
ON CONFLICT (operator_id, equipment_id) DO UPDATE SET
    station_pk = EXCLUDED.station_pk, manufacturer_id = EXCLUDED.manufacturer_id,
    manufacturer_name = EXCLUDED.manufacturer_name, equipment_model = EXCLUDED.equipment_model,
    production_date = EXCLUDED.production_date, equipment_type = EXCLUDED.equipment_type,
    lng_gcj02 = EXCLUDED.lng_gcj02, lat_gcj02 = EXCLUDED.lat_gcj02, geom = EXCLUDED.geom,
    power_kw = EXCLUDED.power_kw, equipment_name = EXCLUDED.equipment_name, updated_at = now()
WHERE (e.station_pk, e.manufacturer_id, e.manufacturer_name, e.equipment_model, e.production_date,
       e.equipment_type, e.lng_gcj02, e.lat_gcj02, e.power_kw, e.equipment_name)
      IS DISTINCT FROM
      (EXCLUDED.station_pk, EXCLUDED.manufacturer_id, EXCLUDED.manufacturer_name, EXCLUDED.equipment_model,
       EXCLUDED.production_date, EXCLUDED.equipment_type, EXCLUDED.lng_gcj02, EXCLUDED.lat_gcj02,
       EXCLUDED.power_kw, EXCLUDED.equipment_name)
"""

_CONNECTOR_COLUMNS = ("connector_id", "equipment_id", "connector_name", "connector_type", "vu", "vl", "cur",
                      "power_kw", "park_no", "national_standard")

_UPSERT_CONNECTORS = """
INSERT INTO connectors AS c (equipment_pk, station_pk, operator_id, connector_id, connector_name,
                             connector_type, voltage_upper_limits, voltage_lower_limits, current, power_kw,
                             park_no, national_standard, updated_at)
SELECT e.id, e.station_pk, %(op)s, v.connector_id, v.connector_name, v.connector_type, v.vu, v.vl, v.cur,
       v.power_kw, v.park_no, v.national_standard, now()
FROM json_to_recordset(%(rows)s::json) AS v (
    connector_id varchar, equipment_id varchar, connector_name varchar, connector_type smallint, vu int, vl int,
    cur int, power_kw numeric, park_no varchar, national_standard smallint)
JOIN equipment e ON e.operator_id = %(op)s AND e.equipment_id = v.equipment_id
ON CONFLICT (operator_id, connector_id) DO UPDATE SET
    equipment_pk = EXCLUDED.equipment_pk, station_pk = EXCLUDED.station_pk,
    connector_name = EXCLUDED.connector_name, connector_type = EXCLUDED.connector_type,
    voltage_upper_limits = EXCLUDED.voltage_upper_limits, voltage_lower_limits = EXCLUDED.voltage_lower_limits,
    current = EXCLUDED.current, power_kw = EXCLUDED.power_kw, park_no = EXCLUDED.park_no,
    national_standard = EXCLUDED.national_standard, updated_at = now()
WHERE (c.equipment_pk, c.station_pk, c.connector_name, c.connector_type, c.voltage_upper_limits,
       c.voltage_lower_limits, c.current, c.power_kw, c.park_no, c.national_standard)
      IS DISTINCT FROM
      (EXCLUDED.equipment_pk, EXCLUDED.station_pk, EXCLUDED.connector_name, EXCLUDED.connector_type,
       EXCLUDED.voltage_upper_limits, EXCLUDED.voltage_lower_limits, EXCLUDED.current, EXCLUDED.power_kw,
       EXCLUDED.park_no, EXCLUDED.national_standard)
"""


def _json_default(value: Any) -> Any:
    return value.adapted if isinstance(value, Json) else str(value)  # a station's raw JSON; dates, Decimals


def _json_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Rows as one JSON array of objects for ``json_to_recordset``: one C-encoded parameter instead of
    every value adapted by the driver in Python (``execute_values``, a quarter of a sync's Python)."""
    return json.dumps([dict(zip(columns, r, strict=True)) for r in rows], ensure_ascii=False,
                      default=_json_default, allow_nan=False)


_PRECEDENCE = {"unchanged": 0, "updated": 1, "inserted": 2, "rejected": 3}


@dataclass
class StoreCounts:
    """What happened to each StationID: inserted, updated, unchanged (accepted ones) or rejected."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    touched: list[int] = field(default_factory=list)
    """Primary keys of the station rows that changed."""
    outcome: dict[str, str] = field(default_factory=dict)

    def add(self, other: StoreCounts) -> None:
        """Merge a later chunk (a station read twice keeps its strongest outcome)."""
        self.touched += other.touched
        for sid, o in other.outcome.items():
            prev = self.outcome.get(sid)
            if prev is None or "rejected" in (o, prev) or _PRECEDENCE[o] > _PRECEDENCE[prev]:
                self.outcome[sid] = o  # the latest read decides rejection; otherwise the strongest change
        values = list(self.outcome.values())
        self.inserted, self.updated = values.count("inserted"), values.count("updated")
        self.unchanged, self.rejected = values.count("unchanged"), values.count("rejected")


def store_station_infos(conn: Connection, operator_id: str, operator_name: str, stations: Sequence[dict], *,
                        interconnected: bool, city_adcode: int = 440400) -> StoreCounts:
    """Upsert normalised StationInfos with their equipment and connectors, in the caller's transaction.

    Returns the counts and the primary keys of the stations whose row changed (their derived
    columns still need ``refresh_station_summaries``).
    """
    counts = StoreCounts()
    by_id: dict[str, dict] = {}
    for st in stations:
        sid = st.get("StationID") if isinstance(st, dict) else None
        if isinstance(sid, str) and sid.strip():
            by_id[sid] = st
    if not by_id:
        return counts
    cur = conn.connection.dbapi_connection.cursor()
    try:
        # Skip what is stored already with the same content: no conversion, no write.
        cur.execute("SELECT station_id, content_hash, feed_state FROM stations WHERE operator_id = %s "
                    "AND station_id = ANY(%s)", (operator_id, list(by_id)))
        stored = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
        skipped: dict[str, str] = {}
        todo = []
        for sid, st in by_id.items():
            have = stored.get(sid)
            if have and have[1] != "withdrawn" and have[0] == content_digest(st, operator_name, interconnected):
                skipped[sid] = "rejected" if have[1] == "rejected" else "unchanged"
            else:
                todo.append(st)
        prep = prepare_rows(todo, operator_id, operator_name, interconnected)
        if not prep.stations:
            counts.outcome = skipped
            counts.unchanged = sum(1 for o in skipped.values() if o == "unchanged")
            counts.rejected = len(skipped) - counts.unchanged
            return counts
        cur.execute(_UPSERT_STATIONS, {"city": int(city_adcode), "op": operator_id,
                                        "rows": _json_rows(_STATION_COLUMNS, prep.stations)})
        returned = cur.fetchall()
        ids = [r[0] for r in prep.stations]
        cur.execute("SELECT station_id FROM stations WHERE operator_id = %s AND station_id = ANY(%s) "
                    "AND feed_state = 'rejected'", (operator_id, ids))
        rejected = {r[0] for r in cur.fetchall()}
        changed_active: dict[str, int] = {}
        rejected_pks: list[int] = []
        outcome = {sid: ("rejected" if sid in rejected else "unchanged") for sid in ids}
        for pk, sid, inserted, state in returned:
            counts.touched.append(pk)
            if state == "rejected":
                rejected_pks.append(pk)
            else:
                changed_active[sid] = pk
                outcome[sid] = "inserted" if inserted else "updated"
        outcome.update(skipped)
        counts.outcome = outcome
        counts.inserted = sum(1 for o in outcome.values() if o == "inserted")
        counts.updated = sum(1 for o in outcome.values() if o == "updated")
        counts.unchanged = sum(1 for o in outcome.values() if o == "unchanged")
        counts.rejected = sum(1 for o in outcome.values() if o == "rejected")
        if rejected_pks:
            # A rejected station shows nothing; its piles are dropped (the raw StationInfo is kept).
            cur.execute("DELETE FROM equipment WHERE station_pk = ANY(%s)", (rejected_pks,))
        if changed_active:
            eq_rows: dict[str, tuple] = {}
            con_rows: dict[str, tuple] = {}
            for sid, pk in changed_active.items():
                for row in prep.equipment.get(sid, []):
                    eq_rows[row[0]] = (*row, pk)
                for row in prep.connectors.get(sid, []):
                    con_rows[row[0]] = row
            pks = list(changed_active.values())
            if eq_rows:
                cur.execute(_UPSERT_EQUIPMENT, {"op": operator_id,
                                                "rows": _json_rows(_EQUIPMENT_COLUMNS, eq_rows.values())})
            cur.execute("DELETE FROM equipment WHERE station_pk = ANY(%s) AND NOT (equipment_id = ANY(%s))",
                        (pks, list(eq_rows)))
            if con_rows:
                cur.execute(_UPSERT_CONNECTORS, {"op": operator_id,
                                                 "rows": _json_rows(_CONNECTOR_COLUMNS, con_rows.values())})
            cur.execute("DELETE FROM connectors WHERE station_pk = ANY(%s) AND NOT (connector_id = ANY(%s))",
                        (pks, list(con_rows)))
    finally:
        cur.close()
    return counts


# --------------------------------------------------------------------------------------------
# Statuses
# --------------------------------------------------------------------------------------------

# An unchanged status is re-stamped (updated_at, reported_at) at most this often: a status pull every
# minute would otherwise rewrite every row each time. Silence (services.reliability) needs longer.
_RESTAMP_S = 300

_UPSERT_STATUS = """
INSERT INTO connector_status AS cs (operator_id, connector_id, status, park_status, lock_status, source,
                                    status_since, reported_at, updated_at)
SELECT %(op)s, v.connector_id, v.status, v.park, v.lock, %(src)s, v.since, v.at, now()
FROM (VALUES %s) AS v (connector_id, status, park, lock, since, at)
ON CONFLICT (operator_id, connector_id) DO UPDATE SET
    status = EXCLUDED.status, park_status = EXCLUDED.park_status, lock_status = EXCLUDED.lock_status,
    source = EXCLUDED.source, status_since = EXCLUDED.status_since, reported_at = EXCLUDED.reported_at,
    updated_at = now()
WHERE cs.reported_at <= EXCLUDED.reported_at
RETURNING cs.id, cs.connector_id
"""

_HISTORY_SOURCE = {"pull": "l", "push": "p"}


def _status_rows(batches: Iterable[tuple[datetime, Iterable[dict]]]) -> dict[str, tuple]:
    """(ConnectorID, Status, ParkStatus, LockStatus, time asked) of every valid ConnectorStatusInfo;
    a connector reported twice keeps its latest report."""
    rows: dict[str, tuple] = {}
    for at, infos in batches:
        for info in infos:
            if not isinstance(info, dict):
                continue
            for c in info.get("ConnectorStatusInfos") or []:
                if not isinstance(c, dict):
                    continue
                cid, status = c.get("ConnectorID"), c.get("Status")
                if not isinstance(cid, str) or not cid or len(cid) > 26 or int_or_none(status) is None \
                        or status not in CONNECTOR_STATUSES:
                    continue
                if cid not in rows or rows[cid][4] <= at:
                    rows[cid] = (cid, status, int_or_none(c.get("ParkStatus")), int_or_none(c.get("LockStatus")), at)
    return rows


def asked_at() -> datetime:
    """Now, in whole seconds: the time a pull asked, comparable with pushes' second-resolution TimeStamps
    (a push in the same second as a pull is the newer one)."""
    return datetime.now(UTC).replace(microsecond=0)


def store_statuses(conn: Connection, operator_id: str, infos: Iterable[dict], *, source: str = "pull",
                   at: datetime | None = None) -> tuple[int, list[int]]:
    """Store pulled StationStatusInfos asked for at ``at`` (default now); see :func:`store_status_batches`."""
    return store_status_batches(conn, operator_id, [(at or asked_at(), infos)], source=source)


def store_status_batches(conn: Connection, operator_id: str, batches: Iterable[tuple[datetime, Iterable[dict]]], *,
                         source: str = "pull") -> tuple[int, list[int]]:
    """Upsert connector statuses, each batch of StationStatusInfos with the time it was asked for;
    returns (statuses stored, pks of stations whose statuses changed).

    Like a push (``feed_store_status_push``): the current status only moves forward in time (a report
    older than the one held goes to its place in the history, ``zh_status_history_late``); a new value,
    a first report or the end of a silence is a history row at its time and moves ``status_since``; an
    unchanged one is re-stamped (``reported_at``, ``updated_at``) at most every 5 minutes.
    """
    rows = _status_rows(batches)
    if not rows:
        return 0, []
    hsrc = _HISTORY_SOURCE.get(source, "l")
    cur = conn.connection.dbapi_connection.cursor()
    try:
        cur.execute("SELECT connector_id, id, status, status_since, reported_at, park_status, lock_status, source, "
                    "updated_at < now() - make_interval(secs => %s) FROM connector_status "
                    "WHERE operator_id = %s AND connector_id = ANY(%s) ORDER BY connector_id FOR UPDATE",
                    (_RESTAMP_S, operator_id, list(rows)))
        old = {r[0]: r[1:] for r in cur.fetchall()}
        writes: list[tuple] = []
        changed: set[str] = set()
        late: list[tuple] = []
        for cid, (_, status, park, lock, at) in rows.items():
            have = old.get(cid)
            if have is None:
                writes.append((cid, status, park, lock, at, at))
                changed.add(cid)
                continue
            key, o_status, o_since, o_at, o_park, o_lock, o_source, restamp = have
            if at < o_at:
                late.append((key, at, status))
            elif o_status != status:
                writes.append((cid, status, park, lock, max(at, o_since + timedelta(microseconds=1)), at))
                changed.add(cid)
            elif (o_park, o_lock, o_source) != (park, lock, source) or restamp:
                writes.append((cid, status, park, lock, o_since, at))
        stored: dict[str, int] = {}
        if writes:
            sql = _UPSERT_STATUS.replace("%(op)s", cur.mogrify("%s", (operator_id,)).decode()).replace(
                "%(src)s", cur.mogrify("%s", (source,)).decode())
            stored = dict((c, k) for k, c in execute_values(
                cur, sql, writes, template="(%s::varchar, %s::smallint, %s::smallint, %s::smallint, "
                "%s::timestamptz, %s::timestamptz)", page_size=10000, fetch=True))
        history = [(w[4], stored[w[0]], w[1], hsrc) for w in writes if w[0] in changed and w[0] in stored]
        if history:
            execute_values(cur, "INSERT INTO connector_status_history (at, connector_key, status, source) VALUES %s "
                           "ON CONFLICT (connector_key, at) DO UPDATE SET status = EXCLUDED.status, "
                           "source = EXCLUDED.source", history,
                           template='(%s::timestamptz, %s::integer, %s::smallint, %s::"char")', page_size=10000)
        # a first report that a concurrent push overtook between the read and the write is late too
        missed = [w[0] for w in writes if w[0] not in stored]
        if missed:
            cur.execute("SELECT connector_id, id FROM connector_status WHERE operator_id = %s "
                        "AND connector_id = ANY(%s) FOR UPDATE", (operator_id, missed))
            late += [(k, rows[c][4], rows[c][1]) for c, k in cur.fetchall()]
        for key, at, status in late:
            cur.execute("SELECT zh_status_history_late(%s, %s, %s::smallint, %s)", (key, at, status, hsrc))
        pks: list[int] = []
        if changed & set(stored):
            cur.execute("UPDATE stations s SET status_changed_at = now() FROM (SELECT DISTINCT station_pk FROM "
                        "connectors WHERE operator_id = %s AND connector_id = ANY(%s)) c WHERE s.id = c.station_pk "
                        "RETURNING s.id", (operator_id, sorted(changed & set(stored))))
            pks = [r[0] for r in cur.fetchall()]
        return len(rows), pks
    finally:
        cur.close()

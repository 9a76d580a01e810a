"""One station in full, the reference enumerations, and the totals the home page shows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.errors import NotFound
from services.prices.views import (CONNECTOR_TARIFF_COLUMNS, CONNECTOR_TARIFF_JOINS, MAX_KWH, STATION_TARIFF_COLUMNS,
                                   STATION_TARIFF_JOINS, StationPrices, add_prices, pop_connector_tariff,
                                   pop_station_tariff)
from services.reliability.profile import occupancy_profile
from services.reliability.window import china_date
from services.search.labels import CLOSED_VOCABULARIES
from services.search.prepared import prepared_rows, to_pyformat
from services.search.query import SORTS, SearchQuery
from services.search.service import ITEM_JOINS, ITEM_COLUMNS, extra_preds, to_item, bind_params
from services.settings import SearchSettings
from services.stations import enums
from services.stations.filters import VISIBLE_SQL
from services.stations.vocab import AVAILABILITY, EQUIPMENT_TYPE_FACILITY

__all__ = ["iter_matches", "reference", "station_detail", "stats"]


def station_detail(conn: Connection, station_pk: int, *, crs: str = "wgs84", now: datetime | None = None,
                   kwh: Decimal | None = None) -> dict[str, Any]:
    """A visible station with its piles, connectors and their live status, the tariff of the
    station and of each connector at ``now`` (with ``kwh``: the estimates, ``services.prices.views``),
    its 30-day ``reliability`` and its week's ``occupancy_profile`` (``services.reliability``).
    Three statements: the station with its tariff and reliability, its piles with their connectors,
    status and tariffs, and the daily occupancy of the weeks before ``now``."""
    found = prepared_rows(conn, _DETAIL_STATION, {"id": station_pk})
    if not found:
        raise NotFound(f"no station {station_pk}")
    row = found[0]
    station_tariff = pop_station_tariff(row)
    item = to_item(row, crs)
    equipment: dict[int, dict[str, Any]] = {}
    tariffs = {}
    for c in prepared_rows(conn, _DETAIL_CONNECTORS, {"id": station_pk}):
        eq_pk = c.pop("equipment_pk")
        eq = {k: c.pop(k) for k in _EQUIPMENT_FIELDS}
        e = equipment.get(eq_pk)
        if e is None:
            e = equipment[eq_pk] = {**eq, "power_kw": eq.pop("equipment_power_kw"),
                                    "facility_type": EQUIPMENT_TYPE_FACILITY.get(eq["equipment_type"]),
                                    "connectors": []}
        known = pop_connector_tariff(c)
        if c["connector_id"] is None:  # a pile without connectors
            continue
        if known is not None:
            tariffs[c["connector_id"]] = known
        ct = enums.CONNECTOR_TYPES.get(c["connector_type"])
        st = enums.CONNECTOR_STATUSES.get(c["status"]) if c["status"] is not None else None
        c.update(connector_type_label=ct[0] if ct else None, connector_type_label_en=ct[1] if ct else None,
                 status_label=st[0] if st else None, status_label_en=st[1] if st else None)
        e["connectors"].append(c)
    item["equipment"] = list(equipment.values())
    item["pictures"] = list(item.get("pictures") or [])
    now = now or datetime.now(UTC)
    add_prices(item, StationPrices.of(station_tariff, tariffs), now, kwh)
    # "usually busy": 7 x 24 shares of its connectors occupied, Monday first, China hours (the weeks before today)
    item["occupancy_profile"] = occupancy_profile(conn, station_pk, china_date(now))
    return item


_EQUIPMENT_FIELDS = ("equipment_id", "equipment_name", "equipment_type", "manufacturer_name", "equipment_model",
                     "equipment_power_kw")
_DETAIL_STATION = to_pyformat(
    f"SELECT {ITEM_COLUMNS}, NULL::float8 AS distance_m, s.site_guide, s.service_tel, s.construction, "
    f"s.park_nums, s.match_cars, s.remark, s.support_order, s.pictures, {STATION_TARIFF_COLUMNS} "
    f"FROM stations s {ITEM_JOINS} {STATION_TARIFF_JOINS} WHERE s.id = :id AND {VISIBLE_SQL}")
_DETAIL_CONNECTORS = to_pyformat(
    "SELECT e.id AS equipment_pk, e.equipment_id, e.equipment_name, e.equipment_type, e.manufacturer_name, "
    "e.equipment_model, e.power_kw::float8 AS equipment_power_kw, "
    "c.connector_id, c.connector_name, c.connector_type, c.power_kw::float8 AS power_kw, "
    "c.voltage_upper_limits, c.voltage_lower_limits, c.current, c.park_no, c.national_standard, "
    f"cs.status, cs.park_status, cs.lock_status, cs.status_since, {CONNECTOR_TARIFF_COLUMNS} "
    "FROM equipment e LEFT JOIN connectors c ON c.equipment_pk = e.id AND c.station_pk = e.station_pk "
    "LEFT JOIN connector_status cs ON cs.operator_id = c.operator_id AND cs.connector_id = c.connector_id "
    f"{CONNECTOR_TARIFF_JOINS} WHERE e.station_pk = :id ORDER BY e.equipment_id, c.connector_id")


def iter_matches(conn: Connection, q: SearchQuery, *, batch: int = 2000) -> Iterator[list[dict[str, Any]]]:
    """Every matching station, by id, in batches (server-side cursor: memory stays flat)."""
    where = " AND ".join(f"({p})" for p in [q.filter.where_sql("s"), *extra_preds(q)])
    result = conn.execution_options(stream_results=True, yield_per=batch).execute(text(
        f"SELECT {ITEM_COLUMNS}, NULL::float8 AS distance_m FROM stations s {ITEM_JOINS} WHERE {where} ORDER BY s.id"),
        bind_params(q))
    for part in result.mappings().partitions(batch):
        yield [to_item(dict(r), q.crs) for r in part]


def reference(conn: Connection, settings: SearchSettings) -> dict[str, Any]:
    """Every enumeration the API uses, with Chinese and English labels, plus districts and operators."""

    def listing(vocab: dict[Any, tuple[str, str]]) -> list[dict[str, Any]]:
        return [{"value": k, "label": zh, "label_en": en} for k, (zh, en) in vocab.items()]

    enumerations: dict[str, list[dict[str, Any]]] = {
        **{dim: listing(v) for dim, v in CLOSED_VOCABULARIES.items()},
        "availability": listing(AVAILABILITY),
        "sort": listing(SORTS),
        "station_status": listing(enums.STATION_STATUSES),
        "construction": listing(enums.CONSTRUCTIONS),
        "equipment_type": listing(enums.EQUIPMENT_TYPES),
        "connector_type": listing(enums.CONNECTOR_TYPES),
        "connector_status": listing(enums.CONNECTOR_STATUSES),
        "park_status": listing(enums.PARK_STATUSES),
        "lock_status": listing(enums.LOCK_STATUSES),
        "national_standard": listing(enums.NATIONAL_STANDARDS),
    }
    enumerations["district"] = [dict(r) for r in conn.execute(text(
        "SELECT adcode AS value, name AS label, coalesce(name_en, name) AS label_en FROM districts "
        "WHERE level = 'district' ORDER BY adcode")).mappings()]
    enumerations["operator"] = [dict(r) for r in conn.execute(text(
        "SELECT o.operator_id AS value, coalesce(o.short_name, o.name) AS label, o.name AS label_en "
        "FROM operators o WHERE EXISTS (SELECT 1 FROM station_search s WHERE s.op = o.id) "
        "ORDER BY o.operator_id")).mappings()]
    b = settings.scale_bands
    parameters = {
        "scale_bands_piles": {"small": [b[0], b[1] - 1], "medium": [b[1], b[2] - 1], "large": [b[2], b[3] - 1],
                              "xlarge": [b[3], None]},
        "min_power": "a station matches when at least one of its piles (or connectors) has at least this "
                     "many kW (max_power_kw >= min_power)",
        "facility_type": "a station matches when at least one of its piles has this EquipmentType",
        "payment": "normalised from the free-text Payment field; unknown tokens count as 'other'",
        "max_price": "yuan per kWh, 0 to 100: a station matches when its price now (electricity + service, its "
                     "cheapest connector at this moment) is at most this; stations without a known price never match",
        "min_uptime": "0 to 1: a station matches when its uptime of the last 30 days (reliability.uptime_30d: the "
                      "share of observed time its connectors could charge, 4 decimals) is at least this; stations "
                      "with nothing observed never match; sort=uptime lists the highest first, those last",
        "kwh": f"GET /api/v1/stations/{{id}}?kwh=N (0 < N <= {MAX_KWH}) adds the estimate of N kWh started now",
        "prices": "per kWh: strings with 4 decimals, yuan (price_now, tariff periods and now); money: strings with "
                  "2 decimals, yuan (estimates); times: ISO 8601 with the China offset (+08:00); "
                  "sort=price puts stations without a price last",
        "default_limit": settings.default_limit, "max_limit": settings.max_limit,
        "max_radius_m": settings.max_radius_m, "max_corridor_m": settings.max_corridor_m,
        "anonymous_rate_per_min": settings.anonymous_rate_per_min, "key_rate_per_min": settings.key_rate_per_min,
        "coordinates": "inputs (bbox, lat/lng, route) are WGS84; outputs follow crs=wgs84|gcj02",
    }
    return {"enumerations": enumerations, "parameters": parameters}


_STATS_SQL = """
WITH vs AS (
    SELECT s.id, s.operator_id, s.district_adcode, s.station_type, s.pile_count, s.connectors_total,
           s.connectors_free
    FROM stations s WHERE {visible}
), pw AS (
    SELECT e.station_pk, sum(e.power_kw)::float8 AS kw FROM equipment e JOIN vs ON vs.id = e.station_pk
    GROUP BY e.station_pk
), g AS (
    SELECT vs.operator_id, vs.district_adcode, vs.station_type, count(*) AS stations,
           sum(vs.pile_count) AS piles, sum(vs.connectors_total) AS connectors,
           sum(vs.connectors_free) AS free, coalesce(sum(pw.kw), 0) AS kw,
           GROUPING(vs.operator_id, vs.district_adcode, vs.station_type) AS gset
    FROM vs LEFT JOIN pw ON pw.station_pk = vs.id
    GROUP BY GROUPING SETS ((vs.operator_id), (vs.district_adcode), (vs.station_type), ())
)
SELECT * FROM g
"""


def stats(conn: Connection, data_version: int) -> dict[str, Any]:
    rows = conn.execute(text(_STATS_SQL.format(visible=VISIBLE_SQL))).mappings().all()
    ops = {r["operator_id"]: (r["short_name"] or r["name"], r["name"]) for r in conn.execute(text(
        "SELECT operator_id, name, short_name FROM operators")).mappings()}
    dists = {r["adcode"]: (r["name"], r["name_en"] or r["name"]) for r in conn.execute(text(
        "SELECT adcode, name, name_en FROM districts")).mappings()}
    out: dict[str, Any] = {"by_district": [], "by_operator": [], "by_station_type": [], "data_version": data_version,
                           "totals": {"stations": 0, "piles": 0, "connectors": 0, "connectors_free": 0,
                                      "power_kw": 0.0, "operators": 0}}

    def row(value: Any, labels: tuple[str, str], r: Any) -> dict[str, Any]:
        return {"value": value, "label": labels[0], "label_en": labels[1], "stations": int(r["stations"]),
                "piles": int(r["piles"] or 0), "connectors": int(r["connectors"] or 0),
                "power_kw": round(float(r["kw"] or 0), 1)}

    for r in rows:
        gset = r["gset"]
        if gset == 7:
            out["totals"].update(stations=int(r["stations"]), piles=int(r["piles"] or 0),
                                 connectors=int(r["connectors"] or 0), connectors_free=int(r["free"] or 0),
                                 power_kw=round(float(r["kw"] or 0), 1))
        elif gset == 6:  # grouped by station_type (GROUPING sets the bit of each column left out)
            out["by_station_type"].append(row(r["station_type"], enums.STATION_TYPES.get(
                r["station_type"], (str(r["station_type"]), str(r["station_type"]))), r))
        elif gset == 5:  # grouped by district
            if r["district_adcode"] is None:
                out["by_district"].append(row(0, ("未定位", "unknown district"), r))
            else:
                out["by_district"].append(row(r["district_adcode"], dists.get(
                    r["district_adcode"], (str(r["district_adcode"]),) * 2), r))
        elif gset == 3:  # grouped by operator
            out["by_operator"].append(row(r["operator_id"], ops.get(r["operator_id"], (r["operator_id"],) * 2), r))
    out["totals"]["operators"] = len(out["by_operator"])
    for key in ("by_district", "by_operator", "by_station_type"):
        out[key].sort(key=lambda x: (-x["stations"], str(x["value"])))
    return out

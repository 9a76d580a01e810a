"""Faceted station search: items, disjunctive facet counts and the total in one statement.

Facets
------
Each selected dimension d gets a predicate p_d; a row's *miss mask* m has bit d set when p_d is
false. A row counts for value v of dimension d when m has no bit other than d's, and for the
total when m = 0; rows missing two or more dimensions count nowhere and are dropped in the scan.
So one pass groups the surviving rows by (every dimension's value, m) (a parallel hash
aggregate over a few dozen bytes a row) and the per-dimension counts are sums over that small
grouped set. Without a text or ``updated_since`` filter the scan reads ``station_search``, the
narrow trigger-maintained copy of the facet columns of visible stations (migration 0300);
otherwise it reads ``stations``, where the trigram index has already narrowed the rows.

Distance
--------
Distances are geodesic (``ST_Distance`` on geography: the WGS84 spheroid). Nearest-N without a
radius takes KNN candidates from the GiST index on ``geom`` (planar degrees), ranks them by the
exact distance, and proves no closer station was left out: every station beyond the candidates is
at least ``D * min(metres per degree)`` away; if the page reaches past that bound the candidate
set grows and the statement runs again (rare).

Why one file of about 560 lines: the item page, the facets and the total are built as one
statement whose parts share their predicates and CTE names; the SQL reads best where it is put
together (the parameters are parsed in ``query``, the vocabularies in ``catalog``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from geo.gcj02 import wgs84_to_gcj02
from services.errors import BadRequest
from services.search.cursor import decode_cursor, encode_cursor
from services.search.labels import label_facets
from services.search.query import SearchQuery
from services.stations.filters import DIMENSIONS, StationFilter

__all__ = ["ITEM_COLUMNS", "ITEM_JOINS", "TEXT_CAP", "SearchResult", "bind_params", "extra_preds", "facet_counts", "search", "to_item"]

# dimension -> (column of the grouped row, is an array column)
_DIM_COLUMN: dict[str, tuple[str, bool]] = {
    "operator": ("operator_id", False),
    "district": ("district_adcode", False),
    "station_type": ("station_type", False),
    "scale": ("scale", False),
    "facility_type": ("facility_types", True),
    "payment": ("payments", True),
}

ITEM_COLUMNS = """
    s.id, s.operator_id, s.station_id, s.name, o.name AS operator_name, s.address,
    s.district_adcode AS district, d.name AS district_name, d.name_en AS district_name_en,
    ST_X(s.geom) AS lng, ST_Y(s.geom) AS lat, s.station_type, s.station_status,
    s.facility_types, s.payments, s.connectors_total, s.connectors_free, s.availability,
    s.pile_count, s.scale, s.max_power_kw::float8 AS max_power_kw,
    s.electricity_fee, s.service_fee, s.park_fee, s.busine_hours, s.park_info, s.station_tel,
    s.updated_at, s.price_now::text AS price_now,
    sr.up4 AS rel_up4, sr.faults AS rel_faults, sr.last_fault_at AS rel_last_fault_at"""

ITEM_JOINS = ("LEFT JOIN operators o ON o.operator_id = s.operator_id "
          "LEFT JOIN districts d ON d.adcode = s.district_adcode "
          "LEFT JOIN station_reliability sr ON sr.station_pk = s.id")

#: the sort key of a station without a price (after every price: price4 is at most 9,999,999)
NO_PRICE4 = 2147483647
#: the sort key of a station without a 30-day uptime (keys are -up4, -10,000 .. 0: after every uptime)
NO_UPTIME = 1
_POINT = "ST_SetSRID(ST_MakePoint(:f_lng, :f_lat), 4326)"
_ROUTE = "ST_GeomFromText(:f_route_wkt, 4326)"


@dataclass
class SearchResult:
    total: int | None
    items: list[dict[str, Any]]
    facets: dict[str, list[dict[str, Any]]] | None
    next_cursor: str | None
    #: False when a text query matched more than TEXT_CAP stations (after every filter): then
    #: ``total`` is a lower bound (TEXT_CAP) and relevance ranks the first TEXT_CAP + 1 matches found
    total_exact: bool = True
    #: False when the facets of a text query were counted on a sample: the first TEXT_CAP + 1 of the
    #: matches a facet counts (those passing every filter but at most one dimension's)
    facets_exact: bool = True
    timings: dict[str, float] = field(default_factory=dict)


# --- SQL pieces -------------------------------------------------------------------------------
def _sort_sql(q: SearchQuery, *, qm: bool = False) -> tuple[str, str, str]:
    """(key expression, ASC|DESC, SQL type of the key)."""
    if q.sort == "id":
        return "s.id", "ASC", "bigint"
    if q.sort == "name":
        return "s.name", "ASC", "text"
    if q.sort == "max_power":
        return "coalesce(s.max_power_kw, 0)::float8", "DESC", "float8"
    if q.sort == "free":
        return "s.connectors_free", "DESC", "int"
    if q.sort == "distance":
        return f"ST_Distance(s.geom::geography, {_POINT}::geography)", "ASC", "float8"
    if q.sort == "route":
        return f"ST_LineLocatePoint({_ROUTE}, s.geom)", "ASC", "float8"
    if q.sort == "relevance":
        return "(1 - qx.sim)::float8", "ASC", "float8"  # with updated_since (the narrow path ranks qm)
    if q.sort == "price":
        return f"coalesce((s.price_now * 10000)::int, {NO_PRICE4})", "ASC", "int"
    if q.sort == "uptime":  # the 30-day uptime, highest first as an ascending key; stations without one last
        return f"coalesce(- (SELECT sr.up4 FROM station_reliability sr WHERE sr.station_pk = s.id), {NO_UPTIME})", \
            "ASC", "int"
    raise AssertionError(q.sort)


def extra_preds(q: SearchQuery, alias: str = "s") -> list[str]:
    # station_updates carries the index of stations.updated_at (migration 1511)
    return ([f"{alias}.id IN (SELECT u.station_pk FROM station_updates u WHERE u.updated_at >= :s_updated_since)"]
            if q.updated_since else [])


# --- the narrow table (station_search, integer codes; migration 0301) ----------------------------
_SCALE_CODE = {"small": 1, "medium": 2, "large": 3, "xlarge": 4}
_FT_BIT = {"dc": 1, "ac": 2, "acdc": 4, "wireless": 8, "other": 16}
_PAY_BIT = {"card": 1, "online": 2, "cash": 4, "other": 8}
_OP_IDS = ("CAST((SELECT coalesce(array_agg(o.id), '{{}}') FROM operators o "
           "WHERE o.operator_id = ANY(CAST({} AS varchar[]))) AS int[])")


def _narrow_dims(flt: StationFilter, a: str = "s") -> dict[str, str]:
    """The selected dimensions' predicates on station_search."""
    preds: dict[str, str] = {}
    if flt.operator:
        preds["operator"] = f"{a}.op = ANY({_OP_IDS.format(':f_operator')})"
    if flt.district:
        preds["district"] = f"{a}.district = ANY(CAST(:f_district AS int[]))"
    if flt.station_type:
        preds["station_type"] = f"{a}.st = ANY(CAST(:f_station_type AS int[]))"
    if flt.scale:
        preds["scale"] = f"{a}.scale = ANY(CAST(:n_scale AS int[]))"
    if flt.facility_type:
        preds["facility_type"] = f"({a}.ft & :n_ft) <> 0"
    if flt.payment:
        preds["payment"] = f"({a}.pay & :n_pay) <> 0"
    return preds


def _narrow_base(flt: StationFilter, a: str = "s", *, qm: bool = False) -> list[str]:
    """Non-dimension predicates on station_search (text search through the ``qm`` CTE)."""
    preds = []
    if flt.available:
        preds.append(f"{a}.free")
    if flt.min_power is not None:
        preds.append(f"{a}.power10 >= :n_power10")
    if flt.max_price is not None:
        preds.append(f"{a}.price4 <= :n_price4")
    if flt.min_uptime is not None:
        preds.append(f"{a}.up4 >= :f_min_up4")
    if flt.exclude_operator:
        preds.append(f"{a}.op <> ALL({_OP_IDS.format(':f_exclude_operator')})")
    # bbox, radius and route: the shared filter's own predicates (they only read geom)
    preds += [p for p in flt.base_sql(a, visible=False) if f"{a}.geom" in p]
    if qm:
        preds.append(f"{a}.id IN (SELECT qx.id FROM qx)")
    return preds


def _narrow_params(flt: StationFilter) -> dict[str, Any]:
    p: dict[str, Any] = {
        "n_scale": [_SCALE_CODE[v] for v in flt.scale],
        "n_ft": sum(_FT_BIT[v] for v in flt.facility_type),
        "n_pay": sum(_PAY_BIT[v] for v in flt.payment),
    }
    if flt.min_power is not None:
        # power10 is exact (one decimal); the threshold is rounded up exactly with Decimal
        p["n_power10"] = int((Decimal(repr(flt.min_power)) * 10).to_integral_value(rounding=ROUND_CEILING))
    if flt.max_price is not None:
        # price4 = price_now x 10,000 exactly (4 decimals): the threshold rounded down exactly
        p["n_price4"] = int((Decimal(repr(flt.max_price)) * 10000).to_integral_value(rounding=ROUND_FLOOR))
    return p


#: a text query's matches are counted exactly up to this many (after the other filters); beyond it the
#: total is a lower bound and the facets are counted on the first TEXT_CAP + 1 matches found (issue 18)
TEXT_CAP = 2000


def _text_where(q: SearchQuery) -> str:
    """The text predicate on ``station_text t``. A query with cased letters (pinyin, initials)
    matches the stored lower-cased text ``tl`` (migration 0305) with LIKE: in a UTF-8 database
    ILIKE is exactly ``lower(t) LIKE lower(pattern)``, so the same rows, without lower-casing every
    candidate. A query without cased letters (Chinese, digits) uses LIKE on ``t``, which compares
    bytes. Two Chinese characters have no trigram: the bigram index of migration 0304 finds them
    (the LIKE still decides)."""
    text_q = q.filter.q or ""
    if text_q.lower() != text_q.upper():
        return "t.tl LIKE lower(:f_q_like)"
    short = " AND zh_bigrams(t.t) @> ARRAY[CAST(:s_q AS text)]" if len(text_q) == 2 and not text_q.isascii() else ""
    return f"t.t LIKE :f_q_like{short}"


def _rank_sql(q: SearchQuery) -> str:
    """Relevance: trigram similarity to the name for a Chinese query, to the name's initials for a
    short ascii one and to its full pinyin for a longer one."""
    text_q = q.filter.q or ""
    if not text_q.isascii():
        return "t.n"
    if len(text_q) <= 5:  # short ascii queries are mostly initials ("xxcd"): rank on the initials
        return "split_part(t.p, ' ', 2)"
    return "split_part(t.p, ' ', 1)"


def _facet_sample(q: SearchQuery, with_facets: bool) -> bool:
    """Whether the facets read their own candidates ``qf`` (selected dimensions: a facet also counts
    the rows missing its own dimension) rather than ``qm``."""
    return bool(q.filter.q) and not q.updated_since and with_facets and bool(_narrow_dims(q.filter, "n"))


#: station_text's copy of the dimension codes, named as station_search names them (migration 0307)
_TEXT_CODES = "t.id, t.op, t.district, t.st, t.scale, t.ft, t.pay"


def _qm_sql(q: SearchQuery, *, with_facets: bool) -> str:
    """The text matches from ``station_text`` (migration 0302) with their ``station_search`` row.

    ``qm``: the matches passing every filter, at most ``TEXT_CAP + 1`` of them, with their relevance
    ``sim``: the total, the ranked page and (no dimension selected) the facets read it. ``qf`` (a
    dimension selected, with facets): the matches passing the other filters and missing at most
    one dimension (the only rows a facet counts), at most ``TEXT_CAP + 1``. Up to the cap each
    holds every row it stands for, so the answer is exact (every city-size query); a word matching
    100,000 stations of a national set no longer costs counting and ranking every one of them
    (issue 18: 2.5-10 % of a national set matches a place or brand name). With no filter but the
    text and the dimensions, the matches' codes are station_text's own (no lookup per match).
    ``qx``: every match, for pages sorted by something else than relevance (read only when such a
    page is asked).
    With ``updated_since`` (facets over ``stations``, every match counted), only ``qx``, with ``sim``."""
    where = _text_where(q)
    rank = _rank_sql(q)
    if not q.updated_since and not _narrow_base(q.filter, "n"):
        # only dimensions besides the text: station_text carries their codes (migration 0307), no join
        src = f"FROM station_text t CROSS JOIN LATERAL (SELECT {_TEXT_CODES}) n WHERE"
    else:
        src = "FROM station_text t JOIN station_search n ON n.id = t.id WHERE"
    if q.updated_since:
        return f"qx AS MATERIALIZED (SELECT n.*, similarity({rank}, :s_q) AS sim {src} {where})"
    flt = q.filter
    dims = _narrow_dims(flt, "n")
    base = [where, *[f"({p})" for p in _narrow_base(flt, "n")]]
    every = " AND ".join([*base, *[f"({p})" for p in dims.values()]])
    ctes = [f"qm AS MATERIALIZED (SELECT c.*, similarity(c.rk, :s_q) AS sim FROM ("
            f"SELECT n.*, {rank} AS rk {src} {every} LIMIT {TEXT_CAP + 1}) c)"]
    if _facet_sample(q, with_facets):
        one_miss = base + (["(" + " + ".join(f"(CASE WHEN {p} THEN 0 ELSE 1 END)" for p in dims.values()) + ") <= 1"]
                           if len(dims) > 1 else [])
        ctes.append(f"qf AS MATERIALIZED (SELECT n.* {src} {' AND '.join(one_miss)} LIMIT {TEXT_CAP + 1})")
    ctes.append(f"qx AS MATERIALIZED (SELECT n.* {src} {where})")
    return ", ".join(ctes)


def _area_rows(q: SearchQuery, *, items: bool, facets: bool) -> bool:
    """Whether the facets' rows in a bbox (radius, corridor) also give the page sorted by id: ``bx``
    holds the area's rows the facets count, with their miss mask; the page is its rows missing
    nothing, by id. One scan of the area through the GiST index instead of two (issue 18): the
    page's own plan walked the primary key for LIMIT 21 and read up to 220,000 rows of a national
    set to find 21 in a city box, or, told to use the GiST index, sorted the box twice."""
    return (items and facets and q.sort == "id" and not q.filter.q and not q.updated_since
            and any("s.geom" in p for p in _narrow_base(q.filter)))


def _facet_sql(q: SearchQuery, *, with_facets: bool, area: bool = False) -> str:
    """CTEs ``fr`` (facet rows: dim, value, n, label, label_en), or just the total."""
    if q.updated_since:
        return _facet_sql_wide(q, with_facets=with_facets)
    flt = q.filter
    dims = _narrow_dims(flt)
    where = " AND ".join(f"({p})" for p in _narrow_base(flt)) or "TRUE"
    # the text matches with their narrow rows (_qm_sql): qf with facets of a selected dimension
    rows = ("qf s" if _facet_sample(q, with_facets) else "qm s") if flt.q else "station_search s"
    count = "count(*)"
    if where == "TRUE" and not flt.q:
        # dimensions only: the stations counted by their six codes (migration 0304), a few thousand
        # rows whatever the size of the country, instead of every visible station
        rows, count, where = "station_facet_cube s", "sum(s.n)", "s.n > 0"
    if not with_facets:
        allw = " AND ".join([where, *[f"({p})" for p in dims.values()]])
        return (f"fr AS (SELECT 'total'::text AS dim, NULL::text AS value, coalesce({count}, 0) AS n, "
                f"NULL::text AS label, NULL::text AS label_en FROM {rows} WHERE {allw})")
    bit = {d: 1 << i for i, d in enumerate(DIMENSIONS)}
    mask = " + ".join(f"(CASE WHEN {p} THEN 0 ELSE {bit[d]} END)" for d, p in dims.items()) or "0"
    if len(dims) > 1:  # rows missing two or more dimensions count nowhere (see _facet_sql_wide)
        where += " AND (" + " + ".join(f"(CASE WHEN {p} THEN 0 ELSE 1 END)" for p in dims.values()) + ") <= 1"

    def ok(dim: str) -> str:
        return f"g.m IN (0, {bit[dim]})" if dim in dims else "g.m = 0"

    ft_values = ", ".join(f"('{k}', {v})" for k, v in _FT_BIT.items())
    pay_values = ", ".join(f"('{k}', {v})" for k, v in _PAY_BIT.items())
    scale_case = "CASE g.scale " + " ".join(f"WHEN {v} THEN '{k}'" for k, v in _SCALE_CODE.items()) + " END"
    parts = [
        "SELECT 'operator', o.operator_id::text, sum(g.n), max(o.short_name), max(o.name) "
        f"FROM g JOIN operators o ON o.id = g.op WHERE {ok('operator')} GROUP BY 2",
        "SELECT 'district', g.district::text, sum(g.n), max(d.name), max(d.name_en) "
        f"FROM g LEFT JOIN districts d ON d.adcode = g.district WHERE {ok('district')} AND g.district IS NOT NULL "
        "GROUP BY 2",
        f"SELECT 'station_type', g.st::text, sum(g.n), NULL, NULL FROM g WHERE {ok('station_type')} GROUP BY 2",
        f"SELECT 'scale', {scale_case}, sum(g.n), NULL, NULL FROM g WHERE {ok('scale')} AND g.scale > 0 GROUP BY 2",
        f"SELECT 'facility_type', v.k, sum(g.n), NULL, NULL FROM g JOIN (VALUES {ft_values}) v (k, b) "
        f"ON (g.ft & v.b) <> 0 WHERE {ok('facility_type')} GROUP BY 2",
        f"SELECT 'payment', v.k, sum(g.n), NULL, NULL FROM g JOIN (VALUES {pay_values}) v (k, b) "
        f"ON (g.pay & v.b) <> 0 WHERE {ok('payment')} GROUP BY 2",
        "SELECT 'total', NULL, coalesce(sum(g.n), 0), NULL, NULL FROM g WHERE g.m = 0",
    ]
    cols = "op, district, st, scale, ft, pay"
    weight = ", s.n AS w" if count != "count(*)" else ""
    if area:  # (_area_rows) the area's rows kept for the page
        return (f"bx AS MATERIALIZED (SELECT s.id, {cols}, {mask} AS m FROM {rows} WHERE {where}), "
                f"g AS MATERIALIZED (SELECT {cols}, m, count(*) AS n FROM bx GROUP BY {cols}, m), "
                "fr (dim, value, n, label, label_en) AS (" + " UNION ALL ".join(parts) + ")")
    return (f"g AS MATERIALIZED (SELECT {cols}, m, {'sum(w)' if weight else 'count(*)'} AS n FROM ("
            f"SELECT {cols}, {mask} AS m{weight} FROM {rows} WHERE {where}) r GROUP BY {cols}, m), "
            "fr (dim, value, n, label, label_en) AS (" + " UNION ALL ".join(parts) + ")")


def _facet_sql_wide(q: SearchQuery, *, with_facets: bool) -> str:
    """The same facets over ``stations`` itself (used with ``updated_since``, which the narrow
    table does not carry)."""
    flt = q.filter
    where = " AND ".join(f"({p})" for p in flt.base_sql("s", visible=True) + extra_preds(q)) or "TRUE"
    if not with_facets:
        dims = [p for d in DIMENSIONS if (p := flt.dimension_sql(d, "s"))]
        allw = " AND ".join([where, *[f"({p})" for p in dims]])
        return (f"fr AS (SELECT 'total'::text AS dim, NULL::text AS value, count(*) AS n, "
                f"NULL::text AS label, NULL::text AS label_en FROM stations s WHERE {allw})")
    bits: list[str] = []
    misses: list[str] = []
    selected: dict[str, int] = {}
    for i, dim in enumerate(DIMENSIONS):
        pred = flt.dimension_sql(dim, "s")
        if pred:
            selected[dim] = 1 << i
            bits.append(f"(CASE WHEN {pred} THEN 0 ELSE {1 << i} END)")
            misses.append(f"(CASE WHEN {pred} THEN 0 ELSE 1 END)")
    mask = " + ".join(bits) if bits else "0"
    # Rows missing two or more dimensions count nowhere. Written as an inequality on purpose: the
    # planner's default estimate for it (1/3) keeps the hash aggregate; "m IN (...)" was
    # estimated at 0.5 % and got a sort of every row instead.
    if len(misses) > 1:
        where += " AND (" + " + ".join(misses) + ") <= 1"
    cols = ", ".join(c for c, _ in _DIM_COLUMN.values())
    parts = []
    for dim, (col, is_array) in _DIM_COLUMN.items():
        ok = f"g.m IN (0, {selected[dim]})" if dim in selected else "g.m = 0"
        if dim == "operator":
            parts.append("SELECT 'operator', g.operator_id::text, sum(g.n), max(o.short_name), max(o.name) "
                         f"FROM g LEFT JOIN operators o ON o.operator_id = g.operator_id WHERE {ok} GROUP BY 2")
        elif dim == "district":
            parts.append("SELECT 'district', g.district_adcode::text, sum(g.n), max(d.name), max(d.name_en) "
                         "FROM g LEFT JOIN districts d ON d.adcode = g.district_adcode "
                         f"WHERE {ok} AND g.district_adcode IS NOT NULL GROUP BY 2")
        elif is_array:
            parts.append(f"SELECT '{dim}', v::text, sum(g.n), NULL, NULL FROM g, unnest(g.{col}) v "
                         f"WHERE {ok} GROUP BY 2")
        else:
            parts.append(f"SELECT '{dim}', g.{col}::text, sum(g.n), NULL, NULL FROM g "
                         f"WHERE {ok} AND g.{col} IS NOT NULL GROUP BY 2")
    parts.append("SELECT 'total', NULL, coalesce(sum(g.n), 0), NULL, NULL FROM g WHERE g.m = 0")
    return (f"g AS MATERIALIZED (SELECT {cols}, m, count(*) AS n FROM ("
            f"SELECT {cols}, {mask} AS m FROM stations s WHERE {where}) r "
            f"GROUP BY {cols}, m), "
            "fr (dim, value, n, label, label_en) AS (" + " UNION ALL ".join(parts) + ")")


def _items_sql(q: SearchQuery, *, knn: bool, keyset: bool, area: bool = False) -> str:
    use_qm = bool(q.filter.q)
    flt = replace(q.filter, q=None) if use_qm else q.filter
    expr, direction, typ = _sort_sql(q, qm=use_qm)
    if flt.lng is not None:
        dist = f"ST_Distance(s.geom::geography, {_POINT}::geography)"
    elif flt.route is not None:
        dist = f"ST_Distance(s.geom::geography, {_ROUTE}::geography)"
    else:
        dist = "NULL::float8"
    qm_join = " JOIN qx ON qx.id = s.id" if use_qm else ""
    select = f"SELECT {ITEM_COLUMNS}, {expr} AS sort_key, {dist} AS distance_m FROM stations s {ITEM_JOINS}{qm_join}"
    if q.sort == "relevance" and not q.updated_since:
        # rank the matches on the narrow table, then read stations for the page only
        preds = [*_narrow_base(flt, "n"), *_narrow_dims(flt, "n").values()]
        if keyset:
            preds.append("((1 - n.sim)::float8 > CAST(:c_key AS float8) OR "
                         "((1 - n.sim)::float8 = CAST(:c_key AS float8) AND n.id > :c_id))")
        where = " AND ".join(f"({p})" for p in preds) or "TRUE"
        return (f"ids AS (SELECT n.id, (1 - n.sim)::float8 AS k FROM qm n "
                f"WHERE {where} ORDER BY k, n.id LIMIT :lim), "
                f"items AS (SELECT {ITEM_COLUMNS}, ids.k AS sort_key, {dist} AS distance_m FROM stations s "
                f"{ITEM_JOINS} JOIN ids ON ids.id = s.id ORDER BY ids.k, s.id LIMIT :lim)")
    if area:  # the facets' rows of the area (_area_rows), those missing no dimension, by id
        after = " AND n.id > :c_id" if keyset else ""
        return (f"ids AS (SELECT n.id, n.id AS k FROM bx n WHERE n.m = 0{after} ORDER BY n.id LIMIT :lim), "
                f"items AS (SELECT {ITEM_COLUMNS}, ids.k AS sort_key, {dist} AS distance_m FROM stations s "
                f"{ITEM_JOINS} JOIN ids ON ids.id = s.id ORDER BY ids.k, s.id LIMIT :lim)")
    if q.sort in ("id", "price", "uptime") and not q.updated_since:
        # ids (and price4 or up4) from the narrow table in key order (an index each: migrations 1402,
        # 1501); stations only for the page itself
        key = {"id": "n.id", "price": f"coalesce(n.price4, {NO_PRICE4})",
               "uptime": f"coalesce(- n.up4, {NO_UPTIME})"}[q.sort]
        preds = [*_narrow_base(flt, "n", qm=use_qm), *_narrow_dims(flt, "n").values()]
        if keyset:
            preds.append("n.id > :c_id" if q.sort == "id" else f"({key}, n.id) > (CAST(:c_key AS int), :c_id)")
        where = " AND ".join(f"({p})" for p in preds) or "TRUE"
        return (f"ids AS (SELECT n.id, {key} AS k FROM station_search n WHERE {where} ORDER BY {key}, n.id "
                f"LIMIT :lim), "
                f"items AS (SELECT {ITEM_COLUMNS}, ids.k AS sort_key, {dist} AS distance_m FROM stations s "
                f"{ITEM_JOINS}{qm_join} JOIN ids ON ids.id = s.id ORDER BY ids.k, s.id LIMIT :lim)")
    preds = [flt.where_sql("s"), *extra_preds(q)]
    if keyset:
        cmp = ">" if direction == "ASC" else "<"
        if direction == "ASC" and q.sort in ("name", "id"):
            preds.append(f"({expr}, s.id) > (CAST(:c_key AS {typ}), :c_id)")
        else:
            preds.append(f"({expr} {cmp} CAST(:c_key AS {typ}) OR ({expr} = CAST(:c_key AS {typ}) AND s.id > :c_id))")
    where = " AND ".join(f"({p})" for p in preds)
    if knn:
        return (f"cand AS (SELECT s.id, s.geom <-> {_POINT} AS planar FROM stations s{qm_join} WHERE {where} "
                f"ORDER BY s.geom <-> {_POINT} LIMIT :knn_k), "
                f"items AS ({select} JOIN cand c ON c.id = s.id ORDER BY sort_key {direction}, s.id LIMIT :lim)")
    return f"items AS ({select} WHERE {where} ORDER BY {expr} {direction}, s.id LIMIT :lim)"


def bind_params(q: SearchQuery) -> dict[str, Any]:
    p = q.filter.sql_params()
    p.update(_narrow_params(q.filter))
    if q.filter.q:
        p["s_q"] = q.filter.q
    if q.updated_since:
        p["s_updated_since"] = q.updated_since
    return p


def _metres_per_degree_floor(lat: float, deg: float) -> float:
    """A lower bound of metres per planar degree within ``deg`` of latitude ``lat``."""
    worst_lat = min(abs(lat) + deg, 89.9)
    return min(110_574.0, 111_320.0 * math.cos(math.radians(worst_lat))) * 0.995


def _execute(conn: Connection | Session, q: SearchQuery, *, items: bool, facets: bool, knn_k: int = 0) -> dict:
    keyset = None
    if q.cursor:
        keyset = decode_cursor(q.cursor, q.sort, q.fingerprint())
    capped = bool(q.filter.q) and not q.updated_since and (facets or q.total or q.sort == "relevance")
    sampled = _facet_sample(q, facets)
    area = _area_rows(q, items=items, facets=facets)
    ctes = [_qm_sql(q, with_facets=facets)] if q.filter.q else []
    if facets or q.total:
        ctes.append(_facet_sql(q, with_facets=facets, area=area))
    else:
        ctes.append("fr (dim, value, n, label, label_en) AS (SELECT NULL::text, NULL::text, NULL::bigint, "
                    "NULL::text, NULL::text WHERE false)")
    if items:
        ctes.append(_items_sql(q, knn=knn_k > 0, keyset=keyset is not None, area=area))
    sel = ["(SELECT coalesce(json_agg(json_build_array(dim, value, n, label, label_en)), '[]') FROM fr) AS facets"]
    if items:
        _, direction, _ = _sort_sql(q)
        sel.append(f"(SELECT coalesce(json_agg(i ORDER BY i.sort_key {direction}, i.id), '[]') FROM items i) AS items")
        if knn_k:
            sel.append("(SELECT json_build_array(count(*), max(planar)) FROM cand) AS knn")
    if capped:
        sel.append("(SELECT count(*) FROM qm) AS qm_n")
    if sampled:
        sel.append("(SELECT count(*) FROM qf) AS qf_n")
    stmt = "WITH " + ", ".join(ctes) + " SELECT " + ", ".join(sel)
    params = bind_params(q)
    params["lim"] = q.limit + 1
    if knn_k:
        params["knn_k"] = knn_k
    if keyset is not None:
        key, row_id = keyset
        if isinstance(key, str) != (q.sort == "name") or key is None:
            raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
        if q.sort == "id" and (not isinstance(key, int) or key != row_id):
            raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
        if q.sort in ("free", "price", "uptime") and (not isinstance(key, int) or not -2**31 <= key < 2**31):
            raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
        if isinstance(key, float) and not math.isfinite(key):
            raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
        params["c_key"], params["c_id"] = key, row_id
    if not capped:
        return dict(conn.execute(text(stmt), params).mappings().one())
    # The capped text candidates stop after TEXT_CAP + 1 rows: parallel workers only add their start
    # (a Chinese query's LIKE is estimated at a few rows, so the planner gathers a parallel scan; on 2
    # busy cores it was 30-40 % slower than one process). Off for this statement, then as it was.
    was = conn.execute(text("SELECT current_setting('max_parallel_workers_per_gather'), "
                            "set_config('max_parallel_workers_per_gather', '0', true)")).scalar()
    out = dict(conn.execute(text(stmt), params).mappings().one())  # (on an error the transaction is void)
    conn.execute(text("SELECT set_config('max_parallel_workers_per_gather', :v, true)"), {"v": was})
    return out


def _use_knn(q: SearchQuery) -> bool:
    return q.sort == "distance" and q.filter.radius is None and q.filter.route is None and q.filter.bbox is None


def search(conn: Connection | Session, q: SearchQuery, *, items: bool = True) -> SearchResult:
    """Run a search: one statement for items, facets and total (KNN may need a rerun)."""
    knn_k = max(4 * (q.limit + 1), 64) if (items and _use_knn(q)) else 0
    while True:
        row = _execute(conn, q, items=items, facets=q.facets, knn_k=knn_k)
        if not knn_k:
            break
        n_cand, max_planar = row["knn"]
        rows = row["items"]
        if n_cand < knn_k or not rows:
            break
        need = rows[min(len(rows), q.limit + 1) - 1]["sort_key"]
        if need <= max_planar * _metres_per_degree_floor(q.filter.lat or 0.0, max_planar):
            break
        knn_k *= 4
    facet_rows = row["facets"]
    total: int | None = 0 if (q.facets or q.total) else None
    facets: dict[str, list[dict[str, Any]]] | None = None
    raw: dict[str, list[tuple[str, int, str | None, str | None]]] = {d: [] for d in DIMENSIONS}
    for dim, value, n, label, label_en in facet_rows:
        if dim == "total":
            total = int(n or 0)
        else:
            raw[dim].append((value, int(n), label, label_en))
    exact = facets_exact = True
    if row.get("qm_n") is not None:  # a text query: qm holds the matches passing every filter, up to the cap
        exact = facets_exact = row["qm_n"] <= TEXT_CAP
        if total is not None:
            total = min(row["qm_n"], TEXT_CAP)
    if row.get("qf_n") is not None:
        facets_exact = row["qf_n"] <= TEXT_CAP
    if q.facets:
        facets = label_facets(raw, q.filter)
    result_items: list[dict[str, Any]] = []
    next_cursor = None
    if items:
        rows = row["items"]
        if len(rows) > q.limit:
            last = rows[q.limit - 1]
            next_cursor = encode_cursor(q.sort, last["sort_key"], last["id"], q.fingerprint())
            rows = rows[: q.limit]
        result_items = [to_item(r, q.crs) for r in rows]
    return SearchResult(total=total, items=result_items, facets=facets, next_cursor=next_cursor, total_exact=exact,
                        facets_exact=facets_exact if q.facets else True)


def facet_counts(conn: Connection | Session, flt: StationFilter) -> tuple[int, dict[str, list[dict[str, Any]]]]:
    """Total and labelled facets of a filter (for the map page and the tiles)."""
    q = SearchQuery(filter=flt, sort="id", limit=1)
    res = search(conn, q, items=False)
    return res.total or 0, res.facets or {}


def to_item(r: dict[str, Any], crs: str = "wgs84") -> dict[str, Any]:
    """An API item from a row of ITEM_COLUMNS: datum, rounding, grouped fees."""
    r = dict(r)
    r.pop("sort_key", None)
    if crs == "gcj02" and r.get("lng") is not None:
        r["lng"], r["lat"] = wgs84_to_gcj02(r["lng"], r["lat"])
    r["lng"], r["lat"] = round(r["lng"], 7), round(r["lat"], 7)
    if r.get("distance_m") is not None:
        r["distance_m"] = round(r["distance_m"], 1)
    r["fees"] = {"electricity_fee": r.pop("electricity_fee"), "service_fee": r.pop("service_fee"),
                 "park_fee": r.pop("park_fee")}
    r["hours"] = r.pop("busine_hours")
    r["updated_at"] = api_time(r.get("updated_at"))
    up4, last = r.pop("rel_up4"), r.pop("rel_last_fault_at")  # services.reliability.summary
    r["reliability"] = {"uptime_30d": None if up4 is None else up4 / 10000, "faults_30d": r.pop("rel_faults") or 0,
                        "last_fault_at": api_time(last)}
    return r


def api_time(value: datetime | str | None) -> str | None:
    """A time as every item writes it, whether it came as a row's datetime or as PostgreSQL's JSON
    text of one (the list reads items through ``json_agg``, which drops trailing zeros of the
    microseconds): ISO 8601 in UTC, six digits of microseconds when there are any.

    >>> api_time("2026-12-06T11:34:51.44964+00:00")
    '2026-12-06T11:34:51.449640+00:00'
    >>> api_time(datetime.fromisoformat("2026-12-06T19:34:51.44964+08:00"))
    '2026-12-06T11:34:51.449640+00:00'
    >>> api_time(None) is None
    True
    """
    if value is None:
        return None
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.astimezone(UTC).isoformat()

"""Facet counts, totals and result sets against brute force in Python, for random filters."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar.datastructures import MultiDict

from services.search import parse_search, search
from services.stations.enums import STATION_TYPES
from services.stations.filters import DIMENSIONS
from services.stations.vocab import FACILITY_TYPES, PAYMENTS, SCALES
from tests.integration.search.conftest import all_visible, search_settings

pytestmark = pytest.mark.usefixtures("search_data")

_COL = {"operator": "operator_id", "district": "district_adcode", "station_type": "station_type", "scale": "scale",
        "facility_type": "facility_types", "payment": "payments"}
_ARRAY = {"facility_type", "payment"}


def _dim_ok(row: dict, dim: str, values: list) -> bool:
    if not values:
        return True
    v = row[_COL[dim]]
    if dim in _ARRAY:
        return bool(set(v) & set(values))
    return v in values


def _base_ok(row: dict, f: dict) -> bool:
    if f.get("available") and row["connectors_free"] <= 0:
        return False
    if f.get("min_power") is not None and (row["max_power_kw"] is None or row["max_power_kw"] < f["min_power"]):
        return False
    if f.get("max_price") is not None and (row["price_now"] is None
                                           or row["price_now"] > Decimal(repr(f["max_price"]))):
        return False
    if row["operator_id"] in f.get("exclude_operator", []):
        return False
    if f.get("bbox"):
        x0, y0, x1, y1 = f["bbox"]
        if not (x0 <= row["lng"] <= x1 and y0 <= row["lat"] <= y1):
            return False
    if f.get("q") and f["q"].lower() not in (row["search_text"] or "").lower():
        return False
    return True


def brute_force(rows: list[dict], f: dict) -> tuple[int, dict[str, Counter], set[int]]:
    sel = {d: f.get(d, []) for d in DIMENSIONS}
    facets: dict[str, Counter] = {d: Counter() for d in DIMENSIONS}
    total_ids = set()
    for r in rows:
        if not _base_ok(r, f):
            continue
        oks = {d: _dim_ok(r, d, sel[d]) for d in DIMENSIONS}
        if all(oks.values()):
            total_ids.add(r["id"])
        for d in DIMENSIONS:
            if all(ok for other, ok in oks.items() if other != d):
                v = r[_COL[d]]
                for value in (v if d in _ARRAY else [v]):
                    if value is not None:
                        facets[d][value] += 1
    return len(total_ids), facets, total_ids


def _params(f: dict) -> MultiDict:
    md: MultiDict = MultiDict()
    for d in DIMENSIONS:
        vals = f.get(d, [])
        if vals:
            if len(vals) > 1 and d in ("operator", "scale"):
                for v in vals:  # repeated parameter
                    md.add(d, str(v))
            else:
                md.add(d, ",".join(str(v) for v in vals))
    if f.get("available"):
        md.add("available", "true")
    if f.get("min_power") is not None:
        md.add("min_power", str(f["min_power"]))
    if f.get("max_price") is not None:
        md.add("max_price", repr(f["max_price"]))
    if f.get("exclude_operator"):
        md.add("exclude_operator", ",".join(f["exclude_operator"]))
    if f.get("bbox"):
        md.add("bbox", ",".join(repr(c) for c in f["bbox"]))
    if f.get("q"):
        md.add("q", f["q"])
    md.add("limit", "500")
    return md


@pytest.fixture(scope="module")
def universe(engine, search_data):  # noqa: ANN001, ANN201
    rows = all_visible(engine)
    return {
        "rows": rows,
        "operators": sorted({r["operator_id"] for r in rows}),
        "districts": sorted({r["district_adcode"] for r in rows if r["district_adcode"]}),
    }


def _filters(universe: dict) -> st.SearchStrategy[dict]:
    def sub(values: list) -> st.SearchStrategy[list]:
        return st.lists(st.sampled_from(values), max_size=3, unique=True)

    return st.fixed_dictionaries({}, optional={
        "operator": sub(universe["operators"]),
        "district": sub(universe["districts"]),
        "station_type": sub(list(STATION_TYPES)),
        "scale": sub(list(SCALES)),
        "facility_type": sub(list(FACILITY_TYPES)),
        "payment": sub(list(PAYMENTS)),
        "available": st.booleans(),
        "min_power": st.sampled_from([None, 7.0, 60.0, 120.0, 200.0]),
        # the generated tariffs' prices now, and values between them (exact at 4 decimals)
        "max_price": st.sampled_from([None, 0.0, 1.0299, 1.03, 1.0437, 1.16, 1.1999, 1.2, 1.4437, 30.0]),
        "exclude_operator": sub(universe["operators"]),
        "bbox": st.sampled_from([None, (113.50, 22.20, 113.60, 22.30), (113.20, 22.00, 113.45, 22.25),
                                 (113.0, 21.8, 114.0, 22.6)]),
        "q": st.sampled_from([None, "充电", "拱北", "长隆", "gongbei", "cd", "停车场"]),
    })


def _check(engine, universe: dict, f: dict, *, wide: bool = False) -> None:  # noqa: ANN001
    params = _params(f)
    if wide:  # updated_since makes the facets read stations itself instead of the narrow table
        params.add("updated_since", "2000-01-01T00:00:00Z")
    q = parse_search(params, search_settings(max_limit=5000))
    with engine.connect() as conn:
        res = search(conn, q)
    total, facets, ids = brute_force(universe["rows"], f)
    assert res.total == total, f
    got_ids = {it["id"] for it in res.items}
    if total <= 500:
        assert got_ids == ids
        assert res.next_cursor is None
    else:
        assert got_ids <= ids and len(got_ids) == 500
    for d in DIMENSIONS:
        got = {fv["value"]: fv["count"] for fv in res.facets[d] if fv["count"]}
        want = {k: v for k, v in facets[d].items() if v}
        assert got == want, (d, f)
    for d in DIMENSIONS:  # selected values always appear, even with a zero count
        listed = {fv["value"] for fv in res.facets[d]}
        assert set(f.get(d, [])) <= listed


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(data=st.data())
def test_facets_match_brute_force(engine, universe, data) -> None:  # noqa: ANN001
    f = data.draw(_filters(universe))
    _check(engine, universe, f, wide=data.draw(st.booleans()))


@pytest.mark.parametrize("f", [
    {},
    {"operator": ["SGN000001"], "district": [440402]},
    {"facility_type": ["dc", "ac"], "payment": ["cash"]},
    {"operator": ["SGN000001", "SGN000002"], "district": [440402, 440403], "station_type": [1, 100],
     "scale": ["small", "medium"], "facility_type": ["dc"], "payment": ["online", "card"]},
    {"q": "cd", "available": True, "operator": ["SHD000001"]},
    {"max_price": 1.0437, "operator": ["SGN000001", "SGN000003"], "facility_type": ["dc"]},
    {"max_price": 0.0},
])
@pytest.mark.parametrize("wide", [False, True])
def test_known_combinations(engine, universe, f, wide) -> None:  # noqa: ANN001
    _check(engine, universe, f, wide=wide)


def test_facet_labels(engine, universe) -> None:  # noqa: ANN001
    q = parse_search(MultiDict({"district": "440402"}), search_settings())
    with engine.connect() as conn:
        res = search(conn, q)
    d = {fv["value"]: fv for fv in res.facets["district"]}
    assert d[440402]["label"] == "香洲区" and d[440402]["label_en"] == "Xiangzhou"
    st_ = {fv["value"]: fv for fv in res.facets["station_type"]}
    assert st_[1]["label"] == "公共" and st_[1]["label_en"] == "public"
    ops = {fv["value"]: fv for fv in res.facets["operator"]}
    assert ops["SHD000002"]["label"] == "长隆充电"
    assert ops["SHD000002"]["label_en"] == "珠海长隆充电服务有限公司"
    assert [fv["value"] for fv in res.facets["scale"]] == list(SCALES)


def test_narrow_table_follows_stations(engine, universe) -> None:  # noqa: ANN001
    """The trigger keeps station_search equal to the visible stations' facet columns."""
    from sqlalchemy import text

    cols = "id, op, district, st, scale, ft, pay, free, power10, geom, price4"
    codes = """
        SELECT s.id, o.id AS op, s.district_adcode AS district, s.station_type AS st,
               CASE s.scale WHEN 'small' THEN 1 WHEN 'medium' THEN 2 WHEN 'large' THEN 3 WHEN 'xlarge' THEN 4
                            ELSE 0 END AS scale,
               (SELECT coalesce(sum(b), 0) FROM unnest(s.facility_types) f
                JOIN (VALUES ('dc', 1), ('ac', 2), ('acdc', 4), ('wireless', 8), ('other', 16)) v (k, b)
                ON v.k = f) AS ft,
               (SELECT coalesce(sum(b), 0) FROM unnest(s.payments) p
                JOIN (VALUES ('card', 1), ('online', 2), ('cash', 4), ('other', 8)) v (k, b) ON v.k = p) AS pay,
               s.connectors_free > 0 AS free, (s.max_power_kw * 10)::int AS power10, s.geom,
               (s.price_now * 10000)::int AS price4
        FROM stations s JOIN operators o ON o.operator_id = s.operator_id
        WHERE s.feed_state = 'active' AND s.interconnected"""
    with engine.connect() as conn:
        sid = conn.execute(text("SELECT id FROM stations WHERE operator_id = 'SGN000001' LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE stations SET connectors_free = connectors_free + 5, scale = 'large' WHERE id = :i"),
                     {"i": sid})
        conn.execute(text("UPDATE stations SET interconnected = false WHERE id = :i + 1"), {"i": sid})
        diff = conn.execute(text(
            f"(SELECT {cols} FROM ({codes}) c EXCEPT SELECT {cols} FROM station_search) UNION ALL "
            f"(SELECT {cols} FROM station_search EXCEPT SELECT {cols} FROM ({codes}) c)")).all()
        assert diff == []
        conn.execute(text("UPDATE stations SET name = name || 'X', search_text = search_text || ' x' "
                          "WHERE id = :i"), {"i": sid})
        bad = conn.execute(text(
            "SELECT count(*) FROM stations s FULL JOIN station_text t ON t.id = s.id "
            "AND s.feed_state = 'active' AND s.interconnected "
            "WHERE (s.feed_state = 'active' AND s.interconnected) IS DISTINCT FROM (t.id IS NOT NULL) "
            "OR (t.id IS NOT NULL AND (t.t IS DISTINCT FROM coalesce(s.search_text, s.name) "  # as the trigger writes it
            "OR t.n IS DISTINCT FROM s.name "
            "OR t.p IS DISTINCT FROM concat_ws(' ', s.name_pinyin, s.name_initials)))")).scalar()
        assert bad == 0
        conn.rollback()

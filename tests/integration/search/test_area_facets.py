"""Facets + bbox with the page by id from one scan of the box (``bx``, issue 18): for random boxes
and dimensions, the total, every facet and every page (followed by cursor) equal a direct count in
Python over every visible station."""

from __future__ import annotations

import random

import pytest
from litestar.datastructures import MultiDict

import services.search.service as service
from services.search import parse_search, search
from services.stations.filters import DIMENSIONS
from tests.integration.search.conftest import all_visible, search_settings
from tests.integration.search.test_facets import _params, brute_force

pytestmark = pytest.mark.usefixtures("search_data")


@pytest.mark.parametrize("seed", range(12))
def test_bbox_facets_and_pages_match_a_direct_count(engine, seed) -> None:  # noqa: ANN001
    rows = all_visible(engine)
    rng = random.Random(seed)
    while True:  # no station within 1e-5 degrees of an edge (the index's boxes are float4, see below)
        x0, y0 = round(rng.uniform(113.0, 113.6), 4), round(rng.uniform(21.9, 22.4), 4)
        box = (x0, y0, round(x0 + rng.uniform(0.02, 0.5), 4), round(y0 + rng.uniform(0.02, 0.4), 4))
        if not any(min(abs(r["lng"] - box[0]), abs(r["lng"] - box[2]), abs(r["lat"] - box[1]),
                       abs(r["lat"] - box[3])) < 1e-5 for r in rows):
            break
    # (A station 5e-7 degrees outside an edge counts in the bbox, in this path as in every other:
    # PostGIS's && compares float4 boxes. Not this test's subject.)
    f: dict = {"bbox": box}
    for dim, col in (("operator", "operator_id"), ("station_type", "station_type")):
        if rng.random() < 0.6:
            f[dim] = sorted({r[col] for r in rng.sample(rows, 2)})
    if rng.random() < 0.5:
        f["payment"] = rng.sample(["card", "online", "cash", "other"], 2)
    total, facets, ids = brute_force(rows, f)
    params = _params(f)
    params["limit"] = "7"
    q = parse_search(params, search_settings())
    assert service._area_rows(q, items=True, facets=True)
    seen: list[int] = []
    with engine.connect() as conn:
        res = search(conn, q)
        assert res.total == total
        for d in DIMENSIONS:
            assert {fv["value"]: fv["count"] for fv in res.facets[d] if fv["count"]} == \
                   {k: v for k, v in facets[d].items() if v}, d
        while True:
            seen += [it["id"] for it in res.items]
            if res.next_cursor is None:
                break
            page = MultiDict(params.multi_items())
            page.add("cursor", res.next_cursor)
            res = search(conn, parse_search(page, search_settings()))
    assert seen == sorted(ids)


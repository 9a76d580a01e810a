"""Radius, nearest-N and route corridor against pyproj.Geod (WGS84 geodesics)."""

from __future__ import annotations

import numpy as np
import polyline
import pytest
from litestar.datastructures import MultiDict
from pyproj import Geod
from shapely.geometry import LineString, Point

from services.search import parse_search, search
from tests.integration.search.conftest import all_visible, search_settings

GEOD = Geod(ellps="WGS84")
pytestmark = pytest.mark.usefixtures("search_data")


def _run(engine, params: dict) -> list[dict]:  # noqa: ANN001
    """All pages of a search (following next_cursor)."""
    items: list[dict] = []
    cursor = None
    while True:
        p = MultiDict(params)
        if cursor:
            p["cursor"] = cursor
        q = parse_search(p, search_settings())
        with engine.connect() as conn:
            res = search(conn, q)
        items += res.items
        cursor = res.next_cursor
        if not cursor:
            return items


def _dist(lng0: float, lat0: float, rows: list[dict]) -> np.ndarray:
    lngs = np.array([r["lng"] for r in rows])
    lats = np.array([r["lat"] for r in rows])
    _, _, d = GEOD.inv(np.full_like(lngs, lng0), np.full_like(lats, lat0), lngs, lats)
    return d


@pytest.mark.parametrize("lng,lat,radius", [(113.5767, 22.2707, 3000), (113.30, 22.20, 8000), (113.55, 22.10, 500),
                                            (113.5, 22.25, 25000)])
def test_radius_is_geodesic(engine, lng, lat, radius) -> None:  # noqa: ANN001
    rows = all_visible(engine)
    d = _dist(lng, lat, rows)
    want = {r["id"] for r, di in zip(rows, d, strict=True) if di <= radius - 0.01}
    edge = {r["id"] for r, di in zip(rows, d, strict=True) if abs(di - radius) <= 0.01}
    got = _run(engine, {"lng": str(lng), "lat": str(lat), "radius": str(radius), "limit": "200"})
    got_ids = {it["id"] for it in got}
    assert want <= got_ids and got_ids - want <= edge
    by_id = dict(zip([r["id"] for r in rows], d, strict=True))
    prev = -1.0
    for it in got:  # sorted by true distance, reported in metres (to 0.1 m)
        assert it["distance_m"] == pytest.approx(by_id[it["id"]], abs=0.06)
        assert it["distance_m"] >= prev
        prev = it["distance_m"]


@pytest.mark.parametrize("lng,lat", [(113.5767, 22.2707), (113.29, 22.21), (113.0, 21.0), (116.4, 39.9)])
def test_nearest_n(engine, lng, lat) -> None:  # noqa: ANN001
    rows = all_visible(engine)
    d = _dist(lng, lat, rows)
    order = sorted(zip(d, [r["id"] for r in rows], strict=True))[:20]
    q = parse_search(MultiDict({"lng": str(lng), "lat": str(lat), "limit": "20", "facets": "false"}),
                     search_settings())
    with engine.connect() as conn:
        res = search(conn, q)
    assert [it["id"] for it in res.items] == [i for _, i in order]
    assert [it["distance_m"] for it in res.items] == pytest.approx([di for di, _ in order], abs=0.06)
    assert res.total == len(rows)


def _min_dist_to_route(route: list[tuple[float, float]], rows: list[dict]) -> np.ndarray:
    """Geodesic distance to the route, by densifying it every ~2 m (an upper bound within ~1 m)."""
    pts: list[tuple[float, float]] = []
    for (x0, y0), (x1, y1) in zip(route, route[1:], strict=False):
        _, _, seg = GEOD.inv(x0, y0, x1, y1)
        n = max(int(seg / 2), 1)
        pts.append((x0, y0))
        pts += GEOD.npts(x0, y0, x1, y1, n)
    pts.append(route[-1])
    px = np.array([p[0] for p in pts])
    py = np.array([p[1] for p in pts])
    out = np.empty(len(rows))
    for i, r in enumerate(rows):
        # prefilter by a cheap planar distance, then exact geodesics to the nearby points
        near = np.argsort((px - r["lng"]) ** 2 + ((py - r["lat"]) * 1.08) ** 2)[:400]
        _, _, dd = GEOD.inv(np.full(len(near), r["lng"]), np.full(len(near), r["lat"]), px[near], py[near])
        out[i] = dd.min()
    return out


@pytest.mark.parametrize("encoding", ["wkt", "polyline"])
def test_route_corridor(engine, encoding) -> None:  # noqa: ANN001
    route = [(113.28, 22.20), (113.40, 22.22), (113.52, 22.24), (113.58, 22.28)]
    corridor = 1500.0
    rows = all_visible(engine)
    # only stations near the route's box matter for the brute force
    rows = [r for r in rows if 113.2 <= r["lng"] <= 113.7 and 22.1 <= r["lat"] <= 22.4]
    d = _min_dist_to_route(route, rows)
    want = {r["id"] for r, di in zip(rows, d, strict=True) if di <= corridor - 2}
    maybe = {r["id"] for r, di in zip(rows, d, strict=True) if abs(di - corridor) <= 2}
    if encoding == "wkt":
        text_route = "LINESTRING(" + ", ".join(f"{x} {y}" for x, y in route) + ")"
    else:
        text_route = polyline.encode([(y, x) for x, y in route], 5)
    got = _run(engine, {"route": text_route, "corridor": str(corridor), "limit": "100"})
    got_ids = {it["id"] for it in got}
    assert want, "the test route should pass stations"
    assert want <= got_ids and got_ids - want <= maybe
    # ordered by position along the route
    line = LineString(route)
    fractions = [line.project(Point(it["lng"], it["lat"]), normalized=True) for it in got]
    assert fractions == sorted(fractions) or all(b >= a - 1e-9 for a, b in zip(fractions, fractions[1:], strict=False))
    by_id = dict(zip([r["id"] for r in rows], d, strict=True))
    for it in got:
        assert it["distance_m"] == pytest.approx(by_id[it["id"]], abs=1.5)

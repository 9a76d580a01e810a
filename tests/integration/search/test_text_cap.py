"""Name search at national scale (issue 18, item 4): ascii queries match the stored lower-cased text
(migration 0305) exactly as ILIKE did, and a text query's matches are counted exactly up to
``TEXT_CAP``; beyond it the answer says so (``total_exact`` false, ``total`` a lower bound, the
facets counted on the first matches found). The cap is lowered here so the city-size test data
crosses it."""

from __future__ import annotations

import pytest
from litestar.datastructures import MultiDict
from sqlalchemy import text

import services.search.service as service
from services.search import parse_search, search
from tests.integration.search.conftest import search_settings

pytestmark = pytest.mark.usefixtures("search_data")

QUERIES = ["changlong", "ChangLong", "XXCD", "xxcd", "gongbei", "Huafa", "chong", "a", "zh", "充电站", "长隆",
           "拱北", "停车场", "9"]


def _run(engine, **params: str):  # noqa: ANN001, ANN202
    query = parse_search(MultiDict(params), search_settings())
    with engine.connect() as conn:
        return search(conn, query)


def _direct(engine, q: str) -> set[int]:  # noqa: ANN001
    """The matches as before migration 0305: ILIKE (cased queries) or LIKE on the search text."""
    op = "LIKE" if q.lower() == q.upper() else "ILIKE"
    with engine.connect() as conn:
        return set(conn.execute(text(f"SELECT id FROM station_text WHERE t {op} :p"), {"p": f"%{q}%"}).scalars())


def test_lower_text_is_kept_in_step(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM station_text WHERE tl IS DISTINCT FROM lower(t)")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM station_text")).scalar() > 0


@pytest.mark.parametrize("q", QUERIES)
def test_same_matches_as_ilike(engine, q) -> None:  # noqa: ANN001
    want = _direct(engine, q)
    res = _run(engine, q=q, limit="500", sort="id")
    assert [it["id"] for it in res.items] == sorted(want)[:500]
    assert res.total == len(want) and res.total_exact


@pytest.mark.parametrize("q", QUERIES)
def test_cap_beyond_says_so(engine, monkeypatch, q) -> None:  # noqa: ANN001
    exact = _run(engine, q=q, limit="20")
    assert exact.total_exact
    cap = 5
    monkeypatch.setattr(service, "TEXT_CAP", cap)
    capped = _run(engine, q=q, limit="20")
    if exact.total <= cap:  # within the cap: the same answer, item for item
        assert capped.total_exact and capped.facets_exact and capped.total == exact.total
        assert capped.items == exact.items and capped.facets == exact.facets
        return
    assert not capped.total_exact and not capped.facets_exact
    assert capped.total == cap  # a lower bound
    assert all(sum(v["count"] for v in values) <= sum(v["count"] for v in exact.facets[dim])
               for dim, values in capped.facets.items())
    ids = {it["id"] for it in capped.items}
    assert ids <= _direct(engine, q) and 0 < len(ids) <= cap + 1
    sims = [it["id"] for it in capped.items]
    assert len(sims) == len(set(sims))


def test_cap_counts_after_the_other_filters(engine, monkeypatch) -> None:  # noqa: ANN001
    """The cap applies to the matches left by the filters: a filtered query under it stays exact."""
    base = _run(engine, q="a", limit="20")
    op = max(base.facets["operator"], key=lambda v: v["count"])
    small = min(base.facets["operator"], key=lambda v: v["count"])
    exact = _run(engine, q="a", limit="20", operator=small["value"], facets="false", total="true")
    assert exact.total == small["count"]
    monkeypatch.setattr(service, "TEXT_CAP", small["count"])
    again = _run(engine, q="a", limit="20", operator=small["value"], facets="false", total="true")
    assert again.total_exact and again.total == exact.total and again.items == exact.items
    assert op["count"] > small["count"]
    over = _run(engine, q="a", limit="20", operator=op["value"], facets="false", total="true")
    assert not over.total_exact and over.total == small["count"]
    # with facets: the total stays exact within the cap although the facets' candidates (every
    # operator's matches) overflow it
    within = _run(engine, q="a", limit="20", operator=small["value"])
    assert within.total_exact and within.total == small["count"] and not within.facets_exact
    assert within.items == exact.items


def test_api_says_when_total_is_a_lower_bound(api, monkeypatch) -> None:  # noqa: ANN001
    body = api.get("/api/v1/stations?q=a&limit=5").json()
    assert "total_exact" not in body and body["total"] > 3
    monkeypatch.setattr(service, "TEXT_CAP", 3)
    body = api.get("/api/v1/stations?q=a&limit=5&operator=" + body["facets"]["operator"][0]["value"]).json()
    assert body["total_exact"] is False and body["total"] == 3 and body["facets_exact"] is False
    fc = api.get("/api/v1/stations.geojson?q=a&limit=5").json()
    assert fc["total_exact"] is False and fc["total"] == 3

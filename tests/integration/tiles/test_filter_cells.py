"""The per-facet cluster cells (migration 0353): filtered low-zoom cluster tiles read them, their
counts add up to the stations the search predicates select, they agree with clustering computed
per request, and the triggers keep them exact through pushes, edits, withdrawals and deletes."""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest
from sqlalchemy import text

from services.stations.filters import StationFilter
from services.stations.summary import bump_version
from tests.integration.tiles.conftest import insert_station, seed_stations, wait_version
from tests.integration.tiles.test_cluster_cells import assert_same, clusters

# every one answerable from tile_filter_cells
CELL_FILTERS = [
    "facility_type=dc",
    "facility_type=wireless,acdc",
    "available=true",
    "available=true&min_power=60",
    "min_power=120",
    "min_power=60.5",
    "scale=large,xlarge&payment=online,cash",
    "payment=other,cash",
    "station_type=50",
    "station_type=1,100&facility_type=ac,acdc&available=1",
    "station_type=1&scale=large,medium&facility_type=dc,other&payment=online&available=true&min_power=60",
]
# these keep the per-request path (and must stay exact too)
PER_REQUEST_FILTERS = ["operator=MA5GTEST1&facility_type=dc", "district=440402&available=true",
                       "exclude_operator=MA5GTEST2&min_power=60", "q=长隆&facility_type=dc"]


def _live(query: str) -> str:
    """The same filter, forced onto the per-request path (matches the same stations)."""
    return query + "&exclude_operator=NOBODY0"


def expected(engine, query: str) -> tuple[int, int, int]:  # noqa: ANN001
    """(stations, connectors total, connectors free) the search predicates select."""
    flt = StationFilter.from_params(parse_qs(query))
    with engine.connect() as conn:
        n, total, free = conn.execute(text(
            f"SELECT count(*), coalesce(sum(s.connectors_total), 0), coalesce(sum(s.connectors_free), 0) "
            f"FROM stations s WHERE {flt.where_sql('s')}"), flt.sql_params()).one()
    return int(n), int(total), int(free)


def sums(cells: dict[int, dict]) -> tuple[int, int, int]:
    return (sum(c["point_count"] for c in cells.values()), sum(c["connectors_total"] for c in cells.values()),
            sum(c["connectors_free"] for c in cells.values()))


def test_renderer_reads_filter_cells_only_when_the_filter_allows(app, client, seeded) -> None:  # noqa: ANN001
    from tiles.grid import TileAddress

    r = app.state.tiles.renderer
    a = TileAddress(5, 26, 13)
    for q in CELL_FILTERS:
        assert r.uses_filter_cells(a, StationFilter.from_params(parse_qs(q)), "wgs84"), q
    for q in PER_REQUEST_FILTERS:
        assert not r.uses_filter_cells(a, StationFilter.from_params(parse_qs(q)), "wgs84"), q
    dc = StationFilter.from_params({"facility_type": "dc"})
    assert not r.uses_filter_cells(a, StationFilter(), "wgs84")  # unfiltered: tile_cluster_cells
    assert not r.uses_filter_cells(a, dc, "gcj02")
    assert r.uses_filter_cells(TileAddress(8, 212, 113), dc, "wgs84")
    assert not r.uses_filter_cells(TileAddress(9, 425, 227), dc, "wgs84")


@pytest.mark.parametrize("query", CELL_FILTERS)
@pytest.mark.parametrize("z", [3, 6, 8])
def test_filtered_cluster_counts_add_up_to_the_search_counts(client, seeded, engine, query, z) -> None:  # noqa: ANN001
    want = expected(engine, query)
    assert want[0] > 0, "the seed should match every filter here"
    cells = clusters(client, z, query)
    assert sums(cells) == want
    # identical to clustering the matching stations per request: ids, counts, positions
    assert_same(cells, clusters(client, z, _live(query)))


@pytest.mark.parametrize("query", PER_REQUEST_FILTERS)
def test_filters_outside_the_cells_stay_exact(client, seeded, engine, query) -> None:  # noqa: ANN001
    assert sums(clusters(client, 5, query)) == expected(engine, query)


def test_triggers_keep_filter_cells_exact(client, app, engine) -> None:  # noqa: ANN001
    seeded = seed_stations(engine, n=40, seed=13)
    ids = sorted(seeded.visible)
    with engine.begin() as conn:
        # status pushes: fewer free (stays available), none free (availability flips), free again
        conn.execute(text("UPDATE stations SET connectors_free = 1, connectors_total = connectors_total + 2 "
                          "WHERE id = :i"), {"i": ids[0]})
        conn.execute(text("UPDATE stations SET connectors_free = 0, availability = 'busy' WHERE id = ANY(:i)"),
                      {"i": ids[1:4]})
        conn.execute(text("UPDATE stations SET connectors_free = 3 WHERE id = :i AND connectors_free = 0"),
                     {"i": ids[4]})
        # the key changes: facility types, payments, power, scale, type; a withdrawal, a move
        conn.execute(text("UPDATE stations SET facility_types = '{wireless,dc}', payments = '{cash}', "
                          "max_power_kw = 350, scale = 'xlarge', station_type = 100 WHERE id = :i"), {"i": ids[5]})
        conn.execute(text("UPDATE stations SET max_power_kw = NULL, scale = NULL WHERE id = :i"), {"i": ids[6]})
        conn.execute(text("UPDATE stations SET feed_state = 'withdrawn' WHERE id = :i"), {"i": ids[7]})
        conn.execute(text("UPDATE stations SET geom = ST_SetSRID(ST_MakePoint(113.3, 22.1), 4326), "
                          "geom_3857 = ST_Transform(ST_SetSRID(ST_MakePoint(113.3, 22.1), 4326), 3857) "
                          "WHERE id = :i"), {"i": ids[8]})
        insert_station(conn, pk_hint=901, lng=113.52, lat=22.21, operator="MA5GTEST1", connectors_total=9,
                       connectors_free=9, facility_types=["dc", "ac"], max_power_kw=180)
        conn.execute(text("DELETE FROM stations WHERE id = :i"), {"i": ids[9]})
        conn.execute(text("UPDATE stations SET interconnected = true WHERE id = ANY(:h)"), {"h": list(seeded.hidden)})
        conn.execute(text("UPDATE stations SET name = name || '站' WHERE id = :i"), {"i": ids[10]})  # irrelevant
        v = bump_version(conn, "stations")
    wait_version(app, "stations", v)
    for query in ("facility_type=dc", "available=true&min_power=60", "scale=xlarge&payment=cash",
                  "station_type=1,100&available=1", "min_power=0.5"):
        for z in (4, 8):
            cells = clusters(client, z, query)
            assert sums(cells) == expected(engine, query), (query, z)
            assert_same(cells, clusters(client, z, _live(query)))
    # the incremental state equals a rebuild from scratch
    cols = ("z, cx, cy, station_type, scale, facility_types, payments, available, max_power_kw, point_count, "
            "connectors_total, connectors_free")
    with engine.begin() as conn:
        before = conn.execute(text(f"SELECT {cols} FROM tile_filter_cells WHERE point_count > 0 "
                                   "ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9")).all()
        conn.execute(text("SELECT zh_tile_filter_cells_rebuild()"))
        after = conn.execute(text(f"SELECT {cols} FROM tile_filter_cells ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9")).all()
    assert before == after
    # TRUNCATE stations empties the cells
    seed_stations(engine, n=0)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tile_filter_cells WHERE point_count > 0")).scalar() == 0

"""The precomputed cluster cells (migration 0351) agree with clustering computed per request, and
the triggers keep them exact through inserts, updates, withdrawals, deletes and truncation."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from services.stations.summary import bump_version
from tests.integration.tiles.conftest import decode, inside, insert_station, seed_stations, tiles_covering, wait_version, ZHUHAI

LIVE = "exclude_operator=NOBODY0"  # matches every station but is not empty: forces the per-request path


def clusters(client, z: int, query: str = "") -> dict[int, dict]:  # noqa: ANN001
    out = {}
    for _, x, y in tiles_covering(ZHUHAI, z):
        r = client.get(f"/tiles/stations/{z}/{x}/{y}.mvt" + (f"?{query}" if query else ""),
                       headers={"Accept-Encoding": "identity"})
        assert r.status_code == 200
        for f in decode(r.content).get("stations", {}).get("features", []):
            if inside(f):
                assert f["id"] not in out
                out[f["id"]] = {**f["properties"], "xy": tuple(f["geometry"]["coordinates"])}
    return out


def assert_same(a: dict[int, dict], b: dict[int, dict]) -> None:
    assert set(a) == set(b)
    for k in a:
        for p in ("point_count", "connectors_total", "connectors_free"):
            assert a[k][p] == b[k][p], (k, p)
        assert abs(a[k]["xy"][0] - b[k]["xy"][0]) <= 1 and abs(a[k]["xy"][1] - b[k]["xy"][1]) <= 1


def test_renderer_reads_cells_only_when_unfiltered(app, client, seeded) -> None:  # noqa: ANN001
    from services.stations.filters import StationFilter
    from tiles.grid import TileAddress

    r = app.state.tiles.renderer
    a = TileAddress(8, 212, 113)
    assert r.uses_cells(a, StationFilter(), "wgs84")
    assert not r.uses_cells(a, StationFilter.from_params({"operator": "X1"}), "wgs84")
    assert not r.uses_cells(a, StationFilter(), "gcj02")
    assert not r.uses_cells(TileAddress(12, 3337, 1786), StationFilter(), "wgs84")


@pytest.mark.parametrize("z", [3, 6, 9, 11])
def test_cells_equal_per_request_clustering(client, seeded, z) -> None:  # noqa: ANN001
    cells = clusters(client, z)
    assert sum(c["point_count"] for c in cells.values()) == len(seeded.visible)
    assert_same(cells, clusters(client, z, LIVE))


def test_triggers_keep_cells_exact(client, app, engine) -> None:  # noqa: ANN001
    seeded = seed_stations(engine, n=40, seed=11)
    ids = sorted(seeded.visible)
    with engine.begin() as conn:
        # a status push changes counts; a withdrawal hides one; a move; a new one; a delete
        conn.execute(text("UPDATE stations SET connectors_free = connectors_free + 5, connectors_total = "
                          "connectors_total + 5 WHERE id = :i"), {"i": ids[0]})
        conn.execute(text("UPDATE stations SET feed_state = 'withdrawn' WHERE id = :i"), {"i": ids[1]})
        conn.execute(text("UPDATE stations SET geom = ST_SetSRID(ST_MakePoint(113.3, 22.1), 4326), "
                          "geom_3857 = ST_Transform(ST_SetSRID(ST_MakePoint(113.3, 22.1), 4326), 3857) "
                          "WHERE id = :i"), {"i": ids[2]})
        insert_station(conn, pk_hint=900, lng=113.52, lat=22.21, operator="MA5GTEST1", connectors_total=9,
                       connectors_free=9)
        conn.execute(text("DELETE FROM stations WHERE id = :i"), {"i": ids[3]})
        conn.execute(text("UPDATE stations SET interconnected = true WHERE id = ANY(:h)"), {"h": list(seeded.hidden)})
        conn.execute(text("UPDATE stations SET name = name || '站' WHERE id = :i"), {"i": ids[4]})  # irrelevant
        v = bump_version(conn, "stations")
    wait_version(app, "stations", v)
    with engine.connect() as conn:
        n_visible = conn.execute(text("SELECT count(*) FROM stations WHERE feed_state = 'active' "
                                      "AND interconnected")).scalar()
    for z in (5, 10):
        cells = clusters(client, z)
        assert sum(c["point_count"] for c in cells.values()) == n_visible
        assert_same(cells, clusters(client, z, LIVE))
    # the incremental state equals a rebuild from scratch
    with engine.begin() as conn:
        before = conn.execute(text("SELECT z, cx, cy, point_count, connectors_total, connectors_free "
                                   "FROM tile_cluster_cells WHERE point_count > 0 ORDER BY 1, 2, 3")).all()
        conn.execute(text("SELECT zh_tile_cells_rebuild()"))
        after = conn.execute(text("SELECT z, cx, cy, point_count, connectors_total, connectors_free "
                                  "FROM tile_cluster_cells ORDER BY 1, 2, 3")).all()
    assert before == after
    # TRUNCATE stations empties the cells
    seed_stations(engine, n=0)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM tile_cluster_cells WHERE point_count > 0")).scalar() == 0


def _cell_totals(conn) -> tuple:  # noqa: ANN001
    return (conn.execute(text("SELECT coalesce(sum(point_count), 0), coalesce(sum(connectors_free), 0) "
                              "FROM tile_cluster_cells WHERE z = 0")).one(),
            conn.execute(text("SELECT coalesce(sum(point_count), 0), coalesce(sum(connectors_free), 0) "
                              "FROM tile_filter_cells WHERE z = 0")).one())


def test_cells_are_folded_at_commit(engine) -> None:  # noqa: ANN001
    """Migration 0355: a transaction's station changes reach both cell tables as it commits (not
    at each statement, so shared cells are locked only for the fold and the commit); a rolled-back
    transaction changes nothing, and no delta is left behind either way."""
    seeded = seed_stations(engine, n=12, seed=5)
    ids = sorted(seeded.visible)
    with engine.connect() as conn:
        before = _cell_totals(conn)
    with engine.connect() as conn:
        conn.execute(text("UPDATE stations SET connectors_free = connectors_free + 2 WHERE id = ANY(:ids)"),
                     {"ids": ids[:3]})
        assert _cell_totals(conn) == before  # not folded yet: the delta waits for the commit
        with engine.connect() as other:  # and another transaction never waits on the shared cells
            other.execute(text("SET lock_timeout = '1s'"))
            other.execute(text("UPDATE stations SET connectors_free = connectors_free + 1 WHERE id = :i"),
                          {"i": ids[5]})
            other.commit()
        conn.rollback()
    with engine.connect() as conn:
        after = _cell_totals(conn)
        assert after[0][0] == before[0][0] and after[0][1] == before[0][1] + 1  # only the committed +1
        assert after[1][1] == before[1][1] + 1
        conn.execute(text("UPDATE stations SET connectors_free = connectors_free + 2 WHERE id = ANY(:ids)"),
                     {"ids": ids[:3]})
        conn.commit()
        assert _cell_totals(conn)[0][1] == after[0][1] + 6 and _cell_totals(conn)[1][1] == after[1][1] + 6
        assert conn.execute(text("SELECT count(*) FROM tile_cell_deltas")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM tile_cell_flushes")).scalar() == 0
        # and the result is what a rebuild from scratch gives
        cells = conn.execute(text("SELECT z, cx, cy, point_count, connectors_free FROM tile_cluster_cells "
                                  "WHERE point_count > 0 ORDER BY 1, 2, 3")).all()
        conn.execute(text("SELECT zh_tile_cells_rebuild()"))
        assert conn.execute(text("SELECT z, cx, cy, point_count, connectors_free FROM tile_cluster_cells "
                                 "ORDER BY 1, 2, 3")).all() == cells
        conn.rollback()

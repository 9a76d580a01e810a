"""station_facet_cube (migration 0304) stays exactly the count of station_search by the six facet
codes through every kind of write, and so does station_text's copy of the codes (migration 0307);
the facets read from the cube equal those counted over station_search; zh_bigrams finds the same
2-character matches as the LIKE alone.

A database of its own: the writes here would disturb the shared search data."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from litestar.datastructures import MultiDict
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from bench.generate import generate_stations
from services import migrate
from services.geography import load_districts_into_db
from services.search import parse_search, search
from services.settings import SearchSettings
from tests.conftest import create_database, drop_database

CODES = "op, district, st, scale, ft, pay"


@pytest.fixture(scope="module")
def cube_engine() -> Iterator[Engine]:
    name = f"zhcharge_test_cube_{secrets.token_hex(3)}"
    url = create_database(name)
    engine = create_engine(url)
    try:
        migrate.upgrade(engine)
        with engine.begin() as conn:
            load_districts_into_db(conn)
            generate_stations(conn, 400, region="zhuhai", seed=3, operators=4, prefix="CUB")
        yield engine
    finally:
        engine.dispose()
        drop_database(name)


def _cube(conn) -> dict[tuple, int]:  # noqa: ANN001
    return {tuple(r[:6]): r[6] for r in conn.execute(text(
        f"SELECT {CODES}, n FROM station_facet_cube WHERE n <> 0"))}


def _counted(conn) -> dict[tuple, int]:  # noqa: ANN001
    return {tuple(r[:6]): r[6] for r in conn.execute(text(
        f"SELECT {CODES}, count(*) FROM station_search GROUP BY {CODES}"))}


def _text_codes_astray(conn) -> int:  # noqa: ANN001
    """Rows of station_text whose codes (migration 0307) differ from station_search's, or that one of
    the two tables lacks."""
    return conn.execute(text(
        f"SELECT count(*) FROM station_text t FULL JOIN station_search s ON s.id = t.id "
        f"WHERE (t.{', t.'.join(CODES.split(', '))}) IS DISTINCT FROM (s.{', s.'.join(CODES.split(', '))})")).scalar()


def _facets(conn, params: dict[str, str]) -> tuple[int | None, dict]:  # noqa: ANN001
    res = search(conn, parse_search(MultiDict({**params, "limit": "1"}), SearchSettings()), items=False)
    return res.total, res.facets


def test_cube_follows_every_write(cube_engine: Engine) -> None:
    with cube_engine.begin() as conn:
        assert _cube(conn) == _counted(conn) and sum(_cube(conn).values()) == 400
        assert _text_codes_astray(conn) == 0
        ids = [r[0] for r in conn.execute(text("SELECT id FROM stations ORDER BY id"))]
        # codes change: scale, facility types, payments, station type, district
        conn.execute(text("UPDATE stations SET scale = 'xlarge', facility_types = '{wireless}', "
                          "payments = '{cash,other}' WHERE id = ANY(:i)"), {"i": ids[:30]})
        conn.execute(text("UPDATE stations SET station_type = 255, district_adcode = NULL WHERE id = ANY(:i)"),
                     {"i": ids[30:50]})
        # a status-like change (free only) leaves the cube alone; visibility removes and restores
        conn.execute(text("UPDATE stations SET connectors_free = connectors_free + 1 WHERE id = ANY(:i)"),
                     {"i": ids[50:80]})
        conn.execute(text("UPDATE stations SET feed_state = 'withdrawn' WHERE id = ANY(:i)"), {"i": ids[80:100]})
        conn.execute(text("UPDATE stations SET interconnected = false WHERE id = ANY(:i)"), {"i": ids[100:110]})
        conn.execute(text("UPDATE stations SET interconnected = true WHERE id = ANY(:i)"), {"i": ids[100:105]})
        conn.execute(text("DELETE FROM stations WHERE id = ANY(:i)"), {"i": ids[110:130]})
        generate_stations(conn, 50, region="zhuhai", seed=4, operators=2, prefix="CUC")
        assert _cube(conn) == _counted(conn)
        assert _text_codes_astray(conn) == 0  # the text table's copy of the codes followed every write
        assert sum(_cube(conn).values()) == 400 - 20 - 5 - 20 + 50
    with cube_engine.begin() as conn:
        conn.execute(text("TRUNCATE station_search, station_text"))
        assert conn.execute(text("SELECT count(*) FROM station_facet_cube")).scalar() == 0
        conn.rollback()


@pytest.mark.parametrize("params", [
    {},
    {"operator": "CUB000001"},
    {"operator": "CUB000001,CUB000003", "facility_type": "dc", "payment": "card,cash"},
    {"station_type": "1,100", "scale": "small,medium"},
    {"district": "440402,440403", "facility_type": "ac,acdc"},
])
def test_cube_facets_equal_the_counted_ones(cube_engine: Engine, params: dict[str, str]) -> None:
    """The same facets read from the cube (dimensions only) and counted over station_search (a bbox
    around the whole world makes the search count rows)."""
    with cube_engine.connect() as conn:
        from_cube = _facets(conn, params)
        counted = _facets(conn, {**params, "bbox": "-180,-85,180,85"})
    assert from_cube == counted
    assert from_cube[0] and from_cube[0] > 0


@pytest.mark.parametrize("q", ["长隆", "拱北", "充电", "站1", "停车"])
def test_two_character_queries_find_what_like_finds(cube_engine: Engine, q: str) -> None:
    with cube_engine.connect() as conn:
        like = {r[0] for r in conn.execute(text(
            "SELECT id FROM station_text WHERE t LIKE :p"), {"p": f"%{q}%"})}
        indexed = {r[0] for r in conn.execute(text(
            "SELECT id FROM station_text WHERE zh_bigrams(t) @> ARRAY[CAST(:q AS text)] AND t LIKE :p"),
            {"q": q, "p": f"%{q}%"})}
        total, _ = _facets(conn, {"q": q})
    assert like and indexed == like and total == len(like)

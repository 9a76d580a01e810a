"""Name search: Chinese substrings (1, 2 and more characters), full pinyin, initials, operator and address."""

from __future__ import annotations

import pytest
from litestar.datastructures import MultiDict

from services.search import parse_search, search
from services.stations.vocab import pinyin_of
from tests.integration.search.conftest import search_settings

pytestmark = pytest.mark.usefixtures("search_data")


def _ids(engine, q: str, **extra: str) -> list[int]:  # noqa: ANN001
    query = parse_search(MultiDict({"q": q, "limit": "500", **extra}), search_settings())
    with engine.connect() as conn:
        return [it["id"] for it in search(conn, query).items]


def test_place_name_reading() -> None:
    assert pinyin_of("长隆海洋王国充电站")[0].startswith("changlong")
    assert pinyin_of("长隆")[1] == "cl"


@pytest.mark.parametrize("q", ["长隆", "隆", "长隆海洋王国", "changlong", "ChangLong", "chang long", "clhywg",
                               "haiyangwangguo"])
def test_changlong(engine, search_data, q) -> None:  # noqa: ANN001
    assert search_data.hand_ids["长隆海洋王国充电站"] in _ids(engine, q)


@pytest.mark.parametrize("q,station", [
    ("拱北", "拱北口岸停车场充电站"), ("gongbei", "拱北口岸停车场充电站"), ("gbka", "拱北口岸停车场充电站"),
    ("井岸", "斗门井岸站"), ("doumen", "斗门井岸站"), ("情侣", "情侣路驿站"), ("qinglv", "情侣路驿站"),
    ("迎宾南路", "拱北口岸停车场充电站"),  # address
    ("星星充电", "拱北口岸停车场充电站"), ("xxcd", "拱北口岸停车场充电站"),  # operator name and its initials
    ("富祥湾", "长隆海洋王国充电站"),
])
def test_substring_pinyin_initials(engine, search_data, q, station) -> None:  # noqa: ANN001
    assert search_data.hand_ids[station] in _ids(engine, q)


def test_no_false_match(engine, search_data) -> None:  # noqa: ANN001
    ids = _ids(engine, "情侣")
    assert search_data.hand_ids["长隆海洋王国充电站"] not in ids


def test_relevance_ranks_exact_name_first(engine, search_data) -> None:  # noqa: ANN001
    ids = _ids(engine, "斗门井岸站")
    assert ids[0] == search_data.hand_ids["斗门井岸站"]


def test_like_wildcards_are_literal(engine) -> None:  # noqa: ANN001
    assert _ids(engine, "%") == []
    assert _ids(engine, "_") == []


def test_text_combines_with_facets(engine, search_data) -> None:  # noqa: ANN001
    query = parse_search(MultiDict({"q": "充电站", "operator": "SHD000001"}), search_settings())
    with engine.connect() as conn:
        res = search(conn, query)
    assert {it["operator_id"] for it in res.items} == {"SHD000001"}
    ops = {fv["value"]: fv["count"] for fv in res.facets["operator"]}
    assert ops["SHD000001"] == 2  # 长隆海洋王国充电站, 拱北口岸停车场充电站

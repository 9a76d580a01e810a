"""``zhcharge tiles export``: a PMTiles archive read back with the ``pmtiles`` reader holds exactly the
server's station tiles (features, properties, geometry), no empty tile, and the right metadata."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType
from sqlalchemy import text

from services.stations.summary import bump_version
from tests.integration.tiles.conftest import ZHUHAI, decode, inside, tiles_covering
from tiles.export import export_stations

MAXZOOM = 14


@pytest.fixture(scope="module")
def priced(seeded, engine):  # noqa: ANN001, ANN201
    """Some stations with a price now, so price_now travels through the archive too."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET price_now = 0.8 + (id % 7) * 0.15 WHERE id % 3 = 0"))
        bump_version(conn, "stations")
    return seeded


@pytest.fixture(scope="module")
def archive(priced, settings, engine, tmp_path_factory) -> Iterator[tuple[Path, object]]:  # noqa: ANN001
    out = tmp_path_factory.mktemp("pmtiles") / "stations.pmtiles"
    result = export_stations(settings, engine.url, out, minzoom=0, maxzoom=MAXZOOM, jobs=2)
    yield out, result


def read_archive(path: Path) -> tuple[dict, dict, dict[tuple[int, int, int], bytes]]:
    with open(path, "rb") as f:
        get = MmapSource(f)
        reader = Reader(get)
        tiles = {zxy: bytes(data) for zxy, data in all_tiles(get)}
        return reader.header(), reader.metadata(), tiles


def server_tile(client, z: int, x: int, y: int) -> bytes:  # noqa: ANN001
    r = client.get(f"/tiles/stations/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200, r.text
    return r.content


def test_every_archived_tile_is_the_servers_tile(archive, client) -> None:  # noqa: ANN001
    path, result = archive
    header, _, tiles = read_archive(path)
    assert header["tile_compression"] == Compression.GZIP and header["tile_type"] == TileType.MVT
    assert header["clustered"]
    assert len(tiles) == result.tiles == header["addressed_tiles_count"]
    zooms = sorted({z for z, _, _ in tiles})
    assert zooms == list(range(0, MAXZOOM + 1))
    for (z, x, y), data in tiles.items():
        raw = gzip.decompress(data)
        mine = decode(raw)
        theirs = decode(server_tile(client, z, x, y))
        assert mine == theirs, (z, x, y)  # every feature: id, properties and geometry
        assert mine["stations"]["features"], f"empty tile {z}/{x}/{y} in the archive"
    # clusters below the cluster zoom, single stations from it on (with their price now)
    low = decode(gzip.decompress(tiles[min(t for t in tiles if t[0] == 9)]))["stations"]["features"]
    assert all("point_count" in f["properties"] for f in low)
    high = [f for (z, _, _), d in tiles.items() if z == 13 for f in decode(gzip.decompress(d))["stations"]["features"]]
    assert high and not any("point_count" in f["properties"] for f in high)
    assert any("price_now" in f["properties"] for f in high)


def test_no_tile_with_a_station_is_missing_and_none_is_empty(archive, client, priced) -> None:  # noqa: ANN001
    path, _ = archive
    _, _, tiles = read_archive(path)
    for z in (3, 8, 11, 12, 14):
        for t in tiles_covering(ZHUHAI, z):
            layer = decode(server_tile(client, *t)).get("stations")
            has = bool(layer and layer["features"])
            assert has == (t in tiles), (t, has)
    # every visible station is in the deepest zoom exactly once (counting only its own tile)
    seen = [f["id"] for (z, _, _), d in tiles.items() if z == MAXZOOM
            for f in decode(gzip.decompress(d))["stations"]["features"] if inside(f)]
    assert sorted(seen) == sorted(priced.visible)
    assert not set(seen) & priced.hidden


def test_metadata_bounds_and_center(archive, priced) -> None:  # noqa: ANN001
    path, result = archive
    header, meta, _ = read_archive(path)
    lngs = [v["lng"] for v in priced.visible.values()]
    lats = [v["lat"] for v in priced.visible.values()]
    w, s, e, n = (header[k] / 1e7 for k in ("min_lon_e7", "min_lat_e7", "max_lon_e7", "max_lat_e7"))
    # the visible stations' extent, widened by at most the tile buffer at the cluster zoom (~0.0014°)
    assert min(lngs) - 0.002 < w <= min(lngs) and max(lngs) <= e < max(lngs) + 0.002
    assert min(lats) - 0.002 < s <= min(lats) and max(lats) <= n < max(lats) + 0.002
    assert meta["bounds"] == pytest.approx([w, s, e, n], abs=1e-6)
    assert w < header["center_lon_e7"] / 1e7 < e and s < header["center_lat_e7"] / 1e7 < n
    assert 8 <= header["center_zoom"] <= 11 and meta["center"][2] == header["center_zoom"]
    assert (header["min_zoom"], header["max_zoom"]) == (0, MAXZOOM) == (meta["minzoom"], meta["maxzoom"])
    (layer,) = meta["vector_layers"]
    assert layer["id"] == "stations" and (layer["minzoom"], layer["maxzoom"]) == (0, MAXZOOM)
    assert {"id", "name", "operator", "availability", "connectors_free", "price_now", "point_count"} <= set(layer["fields"])
    assert meta["attribution"] and meta["format"] == "pbf" and meta["cluster_below_zoom"] == 12
    assert meta["stations"] == len(priced.visible) == result.stations
    assert result.bytes == path.stat().st_size and result.contents <= result.tiles

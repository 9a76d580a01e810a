"""The map's side of the PMTiles option: ``/map/status.json`` (live status painted on an archive's
features) and ``/map/pmtiles/NAME.pmtiles`` (the archive served with byte ranges)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from services.settings import DatabaseSettings, TileSettings
from services.stations.summary import bump_version
from tests.integration.tiles.conftest import ZHUHAI, decode, wait_version
from tests.integration.tiles.test_pmtiles import archive, priced, read_archive  # noqa: F401 - fixtures

@pytest.fixture(scope="module")
def served(db_url, database, archive, tmp_path_factory) -> Iterator[tuple[TestClient, Path]]:  # noqa: ANN001
    """The app with ZHCHARGE_TILES_PMTILES_URL set and the archive in <data dir>/pmtiles."""
    from portal_site.app import create_app
    from tests.conftest import make_settings

    data = tmp_path_factory.mktemp("data")
    (data / "pmtiles").mkdir()
    target = data / "pmtiles" / "stations.pmtiles"
    target.write_bytes(archive[0].read_bytes())
    s = make_settings(db_url, data)
    s.db = DatabaseSettings(database_url=db_url, data_dir=data)
    s.tiles = TileSettings(pmtiles_url="/map/pmtiles/stations.pmtiles")
    with TestClient(create_app(s, database=database), base_url="http://127.0.0.1:8000") as c:
        yield c, target


def test_archive_is_served_with_byte_ranges(served) -> None:  # noqa: ANN001
    c, target = served
    body = target.read_bytes()
    size = len(body)
    r = c.get("/map/pmtiles/stations.pmtiles", headers={"Range": "bytes=0-16383", "Accept-Encoding": "gzip"})
    assert r.status_code == 206
    assert r.content == body[:16384] and r.headers["content-length"] == "16384"
    assert r.headers["content-range"] == f"bytes 0-16383/{size}" and r.headers["accept-ranges"] == "bytes"
    assert "content-encoding" not in r.headers
    etag = r.headers["etag"]
    assert etag.startswith('"')
    tail = c.get("/map/pmtiles/stations.pmtiles", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == body[-100:]
    past = c.get("/map/pmtiles/stations.pmtiles", headers={"Range": f"bytes={size - 10}-{size + 1000}"})
    assert past.status_code == 206 and past.content == body[-10:]
    r416 = c.get("/map/pmtiles/stations.pmtiles", headers={"Range": f"bytes={size}-"})
    assert r416.status_code == 416 and r416.headers["content-range"] == f"bytes */{size}"
    whole = c.get("/map/pmtiles/stations.pmtiles")
    assert whole.status_code == 200 and whole.content == body and whole.headers["etag"] == etag
    assert c.get("/map/pmtiles/stations.pmtiles", headers={"If-None-Match": etag}).status_code == 304
    other = c.get("/map/pmtiles/stations.pmtiles", headers={"Range": "bytes=0-9", "If-Range": '"old"'})
    assert other.status_code == 200 and other.content == body  # another archive's range: the whole new one
    for name in ("missing.pmtiles", "..%2Fpg-password", "stations.mvt", "%00.pmtiles"):
        assert c.get(f"/map/pmtiles/{name}").status_code in (400, 404), name


def test_map_page_config_names_the_archive(served) -> None:  # noqa: ANN001
    c, _ = served
    html = c.get("/map").text
    assert '"pmtilesUrl": "/map/pmtiles/stations.pmtiles"' in html and "/static/vendor/pmtiles.js" in html


def test_map_page_without_the_setting_is_unchanged(client) -> None:  # noqa: ANN001
    html = client.get("/map").text
    assert '"pmtilesUrl": null' in html and "pmtiles.js" not in html


def test_live_status_of_stations_and_clusters(served, archive, priced, engine) -> None:  # noqa: ANN001
    c, _ = served
    box = ",".join(str(v) for v in ZHUHAI)
    r = c.get(f"/map/status.json?z=13&bbox={box}")
    assert r.status_code == 200, r.text
    doc = r.json()
    rows = {row[0]: row for row in doc["stations"]}
    assert set(rows) == set(priced.visible) and not doc["clusters"] and not doc["truncated"]
    with engine.connect() as conn:
        db = {i: (a, f, t, p) for i, a, f, t, p in conn.execute(text(
            "SELECT id, availability, connectors_free, connectors_total, price_now::float8 FROM stations"))}
    for i, row in rows.items():
        assert tuple(row[1:]) == db[i]
    # 304 by ETag until the data version moves
    etag = r.headers["etag"]
    assert c.get(f"/map/status.json?z=13&bbox={box}", headers={"If-None-Match": etag}).status_code == 304
    # clusters: the ids of the archive's cluster features at that zoom, with their live counts
    _, _, tiles = read_archive(archive[0])
    z = 9
    archived = {f["id"]: f["properties"] for t, d in tiles.items() if t[0] == z
                for f in decode(gzip.decompress(d))["stations"]["features"]}
    clusters = {row[0]: row for row in c.get(f"/map/status.json?z={z}&bbox={box}").json()["clusters"]}
    assert set(archived) <= set(clusters)
    for i, props in archived.items():
        assert clusters[i][1:] == [props["point_count"], props["connectors_total"], props["connectors_free"]]
    # a status change reaches the endpoint (new ETag), not the archive
    pk = next(iter(priced.visible))
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET availability = 'offline', connectors_free = 0 WHERE id = :i"), {"i": pk})
        v = bump_version(conn, "stations")
    wait_version(c.app, "stations", v)
    r2 = c.get(f"/map/status.json?z=13&bbox={box}", headers={"If-None-Match": etag})
    assert r2.status_code == 200 and r2.json()["version"] == v
    assert next(row for row in r2.json()["stations"] if row[0] == pk)[1:3] == ["offline", 0]


@pytest.mark.parametrize("query", ["z=13", "bbox=113,22,114,23", "z=x&bbox=113,22,114,23", "z=13&bbox=1,2,3",
                                   "z=13&bbox=114,22,113,23", "z=99&bbox=113,22,114,23", "z=13&bbox=113,22,114,23&q=1",
                                   "z=8&bbox=-180,-85,180,85"])
def test_live_status_bad_input_is_400(served, query) -> None:  # noqa: ANN001
    c, _ = served
    r = c.get(f"/map/status.json?{query}")
    assert r.status_code == 400, (query, r.text)


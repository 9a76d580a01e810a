"""Open dumps: ``/api/v1/export/stations.geojson`` and ``.csv`` equal what the search API shows,
ETag/Last-Modified/304, gzip; daily snapshots written by one process, listed, served and pruned."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import text

from portal_site.routes.api import CSV_COLUMNS
from services.exports.snapshots import SNAPSHOT_LOCK, china_today, list_snapshots, snapshot_job, write_snapshot
from services.settings import ExportSettings
from services.stations.summary import bump_version
from tests.conftest import make_settings
from tests.integration.search.conftest import all_visible, search_data, search_settings  # noqa: F401 - fixture

pytestmark = pytest.mark.usefixtures("search_data")

EXP = "/api/v1/export"


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("snapshots")


@pytest.fixture(scope="module")
def export_app(db_url, tmp_path_factory, database, snapshot_dir):  # noqa: ANN001, ANN201
    from portal_site.app import create_app

    settings = make_settings(db_url, tmp_path_factory.mktemp("export-app"))
    settings.search = search_settings()
    settings.exports = ExportSettings(snapshot_dir=snapshot_dir)
    return create_app(settings, database=database)


@pytest.fixture()
def api(export_app) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(export_app, base_url="http://127.0.0.1:8000") as c:
        yield c


def _features(doc: dict) -> list[dict]:
    return doc["features"]


# --- live dumps ---------------------------------------------------------------------------------
def test_geojson_dump_is_every_feature_the_search_api_shows(api, engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:  # microseconds ending in 0: PostgreSQL's JSON text drops that zero, isoformat() not
        conn.execute(text("UPDATE stations SET updated_at = '2026-12-06 11:34:51.44960+00' WHERE id = "
                          "(SELECT min(id) FROM stations WHERE feed_state = 'active' AND interconnected)"))
        bump_version(conn)
    r = api.get(f"{EXP}/stations.geojson")
    assert r.status_code == 200, r.text[:300]
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["content-disposition"].startswith('attachment; filename="zhcharge-stations-')
    dump = r.json()
    assert dump["type"] == "FeatureCollection" and isinstance(dump["data_version"], int)
    datetime.fromisoformat(dump["generated_at"])
    search = api.get("/api/v1/stations.geojson", params={"limit": 10000}).json()
    assert search["total"] == len(dump["features"]) == int(r.headers["x-total-count"]) == len(all_visible(engine))
    assert dump["features"] == search["features"]  # the same items, the same order (by id)


def test_csv_dump_is_the_search_apis_csv(api) -> None:  # noqa: ANN001
    r = api.get(f"{EXP}/stations.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    search = api.get("/api/v1/stations.csv")
    assert r.content == search.content  # byte for byte: BOM, header, rows
    assert r.content.decode("utf-8-sig").splitlines()[0] == ",".join(CSV_COLUMNS)


def test_etag_last_modified_and_304(api, engine) -> None:  # noqa: ANN001
    for path in (f"{EXP}/stations.geojson", f"{EXP}/stations.csv"):
        r = api.get(path)
        etag, modified = r.headers["etag"], r.headers["last-modified"]
        assert etag.startswith('W/"')
        again = api.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert api.get(path, headers={"If-None-Match": f'"other", {etag}'}).status_code == 304
        assert api.get(path, headers={"If-None-Match": "*"}).status_code == 304
        assert api.get(path, headers={"If-Modified-Since": modified}).status_code == 304
        earlier = format_datetime(datetime.now(UTC) - timedelta(days=400), usegmt=True)
        assert api.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
        assert api.get(path, headers={"If-Modified-Since": "not a date"}).status_code == 200
        # If-None-Match wins over If-Modified-Since (RFC 9110)
        assert api.get(path, headers={"If-None-Match": '"stale"', "If-Modified-Since": modified}).status_code == 200
    etag = api.get(f"{EXP}/stations.csv").headers["etag"]
    time.sleep(1.1)  # Last-Modified has one-second resolution
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET updated_at = now() WHERE id = (SELECT min(id) FROM stations "
                          "WHERE feed_state = 'active' AND interconnected)"))
        bump_version(conn)
    r = api.get(f"{EXP}/stations.csv", headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag


def test_gzip_when_accepted(api) -> None:  # noqa: ANN001
    plain = api.get(f"{EXP}/stations.geojson", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    with api.stream("GET", f"{EXP}/stations.geojson", headers={"Accept-Encoding": "gzip"}) as r:
        assert r.headers["content-encoding"] == "gzip"
        raw = b"".join(r.iter_raw())
    assert len(raw) < len(plain.content) / 4
    assert json.loads(gzip.decompress(raw))["features"] == plain.json()["features"]


def test_unknown_parameters_are_refused_by_name(api) -> None:  # noqa: ANN001
    for path in (f"{EXP}/stations.geojson", f"{EXP}/stations.csv", f"{EXP}/", f"{EXP}/2026-12-06/stations.csv.gz"):
        r = api.get(path, params={"district": "440402"})
        assert r.status_code == 400 and r.json()["param"] == "district", (path, r.text)


# --- snapshots ----------------------------------------------------------------------------------
def test_snapshot_written_listed_and_served(api, engine, snapshot_dir) -> None:  # noqa: ANN001
    now = datetime.now(UTC)
    snap = write_snapshot(engine, snapshot_dir, CSV_COLUMNS, now=now, force=True)
    assert snap is not None and snap.day == china_today(now)
    assert write_snapshot(engine, snapshot_dir, CSV_COLUMNS, now=now) is None  # written once a day
    visible = len(all_visible(engine))
    assert snap.count == visible
    day = snap.day.isoformat()
    listing = api.get(f"{EXP}/")
    assert listing.status_code == 200
    body = listing.json()
    assert body["keep_days"] == 30
    assert body["live"] == {"geojson": f"http://127.0.0.1:8000{EXP}/stations.geojson",
                            "csv": f"http://127.0.0.1:8000{EXP}/stations.csv"}
    entry = body["snapshots"][0]
    assert entry["date"] == day and entry["count"] == visible
    assert {f["name"] for f in entry["files"]} == {"stations.geojson.gz", "stations.csv.gz"}
    assert api.get(EXP).json() == body  # with or without the trailing slash
    assert api.get(f"{EXP}/", headers={"If-None-Match": listing.headers["etag"]}).status_code == 304
    for f in entry["files"]:
        assert f["url"] == f"http://127.0.0.1:8000{EXP}/{day}/{f['name']}"
        with api.stream("GET", f["url"], headers={"Accept-Encoding": "gzip"}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "application/gzip"
            assert "content-encoding" not in r.headers  # the gzip file as it is, not compressed again
            raw = b"".join(r.iter_raw())
            etag = r.headers["etag"]
        assert len(raw) == f["bytes"] and hashlib.sha256(raw).hexdigest() == f["sha256"]
        assert api.get(f["url"], headers={"If-None-Match": etag}).status_code == 304
        content = gzip.decompress(raw)
        if f["format"] == "geojson":
            doc = json.loads(content)
            assert len(doc["features"]) == visible
            live = api.get(f"{EXP}/stations.geojson").json()
            assert [x["id"] for x in doc["features"]] == [x["id"] for x in live["features"]]
        else:
            rows = content.decode("utf-8-sig").splitlines()
            assert rows[0] == ",".join(CSV_COLUMNS) and len(rows) == visible + 1
    for path, status in ((f"{EXP}/2001-01-01/stations.csv.gz", 404), (f"{EXP}/{day}/manifest.json", 404),
                         (f"{EXP}/{day}/stations.csv", 404), (f"{EXP}/2026-13-45/stations.csv.gz", 404),
                         (f"{EXP}/yesterday/stations.csv.gz", 400), (f"{EXP}/{day}/..%2F..%2Fetc", 404)):
        r = api.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:200])
        assert r.json()["error"]


def test_snapshots_older_than_30_days_are_deleted(engine, tmp_path) -> None:  # noqa: ANN001
    today = date(2026, 12, 6)
    for days_ago in (45, 30, 29, 1):
        write_snapshot(engine, tmp_path, CSV_COLUMNS, day=today - timedelta(days=days_ago),
                       now=datetime(2026, 12, 6, 1, tzinfo=UTC) - timedelta(days=days_ago))
    (tmp_path / ".tmp-2026-10-01-1").mkdir()
    old = time.time() - 3 * 86400
    import os

    os.utime(tmp_path / ".tmp-2026-10-01-1", (old, old))
    write_snapshot(engine, tmp_path, CSV_COLUMNS, now=datetime(2026, 12, 6, 1, tzinfo=UTC))
    assert [s.day for s in list_snapshots(tmp_path)] == [today, today - timedelta(days=1), today - timedelta(days=29)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-11-07", "2026-12-05", "2026-12-06"]


def test_one_process_writes_a_snapshot(engine, tmp_path) -> None:  # noqa: ANN001
    with engine.connect() as holder:  # another process holds the writer's lock
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": SNAPSHOT_LOCK})
        assert write_snapshot(engine, tmp_path, CSV_COLUMNS) is None
        assert list_snapshots(tmp_path) == []
        holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SNAPSHOT_LOCK})
        holder.commit()
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(write_snapshot(engine, tmp_path, CSV_COLUMNS)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r is not None for r in results) == 1 and len(results) == 4
    assert len(list_snapshots(tmp_path)) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_the_daily_job_writes_todays_snapshot(engine, tmp_path) -> None:  # noqa: ANN001
    job = snapshot_job(engine, tmp_path, CSV_COLUMNS, interval_s=0.2, first_delay_s=0.05)
    job.start()
    try:
        deadline = time.monotonic() + 60
        while not list_snapshots(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        job.stop(10)
    assert [s.day for s in list_snapshots(tmp_path)] == [china_today()]


def test_cli_writes_and_lists_snapshots(db_url, tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from portal_site.cli import main

    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    monkeypatch.setenv("ZHCHARGE_EXPORTS_SNAPSHOT_DIR", str(tmp_path))
    r = CliRunner().invoke(main, ["exports", "snapshot"])
    assert r.exit_code == 0, r.output
    assert "stations" in r.output and "stations.csv.gz" in r.output
    r = CliRunner().invoke(main, ["exports", "snapshot"])
    assert r.exit_code == 0 and "nothing written" in r.output
    r = CliRunner().invoke(main, ["exports", "list", "--json"])
    assert r.exit_code == 0
    listed = json.loads(r.output)
    assert listed[0]["date"] == china_today().isoformat()
    with gzip.open(tmp_path / listed[0]["date"] / "stations.csv.gz") as fh:
        assert io.TextIOWrapper(fh, encoding="utf-8-sig").readline().strip() == ",".join(CSV_COLUMNS)

"""API keys (hashed, create/list/revoke, CLI) and the shared fixed-window rate limiter."""

from __future__ import annotations

import hashlib
import time

import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from sqlalchemy import text

from services.errors import BadRequest, NotFound
from services.search.apikeys import create_key, list_keys, lookup_key, revoke_key
from tests.integration.search.conftest import make_search_app


@pytest.fixture()
def tight(db_url, tmp_path, database, engine):  # noqa: ANN001, ANN201
    """An app allowing 3 anonymous and 6 keyed requests a minute."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM api_rate"))
    app = make_search_app(db_url, tmp_path, database, anonymous_rate_per_min=3, key_rate_per_min=6)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def _wait_for_fresh_window() -> None:
    """Avoid a test straddling a minute boundary (the windows are calendar minutes)."""
    if time.time() % 60 > 55:
        time.sleep(61 - time.time() % 60)


def test_keys_are_stored_hashed(engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        key_id, plain = create_key(conn, 42, "my app")
        row = conn.execute(text("SELECT key_prefix, key_hash FROM api_keys WHERE id = :i"), {"i": key_id}).one()
        assert plain.startswith(row.key_prefix + "_")
        assert row.key_hash == hashlib.sha256(plain.encode()).hexdigest()
        assert plain not in str(conn.execute(text("SELECT * FROM api_keys WHERE id = :i"), {"i": key_id}).one())
        assert lookup_key(conn, plain)["id"] == key_id
        listed = [k for k in list_keys(conn, 42) if k["id"] == key_id][0]
        assert listed["name"] == "my app" and "key_hash" not in listed
        assert all(k["owner_user_id"] == 42 for k in list_keys(conn, 42))
        with pytest.raises(NotFound):
            revoke_key(conn, key_id, owner_user_id=7)  # not the owner
        revoke_key(conn, key_id, owner_user_id=42)
        revoke_key(conn, key_id)  # idempotent
        assert lookup_key(conn, plain) is None
        with pytest.raises(BadRequest):
            create_key(conn, None, "  ")


def test_anonymous_limit_then_429(tight) -> None:  # noqa: ANN001
    _wait_for_fresh_window()
    seen = []
    for _ in range(3):
        r = tight.get("/api/v1/reference")
        assert r.status_code == 200
        seen.append(int(r.headers["X-RateLimit-Remaining"]))
        assert r.headers["X-RateLimit-Limit"] == "3"
        assert int(r.headers["X-RateLimit-Reset"]) > time.time()
    assert seen == [2, 1, 0]
    r = tight.get("/api/v1/stations?limit=1")
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert r.json()["error"] == "RateLimited"
    # errors are counted and carry the headers too
    assert "X-RateLimit-Limit" in tight.get("/api/v1/stations?bbox=x").headers


def test_key_raises_the_limit_and_revocation_is_401(tight, engine) -> None:  # noqa: ANN001
    _wait_for_fresh_window()
    with engine.begin() as conn:
        key_id, plain = create_key(conn, None, "limits test")
        key2_id, plain2 = create_key(conn, None, "custom rate", rate_per_min=2)
    for _ in range(4):
        tight.get("/api/v1/reference")  # the anonymous quota is spent
    r = tight.get("/api/v1/reference", headers={"X-API-Key": plain})
    assert r.status_code == 200 and r.headers["X-RateLimit-Limit"] == "6"
    r = tight.get(f"/api/v1/reference?api_key={plain}")
    assert r.status_code == 200 and r.headers["X-RateLimit-Remaining"] == "4"
    assert tight.get("/api/v1/reference", headers={"X-API-Key": plain2}).headers["X-RateLimit-Limit"] == "2"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT last_used_at FROM api_keys WHERE id = :i"), {"i": key_id}).scalar()
    with engine.begin() as conn:
        revoke_key(conn, key_id)
    r = tight.get("/api/v1/reference", headers={"X-API-Key": plain})
    assert r.status_code == 401 and r.json()["param"] == "api_key"
    assert tight.get("/api/v1/reference", headers={"X-API-Key": "zk_nope_nope"}).status_code == 401


def test_limit_is_shared_between_app_instances(db_url, tmp_path, database, engine) -> None:  # noqa: ANN001
    """Two apps (as two worker processes would be) count against one window."""
    _wait_for_fresh_window()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM api_rate"))
    a = make_search_app(db_url, tmp_path, database, anonymous_rate_per_min=4)
    b = make_search_app(db_url, tmp_path, database, anonymous_rate_per_min=4)
    with TestClient(a) as ca, TestClient(b) as cb:
        codes = [c.get("/api/v1/reference").status_code for c in (ca, cb, ca, cb, ca)]
    assert codes == [200, 200, 200, 200, 429]


def test_non_api_paths_are_not_limited(tight) -> None:  # noqa: ANN001
    _wait_for_fresh_window()
    for _ in range(5):
        r = tight.get("/healthz")
        assert "X-RateLimit-Limit" not in r.headers


def test_cli(db_url, monkeypatch) -> None:  # noqa: ANN001
    from portal_site.cli import main

    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    runner = CliRunner()
    r = runner.invoke(main, ["apikeys", "create", "cli app", "--owner", "9", "--rate", "50"])
    assert r.exit_code == 0, r.output
    key_id = int(r.output.split("id: ")[1].split()[0])
    plain = r.output.split("key: ")[1].split()[0]
    assert plain.startswith("zk_")
    r = runner.invoke(main, ["apikeys", "list", "--owner", "9"])
    assert r.exit_code == 0 and "cli app" in r.output and plain not in r.output
    r = runner.invoke(main, ["apikeys", "revoke", str(key_id)])
    assert r.exit_code == 0 and "revoked" in r.output
    r = runner.invoke(main, ["apikeys", "revoke", "99999999"])
    assert r.exit_code == 1 and "no API key" in r.output

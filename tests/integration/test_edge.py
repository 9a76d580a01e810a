"""The edge (issue 13): security headers and CORS per route class, production defaults, the
client address behind (un)trusted proxies, small leaks, and the set-up nits."""

from __future__ import annotations

import logging
import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from litestar.testing import TestClient
from sqlalchemy import text

from portal_site.accesslog import PushSummaryFilter
from services.settings import AppSettings, ConfigurationError, SearchSettings
from tests.accounts_helpers import create_operator_user, csrf_from, login
from tests.conftest import ServerThread, make_settings

HTML = {"accept": "text/html"}
EVIL = "https://evil.example"


def test_security_headers_on_every_route_class(client) -> None:  # noqa: ANN001
    for path, headers in (("/", HTML), ("/map", HTML), ("/login", HTML), ("/backoffice/", HTML),
                          ("/api/v1/reference", {}), ("/tiles/stations.json", {}), ("/healthz", {}),
                          ("/no/such/page", HTML), ("/api/v1/stations?operater=1", {})):
        r = client.get(path, headers=headers, follow_redirects=False)
        assert r.headers["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert "strict-transport-security" not in r.headers  # dev/test: plain http on loopback


def test_cors_only_on_the_open_api_and_tiles_and_never_with_credentials(client) -> None:  # noqa: ANN001
    for path in ("/api/v1/reference", "/api/v1/stations?limit=1", "/tiles/stations.json",
                 "/tiles/stations/10/850/450.mvt", "/api/v1/stations?operater=x"):
        r = client.get(path, headers={"Origin": EVIL})
        assert r.headers.get("access-control-allow-origin") == "*", path
        assert "access-control-allow-credentials" not in r.headers, path
        assert "etag" in r.headers.get("access-control-expose-headers", "").lower(), path
    pre = client.options("/api/v1/stations", headers={"Origin": EVIL, "Access-Control-Request-Method": "GET"})
    assert pre.status_code in (200, 204) and pre.headers.get("access-control-allow-origin") == "*"
    assert "GET" in pre.headers.get("access-control-allow-methods", "")
    for path in ("/backoffice/", "/admin/", "/login", "/", "/healthz"):
        r = client.get(path, headers={"Origin": EVIL, **HTML}, follow_redirects=False)
        assert not any(h.startswith("access-control-") for h in r.headers), (path, dict(r.headers))
    r = client.post("/evcs/v20160701/query_token", content=b"{}", headers={"Origin": EVIL})
    assert not any(h.startswith("access-control-") for h in r.headers)


def test_production_refuses_weak_secret_keys_and_hides_the_outbox(settings, database) -> None:  # noqa: ANN001
    from portal_site.app import create_app

    for key in (None, "dev-only-change-me-zhcharge-secret", "short-but-not-32-chars"):
        s = make_settings(settings.db.database_url, settings.app.upload_dir.parent)
        s.app = AppSettings(env="prod", run_scheduler=False, upload_dir=s.app.upload_dir,
                            **({"secret_key": key} if key is not None else {}))
        with pytest.raises(ConfigurationError, match="ZHCHARGE_SECRET_KEY"):
            create_app(s, database=database)
    s = make_settings(settings.db.database_url, settings.app.upload_dir.parent)
    s.app = AppSettings(env="prod", run_scheduler=False, upload_dir=s.app.upload_dir, secret_key=secrets.token_urlsafe(40))
    app = create_app(s, database=database)
    assert not any(r.path == "/dev/outbox" for r in app.routes)  # not even mounted
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        r = c.get("/login", headers=HTML)
        assert r.headers["strict-transport-security"].startswith("max-age=")
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        assert c.get("/dev/outbox", headers=HTML).status_code == 404


def test_serve_refuses_production_without_a_key(tmp_path) -> None:  # noqa: ANN001
    env = {"ZHCHARGE_ENV": "prod", "ZHCHARGE_SECRET_KEY": "tooshort", "PATH": "/usr/bin:/bin"}
    zhcharge = str(Path(sys.executable).parent / "zhcharge")
    proc = subprocess.run([zhcharge, "serve", "--port", "1"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "at least 32 characters" in proc.stderr


def test_dev_outbox_only_for_clients_on_this_machine(settings, database) -> None:  # noqa: ANN001
    from portal_site.app import create_app

    s = make_settings(settings.db.database_url, settings.app.upload_dir.parent)
    s.app = AppSettings(env="dev", run_scheduler=False, upload_dir=s.app.upload_dir)
    app = create_app(s, database=database)
    with ServerThread(app) as srv:  # a real loopback client
        assert httpx.get(f"{srv.url}/dev/outbox", headers=HTML).status_code == 200
    from tests.integration.accounts.test_rate_limits import client_from

    with client_from(app, "203.0.113.7") as remote:
        assert remote.get("/dev/outbox", headers=HTML).status_code == 404


def _limited_app(settings, database, trusted: str):  # noqa: ANN001, ANN202
    from portal_site.app import create_app

    s = make_settings(settings.db.database_url, settings.app.upload_dir.parent)
    s.app = AppSettings(env="test", run_scheduler=False, upload_dir=s.app.upload_dir, trusted_proxies=trusted)
    s.search = SearchSettings(anonymous_rate_per_min=5)
    return create_app(s, database=database)


def _ip() -> str:
    return f"198.51.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def test_forwarding_headers_cannot_buy_a_fresh_quota(settings, database, engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM api_rate"))
    with ServerThread(_limited_app(settings, database, "")) as srv:
        codes = [httpx.get(f"{srv.url}/api/v1/reference", headers={"X-Forwarded-For": _ip(), "X-Real-IP": _ip()})
                 .status_code for _ in range(7)]
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429], codes


def test_a_trusted_proxy_may_name_the_client(settings, database, engine) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM api_rate"))
    with ServerThread(_limited_app(settings, database, "127.0.0.1/32, 10.0.0.0/8")) as srv:
        codes = [httpx.get(f"{srv.url}/api/v1/reference", headers={"X-Forwarded-For": f"{_ip()}, 10.1.2.3"})
                 .status_code for _ in range(7)]
        assert codes == [200] * 7, codes  # seven clients behind our balancer, one request each
        one = _ip()
        same = [httpx.get(f"{srv.url}/api/v1/reference", headers={"X-Forwarded-For": one}).status_code
                for _ in range(6)]
        assert same[-1] == 429, same


def test_report_files_do_not_reveal_which_ids_exist(client, engine, settings) -> None:  # noqa: ANN001
    from sqlalchemy.orm import Session

    from services.archives.demo import ensure_demo_archives

    owner = create_operator_user(engine)
    with Session(engine) as s, s.begin():
        ensure_demo_archives(s, [owner["operator_pk"]], upload_dir=settings.app.upload_dir)
    with engine.connect() as conn:
        file_id = conn.execute(text("SELECT f.id FROM report_files f JOIN report_archives r ON r.id = f.report_pk "
                                    "WHERE r.operator_pk = :o LIMIT 1"), {"o": owner["operator_pk"]}).scalar_one()
        missing = conn.execute(text("SELECT coalesce(max(id), 0) + 1000 FROM report_files")).scalar_one()
    stranger = create_operator_user(engine)
    login(client, stranger["account_name"])
    theirs = client.get(f"/backoffice/reports/files/{file_id}", headers=HTML)
    nothing = client.get(f"/backoffice/reports/files/{missing}", headers=HTML)
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.text == nothing.text
    assert client.get(f"/backoffice/reports/{file_id}", headers=HTML).status_code == 404


def test_bilingual_not_found_texts_read_right() -> None:
    from services.archives.common import not_found_text

    assert not_found_text("报告档案 / report archive") == "没有这个报告档案 / no such report archive"


def test_open_api_edges(client) -> None:  # noqa: ANN001
    r = client.get("/api/v1/stations", params={"route": "POLYGON((113 22, 113.1 22, 113.1 22.1, 113 22))"})
    assert r.status_code == 400 and r.json()["param"] == "route" and "LINESTRING" in r.json()["message"]
    for path in ("/api/v1/reference", "/api/v1/stats", "/api/v1/stations/1"):
        r = client.get(path, params={"foo": "1"})
        assert r.status_code == 400 and r.json()["param"] == "foo" and "known parameters" in r.json()["message"]
    r = client.get("/api/v1/stations.csv", params={"cursor": "junk"})
    assert r.status_code == 400 and r.json()["param"] == "cursor"
    r = client.get("/api/v1/stations", params={"q": "\x00"})
    assert r.status_code == 400 and r.json()["param"] == "q" and "NUL" in r.json()["message"]


def test_nul_in_forms_is_a_form_error_naming_the_field(client, engine) -> None:  # noqa: ANN001
    token = csrf_from(client, "/login")
    r = client.post("/login", data={"_csrf": token, "login": "a\x00b", "password": "x"}, headers=HTML)
    assert r.status_code == 400 and "login" in r.text and "NUL" in r.text
    r = client.post("/login", data={"_csrf": token, "login": "a", "password": "x"},
                    headers={"X-CSRF-Token": token}, files={"note": ("n\x00.txt", b"\x00\x01", "text/plain")})
    assert r.status_code == 400
    r = client.post("/feedback", json={"body": "坏了\u0000"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 400 and r.json()["param"] == "body"


def test_db_url_prints_what_psql_takes(db_url, monkeypatch) -> None:  # noqa: ANN001
    from click.testing import CliRunner

    from portal_site.cli import main

    monkeypatch.setenv("ZHCHARGE_DATABASE_URL", db_url)
    out = CliRunner().invoke(main, ["db", "url"]).output.strip()
    assert out.startswith("postgresql://") and "+psycopg2" not in out
    proc = subprocess.run(["psql", out, "-Atc", "SELECT 1"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout.strip() == "1", proc.stderr
    assert CliRunner().invoke(main, ["db", "url", "--sqlalchemy"]).output.startswith("postgresql+psycopg2://")


def test_push_lines_become_one_summary_a_minute(caplog) -> None:  # noqa: ANN001
    f = PushSummaryFilter(interval_s=0.0)
    f.since -= 1

    def record(path: str, status: int) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                 ("127.0.0.1:5", "POST", path, "1.1", status), None)

    with caplog.at_level(logging.INFO, logger="zhcharge.feed"):
        assert f.filter(record("/api/v1/stations", 200)) is True
        assert f.filter(record("/evcs/v20160701/notification_stationStatus", 200)) is False
    assert any("protocol requests" in m and "1 × HTTP 200" in m for m in caplog.messages)


def test_no_litestar_warnings_at_start_up(settings, database) -> None:  # noqa: ANN001
    import warnings

    from portal_site.app import create_app

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_app(settings, database=database)
    assert not [w for w in caught if "LitestarWarning" in type(w.message).__name__], [str(w.message) for w in caught]

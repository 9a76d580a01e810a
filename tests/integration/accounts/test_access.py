"""Access control over every back-office and regulator route the app has *now*.

The routes are read from the app itself, so pages added later by other modules are walked too:
- anonymous GETs of /backoffice/* and /admin/* redirect to /login;
- an operator user is refused (403, or 404 on a path shared with the back office) on every /admin/* route;
- an operator whose registration is not approved gets 403 on every /backoffice/* route except
  the overview and "modify registration" (and handlers that declare
  ``opt={"open_before_approval": True}``, a reviewable exception);
- an approved operator A, calling every /backoffice/* route with operator B's ids (every id of
  every table that has an ``operator_id`` or ``operator_pk`` column), never sees B's data (a
  marker in B's names) and never changes B's rows.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text

from tests.accounts_helpers import create_operator_user, csrf_from, insert_station, login

HTML = {"accept": "text/html"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
OPEN_BEFORE_APPROVAL = {"/backoffice", "/backoffice/", "/backoffice/registration"}
_PARAM = re.compile(r"\{([^}:]+)(?::([^}]+))?\}")


def _routes(app: Any, prefix: str, *, with_opt: bool = False) -> Iterator[Any]:
    """(path template, method, path parameters[, handler opt]) of every handler under ``prefix``."""
    for route in app.routes:
        if not (route.path == prefix.rstrip("/") or route.path.startswith(prefix)):
            continue
        for handler in getattr(route, "route_handlers", ()):
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                params = dict(getattr(route, "path_parameters", {}) or {})
                yield (route.path, method, params, dict(handler.opt or {})) if with_opt else (route.path, method, params)


def _fill(path: str, value_for: Any) -> str:
    return _PARAM.sub(lambda m: str(value_for(m.group(1), m.group(2) or "str")), path)


def _operator_tables(conn: Any) -> list[tuple[str, str, bool]]:
    """(table, owner column, has id) of every table that records which operator a row belongs to."""
    rows = conn.execute(text(
        "SELECT c.table_name, c.column_name, "
        "       EXISTS (SELECT 1 FROM information_schema.columns i WHERE i.table_schema = 'public' "
        "               AND i.table_name = c.table_name AND i.column_name = 'id') AS has_id "
        "FROM information_schema.columns c JOIN information_schema.tables t "
        "  ON t.table_schema = c.table_schema AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
        "WHERE c.table_schema = 'public' AND c.column_name IN ('operator_id', 'operator_pk') "
        "ORDER BY 1, 2")).all()
    return [(r.table_name, r.column_name, r.has_id) for r in rows]


def _owner_value(column: str, b: dict[str, Any]) -> Any:
    return b["operator_pk"] if column == "operator_pk" else b["operator_id"]


def _snapshot(engine: Any, b: dict[str, Any]) -> str:
    """A digest of every row that belongs to operator B (and B's operators row)."""
    h = hashlib.sha256()
    with engine.connect() as conn:
        for table, column, _ in _operator_tables(conn):
            value = _owner_value(column, b)
            data = conn.execute(text(
                f'SELECT coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\') FROM "{table}" t '
                f'WHERE "{column}"::text = :v'), {"v": str(value)}).scalar()
            h.update(f"{table}.{column}:{data}\n".encode())
        h.update(str(conn.execute(text("SELECT t::text FROM operators t WHERE id = :pk"),
                                  {"pk": b["operator_pk"]}).scalar()).encode())
    return h.hexdigest()


def _candidate_ids(engine: Any, b: dict[str, Any]) -> tuple[list[int], list[str]]:
    ints: set[int] = {b["operator_pk"]}
    strs: set[str] = {b["operator_id"]}
    with engine.connect() as conn:
        for table, column, has_id in _operator_tables(conn):
            if not has_id:
                continue
            for (rid,) in conn.execute(text(f'SELECT id FROM "{table}" WHERE "{column}"::text = :v ORDER BY id LIMIT 5'),
                                       {"v": str(_owner_value(column, b))}):
                if isinstance(rid, int):
                    ints.add(rid)
                strs.add(str(rid))
        for (sid,) in conn.execute(text("SELECT station_id FROM stations WHERE operator_id = :o"), {"o": b["operator_id"]}):
            strs.add(sid)
    return sorted(ints), sorted(strs)


def test_anonymous_requests_are_sent_to_login(client, app) -> None:  # noqa: ANN001
    checked = 0
    for prefix in ("/backoffice/", "/admin/"):
        for path, method, _ in _routes(app, prefix):
            if method != "GET":
                continue
            url = _fill(path, lambda name, typ: 1 if typ == "int" else "x")
            r = client.get(url, headers=HTML, follow_redirects=False)
            assert r.status_code in (302, 303) and r.headers["location"].startswith("/login"), (url, r.status_code)
            checked += 1
    assert checked >= 3


def test_operator_users_are_refused_on_admin_routes(client, app, engine) -> None:  # noqa: ANN001
    a = create_operator_user(engine)
    login(client, a["account_name"])
    token = csrf_from(client, "/backoffice/")
    for path, method, _ in _routes(app, "/admin/"):
        url = _fill(path, lambda name, typ: 1 if typ == "int" else "x")
        r = client.request(method, url, headers={**HTML, "X-CSRF-Token": token}, follow_redirects=False)
        assert r.status_code in (403, 404), (method, url, r.status_code)  # 404: a path shared with /backoffice/


def test_unapproved_operators_only_reach_the_overview(client, app, engine) -> None:  # noqa: ANN001
    c = create_operator_user(engine, approved=False)
    login(client, c["account_name"])
    token = csrf_from(client, "/backoffice/")
    problems = []
    for path, method, _, opt in _routes(app, "/backoffice/", with_opt=True):
        if path in OPEN_BEFORE_APPROVAL or opt.get("open_before_approval"):
            continue
        url = _fill(path, lambda name, typ: c["operator_pk"] if typ == "int" else c["operator_id"])
        r = client.request(method, url, headers={**HTML, "X-CSRF-Token": token}, follow_redirects=False)
        if r.status_code != 403:
            problems.append(f"{method} {url} -> {r.status_code} (expected 403 before approval)")
    assert not problems, "\n".join(problems)
    page = client.get("/backoffice/", headers=HTML).text
    assert "/backoffice/stations" not in page  # hidden as well as refused


def test_an_operator_never_reads_or_changes_another_operators_data(client, app, engine) -> None:  # noqa: ANN001
    marker = "MARK" + secrets.token_hex(4).upper()
    a = create_operator_user(engine, name=f"甲运营商{secrets.token_hex(2)}")
    b = create_operator_user(engine, name=f"乙运营商{marker}")
    insert_station(engine, b["operator_id"], f"乙的充电站{marker}")
    insert_station(engine, a["operator_id"], "甲的充电站")
    ints, strs = _candidate_ids(engine, b)
    before = _snapshot(engine, b)
    login(client, a["account_name"])
    token = csrf_from(client, "/backoffice/")
    calls = 0
    problems: list[str] = []
    for path, method, params in _routes(app, "/backoffice/"):
        values: list[tuple[int, str]] = list(zip(ints, strs + strs[-1:] * len(ints))) if params else [(0, "")]
        for i_val, s_val in values:
            url = _fill(path, lambda name, typ: i_val if typ == "int" else s_val)
            if method == "GET":
                r = client.get(url, headers=HTML, follow_redirects=False)
            else:
                r = client.request(method, url, headers={**HTML, "X-CSRF-Token": token}, data={},
                                   follow_redirects=False)
            if r.status_code >= 500:
                problems.append(f"{method} {url} -> {r.status_code}")
            if marker in r.text:
                problems.append(f"{method} {url} shows operator B's data")
            if method != "GET" and _snapshot(engine, b) != before:
                problems.append(f"{method} {url} changed operator B's data")
                before = _snapshot(engine, b)
            calls += 1
    assert not problems, "\n".join(problems)
    assert calls >= 2
    assert _snapshot(engine, b) == before

"""Every back-office and admin route with hostile input in every parameter and form field, logged
in as an operator and as a regulator: not one response >= 500 (issue 13).

The routes are read from the app and the field names from the pages themselves (every ``name=``
of every form, every query parameter of every link), so pages added later are swept too. The
operator owns demo archives, subsidy rules, notices, feedback and a task, and path parameters
are filled with the ids of its own rows, so the handlers get past their 404s and reach the code
that reads the values.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.accounts_helpers import create_operator_user, create_regulator, csrf_from, insert_station, login
from tests.integration.accounts.test_access import _fill, _routes

HTML = {"accept": "text/html"}
HOSTILE = ["a\x00b", "x" * 20000, "99999999999999999999", "-99999999999999999999", "-1", "0", "2026-13-45",
           "<script>alert(1)</script>", "' OR '1'='1", "\ufffd\ud7ff", "1e309", "[]"]
SKIP_POST = ("/logout",)
_NAME = re.compile(r'name="([^"]+)"')
_HREF = re.compile(r'href="([^"]+\?[^"]+)"')


@pytest.fixture(scope="module")
def world(engine, settings):  # noqa: ANN001, ANN201
    from services.archives.demo import ensure_demo_archives
    from services.messaging.demo import ensure_demo_content
    from services.subsidy.demo import ensure_demo_subsidy

    op = create_operator_user(engine)
    reg = create_regulator(engine)
    insert_station(engine, op["operator_id"], "扫描测试充电站")
    with Session(engine) as s, s.begin():
        ensure_demo_archives(s, [op["operator_pk"]], upload_dir=settings.app.upload_dir)
        ensure_demo_subsidy(s)
        ensure_demo_content(s)
    return op, reg


def _own_ids(engine, op: dict[str, Any]) -> tuple[list[int], list[str]]:  # noqa: ANN001
    ints: set[int] = {op["operator_pk"], 1}
    strs: set[str] = {op["operator_id"]}
    with engine.connect() as conn:
        tables = conn.execute(text(
            "SELECT c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.columns i ON i.table_name = c.table_name AND i.column_name = 'id' "
            "AND i.table_schema = 'public' WHERE c.table_schema = 'public' "
            "AND c.column_name IN ('operator_id', 'operator_pk')")).all()
        for table, column in tables:
            value = op["operator_pk"] if column == "operator_pk" else op["operator_id"]
            for (rid,) in conn.execute(text(f'SELECT id FROM "{table}" WHERE "{column}"::text = :v LIMIT 3'),
                                       {"v": str(value)}):
                if isinstance(rid, int):
                    ints.add(rid)
    return sorted(ints)[:12], sorted(strs)


def _field_names(client, app, prefix: str, ints: list[int], strs: list[str]) -> set[str]:  # noqa: ANN001
    names: set[str] = {"q", "page", "state", "district", "operator", "rule", "application", "station", "ids",
                       "reason", "body", "kind", "step", "rows", "edit", "only", "hours"}
    for path, method, params in _routes(app, prefix):
        if method != "GET":
            continue
        url = _fill(path, lambda name, typ: ints[-1] if typ == "int" else strs[0])
        page = client.get(url, headers=HTML)
        names.update(n for n in _NAME.findall(page.text) if not n.startswith("_"))
        for href in _HREF.findall(page.text):
            names.update(k for k, _ in parse_qsl(urlsplit(href.replace("&amp;", "&")).query))
    return names


def _sweep(client, app, prefix: str, ints: list[int], strs: list[str]) -> tuple[int, list[str]]:  # noqa: ANN001
    names = sorted(_field_names(client, app, prefix, ints, strs))
    token = csrf_from(client, "/backoffice/" if prefix == "/backoffice/" else "/admin/")
    problems: list[str] = []
    calls = 0
    for path, method, params in _routes(app, prefix):
        fills = [(i, s) for i in (ints[0], ints[-1], 2**63 + 5) for s in strs] if params else [(0, "")]
        for i_val, s_val in fills:
            url = _fill(path, lambda name, typ: i_val if typ == "int" else s_val)
            for value in HOSTILE:
                if method == "GET":  # (URLs are bounded: an overlong value goes in its own test below)
                    v = value[: max(200, 40000 // (3 * len(names)))]
                    r = client.get(url, params={n: v for n in names}, headers=HTML, follow_redirects=False)
                elif path.startswith(SKIP_POST):
                    continue
                else:
                    r = client.request(method, url, data={**{n: value for n in names}, "_csrf": token},
                                       headers=HTML, follow_redirects=False)
                calls += 1
                if r.status_code >= 500:
                    problems.append(f"{method} {url} with {value[:20]!r} -> {r.status_code}: {r.text[:160]}")
                elif "\x00" in value and r.status_code not in (400, 403, 404, 405, 409):
                    problems.append(f"{method} {url}: NUL accepted ({r.status_code})")
            if method != "GET":  # uploads: a NUL in a file's name, NUL bytes inside a file (allowed: binary)
                files = {"file": ("a\x00.pdf", b"%PDF-1.4\x00\x00", "application/pdf")}
                r = client.request(method, url, data={"_csrf": token}, files=files, headers=HTML,
                                   follow_redirects=False)
                calls += 1
                if r.status_code >= 500:
                    problems.append(f"{method} {url} upload -> {r.status_code}")
    return calls, problems


@pytest.mark.parametrize("who, prefix", [("operator", "/backoffice/"), ("regulator", "/admin/")])
def test_back_office_routes_never_answer_5xx(client, app, engine, world, who, prefix) -> None:  # noqa: ANN001
    op, reg = world
    ints, strs = _own_ids(engine, op)
    login(client, (op if who == "operator" else reg)["account_name"])
    calls, problems = _sweep(client, app, prefix, ints, strs)
    assert not problems, "\n".join(problems[:40])
    assert calls > 500


def test_public_pages_and_forms_never_answer_5xx(client, app, engine, world) -> None:  # noqa: ANN001
    """Login, registration, forgot-password, unlock, feedback, news, map pages: anonymous visitors."""
    op, _ = world
    ints, strs = _own_ids(engine, op)
    machine = ("/api/", "/tiles/", "/evcs/", "/static/", "/backoffice", "/admin", "/map/events")
    problems: list[str] = []
    calls = 0
    names = {"login", "password", "password2", "phone", "code", "email", "company_name", "credit_code", "kind",
             "body", "contact", "station", "page", "category", "next", "q", "lang", "agree"}
    for path, method, params in _routes(app, "/"):
        if path.startswith(machine) or path in ("/logout",):
            continue
        url = _fill(path, lambda name, typ: ints[-1] if typ == "int" else strs[0])
        if method == "GET":
            names.update(n for n in _NAME.findall(client.get(url, headers=HTML).text) if not n.startswith("_"))
    token = csrf_from(client, "/login")
    for path, method, params in _routes(app, "/"):
        if path.startswith(machine) or path in ("/logout",):
            continue
        for i_val in ((ints[-1], 2**63 + 5) if params else (0,)):
            url = _fill(path, lambda name, typ: i_val if typ == "int" else strs[0])
            for value in HOSTILE:
                if method == "GET":
                    v = value[:200]
                    r = client.get(url, params={n: v for n in names}, headers=HTML, follow_redirects=False)
                else:
                    r = client.request(method, url, data={**{n: value for n in names}, "_csrf": token},
                                       headers=HTML, follow_redirects=False)
                calls += 1
                if r.status_code >= 500:
                    problems.append(f"{method} {url} with {value[:20]!r} -> {r.status_code}: {r.text[:160]}")
                elif "\x00" in value and method != "GET" and r.status_code != 400:
                    problems.append(f"{method} {url}: NUL in a form accepted ({r.status_code})")
    assert not problems, "\n".join(problems[:40])
    assert calls > 100

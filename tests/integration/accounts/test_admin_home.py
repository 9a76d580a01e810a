"""/admin/ lists the regulators' queues: registrations, archive, facility and interconnection
reviews, subsidy applications, each with its count and links to the items."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import text

from tests.accounts_helpers import create_operator_user, create_regulator, login

HTML = {"accept": "text/html"}
OLD = "2000-01-01T00:00:00Z"  # the oldest in every queue (which lists the oldest first), whatever else the database holds


def _count(page: str, key: str) -> int:
    m = re.search(rf'id="q-{key}-count"><span class="num">(\d+)</span>', page)
    assert m, f"no count for {key}"
    return int(m.group(1))


def _section(page: str, key: str) -> str:
    m = re.search(rf'<section class="card admin-queue" id="q-{key}">(.*?)</section>', page, re.S)
    assert m, f"no section {key}"
    return m.group(1)


def _seed(engine, operator_pk: int, tag: str) -> dict[str, int]:  # noqa: ANN001
    """One station archive under review, one facility under review, one in interconnection review,
    a draft and a submitted subsidy application (and rows in states nobody has to act on)."""
    with engine.begin() as conn:
        def station(state: str, name: str) -> int:
            return conn.execute(text(
                "INSERT INTO station_archives (operator_pk, station_id, name, state, submitted_at) "
                "VALUES (:o, :sid, :n, :s, :at) RETURNING id"),
                {"o": operator_pk, "sid": f"S{secrets.token_hex(5)}", "n": name, "s": state, "at": OLD}).scalar_one()

        def facility(state: str, name: str, st: int) -> int:
            return conn.execute(text(
                "INSERT INTO facility_archives (operator_pk, station_archive_pk, equipment_id, equipment_name, state, "
                "submitted_at, updated_at) VALUES (:o, :st, :e, :n, :s, :at, :at) RETURNING id"),
                {"o": operator_pk, "st": st, "e": f"E{secrets.token_hex(5)}", "n": name, "s": state, "at": OLD}).scalar_one()

        ids = {"station": station("under_review", f"站{tag}审"), "station_ok": station("approved", f"站{tag}过")}
        ids["facility"] = facility("under_review", f"桩{tag}审", ids["station_ok"])
        ids["ic"] = facility("ic_review", f"桩{tag}联", ids["station_ok"])
        ids["facility_pending"] = facility("pending", f"桩{tag}草", ids["station_ok"])
        rule = conn.execute(text(
            "INSERT INTO subsidy_rules (name, subsidy_start, subsidy_end, apply_start, apply_end, basis, budget) "
            "VALUES (:n, '2026-01-01', '2026-12-31', '2026-01-01', '2026-12-31', 'per_kw', 1000) RETURNING id"),
            {"n": f"规则{tag}"}).scalar_one()

        def application(state: str, name: str) -> int:
            return conn.execute(text(
                "INSERT INTO subsidy_applications (rule_id, operator_pk, station_archive_pk, station_id, station_name, "
                "state, submitted_at) VALUES (:r, :o, :st, 'S1', :n, :s, :at) RETURNING id"),
                {"r": rule, "o": operator_pk, "st": ids["station_ok"], "n": name, "s": state, "at": OLD}).scalar_one()

        ids["subsidy"] = application("submitted", f"补{tag}审")
        ids["subsidy_draft"] = application("pending", f"补{tag}草")
    return ids


def test_admin_home_shows_the_queues_with_links(client, engine) -> None:  # noqa: ANN001
    regulator = create_regulator(engine)
    login(client, regulator["account_name"])
    before = client.get("/admin/", headers=HTML).text
    counts = {k: _count(before, k) for k in ("registrations", "stations", "facilities", "interconnection", "subsidy")}

    tag = secrets.token_hex(2)
    pending_op = create_operator_user(engine, approved=False, name=f"待审企业{tag}")
    with engine.begin() as conn:
        conn.execute(text("UPDATE operators SET submitted_at = :at WHERE id = :pk"), {"at": OLD, "pk": pending_op["operator_pk"]})
    op = create_operator_user(engine, name=f"运营商<i>{tag}</i>")
    ids = _seed(engine, op["operator_pk"], tag)

    r = client.get("/admin/", headers=HTML)
    assert r.status_code == 200
    page = r.text
    for key in counts:
        assert _count(page, key) == counts[key] + 1, key
    assert f'href="/admin/registrations/{pending_op["operator_pk"]}"' in page
    assert 'href="/admin/stations?state=under_review"' in page and f'href="/admin/stations/{ids["station"]}"' in page
    assert f'href="/admin/facilities/{ids["facility"]}"' in _section(page, "facilities")
    assert f'href="/admin/facilities/{ids["ic"]}"' in _section(page, "interconnection")
    assert 'href="/admin/interconnection"' in page
    assert f'href="/admin/subsidy/applications/{ids["subsidy"]}"' in _section(page, "subsidy")
    # rows nobody has to act on are not listed
    listed = "".join(_section(page, k) for k in ("stations", "facilities", "interconnection", "subsidy"))
    assert f'/admin/stations/{ids["station_ok"]}"' not in listed
    assert f'/admin/facilities/{ids["facility_pending"]}"' not in listed
    assert f'/admin/subsidy/applications/{ids["subsidy_draft"]}"' not in listed
    assert f"运营商&lt;i&gt;{tag}&lt;/i&gt;" in page and f"<i>{tag}</i>" not in page  # escaped
    # the links lead somewhere a regulator may go
    for href in ("/admin/registrations", f"/admin/registrations/{pending_op['operator_pk']}",
                 "/admin/stations?state=under_review", f"/admin/facilities/{ids['ic']}", "/admin/interconnection",
                 f"/admin/subsidy/applications/{ids['subsidy']}"):
        assert client.get(href, headers=HTML).status_code == 200, href


def test_operators_cannot_see_the_admin_home(client, engine) -> None:  # noqa: ANN001
    op = create_operator_user(engine)
    login(client, op["account_name"])
    assert client.get("/admin/", headers=HTML, follow_redirects=False).status_code == 403

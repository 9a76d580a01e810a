"""Access: an operator never sees or acts on another operator's archives or files (404, and
nothing in its lists); regulators see all; anonymous visitors are sent to the login page;
operators cannot reach the review queues and regulators cannot act as operators."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.integration.archives.conftest import HTML, make_facility, make_report, make_station


@pytest.fixture()
def world(op, op2, engine, database, settings):  # noqa: ANN001, ANN201
    st = make_station(database, op2, "SECRET-ST", "under_review", name="别人的站")
    r = make_report(database, op2, "SECRET-R", settings.app.upload_dir)
    st_ok = make_station(database, op2, "SECRET-OK", "approved")
    fa = make_facility(database, engine, op2, st_ok, r, "SECRET-EQ", "under_review")
    with engine.connect() as conn:
        file_pk = conn.execute(text("SELECT id FROM report_files WHERE report_pk = :r"), {"r": r}).scalar_one()
    return {"st": st, "r": r, "fa": fa, "file": file_pk, "st_ok": st_ok}


def test_operator_never_sees_another_operators_archives(op, world) -> None:  # noqa: ANN001
    for path in ("/backoffice/stations", "/backoffice/facilities", "/backoffice/reports",
                 "/backoffice/stations?q=SECRET", "/backoffice/interconnection?step=1"):
        page = op.get(path)
        assert page.status_code == 200, path
        assert "SECRET-" not in page.text and "别人的站" not in page.text, path
    gets = [f"/backoffice/stations/{world['st']}", f"/backoffice/stations/{world['st']}/edit",
            f"/backoffice/stations/{world['st']}/delete", f"/backoffice/reports/{world['r']}",
            f"/backoffice/reports/{world['r']}/edit", f"/backoffice/reports/files/{world['file']}",
            f"/backoffice/facilities/{world['fa']}", f"/backoffice/facilities/{world['fa']}/edit"]
    for path in gets:
        assert op.get(path).status_code == 404, path


def test_operator_never_acts_on_another_operators_archives(op, engine, world) -> None:  # noqa: ANN001
    posts = [(f"/backoffice/stations/{world['st']}/withdraw", {}), (f"/backoffice/stations/{world['st']}/delete", {}),
             (f"/backoffice/stations/{world['st']}", {"station_id": "HIJACK", "op": "save"}),
             (f"/backoffice/facilities/{world['fa']}/withdraw", {}),
             (f"/backoffice/facilities/{world['fa']}/delete", {}),
             (f"/backoffice/reports/{world['r']}/delete", {}),
             ("/backoffice/stations/batch/withdraw", {"ids": [str(world["st"])]}),
             ("/backoffice/facilities/batch/withdraw", {"ids": [str(world["fa"])]})]
    for path, data in posts:
        assert op.post(path, data).status_code == 404, path
    # a facility cannot be attached to another operator's station or report
    form = {"station": str(world["st_ok"]), "op": "save", "rows-0-equipment_id": "X1"}
    assert op.post("/backoffice/facilities", form).status_code == 400
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT station_id, state FROM station_archives WHERE station_id LIKE 'SECRET%'")).all())
        fstate = conn.execute(text("SELECT state FROM facility_archives WHERE id = :i"), {"i": world["fa"]}).scalar()
    assert states == {"SECRET-ST": "under_review", "SECRET-OK": "approved"} and fstate == "under_review"


def test_regulators_see_all(reg, world) -> None:  # noqa: ANN001
    assert "SECRET-ST" in reg.get("/admin/stations").text
    assert "SECRET-EQ" in reg.get("/admin/facilities").text
    for path in (f"/admin/stations/{world['st']}", f"/admin/facilities/{world['fa']}", f"/admin/reports/{world['r']}",
                 f"/backoffice/reports/files/{world['file']}", f"/backoffice/stations/{world['st']}"):
        assert reg.get(path).status_code == 200, path
    # regulators review; they do not act as the operator
    assert reg.post(f"/backoffice/stations/{world['st']}/withdraw").status_code == 403
    assert reg.get("/backoffice/stations").status_code == 403


def test_operators_cannot_review(op, world) -> None:  # noqa: ANN001
    assert op.get("/admin/stations").status_code == 403
    assert op.post(f"/admin/stations/{world['st']}/approve").status_code == 403
    assert op.post("/admin/facilities/batch/approve", {"ids": [str(world["fa"])]}).status_code == 403


def test_unapproved_operator_only_has_the_overview(engine, app) -> None:  # noqa: ANN001
    from tests.integration.archives.conftest import Operator

    o = Operator(engine, app, approved=False)
    try:
        assert o.get("/backoffice/stations").status_code == 403
        assert o.get("/backoffice/interconnection").status_code == 403
    finally:
        o.close()


@pytest.mark.parametrize("path", ["/backoffice/stations", "/backoffice/stations/1", "/backoffice/reports",
                                  "/backoffice/reports/files/1", "/backoffice/facilities", "/backoffice/interconnection",
                                  "/backoffice/stations/template.xlsx", "/admin/stations", "/admin/facilities",
                                  "/admin/interconnection"])
def test_anonymous_is_sent_to_login(client, path) -> None:  # noqa: ANN001
    r = client.get(path, headers=HTML, follow_redirects=False)
    assert r.status_code in (302, 303) and r.headers["location"].startswith("/login")

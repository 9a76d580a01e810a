"""``ensure_demo_archives``: archives in several states for a demo operator, idempotent, and every
archives page renders them."""

from __future__ import annotations

from sqlalchemy import text

from ingest.simulator.city import generate_city
from ingest.sync import store_station_infos
from services.archives.demo import ensure_demo_archives
from tests.integration.archives.conftest import Operator, set_interconnected


def test_demo_archives_in_several_states_idempotent(engine, app, settings) -> None:  # noqa: ANN001
    city = generate_city(seed=23, stations=25, operators=1)[0]
    o = Operator(engine, app, operator_id=city.operator_id, name=city.name)
    try:
        set_interconnected(engine, o, True)
        with engine.begin() as conn:
            store_station_infos(conn, city.operator_id, city.name, [s.info() for s in city.stations], interconnected=True)
        with engine.begin() as conn:
            first = ensure_demo_archives(conn, [o.pk], upload_dir=settings.app.upload_dir)
        assert first[o.pk]["stations"] >= 6 and first[o.pk]["facilities"] >= 5
        with engine.begin() as conn:
            again = ensure_demo_archives(conn, [o.pk], upload_dir=settings.app.upload_dir)
        assert again[o.pk] == {"stations": 0, "facilities": 0}
        with engine.connect() as conn:
            st_states = set(conn.execute(text("SELECT state FROM station_archives WHERE operator_pk = :p"), {"p": o.pk}).scalars())
            fa_states = set(conn.execute(text("SELECT state FROM facility_archives WHERE operator_pk = :p"), {"p": o.pk}).scalars())
            app_state = conn.execute(text("SELECT state FROM interconnection_applications WHERE operator_pk = :p"),
                                     {"p": o.pk}).scalar()
        assert {"approved", "under_review", "pending", "rejected"} <= st_states
        assert {"interconnected", "ic_review", "approved", "under_review", "pending"} <= fa_states
        assert app_state == "passed"
        for path in ("/backoffice/stations", "/backoffice/facilities", "/backoffice/reports",
                     "/backoffice/interconnection?step=1", "/backoffice/interconnection?step=2",
                     "/backoffice/interconnection?step=3", "/backoffice/"):
            r = o.get(path)
            assert r.status_code == 200, path
        assert "互联互通" in o.get("/backoffice/facilities").text
        # B1 overview: archive counts, interconnected facilities and their stations, template downloads
        overview = o.get("/backoffice/").text
        with engine.connect() as conn:
            n_ic = conn.execute(text("SELECT count(*) FROM facility_archives WHERE operator_pk = :p "
                                     "AND state = 'interconnected'"), {"p": o.pk}).scalar()
        assert f'<span class="num">{n_ic}</span>已互联互通设施' in overview
        for link in ("/backoffice/documents/station-template.xlsx", "/backoffice/documents/facility-template.xlsx",
                     "/backoffice/documents/protocol-tcec102.md", "/backoffice/documents/joining-guide.md"):
            assert link in overview
            assert o.get(link).status_code == 200, link
        with engine.connect() as conn:
            report_file = conn.execute(text("SELECT f.id FROM report_files f JOIN report_archives r ON r.id = f.report_pk "
                                            "WHERE r.operator_pk = :p"), {"p": o.pk}).scalar()
        assert o.get(f"/backoffice/reports/files/{report_file}").content.startswith(b"%PDF")
    finally:
        o.close()

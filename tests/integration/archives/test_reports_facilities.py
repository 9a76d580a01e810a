"""B3 report archives (upload sniffed by content, size limit, replace with history, download by
the owner and regulators only, delete) and B4 facility archives (several piles of one station at
once, statistics, edit, delete only if never approved, check and interconnection applications,
batches all-or-nothing with the offenders named)."""

from __future__ import annotations

import re

from sqlalchemy import text

from services.archives import reports as rep
from tests.integration.archives.conftest import (
    PDF,
    PNG,
    facility_row,
    make_facility,
    make_report,
    make_station,
    set_interconnected,
)


def _report_form(no: str) -> dict[str, str]:
    return {"report_no": no, "lab": "广东产品质量监督检验研究院", "report_date": "2024-02-02", "equipment_model": "AC7-1G"}


def test_report_upload_sniffs_content_and_limits_size(op, engine, settings) -> None:  # noqa: ANN001
    assert op.get("/backoffice/reports/new").status_code == 200
    # a text file named .pdf is refused (content sniffed, not the name or the client's type)
    r = op.post("/backoffice/reports", _report_form("RP-1"), files={"file": ("fake.pdf", b"hello", "application/pdf")})
    assert r.status_code == 400 and "只接受PDF、JPEG或PNG" in r.text
    r = op.post("/backoffice/reports", _report_form("RP-1"),
                files={"file": ("big.pdf", b"%PDF-" + b"0" * rep.MAX_FILE_BYTES, "application/pdf")})
    assert r.status_code == 413
    r = op.post("/backoffice/reports", _report_form("RP-1"), files={"file": ("型式试验.pdf", PDF, "text/plain")})
    assert r.status_code == 303
    with engine.connect() as conn:
        row = conn.execute(text("SELECT f.stored_name, f.original_name, f.content_type, f.size_bytes FROM report_files f "
                                "JOIN report_archives r ON r.id = f.report_pk WHERE r.report_no = 'RP-1'")).one()
    assert row.content_type == "application/pdf" and row.original_name == "型式试验.pdf" and row.size_bytes == len(PDF)
    assert re.fullmatch(r"[0-9a-f]{32}\.pdf", row.stored_name)
    stored = settings.app.upload_dir / "reports" / row.stored_name
    assert stored.read_bytes() == PDF
    assert "static" not in str(stored)
    # missing fields
    r = op.post("/backoffice/reports", {"report_no": ""}, files={"file": ("a.pdf", PDF, "application/pdf")})
    assert r.status_code == 400 and "报告编号为必填项" in r.text


def test_replace_keeps_history_and_download_is_owner_or_regulator(op, op2, reg, engine, database, settings) -> None:  # noqa: ANN001
    pk = make_report(database, op, "RP-H", settings.app.upload_dir)
    r = op.post(f"/backoffice/reports/{pk}/file", files={"file": ("new.png", PNG, "image/png")})
    assert r.status_code == 303
    with engine.connect() as conn:
        files = conn.execute(text("SELECT id, current, content_type, replaced_at FROM report_files WHERE report_pk = :p "
                                  "ORDER BY id"), {"p": pk}).all()
    assert [f.current for f in files] == [False, True] and files[0].replaced_at is not None
    assert files[1].content_type == "image/png"
    page = op.get(f"/backoffice/reports/{pk}").text
    assert "历史" in page and "当前" in page
    old, new = files[0].id, files[1].id
    d = op.get(f"/backoffice/reports/files/{old}")
    assert d.status_code == 200 and d.content == PDF and "attachment" in d.headers["content-disposition"]
    assert op.get(f"/backoffice/reports/files/{new}").content == PNG
    assert reg.get(f"/backoffice/reports/files/{new}").status_code == 200
    assert op2.get(f"/backoffice/reports/files/{new}").status_code == 404
    assert op2.get(f"/backoffice/reports/{pk}").status_code == 404
    assert op2.post(f"/backoffice/reports/{pk}/file", files={"file": ("x.png", PNG, "image/png")}).status_code == 404
    assert op2.post(f"/backoffice/reports/{pk}/delete").status_code == 404
    # a replacement that is not PDF/JPEG/PNG changes nothing
    r = op.post(f"/backoffice/reports/{pk}/file", files={"file": ("evil.png", b"<script>", "image/png")})
    assert r.status_code == 400
    # delete removes the rows and the files
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT stored_name FROM report_files WHERE report_pk = :p"), {"p": pk}).scalars().all()
    assert len(stored) == 2 and all((settings.app.upload_dir / "reports" / n).exists() for n in stored)
    assert op.get(f"/backoffice/reports/{pk}/delete").status_code == 200
    assert op.post(f"/backoffice/reports/{pk}/delete").status_code == 303
    assert not any((settings.app.upload_dir / "reports" / n).exists() for n in stored)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM report_files WHERE report_pk = :p"), {"p": pk}).scalar() == 0


def test_report_in_use_cannot_be_deleted(op, engine, database, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "RU-ST", "approved")
    r = make_report(database, op, "RU-R", settings.app.upload_dir)
    make_facility(database, engine, op, st, r, "RU-EQ")
    page = op.get(f"/backoffice/reports/{r}/delete")
    assert page.status_code == 200 and "RU-EQ" in page.text and "不能删除" in page.text
    assert op.post(f"/backoffice/reports/{r}/delete").status_code == 409


def test_add_several_facilities_of_one_station(op, engine, database, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "MANY-ST", "approved")
    r = make_report(database, op, "MANY-R", settings.app.upload_dir)
    assert op.get("/backoffice/facilities/new?rows=3").status_code == 200
    form = {"station": str(st), "op": "submit"}
    for i, eid in enumerate(("MANY-1", "MANY-2", "MANY-3")):
        for k, val in facility_row(eid, r).items():
            form[f"rows-{i}-{k}"] = val
    form["rows-2-power_kw"] = "abc"
    form["rows-1-equipment_id"] = "MANY-1"  # duplicate of row 1
    resp = op.post("/backoffice/facilities", form)
    assert resp.status_code == 400
    assert "额定功率（kW）必须是数字" in resp.text and "重复" in resp.text
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM facility_archives WHERE operator_pk = :o"), {"o": op.pk}).scalar() == 0
    form["rows-2-power_kw"] = "120"
    form["rows-1-equipment_id"] = "MANY-2"
    resp = op.post("/backoffice/facilities", form)
    assert resp.status_code == 303, resp.text[:800]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT equipment_id, state, ST_AsText(geom) FROM facility_archives WHERE operator_pk = :o "
                                 "ORDER BY equipment_id"), {"o": op.pk}).all()
    assert [x[0] for x in rows] == ["MANY-1", "MANY-2", "MANY-3"] and {x[1] for x in rows} == {"under_review"}
    assert all(x[2].startswith("POINT(113.") for x in rows)  # the station's position, in WGS84
    page = op.get("/backoffice/facilities")
    assert page.status_code == 200 and "档案申请中" in page.text and "直流设备" in page.text
    # statistics by state, by type, by district
    assert re.search(r'<span class="num">3</span>\s*档案总数', page.text)
    assert "香洲区" in page.text


def test_submit_without_report_is_refused_save_is_not(op, engine, database) -> None:  # noqa: ANN001
    st = make_station(database, op, "NR-ST", "approved")
    form = {"station": str(st), "op": "submit", **{f"rows-0-{k}": v for k, v in facility_row("NR-1", None).items()}}
    r = op.post("/backoffice/facilities", form)
    assert r.status_code == 400 and "提交审核须关联报告档案" in r.text
    form["op"] = "save"
    assert op.post("/backoffice/facilities", form).status_code == 303


def test_delete_only_if_never_approved(op, reg, engine, database, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "DEL-ST", "approved")
    r = make_report(database, op, "DEL-R", settings.app.upload_dir)
    never = make_facility(database, engine, op, st, r, "DEL-1", "rejected")
    once = make_facility(database, engine, op, st, r, "DEL-2", "ic_review")
    assert reg.post(f"/admin/facilities/{once}/reject_ic", {"reason": "功率与系统不一致"}).status_code == 303
    with engine.connect() as conn:
        state, ever = conn.execute(text("SELECT state, ever_approved FROM facility_archives WHERE id = :i"),
                                   {"i": once}).one()
    assert state == "rejected" and ever
    page = op.get("/backoffice/facilities").text
    assert f"/backoffice/facilities/{never}/delete" in page and f"/backoffice/facilities/{once}/delete" not in page
    assert op.post(f"/backoffice/facilities/{once}/delete").status_code == 409
    assert op.post(f"/backoffice/facilities/{never}/delete").status_code == 303


def test_batch_check_application_all_or_nothing(op, engine, database, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "BC-ST", "approved")
    r = make_report(database, op, "BC-R", settings.app.upload_dir)
    a = make_facility(database, engine, op, st, r, "BC-A")
    b = make_facility(database, engine, op, st, r, "BC-B")
    c = make_facility(database, engine, op, st, r, "BC-C", "approved")
    resp = op.post("/backoffice/facilities/batch/submit", {"ids": [str(a), str(b), str(c)]})
    assert resp.status_code == 409
    assert "BC-C" in resp.text and "档案申请通过" in resp.text and "未提交任何记录" in resp.text
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT equipment_id, state FROM facility_archives WHERE operator_pk = :o"),
                                   {"o": op.pk}).all())
    assert states == {"BC-A": "pending", "BC-B": "pending", "BC-C": "approved"}
    assert op.post("/backoffice/facilities/batch/submit", {"ids": [str(a), str(b)]}).status_code == 303
    assert op.post("/backoffice/facilities/batch/submit", {}).status_code == 400


def test_interconnection_application_needs_the_system_interconnected(op, reg, engine, database, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "IC-ST", "approved")
    r = make_report(database, op, "IC-R", settings.app.upload_dir)
    a = make_facility(database, engine, op, st, r, "IC-A", "approved")
    b = make_facility(database, engine, op, st, r, "IC-B", "approved")
    p = make_facility(database, engine, op, st, r, "IC-P")
    set_interconnected(engine, op, False)
    resp = op.post("/backoffice/facilities/batch/apply_ic", {"ids": [str(a), str(b)]})
    assert resp.status_code == 409 and "尚未完成互联互通" in resp.text
    assert op.post(f"/backoffice/facilities/{a}/apply_ic").status_code == 409
    set_interconnected(engine, op, True)
    resp = op.post("/backoffice/facilities/batch/apply_ic", {"ids": [str(a), str(b), str(p)]})
    assert resp.status_code == 409 and "IC-P" in resp.text and "待提交" in resp.text
    assert op.post("/backoffice/facilities/batch/apply_ic", {"ids": [str(a), str(b)]}).status_code == 303
    queue = reg.get("/admin/interconnection")
    assert queue.status_code == 200 and "IC-A" in queue.text and "IC-B" in queue.text
    assert reg.post("/admin/facilities/batch/approve_ic", {"ids": [str(a)]}).status_code == 303
    assert reg.post("/admin/facilities/batch/reject_ic", {"ids": [str(b)], "reason": ""}).status_code == 400
    assert reg.post("/admin/facilities/batch/reject_ic", {"ids": [str(b)], "reason": "枪数不符"}).status_code == 303
    with engine.connect() as conn:
        states = dict(conn.execute(text("SELECT equipment_id, state FROM facility_archives WHERE operator_pk = :o"),
                                   {"o": op.pk}).all())
    assert states["IC-A"] == "interconnected" and states["IC-B"] == "rejected"


def test_edit_facility(op, engine, database, settings) -> None:  # noqa: ANN001
    st = make_station(database, op, "ED-ST", "approved")
    r = make_report(database, op, "ED-R", settings.app.upload_dir)
    pk = make_facility(database, engine, op, st, r, "ED-1")
    assert op.get(f"/backoffice/facilities/{pk}/edit").status_code == 200
    form = {"station": str(st), "op": "save", **{f"rows-0-{k}": v for k, v in facility_row("ED-1", r, power_kw="90").items()}}
    assert op.post(f"/backoffice/facilities/{pk}", form).status_code == 303
    with engine.connect() as conn:
        assert float(conn.execute(text("SELECT power_kw FROM facility_archives WHERE id = :i"), {"i": pk}).scalar()) == 90.0
    detail = op.get(f"/backoffice/facilities/{pk}")
    assert detail.status_code == 200 and "ED-R" in detail.text


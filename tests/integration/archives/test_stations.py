"""B2 station archives over HTTP: add (save / submit with full validation / cancel), list with
statistics, filters and paging, edit, submit, withdraw, detail, delete with confirmation, and the
regulators' review (single and batch) with the outcome visible to the operator."""

from __future__ import annotations

import re

from sqlalchemy import text

from services.archives.workflows import STATION
from tests.integration.archives.conftest import make_station, station_form


def _state(engine, pk: int) -> str:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT state FROM station_archives WHERE id = :i"), {"i": pk}).scalar_one()


def _pk(engine, o, station_id: str) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text("SELECT id FROM station_archives WHERE operator_pk = :o AND station_id = :s"),
                            {"o": o.pk, "s": station_id}).scalar_one()


def test_add_save_submit_cancel(op, engine) -> None:  # noqa: ANN001
    assert op.get("/backoffice/stations/new").status_code == 200
    # save keeps a draft with only the StationID
    r = op.post("/backoffice/stations", {"station_id": "DRAFT01", "op": "save"})
    assert r.status_code == 303, r.text[:500]
    assert _state(engine, _pk(engine, op, "DRAFT01")) == "pending"
    # submit validates every field and names each problem
    bad = station_form("BAD-01", name="", service_tel="12ab", district_adcode="440404", station_type="99",
                       lng_gcj02="113.5767", lat_gcj02="")
    r = op.post("/backoffice/stations", {**bad, "op": "submit"})
    assert r.status_code == 400
    page = r.text
    for needle in ("充电站名称为必填项", "服务电话不是有效的电话号码", "站点类型的取值", "纬度（GCJ-02）为必填项"):
        assert needle in page, needle
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM station_archives WHERE station_id = 'BAD-01'")).scalar() == 0
    # a bad StationID, a position outside the city and a district that does not match the position
    r = op.post("/backoffice/stations", {**station_form("站点#1"), "op": "submit"})
    assert r.status_code == 400 and "充电站编码只能包含字母、数字" in r.text
    r = op.post("/backoffice/stations", {**station_form("FAR1", lng_gcj02="116.397", lat_gcj02="39.909"), "op": "submit"})
    assert r.status_code == 400 and "坐标不在本市范围内" in r.text
    r = op.post("/backoffice/stations", {**station_form("MISM1", district_adcode="440404"), "op": "submit"})
    assert r.status_code == 400 and "所属区域与坐标不一致" in r.text
    # a good one goes straight to review
    r = op.post("/backoffice/stations", {**station_form("GOOD01"), "op": "submit"})
    assert r.status_code == 303
    assert _state(engine, _pk(engine, op, "GOOD01")) == "under_review"
    # duplicate StationID
    r = op.post("/backoffice/stations", {**station_form("GOOD01"), "op": "save"})
    assert r.status_code == 400 and "已存在" in r.text
    # cancel stores nothing
    r = op.post("/backoffice/stations", {**station_form("CANCEL1"), "op": "cancel"})
    assert r.status_code == 303
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM station_archives WHERE station_id = 'CANCEL1'")).scalar() == 0


def test_list_statistics_filters_paging_and_labels(op, database) -> None:  # noqa: ANN001
    for i in range(23):
        make_station(database, op, f"LS{i:03d}", "pending", name=f"列表站{i:03d}")
    make_station(database, op, "LSREV", "under_review", name="审核站")
    make_station(database, op, "LSJW", "pending", name="金湾站", district_adcode="440404", lng_gcj02="113.362656",
                 lat_gcj02="22.147126")
    r = op.get("/backoffice/stations")
    assert r.status_code == 200
    assert "待提交" in r.text and "档案申请中" in r.text
    assert len(re.findall(r'<tr data-id="', r.text)) == 20  # first page
    assert "共</span>" not in r.text and "25" in r.text
    r = op.get("/backoffice/stations?page=2")
    assert len(re.findall(r'<tr data-id="', r.text)) == 5
    r = op.get("/backoffice/stations?state=under_review")
    assert len(re.findall(r'<tr data-id="', r.text)) == 1 and "LSREV" in r.text
    r = op.get("/backoffice/stations?district=440404")
    assert "LSJW" in r.text and "LS001" not in r.text
    r = op.get("/backoffice/stations?q=列表站00")
    assert len(re.findall(r'<tr data-id="', r.text)) == 10
    r = op.get("/backoffice/stations?lang=en")
    assert "pending submission" in r.text and "under review" in r.text


def test_buttons_follow_the_workflow(op, database) -> None:  # noqa: ANN001
    p = make_station(database, op, "BTN-P")
    u = make_station(database, op, "BTN-U", "under_review")
    a = make_station(database, op, "BTN-A", "approved")
    page = op.get("/backoffice/stations").text

    def row(pk: int) -> str:
        m = re.search(rf'<tr data-id="{pk}">(.*?)</tr>', page, re.S)
        assert m
        return m.group(1)

    assert f"/backoffice/stations/{p}/submit" in row(p) and f"/backoffice/stations/{p}/withdraw" not in row(p)
    assert f"/backoffice/stations/{p}/edit" in row(p)
    assert f"/backoffice/stations/{u}/withdraw" in row(u) and f"/backoffice/stations/{u}/submit" not in row(u)
    assert f"/backoffice/stations/{u}/edit" not in row(u) and f"/backoffice/stations/{u}/delete" not in row(u)
    assert f"/backoffice/stations/{a}/submit" not in row(a) and f"/backoffice/stations/{a}/delete" in row(a)
    assert STATION.allowed("approved", "operator") == ["delete"]


def test_edit_submit_withdraw_detail_delete(op, engine, database) -> None:  # noqa: ANN001
    pk = make_station(database, op, "EDIT1")
    assert op.get(f"/backoffice/stations/{pk}/edit").status_code == 200
    r = op.post(f"/backoffice/stations/{pk}", {**station_form("EDIT1", name="改过的名字"), "op": "save"})
    assert r.status_code == 303
    assert op.post(f"/backoffice/stations/{pk}/submit").status_code == 303
    assert _state(engine, pk) == "under_review"
    assert op.get(f"/backoffice/stations/{pk}/edit").status_code == 409  # not editable while under review
    assert op.post(f"/backoffice/stations/{pk}/withdraw").status_code == 303
    assert _state(engine, pk) == "pending"
    detail = op.get(f"/backoffice/stations/{pk}")
    assert detail.status_code == 200 and "改过的名字" in detail.text and "处理记录" in detail.text
    # delete asks first, then deletes
    confirm = op.get(f"/backoffice/stations/{pk}/delete")
    assert confirm.status_code == 200 and "确定要删除" in confirm.text
    assert op.post(f"/backoffice/stations/{pk}/delete").status_code == 303
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM station_archives WHERE id = :i"), {"i": pk}).scalar() == 0


def test_submit_of_an_incomplete_draft_names_the_fields(op, engine) -> None:  # noqa: ANN001
    op.post("/backoffice/stations", {"station_id": "HALF1", "name": "半成品", "op": "save"})
    pk = _pk(engine, op, "HALF1")
    r = op.post(f"/backoffice/stations/{pk}/submit")
    assert r.status_code == 400
    assert "详细地址为必填项" in r.text and "服务电话为必填项" in r.text
    assert _state(engine, pk) == "pending"


def test_regulator_review_single_and_batch(op, reg, engine, database) -> None:  # noqa: ANN001
    a = make_station(database, op, "REV-A", "under_review")
    b = make_station(database, op, "REV-B", "under_review")
    c = make_station(database, op, "REV-C", "under_review")
    d = make_station(database, op, "REV-D", "pending")
    queue = reg.get("/admin/stations")
    assert queue.status_code == 200 and "REV-A" in queue.text and "REV-D" not in queue.text
    assert reg.get(f"/admin/stations/{a}").status_code == 200
    # reject needs a reason
    r = reg.post(f"/admin/stations/{a}/reject", {"reason": ""})
    assert r.status_code == 400 and _state(engine, a) == "under_review"
    assert reg.post(f"/admin/stations/{a}/reject", {"reason": "地址与坐标不符"}).status_code == 303
    assert _state(engine, a) == "rejected"
    # batch with a wrongly-stated record: nothing moves, the offender is named
    r = reg.post("/admin/stations/batch/approve", {"ids": [str(b), str(d)]})
    assert r.status_code == 409 and "REV-D" in r.text
    assert _state(engine, b) == "under_review" and _state(engine, d) == "pending"
    assert reg.post("/admin/stations/batch/approve", {"ids": [str(b), str(c)]}).status_code == 303
    assert _state(engine, b) == _state(engine, c) == "approved"
    # the operator sees the outcome in the list and in its messages
    page = op.get("/backoffice/stations").text
    assert "地址与坐标不符" in page and "档案申请通过" in page
    with engine.connect() as conn:
        titles = conn.execute(text(
            "SELECT m.title FROM messages m JOIN message_recipients r ON r.message_id = m.id "
            "WHERE r.operator_pk = :o ORDER BY m.id"), {"o": op.pk}).scalars().all()
    assert any("REV-A" in t and "审核不通过" in t for t in titles)
    assert any("REV-B" in t and "审核通过" in t for t in titles)
    # the rejected archive is editable again and can be resubmitted
    r = op.post(f"/backoffice/stations/{a}", {**station_form("REV-A"), "op": "submit"})
    assert r.status_code == 303 and _state(engine, a) == "under_review"

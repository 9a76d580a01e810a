"""Batch import from the Excel templates: a valid file, errors in several rows (nothing imported,
every error listed with row, column and reason), a re-import that updates, a wrong template, a
non-Excel file and an oversized file; the template itself (notes, drop-downs, hidden lists)."""

from __future__ import annotations

import io

from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from services.archives import excel
from tests.integration.archives.conftest import make_report, make_station

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _template(o, kind: str) -> bytes:  # noqa: ANN001
    r = o.get(f"/backoffice/{kind}/template.xlsx")
    assert r.status_code == 200 and r.headers["content-type"].startswith(XLSX)
    return r.content


def _fill(content: bytes, rows: list[list[object]]) -> bytes:
    wb = load_workbook(io.BytesIO(content))
    ws = wb.worksheets[0]
    for i, row in enumerate(rows, start=2):
        for j, value in enumerate(row, start=1):
            ws.cell(row=i, column=j, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _upload(o, kind: str, content: bytes, name: str = "import.xlsx"):  # noqa: ANN001, ANN202
    return o.post(f"/backoffice/{kind}/import", files={"file": (name, content, XLSX)})


def _station_row(sid: str, name: str = "导入站", **over: object) -> list[object]:
    base = {"station_id": sid, "name": name, "district_adcode": "440402-香洲区", "address": "珠海市香洲区情侣中路2号",
            "lng_gcj02": 113.576726, "lat_gcj02": 22.270715, "station_type": "1-公共", "station_status": "50-正常使用",
            "construction": "9-大型建筑配建停车场", "service_tel": "0756-2212345", "station_tel": "", "park_nums": 12,
            "equipment_owner_id": "", "busine_hours": "00:00-24:00", "electricity_fee": "0.8元/度",
            "service_fee": "0.6元/度", "park_fee": "免费", "payment": "刷卡,线上", "support_order": "0-否",
            "site_guide": "", "match_cars": "", "park_info": "", "remark": ""}
    base.update(over)
    from services.archives.validation import STATION_FIELDS

    return [base[f.name] for f in STATION_FIELDS]


def _count(engine, o, table: str) -> int:  # noqa: ANN001
    with engine.connect() as conn:
        return conn.execute(text(f"SELECT count(*) FROM {table} WHERE operator_pk = :o"), {"o": o.pk}).scalar()


def test_template_has_notes_dropdowns_and_marker(op) -> None:  # noqa: ANN001
    wb = load_workbook(io.BytesIO(_template(op, "stations")))
    ws = wb.worksheets[0]
    assert ws.title == "站点档案"
    assert ws["A1"].value == "*充电站编码" and ws["A1"].comment is not None and "StationID" in ws["A1"].comment.text
    sources = [dv.formula1 for dv in ws.data_validations.dataValidation]
    assert any("选项" in f for f in sources) and len(sources) >= 5  # district, type, status, construction, booking
    lists = wb["选项"]
    values = [c.value for c in lists["A"] if c.value]
    assert "440402-香洲区" in values
    assert wb["_zhcharge"]["A1"].value == "zhcharge:stations:v1"
    fwb = load_workbook(io.BytesIO(_template(op, "facilities")))
    assert fwb.worksheets[0].title == "设施档案"


def test_valid_import_then_reimport_updates(op, engine) -> None:  # noqa: ANN001
    content = _fill(_template(op, "stations"), [_station_row("IMP001"), _station_row("IMP002", "第二站"),
                                                 _station_row("IMP003", "第三站", district_adcode=440402)])
    r = _upload(op, "stations", content)
    assert r.status_code == 303, r.text[:1000]
    assert "新增3条" in r.headers["location"] or "3" in r.headers["location"]
    assert _count(engine, op, "station_archives") == 3
    # same StationIDs again, one name changed: updated, not duplicated
    content = _fill(_template(op, "stations"), [_station_row("IMP001", "改名了"), _station_row("IMP002", "第二站")])
    assert _upload(op, "stations", content).status_code == 303
    assert _count(engine, op, "station_archives") == 3
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, state FROM station_archives WHERE operator_pk = :o AND station_id = 'IMP001'"),
                            {"o": op.pk}).one() == ("改名了", "pending")


def test_errors_in_several_rows_import_nothing_and_list_every_error(op, engine) -> None:  # noqa: ANN001
    rows = [
        _station_row("ERR001"),                                  # row 2: fine
        _station_row("ERR 002"),                                 # row 3: bad StationID
        _station_row("ERR003", service_tel="abc", park_nums=-1),  # row 4: two errors
        _station_row("ERR004", station_type="火星站"),            # row 5: bad enumeration
        _station_row("ERR001"),                                  # row 6: duplicate of row 2
        _station_row("ERR006", lng_gcj02=116.397, lat_gcj02=39.909),  # row 7: outside the city
    ]
    r = _upload(op, "stations", _fill(_template(op, "stations"), rows))
    assert r.status_code == 400
    assert _count(engine, op, "station_archives") == 0
    page = r.text
    expected = [("3", "充电站编码"), ("4", "服务电话"), ("4", "车位数量"), ("5", "站点类型"), ("6", "充电站编码"),
                ("7", "经度（GCJ-02）")]
    import re

    cells = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", page)
    got = {(row, col) for row, col, _ in cells}
    for item in expected:
        assert item in got, (item, cells)
    assert "未导入任何记录" in page


def test_wrong_template_non_excel_and_oversized(op, engine) -> None:  # noqa: ANN001
    # the facility template uploaded as a station import
    r = _upload(op, "stations", _fill(_template(op, "facilities"), [["X"]]))
    assert r.status_code == 400 and "模板不正确" in r.text
    # a workbook that is no template at all
    wb = Workbook()
    wb.active.append(["name", "lat", "lng"])
    wb.active.append(["a", 1, 2])
    buf = io.BytesIO()
    wb.save(buf)
    r = _upload(op, "stations", buf.getvalue())
    assert r.status_code == 400 and "模板不正确" in r.text
    # not Excel at all (a CSV renamed .xlsx, and a zip that is no workbook)
    r = _upload(op, "stations", "充电站编码,名称\nA,B\n".encode(), "stations.xlsx")
    assert r.status_code == 400 and "请上传Excel" in r.text
    zbuf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(zbuf, "w") as z:
        z.writestr("hello.txt", "hi")
    r = _upload(op, "stations", zbuf.getvalue())
    assert r.status_code == 400 and "无法读取" in r.text
    # oversized
    r = _upload(op, "stations", b"PK\x03\x04" + b"\0" * (excel.MAX_IMPORT_BYTES + 10))
    assert r.status_code == 413 and "文件超过" in r.text
    # empty template
    r = _upload(op, "stations", _template(op, "stations"))
    assert r.status_code == 400 and "没有数据行" in r.text
    assert _count(engine, op, "station_archives") == 0


def test_facility_import_links_station_and_report(op, engine, database, settings) -> None:  # noqa: ANN001
    make_station(database, op, "FIMP-ST", "approved")
    make_report(database, op, "FIMP-R1", settings.app.upload_dir)
    good = ["FIMP-ST", "FIMP-R1", "FIMP-EQ1", "1号桩", "1-直流设备", 120, 2, "4-直流接口枪头（带枪线，模式4）",
            "2-2015版", "某电气", "", "DC120", "2023-01-05", None, None]
    bad_station = ["NOPE", "FIMP-R1", "FIMP-EQ2", "", "1", 60, 1, "4", "", "某电气", "", "DC60", "2023-01-05", None, None]
    bad_report = ["FIMP-ST", "NOPE-R", "FIMP-EQ3", "", "2", 7, 1, "3", "", "某电气", "", "AC7", "2099-01-05", None, None]
    r = _upload(op, "facilities", _fill(_template(op, "facilities"), [good, bad_station, bad_report]))
    assert r.status_code == 400
    assert "没有充电站编码为NOPE的站点档案" in r.text and "没有编号为NOPE-R的报告档案" in r.text
    assert "生产日期不在合理范围内" in r.text
    assert _count(engine, op, "facility_archives") == 0
    r = _upload(op, "facilities", _fill(_template(op, "facilities"), [good]))
    assert r.status_code == 303
    with engine.connect() as conn:
        row = conn.execute(text("SELECT f.state, f.power_kw, f.connector_count, s.station_id, r.report_no "
                                "FROM facility_archives f JOIN station_archives s ON s.id = f.station_archive_pk "
                                "JOIN report_archives r ON r.id = f.report_archive_pk WHERE f.equipment_id = 'FIMP-EQ1'")).one()
    assert row[0] == "pending" and float(row[1]) == 120.0 and row[2] == 2 and row[3] == "FIMP-ST" and row[4] == "FIMP-R1"

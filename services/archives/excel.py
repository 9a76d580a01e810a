"""Excel templates and batch import of station and facility archives (text fields only).

The template (openpyxl) has one data sheet whose header cells carry the column notes as
comments, a notes sheet, drop-down validation for every enumeration (from a hidden list sheet)
and a hidden marker naming the template. An import checks every row first and reports each
problem as (row, column, reason); nothing is stored unless every row is valid. Rows whose
StationID / EquipmentID already exist update that archive (when it is still editable).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import select
from sqlalchemy.orm import Session

from services.archives import facilities as fac
from services.archives import stations as sta
from services.archives import validation as v
from services.archives.common import Actor
from services.archives.workflows import FACILITY, STATION
from services.errors import BadRequest, PayloadTooLarge
from services.models.archives import FacilityArchive, ReportArchive, StationArchive

__all__ = ["ImportResult", "MAX_IMPORT_BYTES", "MAX_ROWS", "RowError", "import_facilities", "import_stations",
           "template"]

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000
_MARKER_SHEET = "_zhcharge"
_KINDS = {"stations": ("站点档案", v.STATION_FIELDS), "facilities": ("设施档案", v.FACILITY_FIELDS)}
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_REQUIRED_FILL = PatternFill("solid", fgColor="FCE4D6")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "reason": self.reason}


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def _header(f: v.Field) -> str:
    return ("*" if f.required else "") + f.zh


def _choices_for(f: v.Field, districts: dict[int, tuple[str, str]]) -> list[str] | None:
    if f.kind == "enum":
        return [f"{code}-{zh}" for code, (zh, _) in (f.choices or {}).items()]
    if f.kind == "district":
        return [f"{code}-{zh}" for code, (zh, _) in districts.items()]
    return None


def template(kind: str, districts: dict[int, tuple[str, str]]) -> bytes:
    """The .xlsx import template for ``kind`` ("stations" or "facilities")."""
    title, fields = _KINDS[kind]
    wb = Workbook()
    ws = wb.active
    ws.title = title
    lists = wb.create_sheet("选项")
    notes = wb.create_sheet("填写说明")
    marker = wb.create_sheet(_MARKER_SHEET)
    marker["A1"] = f"zhcharge:{kind}:v1"
    marker.sheet_state = "veryHidden"
    notes.append(["列", "字段", "说明"])
    for c in notes[1]:
        c.font = Font(bold=True)
    list_col = 0
    for i, f in enumerate(fields, start=1):
        letter = get_column_letter(i)
        cell = ws.cell(row=1, column=i, value=_header(f))
        cell.font = Font(bold=True)
        cell.fill = _REQUIRED_FILL if f.required else _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        cell.comment = Comment(f"{f.zh}（{f.en}）：{f.note}", "zhcharge", width=260, height=110)
        ws.column_dimensions[letter].width = max(12, min(40, len(f.zh) * 2 + 6))
        notes.append([letter, f"{f.zh}（{f.en}）", f.note])
        choices = _choices_for(f, districts)
        if choices:
            list_col += 1
            lc = get_column_letter(list_col)
            lists.cell(row=1, column=list_col, value=f.zh)
            for r, text_ in enumerate(choices, start=2):
                lists.cell(row=r, column=list_col, value=text_)
            dv = DataValidation(type="list", formula1=f"'选项'!${lc}$2:${lc}${len(choices) + 1}", allow_blank=not f.required,
                                showErrorMessage=True, errorTitle="无效的取值", error=f"请从下拉列表选择{f.zh}")
            dv.add(f"{letter}2:{letter}{MAX_ROWS + 1}")
            ws.add_data_validation(dv)
        if f.kind == "date":
            for r in range(2, 12):
                ws.cell(row=r, column=i).number_format = "yyyy-mm-dd"
    lists.sheet_state = "hidden"
    notes.column_dimensions["B"].width = 36
    notes.column_dimensions["C"].width = 70
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _read(content: bytes, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """Rows of an uploaded template as (Excel row number, {field name: cell value})."""
    title, fields = _KINDS[kind]
    if len(content) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"文件超过{MAX_IMPORT_BYTES // (1024 * 1024)}MB / the file is larger than "
                              f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB", param="file")
    if not content.startswith(b"PK\x03\x04"):
        raise BadRequest("请上传Excel（.xlsx）文件 / upload an Excel (.xlsx) file", param="file")
    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise BadRequest("文件无法读取，请上传Excel（.xlsx）文件 / the file is not a readable .xlsx workbook",
                         param="file") from None
    try:
        ws = wb[title] if title in wb.sheetnames else wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None) or ()
        expected = [_header(f) for f in fields]
        got = [str(c).strip() if c is not None else "" for c in header][: len(expected)]
        if [g.lstrip("*") for g in got] != [e.lstrip("*") for e in expected]:
            raise BadRequest(f"模板不正确：请下载并使用“{title}”导入模板（第1行应为：{'、'.join(expected[:4])}…） / "
                             "wrong template: download and use the import template of this page", param="file")
        out = []
        for n, values in enumerate(rows, start=2):
            values = tuple(values or ())
            if not any(c not in (None, "") and str(c).strip() for c in values):
                continue
            if len(out) >= MAX_ROWS:
                raise BadRequest(f"一次最多导入{MAX_ROWS}行 / at most {MAX_ROWS} rows per import", param="file")
            out.append((n, {f.name: (values[i] if i < len(values) else None) for i, f in enumerate(fields)}))
    finally:
        wb.close()
    if not out:
        raise BadRequest("模板中没有数据行 / the template has no data rows", param="file")
    return out


def _label(fields: tuple[v.Field, ...], name: str) -> str:
    for f in fields:
        if f.name == name:
            return f.zh
    return name


def import_stations(session: Session, actor: Actor, content: bytes, city_adcode: int = 440400) -> ImportResult:
    rows = _read(content, "stations")
    districts = v.district_choices(session, city_adcode)
    existing = {s.station_id: s for s in session.execute(select(StationArchive).where(
        StationArchive.operator_pk == actor.operator_pk)).scalars()}
    result = ImportResult()
    parsed: list[tuple[dict[str, Any], StationArchive | None]] = []
    seen: dict[str, int] = {}
    for n, raw in rows:
        clean, errors = v.parse_fields(v.STATION_FIELDS, raw, submit=True, districts=districts, key="station_id")
        if not errors:
            errors.update(v.check_position(session, clean, city_adcode=city_adcode))
        sid = clean.get("station_id")
        st = existing.get(sid) if sid else None
        if sid:
            if sid in seen:
                errors.setdefault("station_id", f"与第{seen[sid]}行重复 / duplicate of row {seen[sid]}")
            seen[sid] = n
        if st is not None and "edit" not in STATION.allowed(st.state, "operator"):
            errors.setdefault("station_id", f"已有档案状态为“{STATION.label(st.state)}”，不能通过导入修改 / "
                                            f"the existing archive is {STATION.label(st.state, 'en')}")
        for name, reason in errors.items():
            result.errors.append(RowError(n, _label(v.STATION_FIELDS, name), reason))
        parsed.append((clean, st))
    if result.errors:
        return result
    for clean, st in parsed:
        if st is None:
            st = StationArchive(operator_pk=actor.operator_pk, station_id=clean["station_id"], state="pending")
            session.add(st)
            result.created += 1
        else:
            result.updated += 1
        sta.apply_clean(session, st, clean)
    session.flush()
    return result


def import_facilities(session: Session, actor: Actor, content: bytes) -> ImportResult:
    rows = _read(content, "facilities")
    stations = {s.station_id: s for s in session.execute(select(StationArchive).where(
        StationArchive.operator_pk == actor.operator_pk)).scalars()}
    reports = {r.report_no: r.id for r in session.execute(select(ReportArchive).where(
        ReportArchive.operator_pk == actor.operator_pk)).scalars()}
    existing = {f.equipment_id: f for f in session.execute(select(FacilityArchive).where(
        FacilityArchive.operator_pk == actor.operator_pk)).scalars()}
    result = ImportResult()
    parsed: list[tuple[dict[str, Any], StationArchive, FacilityArchive | None]] = []
    seen: dict[str, int] = {}
    fields = v.FACILITY_FIELDS
    for n, raw in rows:
        clean, errors = v.parse_fields(fields, raw, submit=True, key="equipment_id")
        st = stations.get(clean.get("station_id") or "")
        if clean.get("station_id") and st is None:
            errors["station_id"] = f"没有充电站编码为{clean['station_id']}的站点档案 / no station archive with this StationID"
        if clean.get("report_no"):
            if clean["report_no"] not in reports:
                errors["report_no"] = f"没有编号为{clean['report_no']}的报告档案 / no report archive with this number"
            else:
                clean["report_archive_pk"] = reports[clean["report_no"]]
        if not errors and clean.get("lng_gcj02") is not None:
            errors.update(v.check_position(session, clean, district_field=None))
        if (clean.get("lng_gcj02") is None) != (clean.get("lat_gcj02") is None) and "lat_gcj02" not in errors:
            errors["lat_gcj02"] = "经纬度须同时填写 / give both longitude and latitude"
        eid = clean.get("equipment_id")
        fa = existing.get(eid) if eid else None
        if eid:
            if eid in seen:
                errors.setdefault("equipment_id", f"与第{seen[eid]}行重复 / duplicate of row {seen[eid]}")
            seen[eid] = n
        if fa is not None and "edit" not in FACILITY.allowed(fa.state, "operator"):
            errors.setdefault("equipment_id", f"已有档案状态为“{FACILITY.label(fa.state)}”，不能通过导入修改 / "
                                              f"the existing archive is {FACILITY.label(fa.state, 'en')}")
        for name, reason in errors.items():
            result.errors.append(RowError(n, _label(fields, name), reason))
        parsed.append((clean, st, fa))  # type: ignore[arg-type]
    if result.errors:
        return result
    for clean, st, fa in parsed:
        if fa is None:
            fa = FacilityArchive(operator_pk=actor.operator_pk, equipment_id=clean["equipment_id"], state="pending",
                                 station_archive_pk=st.id)
            session.add(fa)
            result.created += 1
        else:
            result.updated += 1
        fac._apply(fa, st, clean)
    session.flush()
    return result

"""Report archives (B3): test reports with their type-test report file.

Files are stored outside the web root (``settings.app.upload_dir/reports``) under random names;
the content type is sniffed from the first bytes (PDF, JPEG, PNG), never taken from the client.
Replacing the file keeps the old one as history. Only the owner and regulators download.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from services.archives import validation as v
from services.archives.common import Actor, Page, now, page_of, scoped_get
from services.errors import BadRequest, Conflict, NotFound, PayloadTooLarge
from services.models.archives import FacilityArchive, ReportArchive, ReportFile

__all__ = ["MAX_FILE_BYTES", "REPORT_FIELDS", "StoredFile", "create", "delete", "file_path", "get", "get_file",
           "list_page", "remove_files", "replace_file", "sniff", "update"]

MAX_FILE_BYTES = 10 * 1024 * 1024
_SIGNATURES = ((b"%PDF-", "application/pdf", ".pdf"), (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
               (b"\x89PNG\r\n\x1a\n", "image/png", ".png"))

REPORT_FIELDS: tuple[v.Field, ...] = (
    v.Field("report_no", "报告编号", "Report number", "str", True, 50),
    v.Field("lab", "检测机构", "Testing laboratory", "str", True, 100),
    v.Field("report_date", "报告日期", "Report date", "date", True),
    v.Field("equipment_model", "设备型号", "Equipment model", "str", True, 40),
    v.Field("manufacturer_name", "生产厂商", "Manufacturer", "str", False, 60),
    v.Field("equipment_type", "设备类型", "Equipment type", "enum", False,
            choices=v.FACILITY_FIELDS[4].choices),
    v.Field("power_kw", "额定功率（kW）", "Rated power (kW)", "decimal", False, low=0.1, high=2000),
    v.Field("remark", "备注", "Remark", "str", False, 200),
)


@dataclass(frozen=True)
class StoredFile:
    original_name: str
    content: bytes


def sniff(content: bytes) -> tuple[str, str] | None:
    """(content type, extension) from the magic bytes, or None.

    >>> sniff(b"%PDF-1.7 ..."), sniff(b"\\x89PNG\\r\\n\\x1a\\n...")[0], sniff(b"PK\\x03\\x04")
    (('application/pdf', '.pdf'), 'image/png', None)
    """
    for magic, ctype, ext in _SIGNATURES:
        if content.startswith(magic):
            return ctype, ext
    return None


def _safe_name(name: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip() or "report"
    return re.sub(r"[\x00-\x1f\"<>|]", "_", base)[:255]


def _store(session: Session, upload_dir: Path, report: ReportArchive, f: StoredFile, actor: Actor,
           max_bytes: int = MAX_FILE_BYTES) -> ReportFile:
    if not f.content:
        raise BadRequest("请选择形式试验报告文件 / choose the type-test report file", param="file")
    if len(f.content) > max_bytes:
        raise PayloadTooLarge(f"文件超过{max_bytes // (1024 * 1024)}MB / the file is larger than "
                              f"{max_bytes // (1024 * 1024)} MB", param="file")
    kind = sniff(f.content)
    if kind is None:
        raise BadRequest("只接受PDF、JPEG或PNG文件 / only PDF, JPEG or PNG files are accepted", param="file")
    ctype, ext = kind
    directory = upload_dir / "reports"
    directory.mkdir(parents=True, exist_ok=True)
    stored = secrets.token_hex(16) + ext
    path = directory / stored
    with open(path, "xb") as out:
        out.write(f.content)
    for old in session.execute(select(ReportFile).where(ReportFile.report_pk == report.id, ReportFile.current)).scalars():
        old.current = False
        old.replaced_at = now()
    session.flush()
    row = ReportFile(report_pk=report.id, kind="type_test", stored_name=stored, original_name=_safe_name(f.original_name),
                     content_type=ctype, size_bytes=len(f.content), sha256=hashlib.sha256(f.content).hexdigest(),
                     current=True, uploaded_by=actor.id)
    session.add(row)
    session.flush()
    return row


def file_path(upload_dir: Path, rf: ReportFile) -> Path:
    return upload_dir / "reports" / rf.stored_name


def get(session: Session, actor: Actor, pk: int) -> ReportArchive:
    return scoped_get(session, ReportArchive, pk, actor, what="报告档案 / report archive")


def get_file(session: Session, actor: Actor, file_pk: int) -> ReportFile:
    """The file if ``actor`` may read it; a missing file and another operator's file are the very same
    404, so ids cannot be probed for existence."""
    rf = session.get(ReportFile, file_pk)
    try:
        if rf is None:
            raise NotFound("")
        get(session, actor, rf.report_pk)
    except NotFound:
        raise NotFound("没有这个文件 / no such file") from None
    return rf


def files_of(session: Session, report_pk: int) -> list[ReportFile]:
    return list(session.execute(select(ReportFile).where(ReportFile.report_pk == report_pk)
                                .order_by(ReportFile.uploaded_at.desc(), ReportFile.id.desc())).scalars())


def current_files(session: Session, report_pks: list[int]) -> dict[int, ReportFile]:
    if not report_pks:
        return {}
    rows = session.execute(select(ReportFile).where(ReportFile.report_pk.in_(report_pks), ReportFile.current)).scalars()
    return {r.report_pk: r for r in rows}


def list_page(session: Session, actor: Actor, *, q: str | None = None, page: int = 1, per_page: int = 20,
              operator_pk: int | None = None) -> Page:
    stmt = select(ReportArchive)
    if actor.is_operator:
        stmt = stmt.where(ReportArchive.operator_pk == actor.operator_pk)
    elif operator_pk:
        stmt = stmt.where(ReportArchive.operator_pk == operator_pk)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(ReportArchive.report_no.ilike(like), ReportArchive.lab.ilike(like),
                              ReportArchive.equipment_model.ilike(like)))
    return page_of(session, stmt.order_by(ReportArchive.created_at.desc(), ReportArchive.id.desc()), page, per_page)


def for_operator(session: Session, operator_pk: int) -> list[ReportArchive]:
    return list(session.execute(select(ReportArchive).where(ReportArchive.operator_pk == operator_pk)
                                .order_by(ReportArchive.report_no)).scalars())


def _parse(raw: dict[str, Any]) -> dict[str, Any]:
    clean, errors = v.parse_fields(REPORT_FIELDS, raw, submit=True)
    if isinstance(clean.get("report_date"), date) and clean["report_date"] > date.today():
        errors["report_date"] = "报告日期不能晚于今天 / the report date is in the future"
    if errors:
        raise BadRequest("请修正标出的字段 / please correct the marked fields", details=errors)
    return clean


def create(session: Session, actor: Actor, raw: dict[str, Any], file: StoredFile | None, upload_dir: Path,
           max_bytes: int = MAX_FILE_BYTES) -> ReportArchive:
    if not actor.is_operator:
        raise BadRequest("only operators keep report archives")
    clean = _parse(raw)
    dup = session.execute(select(ReportArchive.id).where(ReportArchive.operator_pk == actor.operator_pk,
                                                         ReportArchive.report_no == clean["report_no"])).first()
    if dup:
        raise BadRequest("报告编号已存在 / this report number exists already",
                         details={"report_no": "报告编号已存在 / this report number exists already"})
    if file is None or not file.content:
        raise BadRequest("请上传形式试验报告文件 / upload the type-test report file",
                         details={"file": "请上传形式试验报告文件 / upload the type-test report file"})
    r = ReportArchive(operator_pk=actor.operator_pk, created_by=actor.id, **clean)
    session.add(r)
    session.flush()
    _store(session, upload_dir, r, file, actor, max_bytes)
    return r


def update(session: Session, actor: Actor, pk: int, raw: dict[str, Any]) -> ReportArchive:
    r = get(session, actor, pk)
    if not actor.is_operator:
        raise BadRequest("only the owner edits a report archive")
    clean = _parse(raw)
    dup = session.execute(select(ReportArchive.id).where(ReportArchive.operator_pk == r.operator_pk,
                                                         ReportArchive.report_no == clean["report_no"],
                                                         ReportArchive.id != r.id)).first()
    if dup:
        raise BadRequest("报告编号已存在 / this report number exists already",
                         details={"report_no": "报告编号已存在 / this report number exists already"})
    for k, val in clean.items():
        setattr(r, k, val)
    return r


def replace_file(session: Session, actor: Actor, pk: int, file: StoredFile, upload_dir: Path,
                 max_bytes: int = MAX_FILE_BYTES) -> ReportFile:
    r = get(session, actor, pk)
    if not actor.is_operator:
        raise BadRequest("only the owner replaces a report file")
    return _store(session, upload_dir, r, file, actor, max_bytes)


def usage(session: Session, pk: int) -> list[str]:
    return list(session.execute(select(FacilityArchive.equipment_id).where(FacilityArchive.report_archive_pk == pk)
                                .order_by(FacilityArchive.equipment_id).limit(6)).scalars())


def delete(session: Session, actor: Actor, pk: int, upload_dir: Path) -> list[Path]:
    """Delete the report and its file rows; returns the stored files for the caller to remove
    once the transaction has committed (a rollback then never loses a file)."""
    r = get(session, actor, pk)
    if not actor.is_operator:
        raise BadRequest("only the owner deletes a report archive")
    used = usage(session, pk)
    if used:
        raise Conflict(f"该报告已被设施档案引用（{', '.join(used[:5])}{'…' if len(used) > 5 else ''}），不能删除 / "
                       "facility archives still refer to this report")
    paths = [file_path(upload_dir, f) for f in files_of(session, pk)]
    session.delete(r)
    session.flush()
    return paths


def remove_files(paths: list[Path]) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def counts(session: Session, operator_pk: int) -> int:
    return session.execute(select(func.count()).select_from(ReportArchive)
                           .where(ReportArchive.operator_pk == operator_pk)).scalar_one()

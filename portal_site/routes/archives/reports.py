"""B3 report archives (type-test reports) in the operators' back office (/backoffice/reports): the
list, the form with the report file, the detail page (also the regulators' at /admin/reports/{pk}),
replacing the file, deletion, and the file download.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.response import File, Redirect, Template
from sqlalchemy import select

from portal_site.routes.archives.common import (
    OP,
    UPLOAD_LIMIT,
    Form,
    Multipart,
    actor_of,
    confirm_page,
    errors_for,
    localized,
    page_context,
    redirect,
    require_owner_or_regulator,
    run_or_render,
    upload_bytes,
)
from services.archives import reports as rep
from services.db import Database
from services.errors import AppError, BadRequest, NotFound
from services.models.archives import FacilityArchive, ReportArchive
from services.models.core import Operator
from services.params import page_param
from services.settings import Settings

__all__ = ["ROUTES"]

MAX_MB = rep.MAX_FILE_BYTES // (1024 * 1024)


@get("/backoffice/reports", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_list(request: Request, db: Database, settings: Settings) -> Template:
    actor = actor_of(request)
    q = (request.query_params.get("q") or "").strip() or None
    pg = page_param(request.query_params.get("page"))
    with db.session() as s:
        page = rep.list_page(s, actor, q=q, page=pg)
        files = rep.current_files(s, [r.id for r in page.items])
        used = {r.id: len(rep.usage(s, r.id)) for r in page.items}
        return Template("archives/reports_list.html", context=page_context(
            request, s, settings, page=page, files=files, used=used, total=rep.counts(s, actor.operator_pk)))


def _report_form(request: Request, s: Any, settings: Settings, r: ReportArchive | None, form: dict[str, Any],
                 errors: dict[str, str], status: int = 200, flash: str | None = None) -> Template:
    return Template("archives/report_form.html", status_code=status, context=page_context(
        request, s, settings, r=r, form=form, errors=errors, fields=rep.REPORT_FIELDS, flash=flash,
        flash_error=bool(flash), max_mb=MAX_MB))


@get("/backoffice/reports/new", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_new(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return _report_form(request, s, settings, None, {}, {})


@post("/backoffice/reports", guards=OP, sync_to_thread=True, include_in_schema=False, request_max_body_size=UPLOAD_LIMIT)
def report_create(request: Request, db: Database, settings: Settings, data: Multipart) -> Template | Redirect:
    if data.get("op") == "cancel":
        return redirect("/backoffice/reports")
    up = upload_bytes(data)
    form = {k: val for k, val in data.items() if not isinstance(val, UploadFile)}

    def work(s: Any) -> Redirect:
        r = rep.create(s, actor_of(request), form, rep.StoredFile(*up) if up else None, settings.app.upload_dir)
        return redirect("/backoffice/reports", ok=f"{r.report_no}：已保存 / saved")

    def form_again(s: Any, exc: AppError) -> Template:
        errors = errors_for(request, exc)
        if exc.param == "file":
            errors["file"] = localized(request, exc.message)
        return _report_form(request, s, settings, None, form, errors, exc.status_code, localized(request, exc.message))

    return run_or_render(db, work, form_again)


@get("/backoffice/reports/{pk:int}/edit", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_edit(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        r = rep.get(s, actor_of(request), pk)
        form = {f.name: getattr(r, f.name) for f in rep.REPORT_FIELDS}
        return _report_form(request, s, settings, r, form, {})


@post("/backoffice/reports/{pk:int}", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_update(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Template | Redirect:
    if data.get("op") == "cancel":
        return redirect("/backoffice/reports")

    def work(s: Any) -> Redirect:
        r = rep.update(s, actor_of(request), pk, data)
        return redirect("/backoffice/reports", ok=f"{r.report_no}：已保存 / saved")

    def form_again(s: Any, exc: AppError) -> Template:
        r = rep.get(s, actor_of(request), pk)
        return _report_form(request, s, settings, r, data, errors_for(request, exc), 400, localized(request, exc.message))

    return run_or_render(db, work, form_again, catch=BadRequest)


def _report_detail(request: Request, s: Any, settings: Settings, r: ReportArchive, facilities: list[Any],
                   status: int = 200, **extra: Any) -> Template:
    return Template("archives/report_detail.html", status_code=status, context=page_context(
        request, s, settings, r=r, files=rep.files_of(s, r.id), facilities=facilities,
        operator=s.get(Operator, r.operator_pk), fields=rep.REPORT_FIELDS, max_mb=MAX_MB, **extra))


@get(["/backoffice/reports/{pk:int}", "/admin/reports/{pk:int}"], guards=[require_owner_or_regulator],
     sync_to_thread=True, include_in_schema=False)
def report_detail(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        r = rep.get(s, actor_of(request), pk)
        users = list(s.execute(select(FacilityArchive).where(FacilityArchive.report_archive_pk == pk)
                               .order_by(FacilityArchive.equipment_id)).scalars())
        return _report_detail(request, s, settings, r, users)


@post("/backoffice/reports/{pk:int}/file", guards=OP, sync_to_thread=True, include_in_schema=False,
      request_max_body_size=UPLOAD_LIMIT)
def report_replace_file(request: Request, db: Database, settings: Settings, pk: int, data: Multipart) -> Template | Redirect:
    up = upload_bytes(data)

    def work(s: Any) -> Redirect:
        rep.get(s, actor_of(request), pk)
        rep.replace_file(s, actor_of(request), pk, rep.StoredFile(*(up or ("", b""))), settings.app.upload_dir)
        return redirect(f"/backoffice/reports/{pk}", ok="形式试验报告已更换 / the type-test report was replaced")

    def detail_again(s: Any, exc: AppError) -> Template:
        r = rep.get(s, actor_of(request), pk)
        return _report_detail(request, s, settings, r, [], exc.status_code,
                              flash=localized(request, exc.message), flash_error=True)

    return run_or_render(db, work, detail_again)


@get("/backoffice/reports/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_delete_confirm(request: Request, db: Database, settings: Settings, pk: int) -> Template:
    with db.session() as s:
        r = rep.get(s, actor_of(request), pk)
        return confirm_page(request, s, settings, f"{r.report_no}（{r.lab}）", f"/backoffice/reports/{pk}/delete",
                            "/backoffice/reports", rep.usage(s, pk))


@post("/backoffice/reports/{pk:int}/delete", guards=OP, sync_to_thread=True, include_in_schema=False)
def report_delete(request: Request, db: Database, settings: Settings, pk: int, data: Form) -> Redirect:
    with db.session() as s:
        r = rep.get(s, actor_of(request), pk)
        no = r.report_no
        stale = rep.delete(s, actor_of(request), pk, settings.app.upload_dir)
    rep.remove_files(stale)
    return redirect("/backoffice/reports", ok=f"{no}：已删除 / deleted")


@get("/backoffice/reports/files/{file_pk:int}", guards=[require_owner_or_regulator], sync_to_thread=True,
     include_in_schema=False)
def report_file(request: Request, db: Database, settings: Settings, file_pk: int) -> File:
    with db.session() as s:
        rf = rep.get_file(s, actor_of(request), file_pk)
        path = rep.file_path(settings.app.upload_dir, rf)
        name, ctype = rf.original_name, rf.content_type
    if not path.is_file():
        raise NotFound("文件已不存在 / the file is gone")
    return File(path=path, filename=name, media_type=ctype, content_disposition_type="attachment",
                headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, no-store"})


ROUTES: list[Any] = [
    report_list, report_new, report_create, report_edit, report_update, report_detail, report_replace_file,
    report_delete_confirm, report_delete, report_file,
]

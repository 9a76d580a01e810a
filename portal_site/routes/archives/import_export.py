"""Files in and out of the archives: the Excel templates of the station and facility archives and
B1's guide documents to download (both shown before the operator's approval), and the Excel
import of station or facility archives (all rows or none).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.response import Redirect, Template

from portal_site import auth
from portal_site.routes.archives.common import (
    OP,
    UPLOAD_LIMIT,
    Multipart,
    actor_of,
    localized,
    page_context,
    redirect,
    run_or_render,
    upload_bytes,
)
from services.archives import documents, excel
from services.archives import validation as v
from services.db import Database
from services.errors import AppError, BadRequest
from services.settings import Settings

__all__ = ["ROUTES"]


def _template_xlsx(db: Database, settings: Settings, kind: str, name: str) -> Response:
    """The import template of ``kind`` (the city's districts in its drop-down), as a download."""
    with db.session() as s:
        districts = v.district_choices(s, settings.app.city_adcode)
    return Response(excel.template(kind, districts),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=\"{name}\"; "
                                                    f"filename*=UTF-8''{name}"})


@get(["/backoffice/stations/template.xlsx", "/backoffice/documents/station-template.xlsx"],
     guards=[auth.require_operator_any], opt={"open_before_approval": True},  # B1 downloads, shown before approval
     sync_to_thread=True, include_in_schema=False)
def station_template(db: Database, settings: Settings) -> Response:
    return _template_xlsx(db, settings, "stations", "station-archives-template.xlsx")


@get(["/backoffice/facilities/template.xlsx", "/backoffice/documents/facility-template.xlsx"],
     guards=[auth.require_operator_any], opt={"open_before_approval": True},  # B1 downloads, shown before approval
     sync_to_thread=True, include_in_schema=False)
def facility_template(db: Database, settings: Settings) -> Response:
    return _template_xlsx(db, settings, "facilities", "facility-archives-template.xlsx")


def _import_page(request: Request, s: Any, settings: Settings, kind: str, *, result: Any = None,
                 error: str | None = None, status: int = 200) -> Template:
    return Template("archives/import.html", status_code=status, context=page_context(
        request, s, settings, kind=kind, result=result, flash=error, flash_error=bool(error)))


def _kind(request: Request) -> str:
    return "stations" if request.url.path.startswith("/backoffice/stations") else "facilities"


@get(["/backoffice/stations/import", "/backoffice/facilities/import"], guards=OP, sync_to_thread=True,
     include_in_schema=False)
def import_form(request: Request, db: Database, settings: Settings) -> Template:
    with db.session() as s:
        return _import_page(request, s, settings, _kind(request))


class ImportRefused(BadRequest):
    """The workbook had errors: nothing is imported (the transaction rolls back) and the page lists
    them (``result.errors``)."""

    def __init__(self, result: excel.ImportResult) -> None:
        n = len(result.errors)
        super().__init__(f"导入失败：{n}处错误，未导入任何记录 / import refused: {n} error(s), nothing imported")
        self.result = result


@post(["/backoffice/stations/import", "/backoffice/facilities/import"], guards=OP, sync_to_thread=True,
      include_in_schema=False, request_max_body_size=UPLOAD_LIMIT)
def import_upload(request: Request, db: Database, settings: Settings, data: Multipart) -> Template | Redirect:
    kind = _kind(request)
    up = upload_bytes(data)
    actor = actor_of(request)

    def work(s: Any) -> Redirect:
        if up is None or not up[1]:
            raise BadRequest("请选择要导入的文件 / choose the file to import", param="file")
        if kind == "stations":
            result = excel.import_stations(s, actor, up[1], settings.app.city_adcode)
        else:
            result = excel.import_facilities(s, actor, up[1])
        if not result.ok:
            raise ImportRefused(result)
        return redirect(f"/backoffice/{kind}", ok=f"导入完成：新增{result.created}条，更新{result.updated}条 / "
                                                  f"imported: {result.created} new, {result.updated} updated")

    def page_again(s: Any, exc: AppError) -> Template:
        return _import_page(request, s, settings, kind, result=getattr(exc, "result", None),
                            error=localized(request, exc.message), status=exc.status_code)

    return run_or_render(db, work, page_again, not_found_raises=False)


@get("/backoffice/documents/{name:str}", guards=[auth.require_operator_any], sync_to_thread=True,
     include_in_schema=False, opt={"open_before_approval": True})  # B1's guide documents, shown before approval
def document(name: str, settings: Settings) -> Response:
    doc = documents.get(name, settings)
    if doc is None:
        raise NotFoundException("no such document")
    content, media_type, filename = doc
    return Response(content, media_type=media_type,
                    headers={"Content-Disposition": f"attachment; filename=\"{filename}\""})


ROUTES: list[Any] = [station_template, facility_template, import_form, import_upload, document]

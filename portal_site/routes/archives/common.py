"""What every archives page shares: guards, form bodies, the actor, bilingual messages, redirects,
the page context, and :func:`run_or_render`, the one shape of a POST that changes an archive.

Used by the modules of this package and by :mod:`portal_site.routes.interconnection` (B5).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body
from litestar.response import Redirect, Response, Template

from portal_site import auth
from services.archives import validation as v
from services.archives.common import Actor
from services.archives.workflows import ACTION_LABELS, FACILITY, INTERCONNECTION, STATION
from services.db import Database
from services.errors import AppError
from services.params import id_list
from services.settings import Settings
from services.stations.enums import CONNECTOR_TYPES, CONSTRUCTIONS, EQUIPMENT_TYPES, NATIONAL_STANDARDS, STATION_STATUSES, STATION_TYPES

__all__ = [
    "Form", "Multipart", "UPLOAD_LIMIT", "OP", "REG", "LABELS", "require_owner_or_regulator", "actor_of",
    "form_ids", "localized", "errors_for", "redirect", "saved_or_submitted", "back_to", "pretty", "page_context",
    "confirm_page", "upload_bytes", "run_or_render",
]

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Multipart = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
UPLOAD_LIMIT = 24 * 1024 * 1024  # above our own limits, so our messages win

OP = [auth.require_operator]
REG = [auth.require_regulator]


def require_owner_or_regulator(connection: ASGIConnection, _: BaseRouteHandler | None = None) -> None:
    user = auth.current_user(connection)
    if user is None:
        raise NotAuthorizedException("请先登录 / please log in")
    if user.is_regulator:
        return
    auth.require_operator(connection, _)


def actor_of(request: Request) -> Actor:
    return Actor.of(auth.current_user(request))


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(x) for x in value]
    return [str(value)]


def form_ids(value: Any) -> list[int]:
    """The ids ticked in a form (one value or many)."""
    return id_list(_list(value))


def _lang(request: Request) -> str:
    from portal_site.i18n import lang_of

    return lang_of(request)


def localized(request: Request, text: str) -> str:
    """A bilingual 'zh / en' message in the page language."""
    if " / " not in text:
        return text
    zh, _, en = text.partition(" / ")
    return en if _lang(request) == "en" else zh


def errors_for(request: Request, exc: AppError) -> dict[str, str]:
    details = exc.details if isinstance(exc.details, dict) else {}
    return {k: localized(request, str(val)) for k, val in details.items() if isinstance(val, str)}


def redirect(path: str, **params: Any) -> Redirect:
    q = {k: val for k, val in params.items() if val not in (None, "")}
    return Redirect(path + ("?" + urlencode(q) if q else ""), status_code=303)


def saved_or_submitted(op: str) -> str:
    """The flash after a form was saved (``op`` "save") or submitted for review (``op`` "submit")."""
    return "已提交审核 / submitted for review" if op == "submit" else "已保存 / saved"


def back_to(request: Request, default: str) -> str:
    """The list page to return to (same site only)."""
    back = request.query_params.get("back") or ""
    return back if back.startswith("/") and not back.startswith("//") else default


LABELS = {
    "station_types": STATION_TYPES, "station_statuses": STATION_STATUSES, "constructions": CONSTRUCTIONS,
    "equipment_types": EQUIPMENT_TYPES, "connector_types": CONNECTOR_TYPES, "national_standards": NATIONAL_STANDARDS,
    "yes_no": v.YES_NO,
}


def pretty(obj: Any) -> str:
    """JSON for people: indented, Chinese kept as is (the debugging views)."""
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)


def page_context(request: Request, s: Any, settings: Settings, **kw: Any) -> dict[str, Any]:
    """Context every archives page gets: workflows, vocabularies, districts, the actor."""
    kw.setdefault("flash", request.query_params.get("ok") and localized(request, request.query_params["ok"]))
    base = {"STATION": STATION, "FACILITY": FACILITY, "INTERCONNECTION": INTERCONNECTION,
            "ACTIONS": ACTION_LABELS, "L": LABELS, "actor": actor_of(request),
            "districts": v.district_choices(s, settings.app.city_adcode),
            "STATION_FIELDS": v.STATION_FIELDS, "FACILITY_FIELDS": v.FACILITY_FIELDS,
            "query": dict(request.query_params), "pretty": pretty}
    base.update(kw)
    return base


def confirm_page(request: Request, s: Any, settings: Settings, what: str, action_url: str, back: str,
                 blockers: list[str] | None = None) -> Template:
    """The 'really delete?' page, with what keeps the deletion from happening, if anything."""
    return Template("archives/confirm_delete.html", context=page_context(request, s, settings, what=what,
                                                                        action_url=action_url, back=back,
                                                                        blockers=blockers or []))


def upload_bytes(data: dict[str, Any], name: str = "file") -> tuple[str, bytes] | None:
    """(file name, content) of the multipart field ``name``, or None when no file came."""
    up = data.get(name)
    if isinstance(up, list):
        up = up[0] if up else None
    if not isinstance(up, UploadFile):
        return None
    up.file.seek(0)
    return up.filename or "", up.file.read()


def run_or_render(db: Database, work: Callable[[Any], Response], on_error: Callable[[Any, AppError], Response], *,
                  catch: type[AppError] = AppError, not_found_raises: bool = True) -> Response:
    """Run ``work(session)`` in one transaction and answer what it returns (after a POST, the
    redirect with the ``ok`` flash); if it raises ``catch``, the transaction is rolled back and
    ``on_error(session, exc)`` answers instead, in a fresh session: the page again, with the message
    and the status of the error. A 404 is left to the app's not-found page unless
    ``not_found_raises`` is false.

    ``work`` builds its redirect inside the session because objects are read there; the redirect
    only leaves if the commit succeeds (a failing commit raises like any other error).
    """
    try:
        with db.session() as s:
            return work(s)
    except catch as exc:
        if not_found_raises and exc.status_code == 404:
            raise
        with db.session() as s:
            return on_error(s, exc)

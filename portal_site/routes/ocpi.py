"""OCPI 2.2.1, zhcharge as Sender of Locations and Tariffs: ``/ocpi/versions``, ``/ocpi/2.2.1``,
``/ocpi/2.2.1/locations[/{location_id}[/{evse_uid}[/{connector_id}]]]`` and ``/ocpi/2.2.1/tariffs``.

Every answer is the OCPI response envelope ``{data, status_code, status_message, timestamp}``.
Every request needs ``Authorization: Token <Base64 of the token>`` (or the raw token) of a party
added with ``zhcharge ocpi add-party``: without one, HTTP 401 with 4001. Lists are paginated
(``Link`` with ``rel="next"``, ``X-Total-Count``, ``X-Limit``) in a stable order; see
``services.ocpi.paging``. Not in the OpenAPI document of the open API: OCPI's specification is
this interface's contract.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from litestar import MediaType, Request, Response, Router, get
from sqlalchemy.exc import SQLAlchemyError

from services.db import Database, is_disconnect
from services.errors import AppError
from services.ocpi import queries
from services.ocpi.errors import (GENERIC_CLIENT_ERROR, GENERIC_SERVER_ERROR, INVALID_PARAMETERS, SUCCESS, OcpiError,
                                  unknown_location)
from services.ocpi.models import ENCODER, Endpoint, Version, VersionDetails, ocpi_datetime
from services.ocpi.paging import next_link, parse_list
from services.ocpi.parties import ClientParty, authenticate
from services.settings import Settings

__all__ = ["ROUTES", "VERSION"]

log = logging.getLogger("zhcharge.ocpi")

VERSION = "2.2.1"
PREFIX = "/ocpi"
MODULES = ("locations", "tariffs")


# --- the envelope -------------------------------------------------------------------------------
def _envelope(data: Any, *, status_code: int = SUCCESS, message: str = "Success", http_status: int = 200,
              headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body.update(status_code=status_code, status_message=message, timestamp=ocpi_datetime(datetime.now(UTC)))
    return Response(content=ENCODER.encode(body), media_type=MediaType.JSON, status_code=http_status,
                    headers=headers)


def _ocpi_error(request: Request, exc: OcpiError) -> Response:
    headers = {"WWW-Authenticate": 'Token realm="ocpi"'} if exc.http_status == 401 else None
    return _envelope(None, status_code=exc.status_code, message=exc.message, http_status=exc.http_status,
                     headers=headers)


def _app_error(request: Request, exc: AppError) -> Response:
    """A house error raised by shared code: a client's mistake is 2001 (or 2000), ours 3000."""
    if exc.status_code >= 500:
        log.error("%s on %s: %s", type(exc).__name__, request.url.path, exc.message)
        return _envelope(None, status_code=GENERIC_SERVER_ERROR, message=exc.message, http_status=exc.status_code)
    code = INVALID_PARAMETERS if exc.status_code == 400 else GENERIC_CLIENT_ERROR
    return _envelope(None, status_code=code, message=exc.message, http_status=200 if code == 2001 else exc.status_code)


def _server_error(request: Request, exc: Exception) -> Response:
    log.error("OCPI request %s failed", request.url.path, exc_info=exc)
    unavailable = isinstance(exc, SQLAlchemyError)
    return _envelope(None, status_code=GENERIC_SERVER_ERROR,
                     message="the database is unavailable; please retry shortly" if unavailable
                     else "internal error; it has been logged", http_status=503 if unavailable else 500,
                     headers={"Retry-After": "5"} if unavailable else None)


# --- helpers ------------------------------------------------------------------------------------
def _party(request: Request, db: Database) -> ClientParty:
    header = request.headers.get("authorization")
    try:
        with db.primary.engine.begin() as conn:  # last_used_at bookkeeping: a write, so the primary
            return authenticate(conn, header)
    except SQLAlchemyError as exc:
        if db.primary is db or not is_disconnect(exc):
            raise
    with db.engine.connect() as conn:  # the primary is down and a replica serves the reads: it knows the tokens
        return authenticate(conn, header, touch=False)


def _ensure_parties(db: Database) -> None:
    """Publishing parties for new operators (a write); skipped while the primary is down and a replica
    serves the reads (every operator seen before has its party already)."""
    try:
        queries.ensure_parties(db.primary.engine)
    except SQLAlchemyError as exc:
        if db.primary is db or not is_disconnect(exc):
            raise


def _base(settings: Settings) -> str:
    return settings.app.public_url.rstrip("/") + PREFIX


def _no_parameters(request: Request) -> None:
    for name in request.query_params.keys():
        raise OcpiError(INVALID_PARAMETERS, f"unknown parameter '{str(name)[:60]}'; this endpoint takes none",
                        http_status=200, param=str(name)[:60])


def _paged(page: queries.Page, q: Any, url: str) -> Response:
    headers = {"X-Total-Count": str(page.total), "X-Limit": str(q.limit)}
    if page.next_after is not None:
        headers["Link"] = next_link(url, q, len(page.items), page.next_after)
    return _envelope(page.items, headers=headers)


# --- versions -----------------------------------------------------------------------------------
@get("/versions", sync_to_thread=True, include_in_schema=False)
def versions(request: Request, db: Database, settings: Settings) -> Response:
    """The versions we speak: only 2.2.1."""
    _party(request, db)
    _no_parameters(request)
    return _envelope([Version(version=VERSION, url=f"{_base(settings)}/{VERSION}")])


@get(f"/{VERSION}", sync_to_thread=True, include_in_schema=False)
def version_details(request: Request, db: Database, settings: Settings) -> Response:
    """The modules of 2.2.1 we serve, as SENDER (the CPO's interface)."""
    _party(request, db)
    _no_parameters(request)
    base = f"{_base(settings)}/{VERSION}"
    return _envelope(VersionDetails(version=VERSION, endpoints=[
        Endpoint(identifier=m, role="SENDER", url=f"{base}/{m}") for m in MODULES]))


# --- locations ----------------------------------------------------------------------------------
def _list(request: Request, db: Database, settings: Settings, module: str, key: Any, fetch: Any) -> Response:
    """A paginated list: the party checked, the parameters read, one consistent snapshot read."""
    _party(request, db)
    cfg = settings.ocpi
    q = parse_list(request.query_params, default_limit=cfg.default_limit, max_limit=cfg.max_limit, key=key)
    _ensure_parties(db)
    with queries.read_snapshot(db.engine) as conn:
        page = fetch(conn, q)
    return _paged(page, q, f"{_base(settings)}/{VERSION}/{module}")


@get(f"/{VERSION}/locations", sync_to_thread=True, include_in_schema=False)
def locations(request: Request, db: Database, settings: Settings) -> Response:
    """Locations with ``last_updated`` in [date_from, date_to), by id, paginated."""
    return _list(request, db, settings, "locations", queries.location_key,
                 lambda conn, q: queries.locations_page(conn, db.primary.engine, q, city=settings.ocpi.city))


def _object_path(request: Request) -> list[str]:
    """The segments after ``/locations/``, percent-decoded one by one (an id may hold an encoded '/')."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    tail = raw.decode("latin-1").split("?", 1)[0].split(f"/{VERSION}/locations/", 1)[-1]
    return [unquote(p, encoding="utf-8", errors="replace") for p in tail.split("/") if p]


@get(f"/{VERSION}/locations/{{rest:path}}", sync_to_thread=True, include_in_schema=False)
def location_object(request: Request, db: Database, settings: Settings, rest: str) -> Response:
    """One Location, one of its EVSEs (``/{location_id}/{evse_uid}``) or one of an EVSE's Connectors
    (``/{location_id}/{evse_uid}/{connector_id}``); 2003 with HTTP 404 when any of them is unknown."""
    _party(request, db)
    _no_parameters(request)
    parts = _object_path(request)
    if not 1 <= len(parts) <= 3:
        raise unknown_location("give /locations/{location_id}[/{evse_uid}[/{connector_id}]]")
    _ensure_parties(db)
    with queries.read_snapshot(db.engine) as conn:
        loc = queries.one_location(conn, db.primary.engine, parts[0], city=settings.ocpi.city)
    if len(parts) == 1:
        return _envelope(loc)
    evse = next((e for e in loc.evses if e.uid == parts[1]), None)
    if evse is None:
        raise unknown_location(f"location '{loc.id}' has no EVSE '{parts[1][:40]}'")
    if len(parts) == 2:
        return _envelope(evse)
    conn_obj = next((c for c in evse.connectors if c.id == parts[2]), None)
    if conn_obj is None:
        raise unknown_location(f"EVSE '{evse.uid}' of location '{loc.id}' has no connector '{parts[2][:40]}'")
    return _envelope(conn_obj)


# --- tariffs ------------------------------------------------------------------------------------
@get(f"/{VERSION}/tariffs", sync_to_thread=True, include_in_schema=False)
def tariffs(request: Request, db: Database, settings: Settings) -> Response:
    """Tariffs with ``last_updated`` in [date_from, date_to), by (operator, id), paginated."""
    return _list(request, db, settings, "tariffs", queries.tariff_key,
                 lambda conn, q: queries.tariffs_page(conn, db.primary.engine, q))


ocpi_router = Router(path=PREFIX, route_handlers=[versions, version_details, locations, location_object, tariffs],
                     exception_handlers={OcpiError: _ocpi_error, AppError: _app_error,
                                         SQLAlchemyError: _server_error, Exception: _server_error})

ROUTES: list[Any] = [ocpi_router]

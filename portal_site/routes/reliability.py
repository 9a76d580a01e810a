"""Reliability in the open API (``/api/v1``, same key, rate limit and CORS as the rest of it), and
the reliability job (status silence, history partitions, nightly aggregates) when this process
runs background jobs.

* ``GET /api/v1/stations/{id}/status-history?from=&to=``: each connector's status intervals.
* ``GET /api/v1/stations/{id}/reliability?from=&to=``: uptime per connector and for the station.

Times are ISO 8601 (UTC when no offset is given) and come back in UTC with the offset. A window
must start before it ends and last at most a year; unknown parameters are refused by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, Router, get
from litestar.params import Parameter, QueryParameter

from portal_site.routes.api import API_PREFIX, RateLimitMiddleware, request_now
from services.db import Database
from services.errors import BadRequest, NotFound
from services.reliability.history import station_reliability, status_history
from services.reliability.jobs import reliability_job
from services.reliability.schemas import StationReliability, StatusHistory
from services.reliability.settings import ReliabilitySettings
from services.reliability.window import Window, parse_window
from services.search.query import check_known
from services.settings import Settings

__all__ = ["ROUTES", "on_shutdown", "on_startup"]

_FROM = "ISO 8601 start of the window, e.g. 2026-12-06T00:00:00Z (default: {default} before `to`)"
_TO = "ISO 8601 end of the window (default: now); at most a year after `from`"


def _answer(request: Request, db: Database, station_pk: int, default: timedelta,
            compute: Callable[[Any, int, Any, Any, Any], dict | None]) -> Response:
    check_known(request.query_params, ["from", "to"])
    now = request_now(request.app)
    window: Window = parse_window(request.query_params, now, default)
    if not 0 < station_pk < 2**63:
        raise BadRequest("parameter 'station_pk' is out of range", param="station_pk")
    with db.engine.connect() as conn:
        body = compute(conn, station_pk, window.start, window.end, now)
    if body is None:
        raise NotFound(f"no station {station_pk}")
    content = msgspec.json.encode(body)
    etag = f'W/"{hashlib.sha256(content).hexdigest()[:20]}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=0, must-revalidate", "Vary": "Accept-Encoding"}
    inm = request.headers.get("if-none-match")
    if inm and (inm.strip() == "*" or etag in [t.strip() for t in inm.split(",")]):
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=content, media_type="application/json", headers=headers)


@get("/stations/{station_pk:int}/status-history", sync_to_thread=True, tags=["stations"],
     summary="Each connector's status intervals over a window",
     description="`intervals` in time order, clipped to the window; `to` is null for the interval still open "
                 "when the window reaches the present; `status` is null while the connector was silent (no push "
                 "or pull for longer than the freshness limit). Default window: the last 24 hours.")
def get_status_history(
    request: Request, db: Database,
    station_pk: Annotated[int, Parameter(description="the station's id (from search items)")],
    from_: Annotated[str | None, QueryParameter(name="from", description=_FROM.format(default="24 hours"))] = None,
    to: Annotated[str | None, Parameter(description=_TO)] = None,
    api_key: Annotated[str | None, Parameter(description="API key")] = None,
) -> Response[StatusHistory]:
    return _answer(request, db, station_pk, timedelta(days=1), status_history)


@get("/stations/{station_pk:int}/reliability", sync_to_thread=True, tags=["stations"],
     summary="Uptime of a station and its connectors over a window",
     description="`uptime` (0 to 1) = seconds able to charge (status 1, 2, 3 or 4) / seconds observed (those "
                 "plus offline 0 and fault 255); silence is not observed; time the station announced "
                 "maintenance or is closed by its opening hours is left out; null when nothing was observed. "
                 "`faults`: entries into fault. Default window: the last 30 days.")
def get_reliability(
    request: Request, db: Database,
    station_pk: Annotated[int, Parameter(description="the station's id (from search items)")],
    from_: Annotated[str | None, QueryParameter(name="from", description=_FROM.format(default="30 days"))] = None,
    to: Annotated[str | None, Parameter(description=_TO)] = None,
    api_key: Annotated[str | None, Parameter(description="API key")] = None,
) -> Response[StationReliability]:
    return _answer(request, db, station_pk, timedelta(days=30), station_reliability)


def on_startup(app: Litestar) -> None:
    settings: Settings = app.state["settings"]
    if settings.app.run_scheduler:
        job = reliability_job(app.state["db"].engine, ReliabilitySettings())
        job.start()
        app.state["reliability_job"] = job


def on_shutdown(app: Litestar) -> None:
    job = app.state.get("reliability_job") if hasattr(app.state, "get") else None
    if job is not None:
        job.stop()


ROUTES: list[Any] = [Router(path=API_PREFIX, route_handlers=[get_status_history, get_reliability],
                            middleware=[RateLimitMiddleware])]

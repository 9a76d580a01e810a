"""T/CEC 102 endpoints served to operators: ``POST /evcs/{version}/{interface}``.

The work is done by :class:`ingest.receiver.Receiver`; this module only routes, and starts the
feed scheduler (``settings.app.run_scheduler``). Any version segment such as ``v20160701``,
``v20161110`` or ``20160701`` is accepted (operators differ).
"""

from __future__ import annotations

import re

from litestar import Litestar, Request, Response, post
from litestar.params import FromPath

from ingest.receiver import Receiver
from services.db import Database
from services.settings import Settings

__all__ = ["ROUTES", "on_shutdown", "on_startup"]

_VERSION = re.compile(r"v?\d{8}")
_JSON = "application/json;charset=utf-8"


def _receiver(app: Litestar) -> Receiver:
    receiver = app.state.get("feed_receiver")
    if receiver is None:
        db: Database = app.state["db"]
        settings: Settings = app.state["settings"]
        receiver = Receiver(db.engine, settings)
        app.state["feed_receiver"] = receiver
    return receiver


@post("/evcs/{version:str}/{interface:str}", sync_to_thread=True, include_in_schema=False, status_code=200,
      request_max_body_size=2 * 1024 * 1024)
def evcs_interface(request: Request, version: FromPath[str], interface: FromPath[str], body: bytes) -> Response:
    """query_token, notification_stationStatus and notification_stationInfo (see ingest.receiver)."""
    receiver = _receiver(request.app)
    if not _VERSION.fullmatch(version):
        from ingest.protocol import Ret, build_response
        from ingest.receiver import _ANON

        return Response(build_response(Ret.BUSINESS, f"unknown interface version {version[:20]!r}", None, _ANON),
                        status_code=404, media_type=_JSON)
    status, envelope = receiver.handle(interface, body, request.headers.get("authorization"))
    headers = {"Retry-After": "5"} if status == 503 else None
    return Response(envelope, status_code=status, media_type=_JSON, headers=headers)


def on_startup(app: Litestar) -> None:
    settings: Settings = app.state["settings"]
    receiver = _receiver(app)
    if settings.app.run_scheduler:
        from ingest.scheduler import FeedScheduler

        db: Database = app.state["db"]
        scheduler = FeedScheduler(db.engine, settings, receiver=receiver)
        scheduler.start()
        app.state["feed_scheduler"] = scheduler


def on_shutdown(app: Litestar) -> None:
    scheduler = app.state.get("feed_scheduler")
    if scheduler is not None:
        scheduler.stop()
    receiver = app.state.get("feed_receiver")
    if receiver is not None:
        receiver.close()


ROUTES = [evcs_interface]

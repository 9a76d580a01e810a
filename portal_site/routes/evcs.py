"""T/CEC 102 endpoints: ``POST /evcs/{version}/{interface}``, served to operators and to higher platforms.

Both call the same URLs with their own OperatorID in the envelope. A ``query_*`` request whose
OperatorID is a registered higher platform's goes to :class:`ingest.upstream.provider.Provider`
(zhcharge as data provider); everything else, the operators' pushes always, to
:class:`ingest.receiver.Receiver`. This module only routes, and starts the feed scheduler and the
upward status push job (``settings.app.run_scheduler``). Any version segment such as
``v20160701``, ``v20161110`` or ``20160701`` is accepted (operators differ).
"""

from __future__ import annotations

import logging
import re

import anyio.to_thread
import msgspec
from litestar import Litestar, Request, Response, post
from litestar.exceptions import InternalServerException
from litestar.params import FromPath
from litestar.types import ASGIApp, Receive, Scope, Send

from ingest.protocol import Ret
from ingest.receiver import Receiver
from ingest.upstream.provider import Provider
from portal_site.edge import HEADERS_SET, SecurityHeaders
from services.db import Database
from services.settings import Settings

__all__ = ["ROUTES", "asgi_fast_path", "on_shutdown", "on_startup"]

log = logging.getLogger("zhcharge.feed")

_VERSION = re.compile(r"v?\d{8}")
_JSON = "application/json;charset=utf-8"
_JSON_BYTES = _JSON.encode()
#: the pushes the fast path serves: ``POST /evcs/{version}/notification_*`` with no query string
_PUSH_PATH = re.compile(rf"/evcs/{_VERSION.pattern}/(notification_[A-Za-z_]{{1,40}})")


def _receiver(app: Litestar) -> Receiver:
    receiver = app.state.get("feed_receiver")
    if receiver is None:
        db: Database = app.state["db"]
        settings: Settings = app.state["settings"]
        receiver = Receiver(db.engine, settings)
        app.state["feed_receiver"] = receiver
    return receiver


def _provider(app: Litestar) -> Provider:
    provider = app.state.get("upstream_provider")
    if provider is None:
        db: Database = app.state["db"]
        provider = Provider(db.engine, app.state["settings"])
        app.state["upstream_provider"] = provider
    return provider


def _handle(app: Litestar, interface: str, body: bytes, authorization: str | None) -> tuple[int, dict]:
    """A higher platform's query to the provider, anything else to the receiver (in a worker thread)."""
    answer = _provider(app).dispatch(interface, body, authorization)
    if answer is not None:
        return answer
    return _receiver(app).handle(interface, body, authorization)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The body, or ``None`` when it is larger than ``limit`` (read no further than that). A client
    gone before the end raises as Litestar's own reading does."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            return None
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            raise InternalServerException("client disconnected prematurely")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _answer(status: int, envelope: dict) -> Response:
    headers = {"Retry-After": "5"} if status == 503 else None
    return Response(envelope, status_code=status, media_type=_JSON, headers=headers)


@post("/evcs/{version:str}/{interface:str}", include_in_schema=False, status_code=200,
      request_max_body_size=None)
async def evcs_interface(request: Request, version: FromPath[str], interface: FromPath[str]) -> Response:
    """query_token, notification_stationStatus, notification_stationInfo, notification_charge_order_info
    and check_charge_orders for operators (see ingest.receiver); query_token, query_stations_info,
    query_station_status, query_station_stats and query_equip_business_policy for registered higher
    platforms (see ingest.upstream.provider).

    Every answer, errors included, is a signed T/CEC envelope: a body over
    ``ZHCHARGE_FEED_MAX_BODY_BYTES`` (``..._CHECK_MAX_BODY_BYTES`` for a day's reconciliation list) gets
    Ret 4003 with HTTP 413, never the framework's bare 413."""
    receiver = _receiver(request.app)
    if not _VERSION.fullmatch(version):
        return _answer(404, receiver.refuse(Ret.BUSINESS, f"unknown interface version {version[:20]!r}"))
    feed = receiver.settings.feed
    limit = feed.check_max_body_bytes if interface == "check_charge_orders" else feed.max_body_bytes
    body = await _read_body(request.scope, request.receive, limit)
    if body is None:
        return _answer(413, receiver.refuse(Ret.ENVELOPE, f"request body larger than {limit} bytes"))
    authorization = request.headers.get("authorization")
    if interface.startswith("notification_"):  # an operator's push, never a higher platform's query
        status, envelope = await receiver.handle_async(interface, body, authorization)
    else:
        status, envelope = await anyio.to_thread.run_sync(_handle, request.app, interface, body, authorization)
    return _answer(status, envelope)


def asgi_fast_path(app: Litestar, inner: ASGIApp) -> ASGIApp:
    """The operators' pushes straight to :meth:`Receiver.handle_async`, around Litestar's routing,
    middleware and response objects (issue 18: a status push is the platform's most frequent request,
    and that path was most of its CPU). It answers exactly what :func:`evcs_interface` answers for them
    (the same body limit and envelopes, and the security headers of :class:`SecurityHeaders`, written
    here once; the app's ``before_send`` hook sees the scope marked and leaves them): /evcs/ is
    outside the input guard and sessions, and the receiver reads no client address. Anything else
    (other interfaces, a query string, before startup) goes on to ``inner``."""

    security: SecurityHeaders = app.state["security_headers"]

    async def handler(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("query_string"):
            match = _PUSH_PATH.fullmatch(scope["path"])
            receiver = app.state.get("feed_receiver") if match else None
            if receiver is not None:
                scope[HEADERS_SET] = True  # written below, once, not by the before_send hook
                await _fast_push(receiver, match.group(1), scope, receive, send, security.raw)
                return
        await inner(scope, receive, send)

    return handler


async def _fast_push(receiver: Receiver, interface: str, scope: Scope, receive: Receive, send: Send,
                     security: list[tuple[bytes, bytes]]) -> None:
    limit = receiver.settings.feed.max_body_bytes
    authorization = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
    try:
        body = await _read_body(scope, receive, limit)
    except InternalServerException:  # the client went away: nobody to answer
        return
    if body is None:
        status, envelope = 413, receiver.refuse(Ret.ENVELOPE, f"request body larger than {limit} bytes")
    else:
        try:
            status, envelope = await receiver.handle_async(interface, body, authorization)
        except Exception:  # noqa: BLE001 - a bug: logged, and still an envelope, never a bare server error
            log.exception("push to %s failed", interface)
            status, envelope = 500, receiver.refuse(Ret.SYSTEM, "internal error; it has been logged")
    content = msgspec.json.encode(envelope)
    headers = [(b"content-type", _JSON_BYTES), (b"content-length", str(len(content)).encode()), *security]
    if status == 503:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def on_startup(app: Litestar) -> None:
    settings: Settings = app.state["settings"]
    receiver = _receiver(app)
    if settings.app.run_scheduler:
        from ingest.scheduler import FeedScheduler

        db: Database = app.state["db"]
        from ingest.policies import pull_station_policies

        scheduler = FeedScheduler(db.engine, settings, receiver=receiver)
        scheduler.start()
        receiver.on_stations_changed = lambda op, pks: pull_station_policies(db.engine, settings, op, pks)
        app.state["feed_scheduler"] = scheduler
        app.state["upstream_pusher"] = _start_pusher(db, settings)


def _start_pusher(db: Database, settings: Settings):  # noqa: ANN202 - an ingest.upstream.push.StatusPusher
    """The upward status push job, on an engine of its own (it never takes the receiver's connections);
    none in production without our OperatorID (``ZHCHARGE_OPERATOR_ID``), said once in the log."""
    from ingest.upstream.push import StatusPusher
    from services.db import make_engine
    from services.settings import upward_operator_id

    if upward_operator_id(settings) is None:
        logging.getLogger("zhcharge.upstream").warning(
            "ZHCHARGE_OPERATOR_ID is not set: no status pushes to higher platforms (they can still query us)")
        return None

    engine = make_engine(settings.db, url=db.engine.url.render_as_string(hide_password=False), pool_size=2,
                         max_overflow=4, application_name="zhcharge-upstream-push")
    pusher = StatusPusher(engine, settings)
    pusher.start()
    return pusher


def on_shutdown(app: Litestar) -> None:
    scheduler = app.state.get("feed_scheduler")
    if scheduler is not None:
        scheduler.stop()
    pusher = app.state.get("upstream_pusher")
    if pusher is not None:
        pusher.stop()
        pusher.engine.dispose()
    receiver = app.state.get("feed_receiver")
    if receiver is not None:
        receiver.close()


ROUTES = [evcs_interface]

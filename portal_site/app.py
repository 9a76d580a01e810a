"""The application factory: ``create_app(settings)`` builds one Litestar app.

Settings are read when the app is created, never at import. Every domain contributes a module
under ``portal_site.routes`` (listed in ``ROUTE_MODULES``) exporting ``ROUTES`` and optionally
``on_startup(app)`` / ``on_shutdown(app)``, and ``asgi_fast_path(app, inner)`` (an ASGI handler in
front of Litestar's own, for a request too frequent for the framework's path: the operators' pushes).
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.config.compression import CompressionConfig
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.exceptions import NotFoundException as LitestarNotFound
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from geo.errors import GeoInputError
from portal_site import accesslog, auth, i18n
from portal_site.edge import ClientAddressMiddleware, InputGuardMiddleware, SecurityHeaders, parse_networks
from portal_site.routing import provide_db
from services.db import Database, make_engine
from services.errors import AppError, DatabaseUnavailable
from services.routing import ReadRouter
from services.settings import Settings, check_production, load_settings

__all__ = ["create_app", "ROUTE_MODULES"]

log = logging.getLogger("zhcharge")

HERE = Path(__file__).resolve().parent

# Every module here exports ROUTES (a list of handlers/routers/controllers).
ROUTE_MODULES: list[str] = [
    "portal_site.routes.health",
    "portal_site.routes.evcs",
    "portal_site.routes.tiles",
    "portal_site.routes.map",
    "portal_site.routes.api",
    "portal_site.routes.reliability",
    "portal_site.routes.quality",
    "portal_site.routes.accounts",
    "portal_site.routes.backoffice",
    "portal_site.routes.portal",
    "portal_site.routes.messaging",
    "portal_site.routes.feedback",
    "portal_site.routes.supervision",
    "portal_site.routes.profile",
    "portal_site.routes.dashboard",
    "portal_site.routes.archives.stations",
    "portal_site.routes.archives.import_export",
    "portal_site.routes.archives.reports",
    "portal_site.routes.archives.facilities",
    "portal_site.routes.archives.review",
    "portal_site.routes.interconnection",
    "portal_site.routes.subsidy",
    "portal_site.routes.orders",
    "portal_site.routes.prices",
    "portal_site.routes.ocpi",
    "portal_site.routes.exports",
]


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    path = request.url.path
    return "text/html" in accept and not path.startswith(("/api/", "/tiles/", "/evcs/"))


def _error_response(request: Request, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    if _wants_html(request):
        try:
            return Response(
                content=request.app.template_engine.get_template("error.html").render(
                    status=status, message=body.get("message", ""), request=request),
                status_code=status, media_type=MediaType.HTML, headers=headers)
        except Exception:  # noqa: BLE001 - a broken template must not hide the real error
            log.exception("error template failed")
    return Response(content=body, status_code=status, media_type=MediaType.JSON, headers=headers)


def _app_error_handler(request: Request, exc: AppError) -> Response:
    headers = {}
    if getattr(exc, "retry_after", None):
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status_code >= 500:
        log.error("%s: %s", type(exc).__name__, exc.message, exc_info=exc.__cause__)
    return _error_response(request, exc.status_code, exc.to_dict(), headers)


def _geo_input_handler(request: Request, exc: Exception) -> Response:
    return _error_response(request, 400, {"error": "BadRequest", "message": str(exc)})


def _http_exception_handler(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    message = exc.detail or "error"
    body: dict[str, Any] = {"error": type(exc).__name__, "message": message}
    if isinstance(exc, ValidationException) and exc.extra:
        body["details"] = exc.extra
        names = [e.get("key") for e in exc.extra if isinstance(e, dict) and e.get("key")]
        if names:
            body["param"] = names[0]
            body["message"] = f"invalid value for parameter '{names[0]}': {exc.extra[0].get('message', message)}"
    if isinstance(exc, (NotAuthorizedException, PermissionDeniedException)) and _wants_html(request):
        from litestar.response import Redirect

        if isinstance(exc, NotAuthorizedException):
            return Redirect(f"/login?next={request.url.path}")
    if isinstance(exc, LitestarNotFound) and message == "Not Found":
        body["message"] = f"no such page: {request.url.path}"
    return _error_response(request, status, body, getattr(exc, "headers", None))


def _database_error_handler(request: Request, exc: SQLAlchemyError) -> Response:
    """Raw database errors never reach a client: log them, answer 503 or 500 with a plain message."""
    log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
    if isinstance(exc, DBAPIError) and (exc.connection_invalidated or "could not connect" in str(exc.orig)):
        return _error_response(request, 503, DatabaseUnavailable("the database is unavailable; please retry shortly").to_dict(),
                               {"Retry-After": "5"})
    from sqlalchemy.exc import DataError, OperationalError

    if isinstance(exc, DataError):
        # a value the handler let through and PostgreSQL refused (out of range, malformed, too long):
        # the client's input, so a 400 (handlers should have named the parameter; this is the net)
        log.warning("data error on %s %s: %s", request.method, request.url.path, type(exc.orig).__name__)
        return _error_response(request, 400, {"error": "BadRequest",
                                              "message": "输入值超出范围或格式无效 / an input value is out of range or malformed"})
    if isinstance(exc, OperationalError):
        return _error_response(request, 503, {"error": "DatabaseUnavailable",
                                              "message": "the database is unavailable; please retry shortly"},
                               {"Retry-After": "5"})
    return _error_response(request, 500, {"error": "InternalError", "message": "internal error; it has been logged"})


def _internal_error_handler(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_response(request, 500, {"error": "InternalError", "message": "internal error; it has been logged"})


def _unwrap_double_thread_wrap(app: Litestar) -> None:
    """Work around Litestar 2.25: when several handlers share a path, the first one is registered
    twice and a ``sync_to_thread=True`` handler gets wrapped twice, so it returns an un-awaited
    coroutine (500 "'coroutine' object has no attribute 'to_asgi_response'"). Undo the extra wrap."""
    from litestar.utils.sync import AsyncCallable

    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            fn = getattr(handler, "_fn", None)
            inner = fn
            while isinstance(inner, AsyncCallable) and isinstance(inner.func, AsyncCallable):
                inner = inner.func
            if inner is not fn:
                handler._fn = inner


def _load_route_modules() -> list[Any]:
    modules = []
    for name in ROUTE_MODULES:
        modules.append(importlib.import_module(name))
    return modules


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> Litestar:
    """Build the application. ``settings`` defaults to the environment, read now."""
    settings = settings or load_settings()
    check_production(settings)
    accesslog.install()
    db = database or Database(make_engine(settings.db))
    router = ReadRouter(db, settings.db)  # public reads: the replica (ZHCHARGE_READ_DATABASE_URL) or db
    modules = _load_route_modules()

    route_handlers: list[Any] = []
    for mod in modules:
        route_handlers.extend(getattr(mod, "ROUTES", []))
    if settings.app.env != "dev":  # developer pages (the outbox of mailed codes) are not even mounted
        route_handlers = [h for h in route_handlers if not (getattr(h, "opt", None) or {}).get("dev_only")]

    static_dir = HERE / "static"
    route_handlers.append(create_static_files_router(path="/static", directories=[static_dir], name="static",
                                                     include_in_schema=False, send_as_attachment=False))

    async def on_startup(app: Litestar) -> None:
        import anyio.to_thread

        await anyio.to_thread.run_sync(router.start)  # first replica check before any request (and the tiles)
        for mod in modules:
            hook = getattr(mod, "on_startup", None)
            if hook:
                result = hook(app)
                if hasattr(result, "__await__"):
                    await result

    async def on_shutdown(app: Litestar) -> None:
        for mod in reversed(modules):
            hook = getattr(mod, "on_shutdown", None)
            if hook:
                result = hook(app)
                if hasattr(result, "__await__"):
                    await result
        router.stop()
        db.dispose()

    def provide_settings() -> Settings:
        return settings

    template_engine = JinjaTemplateEngine(directory=HERE / "templates")
    template_engine.engine.autoescape = True  # also for templates not named .html
    i18n.register(template_engine.engine)
    auth.register_templates(template_engine.engine)

    security_headers = SecurityHeaders(hsts=settings.app.env == "prod", cors_origins=settings.app.cors_origins)
    app = Litestar(
        route_handlers=route_handlers,
        dependencies={"db": Provide(provide_db, sync_to_thread=False),
                      "settings": Provide(provide_settings, sync_to_thread=False)},
        state=State({"settings": settings, "db": db, "router": router, "security_headers": security_headers}),
        exception_handlers={
            AppError: _app_error_handler,
            GeoInputError: _geo_input_handler,
            HTTPException: _http_exception_handler,
            SQLAlchemyError: _database_error_handler,
            Exception: _internal_error_handler,
        },
        template_config=TemplateConfig(instance=template_engine),
        middleware=[ClientAddressMiddleware(parse_networks(settings.app.trusted_proxy_list)), InputGuardMiddleware(),
                    auth.SessionMiddleware()],
        before_send=[security_headers],
        openapi_config=OpenAPIConfig(title="zhcharge open API", version="1.0.0", path="/api/docs",
                                     description="Charging stations of Zhuhai: search, facets, live status, tiles.",
                                     render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")]),
        compression_config=CompressionConfig(backend="gzip", minimum_size=800, gzip_compress_level=6),
        on_startup=[on_startup],
        on_shutdown=[on_shutdown],
        debug=False,
    )
    _unwrap_double_thread_wrap(app)
    for mod in modules:  # a route module may serve its hottest requests before Litestar's routing
        hook = getattr(mod, "asgi_fast_path", None)
        if hook:
            app.asgi_handler = hook(app, app.asgi_handler)
    return app

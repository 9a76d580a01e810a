"""The edge: what every request passes before any handler, and what every response carries.

One place for rules that must hold for every route, so no handler can forget them:

``ClientAddressMiddleware``
    The client address the rate limits and lockouts count is the TCP peer, unless that peer is
    one of ``ZHCHARGE_TRUSTED_PROXIES`` (addresses or CIDR networks; default none): only then is
    ``X-Forwarded-For`` (the right-most address that is not itself a trusted proxy) or
    ``X-Real-IP`` believed. Anyone else sending the header changes nothing.

``InputGuardMiddleware``
    PostgreSQL refuses NUL in text, so a NUL byte in the path, in any query parameter, in any
    form field (not in uploaded file contents) or in a JSON body is a 400 naming the parameter,
    before a handler or the database sees it. Query values longer than
    :data:`MAX_PARAM_CHARS` are a 400 too, and integer path parameters must fit in a signed
    64-bit integer. The T/CEC 102 endpoints (``/evcs/``) answer in their own envelope and check
    their bodies themselves (``ingest.receiver``).

``SecurityHeaders`` (a ``before_send`` hook)
    ``X-Frame-Options: DENY`` and CSP ``frame-ancestors 'none'`` (no page can be framed),
    ``X-Content-Type-Options: nosniff``, ``Referrer-Policy``, ``Permissions-Policy``; in
    production ``Strict-Transport-Security``. CORS only on the open API and the tiles
    (``/api/v1/``, ``/tiles/``), for GET/HEAD, never with credentials; the back office, the
    portal and the protocol endpoints send no CORS headers at all.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from litestar import Request
from litestar.datastructures import MutableScopeHeaders, UploadFile
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import BadRequest

__all__ = ["ClientAddressMiddleware", "HEADERS_SET", "InputGuardMiddleware", "SecurityHeaders", "MAX_PARAM_CHARS",
           "CORS_PREFIXES", "parse_networks", "client_from_headers"]

MAX_PARAM_CHARS = 8192
INT64 = (-(2**63), 2**63 - 1)
CORS_PREFIXES = ("/api/v1/", "/tiles/")
_GUARD_SKIP = ("/evcs/", "/static/")
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nul_message(name: str) -> str:
    return f"参数 {name} 含有不允许的空字符（NUL）/ parameter '{name}' contains a NUL character"


# --- client address ----------------------------------------------------------------------------
def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``["10.0.0.1", "192.168.0.0/16"]`` → networks; a bad entry is a configuration error.

    >>> parse_networks(["10.0.0.1", " 192.168.0.0/16 ", ""])
    (IPv4Network('10.0.0.1/32'), IPv4Network('192.168.0.0/16'))
    """
    out = []
    for value in values:
        value = value.strip()
        if value:
            out.append(ipaddress.ip_network(value, strict=False))
    return tuple(out)


def _is_trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_from_headers(peer: str, headers: dict[str, str], networks: tuple[Network, ...]) -> str:
    """The client address for a request from ``peer`` carrying ``headers``.

    >>> nets = parse_networks(["10.0.0.0/8"])
    >>> client_from_headers("203.0.113.9", {"x-forwarded-for": "1.2.3.4"}, nets)   # untrusted peer
    '203.0.113.9'
    >>> client_from_headers("10.0.0.2", {"x-forwarded-for": "1.2.3.4, 198.51.100.7, 10.0.0.5"}, nets)
    '198.51.100.7'
    >>> client_from_headers("10.0.0.2", {}, nets)
    '10.0.0.2'
    """
    if not networks or not _is_trusted(peer, networks):
        return peer
    forwarded = headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):  # the right-most hop not added by one of our own proxies
        if not _is_trusted(hop, networks):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    real = headers.get("x-real-ip", "").strip()
    if real:
        try:
            return str(ipaddress.ip_address(real))
        except ValueError:
            return peer
    return hops[0] if hops else peer


class ClientAddressMiddleware(ASGIMiddleware):
    """Replace ``scope["client"]`` by the forwarded address only behind a trusted proxy."""

    def __init__(self, trusted: tuple[Network, ...]) -> None:
        self.trusted = trusted

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if self.trusted and scope["type"] in ("http", "websocket") and scope.get("client"):
            peer, port = scope["client"]
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())
                       if k.lower() in (b"x-forwarded-for", b"x-real-ip")}
            client = client_from_headers(peer, headers, self.trusted)
            if client != peer:
                scope["client"] = (client, port)
        await next_app(scope, receive, send)


# --- input -------------------------------------------------------------------------------------
def check_query_string(raw: bytes) -> None:
    """400 for a NUL byte or an overlong value in any query parameter (names included).

    >>> check_query_string(b"q=%E6%98%9F&page=2")
    >>> check_query_string(b"q=a%00b")
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: 参数 q 含有不允许的空字符（NUL）/ parameter 'q' contains a NUL character
    """
    if not raw:
        return
    for pair in raw.split(b"&"):
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        name_bytes = unquote_to_bytes(key.replace(b"+", b" "))
        name = name_bytes.decode("utf-8", "replace").replace("\x00", "\\0")[:60]
        if b"\x00" in name_bytes or b"\x00" in unquote_to_bytes(value.replace(b"+", b" ")):
            raise BadRequest(_nul_message(name), param=name)
        if len(value) > MAX_PARAM_CHARS * 3 or len(unquote_to_bytes(value)) > MAX_PARAM_CHARS * 4:
            raise BadRequest(f"参数 {name} 过长 / parameter '{name}' is too long (at most {MAX_PARAM_CHARS} "
                             "characters)", param=name)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


async def check_body(request: Request) -> None:
    """400 naming the field for a NUL in a form field or a JSON body (uploaded bytes may hold NUL)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(_FORM_TYPES):
        form = await request.form()
        for name, value in form.multi_items():
            label = str(name).replace("\x00", "\\0")[:60]
            if "\x00" in str(name):
                raise BadRequest(_nul_message(label), param=label)
            if isinstance(value, UploadFile):
                if value.filename and "\x00" in value.filename:
                    raise BadRequest(_nul_message(label), param=label)
            elif isinstance(value, str) and "\x00" in value:
                raise BadRequest(f"字段 {label} 含有不允许的空字符（NUL）/ field '{label}' contains a NUL character",
                                 param=label)
    elif "json" in content_type:
        body = await request.body()
        if b"\x00" in body or b"\\u0000" in body.lower():
            try:
                decoded = json.loads(body)
            except (ValueError, RecursionError):
                raise BadRequest("请求体不是有效的 JSON / the request body is not valid JSON", param="body") from None
            if _contains_nul(decoded):
                raise BadRequest(_nul_message("body"), param="body")


def check_path_params(scope: Scope) -> None:
    """An integer path parameter outside int64 can name nothing: 400 naming it."""
    for name, value in (scope.get("path_params") or {}).items():
        if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
            raise BadRequest(f"参数 {name} 超出范围 / parameter '{name}' is out of range", param=name)


class InputGuardMiddleware(ASGIMiddleware):
    """NUL, overlong values and out-of-range integers stop here with a 400 (see the module doc)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(_GUARD_SKIP):
            if "\x00" in scope["path"]:
                raise BadRequest(_nul_message("path"), param="path")
            check_query_string(scope.get("query_string", b""))
            check_path_params(scope)
            if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
                await check_body(Request(scope, receive))
        await next_app(scope, receive, send)


# --- response headers --------------------------------------------------------------------------
#: a scope key: this response already carries :attr:`SecurityHeaders.raw` (and no CORS headers)
HEADERS_SET = "zhcharge.security_headers_set"


class SecurityHeaders:
    """A ``before_send`` hook (so error pages and 404s carry the headers too): security headers on
    every response; CORS (without credentials) only on the open API and tiles. A response built
    outside Litestar (``portal_site.routes.evcs``: the pushes' fast path) writes :attr:`raw` itself
    and marks its scope with :data:`HEADERS_SET`."""

    EXPOSE = ("ETag, Last-Modified, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, "
              "X-Generated-At, X-Total-Count, Link")
    FIXED = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
             ("Referrer-Policy", "strict-origin-when-cross-origin"),
             ("Permissions-Policy", "camera=(), microphone=(), payment=()"))
    CSP = "frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'"
    HSTS = "max-age=31536000; includeSubDomains"

    def __init__(self, *, hsts: bool, cors_origins: list[str]) -> None:
        self.hsts = hsts
        self.any_origin = "*" in cors_origins
        self.origins = {o.rstrip("/") for o in cors_origins if o != "*"}
        fixed = [*self.FIXED, ("Content-Security-Policy", self.CSP)]
        if hsts:
            fixed.append(("Strict-Transport-Security", self.HSTS))
        #: every header a response without CORS gets, as ASGI header pairs
        self.raw = [(k.lower().encode(), v.encode()) for k, v in fixed]

    def _allowed_origin(self, scope: Scope) -> str | None:
        if not scope["path"].startswith(CORS_PREFIXES) or scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            return None
        origin = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"origin"), None)
        if not origin:
            return None
        if self.any_origin:
            return "*"
        return origin if origin.rstrip("/") in self.origins else None

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("type") != "http" or scope.get(HEADERS_SET):
            return
        headers = MutableScopeHeaders.from_message(message)
        for name, value in self.FIXED:
            headers[name] = value
        if "content-security-policy" not in headers:
            headers["Content-Security-Policy"] = self.CSP
        if self.hsts:
            headers["Strict-Transport-Security"] = self.HSTS
        for name in ("access-control-allow-origin", "access-control-allow-credentials",
                     "access-control-allow-methods", "access-control-allow-headers", "access-control-expose-headers"):
            if name in headers:
                del headers[name]
        allow = self._allowed_origin(scope)
        if allow is None:
            return
        headers["Access-Control-Allow-Origin"] = allow
        headers["Access-Control-Expose-Headers"] = self.EXPOSE
        if allow != "*":
            headers.add("Vary", "Origin")
        if scope.get("method") == "OPTIONS":
            headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
            headers["Access-Control-Allow-Headers"] = "X-API-Key, If-None-Match, If-Modified-Since, Content-Type"
            headers["Access-Control-Max-Age"] = "86400"

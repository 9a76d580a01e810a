"""Which database a request uses: decided here, once, by route class.

**Public reads** — ``GET``/``HEAD`` of the open API and open dumps (``/api/v1/``), tiles
(``/tiles/``), the map and its station popups (``/map``), OCPI (``/ocpi/``) and the public pages
(``/``, ``/news``, ``/about``) — get the read database: with ``ZHCHARGE_READ_DATABASE_URL`` set,
the replica while it is usable (``services.routing``), else the primary. **Everything else** gets
the primary: every other method, the back office and the regulators' pages, accounts and logins,
the feed receiver, pages that show what their visitor just wrote (the citizen's own feedback, the
open platform's list of one's API keys), ``/healthz``.

Writes a public read still makes go to the primary by construction: the rate-limit windows and
API-key bookkeeping (``RateLimitMiddleware``) and sessions (``SessionMiddleware``) use
``app.state.db``; OCPI credentials and party assignment use ``db.primary``; tiles render through
``tiles.service.TileService``, which applies the same router (and its version check) itself.

Handlers never choose: they declare ``db: Database`` and get what :func:`provide_db` decides.
"""

from __future__ import annotations

from litestar import Request

from services.db import Database

__all__ = ["READ_METHODS", "READ_PATHS", "READ_PREFIXES", "is_public_read", "provide_db"]

READ_METHODS = frozenset({"GET", "HEAD"})
READ_PREFIXES = ("/api/v1/", "/tiles/", "/map", "/ocpi/", "/news", "/about")
READ_PATHS = frozenset({"/"})


def is_public_read(method: str, path: str) -> bool:
    """Whether a request is public, read-only traffic a replica may serve.

    >>> is_public_read("GET", "/api/v1/stations"), is_public_read("HEAD", "/tiles/stations/1/1/1.mvt")
    (True, True)
    >>> is_public_read("POST", "/api/v1/stations"), is_public_read("GET", "/backoffice/stations")
    (False, False)
    >>> is_public_read("GET", "/"), is_public_read("GET", "/feedback/ABC"), is_public_read("GET", "/healthz")
    (True, False, False)
    """
    return method in READ_METHODS and (path in READ_PATHS or path.startswith(READ_PREFIXES))


def provide_db(request: Request) -> Database:
    """The ``db`` dependency of every handler (memory only: runs on the event loop). A public read
    whose answer is keyed by a data version the primary announced (``zh_data_version``, set by the
    API's rate-limit statement) only uses a replica that has replayed it."""
    state = request.app.state
    router = state.get("router")
    if router is None or not is_public_read(request.method, request.scope["path"]):
        return state["db"]
    version = request.scope.get("state", {}).get("zh_data_version")
    return router.database(int(version) if version else None)

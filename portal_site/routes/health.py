"""``GET /healthz``: is the database reachable, which PostgreSQL/PostGIS, which schema revision, and,
with a read replica (``ZHCHARGE_READ_DATABASE_URL``), its state, its lag and where reads go now.

200 while the primary answers; with the primary down, 200 ``"degraded"`` as long as a replica serves
the public reads (a load balancer keeps the worker: reads work, writes answer 503), else 503.
"""

from __future__ import annotations

import os

from litestar import Request, Response, get
from sqlalchemy.exc import SQLAlchemyError

from services.db import sql


@get("/healthz", sync_to_thread=True, include_in_schema=False, cache=False)
def healthz(request: Request) -> Response[dict]:
    db = request.app.state["db"]
    router = request.app.state.get("router")
    body: dict[str, object] = {"status": "ok", "database": {"reachable": False}, "worker": os.getpid()}
    replica = router.describe() if router is not None and router.configured else None
    if replica is not None:
        body["read_replica"] = replica
        body["reads_from"] = "replica" if replica["serving_reads"] else "primary"
    try:
        with db.engine.connect() as conn:
            row = conn.execute(sql("queries/healthz.sql")).mappings().one()
        body["database"] = {"reachable": True, "postgresql": row["postgresql"], "postgis": row["postgis"],
                            "revision": row["revision"], "lc_ctype": row["lc_ctype"]}
        return Response(body, status_code=200, headers={"Cache-Control": "no-store"})
    except SQLAlchemyError:
        body["status"] = "degraded"
        if replica is not None and replica["serving_reads"]:
            body["writes"] = "unavailable: the primary database cannot be reached"
            return Response(body, status_code=200, headers={"Cache-Control": "no-store"})
        return Response(body, status_code=503, headers={"Retry-After": "5", "Cache-Control": "no-store"})


ROUTES = [healthz]

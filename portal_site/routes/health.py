"""``GET /healthz``: is the database reachable, which PostgreSQL/PostGIS, which schema revision."""

from __future__ import annotations

from litestar import Response, get
from sqlalchemy.exc import SQLAlchemyError

from services.db import Database, sql


@get("/healthz", sync_to_thread=True, include_in_schema=False, cache=False)
def healthz(db: Database) -> Response[dict]:
    body: dict[str, object] = {"status": "ok", "database": {"reachable": False}}
    try:
        with db.engine.connect() as conn:
            row = conn.execute(sql("queries/healthz.sql")).mappings().one()
        body["database"] = {"reachable": True, "postgresql": row["postgresql"], "postgis": row["postgis"],
                            "revision": row["revision"], "lc_ctype": row["lc_ctype"]}
        return Response(body, status_code=200)
    except SQLAlchemyError:
        body["status"] = "degraded"
        return Response(body, status_code=503, headers={"Retry-After": "5", "Cache-Control": "no-store"})


ROUTES = [healthz]

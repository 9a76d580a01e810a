"""Open dumps, ``/api/v1/export/``: the whole public dataset as GeoJSON and CSV, and daily snapshots.

* ``GET /api/v1/export/stations.geojson`` and ``/stations.csv``: every public station (the open
  API's items), streamed from a server-side cursor; ``ETag`` (the stations' data version, count and
  last change) and ``Last-Modified``, 304 on ``If-None-Match`` / ``If-Modified-Since``; gzip when
  accepted (the app's compression, streamed).
* ``GET /api/v1/export/``: the snapshots kept (date, generation time, count, each file's size,
  SHA-256 and URL) and the live URLs.
* ``GET /api/v1/export/{date}/stations.geojson.gz`` (and ``stations.csv.gz``): a snapshot's file,
  sent as the gzip file it is (``application/gzip``).

Same rules as the rest of the open API: rate limits and API keys (its middleware), CORS, unknown
parameters are a 400 naming them. The daily job runs in every process with background jobs
(``ZHCHARGE_RUN_SCHEDULER``); an advisory lock lets one of them write.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, Router, get
from litestar.params import Parameter
from litestar.response import File, Stream
from litestar.utils.scope.state import ScopeState

from portal_site.routes.api import CSV_COLUMNS, RateLimitMiddleware
from services.db import Database
from services.errors import BadRequest, NotFound
from services.exports.formats import CsvWriter, DatasetState, GeoJsonWriter, chunks, dataset_state, iter_items
from services.exports.snapshots import FILES, list_snapshots, snapshot_file, snapshot_job
from services.search.query import check_known
from services.settings import Settings

__all__ = ["ROUTES", "ExportFile", "ExportIndex", "ExportSnapshot", "on_shutdown", "on_startup", "snapshot_root"]

PREFIX = "/api/v1/export"
GEOJSON = "application/geo+json"


class ExportFile(msgspec.Struct):
    name: str
    format: str
    bytes: int
    sha256: str
    url: str


class ExportSnapshot(msgspec.Struct):
    """One day's snapshot (China date), written at ``generated_at``."""

    date: str
    generated_at: datetime
    count: int
    data_version: int
    files: list[ExportFile]


class ExportLive(msgspec.Struct):
    geojson: str
    csv: str


class ExportIndex(msgspec.Struct):
    """The live dumps and the daily snapshots kept (newest first) for ``keep_days`` days."""

    live: ExportLive
    keep_days: int
    snapshots: list[ExportSnapshot]


def snapshot_root(settings: Settings) -> Path:
    return settings.exports.snapshot_dir or settings.db.data_dir / "exports"


def on_startup(app: Any) -> None:
    settings: Settings = app.state.settings
    if settings.app.run_scheduler:
        job = snapshot_job(app.state.db.engine, snapshot_root(settings), CSV_COLUMNS,
                           keep_days=settings.exports.keep_days, interval_s=settings.exports.check_interval_s)
        job.start()
        app.state.export_job = job


def on_shutdown(app: Any) -> None:
    job = getattr(app.state, "export_job", None)
    if job is not None:
        job.stop()
        app.state.export_job = None


# --- conditional requests -----------------------------------------------------------------------
def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _not_modified(request: Request, etag: str, last_modified: datetime) -> bool:
    """RFC 9110: If-None-Match when present (weak comparison), otherwise If-Modified-Since."""
    inm = request.headers.get("if-none-match")
    if inm:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    ims = request.headers.get("if-modified-since")
    if ims:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError, OverflowError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified <= since
    return False


def _headers(etag: str, last_modified: datetime, **extra: str) -> dict[str, str]:
    return {"ETag": etag, "Last-Modified": _http_date(last_modified), "Vary": "Accept-Encoding", **extra}


# --- live dumps ---------------------------------------------------------------------------------
def _live(request: Request, db: Database, kind: str, media_type: str) -> Response | Stream:
    check_known(request.query_params, [])
    with db.engine.connect() as conn:
        state: DatasetState = dataset_state(conn)
    etag = state.etag(kind)
    headers = _headers(etag, state.last_modified, **{"Cache-Control": "public, max-age=0, must-revalidate"})
    if _not_modified(request, etag, state.last_modified):
        return Response(content=b"", status_code=304, headers=headers)
    now = datetime.now(UTC).replace(microsecond=0)
    writer = GeoJsonWriter(generated_at=now, state=state) if kind == "geojson" else CsvWriter(CSV_COLUMNS)
    headers.update({"Content-Disposition": f'attachment; filename="zhcharge-stations-{now:%Y%m%d}.{kind}"',
                    "X-Generated-At": now.isoformat(), "X-Total-Count": str(state.count)})
    return Stream(partial(_stream, db, writer), media_type=media_type, headers=headers)


def _stream(db: Database, writer: GeoJsonWriter | CsvWriter) -> Any:
    with db.engine.connect() as conn:
        yield from chunks(iter_items(conn), writer)


@get("/stations.geojson", sync_to_thread=True, tags=["export"], media_type=GEOJSON,
     summary="The whole public dataset as one GeoJSON FeatureCollection (streamed)",
     description="Every public station, the features of /api/v1/stations.geojson, by id. Weak `ETag` and "
                 "`Last-Modified` from the stations' data version, count and last change; 304 on `If-None-Match` "
                 "or `If-Modified-Since`; gzip when accepted. Foreign members `generated_at`, `data_version`.")
def export_geojson(request: Request, db: Database,
                   api_key: Annotated[str | None, Parameter(description="API key")] = None) -> Stream:
    return _live(request, db, "geojson", GEOJSON)  # type: ignore[return-value]


@get("/stations.csv", sync_to_thread=True, tags=["export"], media_type="text/csv",
     summary="The whole public dataset as CSV (streamed)",
     description="Every public station, the rows of /api/v1/stations.csv (UTF-8 with a BOM), by id. `ETag`, "
                 "`Last-Modified`, 304 and gzip as for stations.geojson.")
def export_csv(request: Request, db: Database,
               api_key: Annotated[str | None, Parameter(description="API key")] = None) -> Stream:
    return _live(request, db, "csv", "text/csv; charset=utf-8")  # type: ignore[return-value]


# --- snapshots ----------------------------------------------------------------------------------
def _base(settings: Settings) -> str:
    return settings.app.public_url.rstrip("/") + PREFIX


@get("/", sync_to_thread=True, tags=["export"], summary="The daily snapshots kept, and the live dumps",
     description="Snapshots, newest first: `date` (China), `generated_at`, `count`, `data_version` and each file's "
                 "`name`, `format`, `bytes`, `sha256`, `url`. Kept `keep_days` days (30).")
def export_index(request: Request, settings: Settings,
                 api_key: Annotated[str | None, Parameter(description="API key")] = None) -> Response[ExportIndex]:
    check_known(request.query_params, [])
    base = _base(settings)
    snaps = [ExportSnapshot(date=s.day.isoformat(), generated_at=s.generated_at, count=s.count,
                            data_version=s.data_version,
                            files=[ExportFile(name=n, format=f["format"], bytes=int(f["bytes"]), sha256=f["sha256"],
                                              url=f"{base}/{s.day.isoformat()}/{n}")
                                   for n, f in sorted(s.files.items()) if n in FILES])
             for s in list_snapshots(snapshot_root(settings))]
    body = msgspec.json.encode(ExportIndex(live=ExportLive(geojson=f"{base}/stations.geojson", csv=f"{base}/stations.csv"),
                                           keep_days=settings.exports.keep_days, snapshots=snaps))
    etag = f'W/"{hashlib.sha256(body).hexdigest()[:20]}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=0, must-revalidate"}
    inm = request.headers.get("if-none-match")
    if inm and etag.removeprefix("W/") in [t.strip().removeprefix("W/") for t in inm.split(",")]:
        return Response(content=b"", status_code=304, headers=headers)
    return Response(content=body, media_type=MediaType.JSON, headers=headers)


@get("/{date:str}/{file:str}", sync_to_thread=True, tags=["export"], media_type="application/gzip",
     summary="A file of a daily snapshot (stations.geojson.gz or stations.csv.gz), as the gzip file it is",
     description="`date` is YYYY-MM-DD (China) as listed by /api/v1/export/. Strong `ETag` (the file's SHA-256), "
                 "`Last-Modified`, 304.")
def export_snapshot(request: Request, settings: Settings,
                    date: Annotated[str, Parameter(description="the snapshot's date, YYYY-MM-DD")],
                    file: Annotated[str, Parameter(description="stations.geojson.gz or stations.csv.gz")],
                    api_key: Annotated[str | None, Parameter(description="API key")] = None) -> File | Response:
    check_known(request.query_params, [])
    if file not in FILES:
        raise NotFound(f"no file '{file[:60]}' in a snapshot; there are " + ", ".join(FILES))
    if len(date) != 10 or not date[:4].isdigit():
        raise BadRequest(f"parameter 'date' must be a date YYYY-MM-DD, got {date[:40]!r}", param="date")
    found = snapshot_file(snapshot_root(settings), date, file)
    if found is None:
        raise NotFound(f"no snapshot of {date[:10]} (see {PREFIX}/ for the dates kept)")
    path, snap = found
    etag = f'"{snap.files[file]["sha256"][:32]}"'
    headers = _headers(etag, snap.generated_at, **{"Cache-Control": "public, max-age=3600"})
    ScopeState.from_scope(request.scope).is_cached = True  # already gzip: the app must not compress it again
    if _not_modified(request, etag, snap.generated_at.replace(microsecond=0)):
        return Response(content=b"", status_code=304, headers=headers)
    return File(path=path, filename=f"zhcharge-stations-{date}.{FILES[file]}.gz", media_type="application/gzip",
                headers=headers, etag=None)


export_router = Router(path=PREFIX, route_handlers=[export_geojson, export_csv, export_index, export_snapshot],
                       middleware=[RateLimitMiddleware])

ROUTES: list[Any] = [export_router]

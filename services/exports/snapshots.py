"""Daily snapshots of the public dataset: ``<dir>/<YYYY-MM-DD>/stations.geojson.gz``,
``stations.csv.gz`` and ``manifest.json`` (date, generation time, count, data version, each file's
size and SHA-256), the date being China's.

One pass over the stations writes both files (so they hold the same stations), into a hidden
directory renamed into place when complete: a reader sees a whole snapshot or none. Every app
process runs the job (:func:`snapshot_job`); a PostgreSQL advisory lock lets one of them write, and
the others find the day done. The directory must be storage every worker sees (like uploads).
Snapshots ``keep_days`` old or more are deleted after each run.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from services.exports.formats import CsvWriter, GeoJsonWriter, dataset_state, iter_items
from services.prices.tariff import CHINA_TZ

__all__ = ["FILES", "SNAPSHOT_LOCK", "Snapshot", "china_today", "list_snapshots", "prune_snapshots", "snapshot_file",
           "snapshot_job", "write_snapshot"]

log = logging.getLogger("zhcharge.exports")

SNAPSHOT_LOCK = 0x7A68_1701  # pg advisory lock of the snapshot writer
#: file name → format
FILES = {"stations.geojson.gz": "geojson", "stations.csv.gz": "csv"}
MANIFEST = "manifest.json"
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def china_today(now: datetime | None = None) -> date:
    """Today in China.

    >>> china_today(datetime(2026, 12, 6, 17, 0, tzinfo=UTC))
    datetime.date(2026, 12, 7)
    """
    return (now or datetime.now(UTC)).astimezone(CHINA_TZ).date()


@dataclass(frozen=True, slots=True)
class Snapshot:
    day: date
    generated_at: datetime
    count: int
    data_version: int
    files: dict[str, dict[str, Any]]


def _day_dir(root: Path, day: date) -> Path:
    return root / day.isoformat()


def _read_manifest(path: Path) -> Snapshot | None:
    try:
        m = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        return Snapshot(date.fromisoformat(m["date"]), datetime.fromisoformat(m["generated_at"]), int(m["count"]),
                        int(m["data_version"]), dict(m["files"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_snapshot(engine: Engine, root: Path, columns: Sequence[str], *, day: date | None = None,
                   now: datetime | None = None, keep_days: int = 30, force: bool = False) -> Snapshot | None:
    """Write the snapshot of ``day`` (today in China by default) unless it exists or another process is
    writing one; returns it, or ``None`` when this call wrote nothing. Prunes old snapshots either way
    (when it holds the lock). ``columns``: the CSV columns (the open API's)."""
    now = now or datetime.now(UTC)
    day = day or china_today(now)
    root.mkdir(parents=True, exist_ok=True)
    with engine.begin() as conn:
        if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SNAPSHOT_LOCK}).scalar():
            return None
        target = _day_dir(root, day)
        written = None
        if force or _read_manifest(target) is None:
            written = _write(conn, root, target, day, now, columns)
        prune_snapshots(root, keep_days=keep_days, today=china_today(now))
        return written


def _write(conn: Any, root: Path, target: Path, day: date, now: datetime, columns: Sequence[str]) -> Snapshot:
    state = dataset_state(conn)
    tmp = root / f".tmp-{day.isoformat()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writers = {"stations.geojson.gz": GeoJsonWriter(generated_at=now, state=state),
               "stations.csv.gz": CsvWriter(columns)}
    files = {}
    try:
        raw = {name: (tmp / name).open("wb") for name in writers}
        sinks = {name: gzip.GzipFile(filename=name[:-3], mode="wb", compresslevel=6, fileobj=raw[name],
                                     mtime=int(now.timestamp())) for name in writers}
        try:
            for name, w in writers.items():
                sinks[name].write(w.head())
            for items in iter_items(conn):
                for name, w in writers.items():
                    sinks[name].write(w.batch(items))
            for name, w in writers.items():
                sinks[name].write(w.tail())
        finally:
            for name, sink in sinks.items():
                sink.close()
                raw[name].close()  # GzipFile does not close a file object it was given
        for name in writers:
            files[name] = {"format": FILES[name], "bytes": (tmp / name).stat().st_size, "sha256": _sha256(tmp / name)}
        count = writers["stations.geojson.gz"].count
        manifest = {"date": day.isoformat(), "generated_at": now.astimezone(UTC).isoformat(), "count": count,
                    "data_version": state.version, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("export snapshot %s: %d stations", day, count)
    return Snapshot(day, now.astimezone(UTC), count, state.version, files)


def list_snapshots(root: Path) -> list[Snapshot]:
    """The complete snapshots, newest first."""
    if not root.is_dir():
        return []
    found = [_read_manifest(p) for p in root.iterdir() if p.is_dir() and _DAY.fullmatch(p.name)]
    return sorted((s for s in found if s is not None), key=lambda s: s.day, reverse=True)


def prune_snapshots(root: Path, *, keep_days: int, today: date) -> list[date]:
    """Delete the snapshots of days ``keep_days`` or more before ``today`` (30: today and the 29 days
    before stay) and leftovers of interrupted writes; returns the days deleted."""
    deleted = []
    if not root.is_dir():
        return deleted
    for p in root.iterdir():
        if p.is_dir() and _DAY.fullmatch(p.name):
            try:
                day = date.fromisoformat(p.name)
            except ValueError:
                continue
            if (today - day).days >= keep_days:
                shutil.rmtree(p, ignore_errors=True)
                deleted.append(day)
        elif p.is_dir() and p.name.startswith(".tmp-") and p.stat().st_mtime < datetime.now().timestamp() - 86400:
            shutil.rmtree(p, ignore_errors=True)
    return sorted(deleted)


def snapshot_file(root: Path, day_text: str, name: str) -> tuple[Path, Snapshot] | None:
    """The path of a snapshot's file and its snapshot, or ``None`` when there is no such file."""
    if name not in FILES or not _DAY.fullmatch(day_text):
        return None
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        return None
    snap = _read_manifest(_day_dir(root, day))
    path = _day_dir(root, day) / name
    if snap is None or name not in snap.files or not path.is_file():
        return None
    return path, snap


def snapshot_job(engine: Engine, root: Path, columns: Sequence[str], *, keep_days: int = 30,
                 interval_s: float = 600.0, first_delay_s: float = 30.0,
                 clock: Callable[[], datetime] | None = None):  # noqa: ANN201 - a PeriodicJob
    """The daily job: every ``interval_s`` it writes today's snapshot if nobody has yet (so it is
    written soon after midnight, China time, or when the first process starts) and prunes."""
    from services.jobs import PeriodicJob

    return PeriodicJob("export-snapshots", lambda: write_snapshot(
        engine, root, columns, now=clock() if clock else None, keep_days=keep_days), interval_s,
        first_delay_s=first_delay_s)

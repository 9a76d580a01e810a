"""Data versions in memory, so an ETag (and a 304) costs no database round trip.

Decision: LISTEN/NOTIFY. The tiles migration puts a trigger on ``data_versions`` that sends
``'<layer>:<version>'`` on channel ``zh_data_version`` when a version changes (delivered at
commit). A daemon thread holds one connection that LISTENs, and re-reads the whole table every
``resync_s`` seconds as a safety net. While that connection is down, :meth:`DataVersions.get`
falls back to polling: a background re-read whenever the value is older than ``poll_s`` (1 s), so
a version is about a second stale at most and the event loop never waits for the database.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg2

__all__ = ["DataVersions", "CHANNEL"]

log = logging.getLogger("zhcharge.tiles")
CHANNEL = "zh_data_version"
_SELECT = "SELECT layer, version FROM data_versions"


class DataVersions:
    def __init__(self, connect_kwargs: dict[str, Any], *, poll_s: float = 1.0, resync_s: float = 30.0,
                 listen: bool = True) -> None:
        self._kwargs = connect_kwargs
        self.poll_s = poll_s
        self.resync_s = resync_s
        self.listen = listen
        self._versions: dict[str, int] = {}
        self._checked = 0.0
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[str, int], None]] = []
        self.changed_at = time.monotonic()
        self._wake_r, self._wake_w = socket.socketpair()
        self._polling = False
        self._poll_started = 0.0

    # --- public -------------------------------------------------------------------------------
    def start(self) -> None:
        with contextlib.suppress(psycopg2.Error):
            self.refresh()
        if self.listen and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tiles-data-versions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None

    @property
    def listening(self) -> bool:
        return self._listening

    def get(self, layer: str) -> int:
        """The layer's version from memory. Never blocks: while LISTEN is down and the value is
        older than ``poll_s``, a background re-read is started and the last known value returned."""
        if not self._listening and time.monotonic() - self._checked > self.poll_s:
            self._poll_in_background()
        return self._versions.get(layer, 1)

    def _poll_in_background(self) -> None:
        with self._lock:
            if self._polling or time.monotonic() - self._poll_started < self.poll_s:
                return
            self._polling = True
            self._poll_started = time.monotonic()

        def run() -> None:
            try:
                self.refresh()
            except psycopg2.Error:
                log.warning("cannot read data versions; using the last known ones")
            finally:
                self._polling = False

        threading.Thread(target=run, name="tiles-data-versions-poll", daemon=True).start()

    def snapshot(self) -> dict[str, int]:
        return dict(self._versions)

    def subscribe(self, fn: Callable[[str, int], None]) -> Callable[[], None]:
        """Call ``fn(layer, version)`` (from the listener thread) on every change."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def refresh(self) -> dict[str, int]:
        """Re-read every version now (one short query on a fresh connection)."""
        conn = psycopg2.connect(**self._kwargs)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(_SELECT)
                rows = cur.fetchall()
        finally:
            conn.close()
        self._apply(rows)
        return self.snapshot()

    # --- internals ----------------------------------------------------------------------------
    def _apply(self, rows: list[tuple[str, int]] | tuple) -> None:
        changed = []
        with self._lock:
            for layer, version in rows:
                version = int(version)
                if self._versions.get(layer) != version:
                    self._versions[layer] = version
                    changed.append((layer, version))
            self._checked = time.monotonic()
        if changed:
            self.changed_at = time.monotonic()
            for layer, version in changed:
                for fn in list(self._listeners):
                    try:
                        fn(layer, version)
                    except Exception:  # noqa: BLE001 - a subscriber must not kill the listener
                        log.exception("data version subscriber failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = psycopg2.connect(**self._kwargs)
                conn.autocommit = True
                with conn.cursor() as cur:
                    cur.execute(f"LISTEN {CHANNEL}")
                    cur.execute(_SELECT)
                    self._apply(cur.fetchall())
                self._listening = True
                last_sync = time.monotonic()
                while not self._stop.is_set():
                    ready, _, _ = select.select([conn, self._wake_r], [], [], 1.0)
                    if conn in ready:
                        conn.poll()
                        rows = []
                        while conn.notifies:
                            note = conn.notifies.pop(0)
                            layer, _, version = note.payload.rpartition(":")
                            if layer and version.isdigit():
                                rows.append((layer, int(version)))
                        self._apply(rows)
                    if time.monotonic() - last_sync > self.resync_s:
                        with conn.cursor() as cur:
                            cur.execute(_SELECT)
                            self._apply(cur.fetchall())
                        last_sync = time.monotonic()
            except Exception:  # noqa: BLE001 - reconnect on anything; get() polls meanwhile
                self._listening = False
                log.warning("data version listener lost its connection; retrying", exc_info=True)
                self._stop.wait(1.0)
            finally:
                self._listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()

"""Background jobs inside an app process: a daemon thread calling one function periodically.

Jobs must be safe when several processes run them (each takes a PostgreSQL advisory lock or is
idempotent); the thread only survives errors and logs them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

__all__ = ["PeriodicJob"]

log = logging.getLogger("zhcharge.jobs")


class PeriodicJob:
    """Call ``fn()`` every ``interval_s`` seconds (first after ``first_delay_s``) until stopped."""

    def __init__(self, name: str, fn: Callable[[], object], interval_s: float, *, first_delay_s: float = 5.0) -> None:
        self.name, self.fn, self.interval_s, self.first_delay_s = name, fn, interval_s, first_delay_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        delay = self.first_delay_s
        while not self._stop.wait(delay):
            delay = self.interval_s
            try:
                self.fn()
            except SQLAlchemyError:
                log.warning("%s: database unavailable; will retry", self.name)
            except Exception:  # noqa: BLE001 - the job must survive anything
                log.exception("%s failed", self.name)

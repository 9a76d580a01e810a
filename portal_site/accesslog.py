"""Quiet console: status pushes are not worth one access-log line each.

Operators push connector status several times a second; uvicorn's access log would print every
one. :class:`PushSummaryFilter` (installed on ``uvicorn.access`` by ``create_app``, so in every
worker) turns the lines of ``POST /evcs/…`` into DEBUG records and prints one INFO summary a
minute instead: how many pushes, by HTTP status. Everything else is logged as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

__all__ = ["PushSummaryFilter", "install"]

log = logging.getLogger("zhcharge.feed")


class PushSummaryFilter(logging.Filter):
    def __init__(self, interval_s: float = 60.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.counts: Counter[int] = Counter()
        self.since = time.monotonic()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        # uvicorn: '%s - "%s %s HTTP/%s" %d' % (client, method, path, http_version, status)
        if len(args) >= 5 and isinstance(args[2], str) and args[2].startswith("/evcs/"):
            with self._lock:
                self.counts[int(args[4])] += 1
                due = time.monotonic() - self.since >= self.interval_s
                summary = self._take() if due else None
            if summary:
                log.info("%s", summary)
            if log.isEnabledFor(logging.DEBUG):
                log.debug(record.getMessage())
            return False
        return True

    def _take(self) -> str | None:
        counts, self.counts = self.counts, Counter()
        elapsed = time.monotonic() - self.since
        self.since = time.monotonic()
        total = sum(counts.values())
        if not total:
            return None
        detail = ", ".join(f"{n} × HTTP {status}" for status, n in sorted(counts.items()))
        return f"feed: {total} protocol requests in the last {elapsed:.0f} s ({detail})"


def install(interval_s: float = 60.0) -> None:
    """Add the filter to ``uvicorn.access`` once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, PushSummaryFilter) for f in access.filters):
        access.addFilter(PushSummaryFilter(interval_s))

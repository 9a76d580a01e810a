"""An in-process LRU of encoded tiles, bounded in bytes (not entries: tiles range from 0 B to MBs)."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["ByteLRU"]


class ByteLRU:
    """Thread-safe LRU; ``put`` evicts least recently used entries until the total fits.

    >>> c = ByteLRU(220)  # each entry costs its length + 100
    >>> c.put("a", b"12345"); c.put("b", b"12345"); c.get("a")
    b'12345'
    >>> c.put("c", b"123"); sorted(c.keys()), c.size
    (['a', 'c'], 208)
    >>> c.put("huge", b"x" * 200); c.get("huge") is None
    True
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: str, value: bytes) -> None:
        cost = len(value) + 100  # + rough per-entry overhead, so empty tiles are not free
        if cost > self.max_bytes:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.size -= len(old) + 100
            self._data[key] = value
            self.size += cost
            while self.size > self.max_bytes:
                _, evicted = self._data.popitem(last=False)
                self.size -= len(evicted) + 100

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.size = 0

    def __len__(self) -> int:
        return len(self._data)

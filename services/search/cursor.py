"""Opaque keyset cursors: base64url of a small JSON array (sort, key, id, query fingerprint).

A cursor is bound to the query it came from (same filters and sort); another query's cursor or a
damaged one is a 400 naming ``cursor``. Keys are compared exactly in SQL (floats round-trip
through ``repr``), so a page never repeats or skips a station whose sort key did not change.

>>> c = encode_cursor("name", "珠海站", 42, "abc")
>>> decode_cursor(c, "name", "abc")
('珠海站', 42)
>>> decode_cursor("bad!", "name", "abc")
Traceback (most recent call last):
...
services.errors.BadRequest: parameter 'cursor' is not a valid cursor
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from services.errors import BadRequest

__all__ = ["decode_cursor", "encode_cursor", "fingerprint"]


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def encode_cursor(sort: str, key: Any, row_id: int, fp: str) -> str:
    raw = json.dumps([sort, key, row_id, fp], ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, sort: str, fp: str) -> tuple[Any, int]:
    """(key, id) of a cursor made for this sort and query fingerprint."""
    try:
        padded = text + "=" * (-len(text) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")).decode())
    except (ValueError, UnicodeError, binascii.Error):
        raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor") from None
    if (not isinstance(data, list) or len(data) != 4 or not isinstance(data[2], int) or isinstance(data[2], bool)
            or not isinstance(data[0], str)):
        raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
    c_sort, key, row_id, c_fp = data
    if c_sort != sort or c_fp != fp:
        raise BadRequest("parameter 'cursor' belongs to another query (filters or sort differ)", param="cursor")
    if key is not None and not isinstance(key, (str, int, float)) or isinstance(key, bool):
        raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
    if not -2**63 < row_id < 2**63:
        raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
    return key, row_id

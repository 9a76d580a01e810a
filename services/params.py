"""Bounded integers from query strings and forms: one rule for every handler.

PostgreSQL's ``bigint`` ends at 2**63 - 1 and an OFFSET of ``page * per_page`` must stay inside
it, so an integer parameter is checked here before it reaches SQL: malformed or out of range is
a 400 naming the parameter (``BadRequest``), never a database error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.errors import BadRequest

__all__ = ["INT64_MAX", "MAX_PAGE", "int_param", "id_list", "page_param"]

INT64_MAX = 2**63 - 1
MAX_PAGE = 100_000


def int_param(value: Any, name: str, *, lo: int = 1, hi: int = INT64_MAX, default: int | None = None) -> int | None:
    """``value`` as an int in ``lo..hi``; empty gives ``default``; anything else is a 400.

    >>> int_param("12", "page"), int_param("", "page", default=1), int_param(None, "station")
    (12, 1, None)
    >>> int_param("999999999999999999999", "page", hi=MAX_PAGE)
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: 参数 page 应为 1 到 100000 之间的整数 / parameter 'page' must be a whole number from 1 to 100000
    """
    text = str(value).strip() if value is not None else ""
    if text == "":
        return default
    ok = text.lstrip("-").isdigit() and text.isascii() and len(text) <= 20
    number = int(text) if ok else None
    if number is None or not lo <= number <= hi:
        raise BadRequest(f"参数 {name} 应为 {lo} 到 {hi} 之间的整数 / parameter '{name}' must be a whole number "
                         f"from {lo} to {hi}", param=name)
    return number


def page_param(value: Any, name: str = "page") -> int:
    """A page number: 1 (empty) to :data:`MAX_PAGE`."""
    return int_param(value, name, lo=1, hi=MAX_PAGE, default=1)  # type: ignore[return-value]


def id_list(values: Iterable[Any]) -> list[int]:
    """Row ids from a multi-valued form field; what cannot be an id (not digits, beyond bigint) names
    nothing and is left out.

    >>> id_list(["3", " 4", "x", "99999999999999999999", 5])
    [3, 4, 5]
    """
    out = []
    for v in values:
        text = str(v).strip()
        if text.isdigit() and text.isascii() and 0 < int(text) <= INT64_MAX:
            out.append(int(text))
    return out

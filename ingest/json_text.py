"""JSON as operators' platforms send it: tolerant parsing, compact writing, and what we refuse.

Parsing is strict first, then once more without trailing commas (the standard's own examples
carry some). ``json_problem`` finds what must not go further: nesting deeper than we accept, and
NUL characters (PostgreSQL refuses them in text).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "compact_json", "json_problem", "parse_json"]


def _drop_trailing_commas(text: str) -> str:
    """Remove commas directly before ``}``/``]`` outside strings (the spec's own examples
    carry one). Only used after strict parsing failed."""
    out: list[str] = []
    in_str = escape = False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if in_str:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                i += 1
                continue
        out.append(c)
        i += 1
    return "".join(out)


#: Deepest nesting accepted in an envelope or its Data (a StationInfo page needs 5).
MAX_JSON_DEPTH = 32


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH, *, text: str | None = None) -> str | None:
    """What is wrong with decoded JSON for us, or ``None``: nesting deeper than ``max_depth``, or
    a NUL character in a string or key (PostgreSQL refuses NUL in text). One iterative pass, so
    hostile input cannot exhaust the stack; the answer names the field. Given the ``text`` it was
    decoded from (by :func:`parse_json`, which refuses raw control characters in strings), strings
    are only looked at when the text holds the escape ``\\u0000``: otherwise only the nesting is.

    >>> json_problem({"StationInfos": [{"StationID": "a\\x00"}]})
    'field StationInfos[0].StationID contains a NUL character'
    >>> json_problem([[[1]]], max_depth=2), json_problem({"a": ["b"]})
    ('nested deeper than 2 levels at [0][0]', None)
    >>> json_problem({"a": "b\\x00"}, text='{"a": "b\\\\u0000"}'), json_problem({"a": [["b"]]}, 2, text="...")
    ('field a contains a NUL character', 'nested deeper than 2 levels at a[0]')
    """
    strings = text is None or "\\u0000" in text  # else no string can hold a NUL: visit containers only
    # (value, depth, label, parent entry): the path is only spelled out when something is wrong
    stack: list[tuple[Any, int, str, Any]] = [(value, 0, "", None)]
    while stack:
        entry = stack.pop()
        item, depth = entry[0], entry[1]
        if isinstance(item, str):
            if "\x00" in item:
                return f"field {_path(entry)} contains a NUL character"
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                return f"nested deeper than {max_depth} levels at {_path(entry)}"
            if isinstance(item, dict):
                for k, v in item.items():
                    child = (v, depth + 1, f".{k}", entry)
                    if strings and "\x00" in k:
                        return f"field {_path(child)} contains a NUL character"
                    if strings or isinstance(v, (dict, list)):
                        stack.append(child)
            else:
                stack.extend((v, depth + 1, f"[{i}]", entry) for i, v in enumerate(item)
                             if strings or isinstance(v, (dict, list)))
    return None


def _path(entry: Any) -> str:
    """The field path of a :func:`json_problem` stack entry (``StationInfos[0].StationID``)."""
    parts = []
    while entry is not None:
        parts.append(entry[2])
        entry = entry[3]
    return "".join(reversed(parts)).lstrip(".").replace("\x00", "\\0") or "value"


def parse_json(text: str) -> Any:
    """Strict JSON, then once more without trailing commas; raises ``ValueError`` (also when the
    nesting is so deep that the parser gives up)."""
    try:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(_drop_trailing_commas(text))
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def compact_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


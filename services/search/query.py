"""The search request beyond the shared filter: sort, page size, cursor, facets, updated_since, crs.

Parsed from the same query parameters as :class:`~services.stations.filters.StationFilter`.
Unknown parameters are a 400 naming them (a typo such as ``operater=`` must not silently
return everything); parameters starting with ``_`` (cache busters) and ``lang`` are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from services.errors import BadRequest
from services.search.cursor import fingerprint
from services.settings import SearchSettings
from services.stations.filters import FILTER_PARAMS, StationFilter, _single

__all__ = ["PAGING_PARAMS", "SORTS", "SearchQuery", "check_known", "parse_search"]

SORTS: dict[str, tuple[str, str]] = {
    "id": ("编号（默认）", "id (the default without q, lat/lng or route; cheapest to page through)"),
    "relevance": ("相关度", "relevance (with q)"),
    "distance": ("距离", "distance (with lat/lng)"),
    "route": ("沿路线顺序", "position along the route (with route)"),
    "name": ("名称", "name"),
    "max_power": ("最大功率", "maximum power, highest first"),
    "free": ("空闲枪数", "free connectors, most first"),
    "price": ("当前价格（低到高）", "price per kWh now (electricity + service), cheapest first; stations "
                                "without a known price last"),
    "uptime": ("近30天可用率（高到低）", "uptime of the last 30 days, highest first; stations without one last"),
}
PAGING_PARAMS: tuple[str, ...] = ("limit", "cursor", "sort", "facets", "total", "updated_since", "crs")
IGNORED_PARAMS: tuple[str, ...] = ("lang", "api_key", "format")
CRS = ("wgs84", "gcj02")
_ASCII_QUERY = re.compile(r"^[A-Za-z' ]+$")


@dataclass(frozen=True)
class SearchQuery:
    filter: StationFilter
    sort: str
    limit: int
    cursor: str | None = None
    facets: bool = True
    updated_since: datetime | None = None
    crs: str = "wgs84"
    total: bool = True

    def fingerprint(self) -> str:
        """What a cursor is bound to: filters, sort and updated_since (not limit or crs)."""
        return fingerprint(self.filter.cache_key(), self.sort,
                           self.updated_since.isoformat() if self.updated_since else "")

    def cache_key(self) -> str:
        return "&".join([self.filter.cache_key(), f"sort={self.sort}", f"limit={self.limit}",
                         f"cursor={self.cursor or ''}", f"facets={int(self.facets)}",
                         f"updated_since={self.updated_since.isoformat() if self.updated_since else ''}",
                         f"crs={self.crs}", f"total={int(self.total)}"])


def check_known(params: Mapping[str, Any], known: Iterable[str]) -> None:
    """400 for the first parameter not in ``known`` (``lang``, ``api_key`` and ``_``-prefixed cache
    busters are always allowed), naming it and listing the known ones: a typo such as
    ``operater=`` must never silently widen an answer.

    >>> check_known({"crs": "wgs84", "_": "1"}, ["crs"])
    >>> check_known({"foo": "1"}, ["crs"])
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: unknown parameter 'foo'; known parameters: api_key, crs, lang
    """
    allowed = set(known) | set(IGNORED_PARAMS) - {"format"}
    for name in params.keys():
        if name not in allowed and not name.startswith("_"):
            raise BadRequest(f"unknown parameter '{str(name)[:60]}'; known parameters: " + ", ".join(sorted(allowed)),
                             param=str(name)[:60])


def _check_unknown(params: Mapping[str, Any], extra_allowed: tuple[str, ...], paging: bool = True) -> None:
    check_known(params, set(FILTER_PARAMS) | (set(PAGING_PARAMS) if paging else {"updated_since", "crs"})
                | {"format"} | set(extra_allowed))


def _normalise_q(flt: StationFilter) -> StationFilter:
    """Ascii queries are pinyin or initials: lower-case, spaces and apostrophes dropped
    ("Chang Long" finds 长隆 like "changlong")."""
    if flt.q and _ASCII_QUERY.match(flt.q):
        q = re.sub(r"[' ]+", "", flt.q).lower()
        return replace(flt, q=q or None)
    return flt


def parse_search(params: Mapping[str, Any], settings: SearchSettings, *, paging: bool = True,
                 max_limit: int | None = None, extra_allowed: tuple[str, ...] = ()) -> SearchQuery:
    """Every problem is a 400 naming the parameter."""
    _check_unknown(params, extra_allowed, paging)
    flt = _normalise_q(StationFilter.from_params(params, max_radius_m=settings.max_radius_m,
                                                 max_corridor_m=settings.max_corridor_m))

    limit_text = _single(params, "limit")
    top = max_limit if max_limit is not None else settings.max_limit
    if limit_text in (None, ""):
        limit = min(settings.default_limit, top)
    else:
        if not limit_text.isdigit():
            raise BadRequest(f"parameter 'limit' must be a whole number from 1 to {top}", param="limit")
        limit = int(limit_text)
        if not 1 <= limit <= top:
            raise BadRequest(f"parameter 'limit' must be from 1 to {top}, got {limit}", param="limit")

    sort = _single(params, "sort") or ""
    if not sort:
        sort = ("route" if flt.route is not None else "distance" if flt.lng is not None
                else "relevance" if flt.q else "id")
    if sort not in SORTS:
        raise BadRequest(f"unknown value {sort!r} for parameter 'sort'; allowed: " + ", ".join(SORTS), param="sort")
    if sort == "distance" and flt.lng is None:
        raise BadRequest("sort=distance needs 'lat' and 'lng'", param="sort")
    if sort == "route" and flt.route is None:
        raise BadRequest("sort=route needs 'route'", param="sort")
    if sort == "relevance" and not flt.q:
        raise BadRequest("sort=relevance needs 'q'", param="sort")

    facets_text = (_single(params, "facets") or "true").lower()
    if facets_text not in {"true", "false", "1", "0", "yes", "no"}:
        raise BadRequest("parameter 'facets' must be true or false", param="facets")

    total_text = (_single(params, "total") or "true").lower()
    if total_text not in {"true", "false", "1", "0", "yes", "no"}:
        raise BadRequest("parameter 'total' must be true or false", param="total")

    updated_since = None
    us_text = _single(params, "updated_since")
    if us_text:
        try:
            updated_since = datetime.fromisoformat(us_text.replace("Z", "+00:00").replace(" ", "+"))
        except ValueError:
            raise BadRequest("parameter 'updated_since' must be an ISO 8601 date or time, "
                             "e.g. 2026-11-24T08:00:00Z", param="updated_since") from None
        if updated_since.tzinfo is None:
            updated_since = updated_since.replace(tzinfo=timezone.utc)
        if not 1970 <= updated_since.year <= 9000:
            raise BadRequest("parameter 'updated_since' is out of range", param="updated_since")

    crs = (_single(params, "crs") or "wgs84").lower()
    if crs not in CRS:
        raise BadRequest(f"unknown value {crs!r} for parameter 'crs'; allowed: wgs84, gcj02", param="crs")

    cursor = _single(params, "cursor") or None
    if cursor is not None and len(cursor) > 400:
        raise BadRequest("parameter 'cursor' is not a valid cursor", param="cursor")
    return SearchQuery(filter=flt, sort=sort, limit=limit, cursor=cursor if paging else None,
                       facets=facets_text in {"true", "1", "yes"}, updated_since=updated_since, crs=crs,
                       total=total_text in {"true", "1", "yes"} or facets_text in {"true", "1", "yes"})

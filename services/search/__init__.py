"""Station search: disjunctive facets, pinyin/Chinese name search, geodesic where, keyset paging.

``parse_search(params, settings.search)`` → :class:`SearchQuery`; ``search(conn, query)`` →
:class:`SearchResult` (items, facets, total, next cursor) in one statement. The open API
(``portal_site.routes.api``) and the map's search panel both use it.
"""

from services.search.query import SearchQuery, parse_search
from services.search.service import SearchResult, facet_counts, search

__all__ = ["SearchQuery", "SearchResult", "facet_counts", "parse_search", "search"]

"""Pure geographic helpers for zhcharge: no database, no web.

Modules: :mod:`geo.gcj02` (GCJ-02 <-> WGS84), :mod:`geo.crs` (pyproj transformers
and geodesic distances), :mod:`geo.bbox` (input parsing), :mod:`geo.districts`
(administrative boundaries) and :mod:`geo.errors`.
"""

"""Vector tiles: layers rendered in PostGIS, validated, versioned, cached and gzipped.

``tiles.service.TileService`` is the entry point; ``portal_site.routes.tiles`` serves it over HTTP.
Import direction: ``geo ← services ← tiles``; nothing here imports ``portal_site``.
"""

"""Route modules, one per domain; ``portal_site.app.ROUTE_MODULES`` lists them."""

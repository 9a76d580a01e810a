"""The web application: app factory, controllers, templates, static assets and the CLI."""

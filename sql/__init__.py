"""SQL of zhcharge: Alembic migrations, layer functions and queries (read with ``services.db.read_sql``)."""

"""Districts in PostGIS: loading boundaries and assigning points to districts."""

from services.geography.districts import load_districts_into_db, locate

__all__ = ["load_districts_into_db", "locate"]

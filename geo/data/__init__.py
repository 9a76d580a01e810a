"""Data files shipped with :mod:`geo` (a package so that setuptools ships them)."""

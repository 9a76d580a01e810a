"""Subsidies (B10–B12): rules, eligibility, applications, caps-safe accounting and exports.

Pure parts (no database): :mod:`.amounts` (exact Decimal arithmetic, rounding and caps),
:mod:`.eligibility` (each condition with its own message) and :mod:`.states` (the application
workflow table). :mod:`.service` owns the tables in ``services.models.subsidy``.
"""

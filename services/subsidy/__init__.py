"""Subsidies (B10–B12): rules, eligibility, applications, caps-safe accounting and exports.

Pure parts (no database): :mod:`.amounts` (exact Decimal arithmetic, rounding and caps),
:mod:`.eligibility` (each condition with its own message) and :mod:`.states` (the application
workflow table). Over the tables in ``services.models.subsidy``: :mod:`.rules` (the rule form,
editing, publishing), :mod:`.options` (the stations and facilities an operator may claim, with the
conditions each fails), :mod:`.applications` (the form, the expected amount, save, submit, delete,
review), :mod:`.listing` (searches and figures) and :mod:`.accounting` (accounting under the caps,
payment); :mod:`.shared` holds what they share (the actor, China's day, notices). :mod:`.energy`
is the energy of per-kWh claims (reconciled charge orders, with ``query_station_stats`` as a
cross-check) and :mod:`.export` writes the Excel exports.
"""

"""OCPI 2.2.1: zhcharge as a Sender (CPO role) of Locations and Tariffs.

The same tables and the same visibility rule as the open API (active, interconnected stations),
published in another standard for roaming hubs and car makers' apps:

* :mod:`services.ocpi.models` — the OCPI objects we emit (msgspec structs; optional fields left out
  when empty) and the response envelope;
* :mod:`services.ocpi.mapping` — pure functions: a station, its piles and connectors to a
  Location, EVSEs and Connectors; live connector status to EVSE status; BusineHours to opening
  times; Construction to facilities and parking type; a tariff to an OCPI Tariff;
* :mod:`services.ocpi.paging` — the list parameters (``date_from``, ``date_to``, ``offset``,
  ``limit`` and our keyset ``after``) and the ``Link`` of the next page;
* :mod:`services.ocpi.queries` — pages of Locations and Tariffs, one Location;
* :mod:`services.ocpi.parties` — the client parties and their credentials tokens (stored as
  hashes), and the ``party_id`` each charging operator publishes under.

Errors are :class:`services.ocpi.errors.OcpiError` with their OCPI status code; the routes
(``portal_site.routes.ocpi``) put everything in the OCPI response envelope.
"""

from services.ocpi.errors import OcpiError

__all__ = ["OcpiError"]

"""The OCPI 2.2.1 objects zhcharge emits, as msgspec structs (module "Locations", "Tariffs",
"Versions" and "Types" of the specification).

Optional fields we have nothing for are left out of the JSON (``omit_defaults``), never sent as
``null``. Timestamps are strings in UTC with a ``Z`` (OCPI's DateTime: "+00:00 is not the same as
UTC"), made by :func:`ocpi_datetime`. Prices are Decimals written as JSON numbers (OCPI's
``number``: four decimals) by :data:`ENCODER`.

>>> c = Connector(id="1", standard="GBT_DC", format="CABLE", power_type="DC", max_voltage=750,
...               max_amperage=250, last_updated="2026-12-06T01:00:00Z")
>>> ENCODER.encode(c).decode()
'{"id":"1","standard":"GBT_DC","format":"CABLE","power_type":"DC","max_voltage":750,"max_amperage":250,"last_updated":"2026-12-06T01:00:00Z"}'
>>> ENCODER.encode(PriceComponent(type="ENERGY", price=Decimal("1.2500"), step_size=1)).decode()
'{"type":"ENERGY","price":1.2500,"step_size":1}'
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import msgspec

__all__ = ["BusinessDetails", "Connector", "DisplayText", "ENCODER", "EVSE", "Endpoint", "GeoLocation", "Hours",
           "Location", "PriceComponent", "RegularHours", "Tariff", "TariffElement", "TariffRestrictions", "Version",
           "VersionDetails", "ocpi_datetime"]

#: JSON with Decimals as numbers (OCPI prices are numbers, not strings)
ENCODER = msgspec.json.Encoder(decimal_format="number")


def ocpi_datetime(moment: datetime) -> str:
    """An aware datetime as OCPI's DateTime: UTC, to the second, with ``Z``.

    >>> from datetime import timedelta, timezone
    >>> ocpi_datetime(datetime(2026, 12, 6, 9, 30, 15, 999, tzinfo=timezone(timedelta(hours=8))))
    '2026-12-06T01:30:15Z'
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Object(msgspec.Struct, kw_only=True, omit_defaults=True):
    pass


class DisplayText(_Object, kw_only=True):
    language: str
    text: str


class GeoLocation(_Object, kw_only=True):
    """WGS84, decimal degrees as strings (5 to 7 decimals)."""

    latitude: str
    longitude: str


class RegularHours(_Object, kw_only=True):
    weekday: int  # 1 = Monday … 7 = Sunday
    period_begin: str
    period_end: str


class Hours(_Object, kw_only=True):
    twentyfourseven: bool
    regular_hours: list[RegularHours] = msgspec.field(default_factory=list)


class BusinessDetails(_Object, kw_only=True):
    name: str


class Connector(_Object, kw_only=True):
    id: str
    standard: str
    format: str
    power_type: str
    max_voltage: int
    max_amperage: int
    max_electric_power: int | None = None
    tariff_ids: list[str] = msgspec.field(default_factory=list)
    last_updated: str


class EVSE(_Object, kw_only=True):
    uid: str
    evse_id: str | None = None
    status: str
    connectors: list[Connector]
    coordinates: GeoLocation | None = None
    last_updated: str


class Location(_Object, kw_only=True):
    country_code: str
    party_id: str
    id: str
    publish: bool
    name: str | None = None
    address: str
    city: str
    postal_code: str | None = None
    country: str
    coordinates: GeoLocation
    parking_type: str | None = None
    evses: list[EVSE] = msgspec.field(default_factory=list)
    directions: list[DisplayText] = msgspec.field(default_factory=list)
    operator: BusinessDetails | None = None
    facilities: list[str] = msgspec.field(default_factory=list)
    time_zone: str
    opening_times: Hours | None = None
    last_updated: str


class PriceComponent(_Object, kw_only=True):
    type: str
    price: Decimal
    step_size: int


class TariffRestrictions(_Object, kw_only=True):
    start_time: str | None = None
    end_time: str | None = None


class TariffElement(_Object, kw_only=True):
    price_components: list[PriceComponent]
    restrictions: TariffRestrictions | None = None


class Tariff(_Object, kw_only=True):
    country_code: str
    party_id: str
    id: str
    currency: str
    tariff_alt_text: list[DisplayText] = msgspec.field(default_factory=list)
    elements: list[TariffElement]
    last_updated: str


class Endpoint(_Object, kw_only=True):
    identifier: str
    role: str
    url: str


class Version(_Object, kw_only=True):
    version: str
    url: str


class VersionDetails(_Object, kw_only=True):
    version: str
    endpoints: list[Endpoint]

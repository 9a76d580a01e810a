"""Response shapes of the open API (msgspec structs: the OpenAPI document is built from them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

__all__ = [
    "ConnectorOut", "EquipmentOut", "EstimateOut", "EstimatePart", "FacetValue", "Facets", "Fees", "PriceNow",
    "ReferenceResponse", "Reliability", "SearchResponse", "StationDetail", "StationItem", "StatsResponse", "StatsRow", "StatsTotals",
    "TariffOut", "TariffPeriod",
]


class Fees(msgspec.Struct):
    electricity_fee: str | None = None
    service_fee: str | None = None
    park_fee: str | None = None


class TariffPeriod(msgspec.Struct):
    """One period of the day (China time; ``end`` "24:00" for the last): prices per kWh in yuan as
    strings with 4 decimals; ``total`` = electricity + service."""

    start: str
    end: str
    electricity: str
    service: str
    total: str


class PriceNow(msgspec.Struct):
    """The price per kWh in force now and when it next changes."""

    electricity: str
    service: str
    total: str
    until: datetime


class TariffOut(msgspec.Struct):
    """``source``: policy (query_equip_business_policy), fee_text (the StationInfo fee texts), or mixed
    (a station whose connectors differ); ``varies``: a station whose connectors' tariffs differ (its
    periods are the cheapest per period); ``updated_at``: when the version in force took effect;
    ``checked_at``: when it was last confirmed."""

    source: str
    currency: str
    varies: bool
    updated_at: datetime
    checked_at: datetime | None
    periods: list[TariffPeriod]
    now: PriceNow


class EstimatePart(msgspec.Struct):
    start: datetime
    end: datetime
    kwh: float
    total: str


class EstimateOut(msgspec.Struct):
    """The cost of ``kwh`` started now at the connector's power, across periods (yuan as strings with
    2 decimals). On a station: the cheapest connector's, named by ``connector_id``."""

    kwh: float
    power_kw: float
    yuan: str
    electricity_yuan: str
    service_yuan: str
    start: datetime
    end: datetime
    minutes: int
    periods: list[EstimatePart]
    connector_id: str | None = None


class Reliability(msgspec.Struct):
    """The last 30 days (the 30 China days before today and today up to the last hourly refresh):
    ``uptime_30d`` the share of observed time the connectors could charge (4 decimals; null when
    nothing was observed), ``faults_30d`` the entries into fault, ``last_fault_at`` the latest."""

    uptime_30d: float | None
    faults_30d: int
    last_fault_at: datetime | None


class StationItem(msgspec.Struct):
    id: int
    operator_id: str
    station_id: str
    name: str
    operator_name: str | None
    address: str | None
    district: int | None
    district_name: str | None
    district_name_en: str | None
    lng: float
    lat: float
    station_type: int
    station_status: int
    facility_types: list[str]
    payments: list[str]
    connectors_total: int
    connectors_free: int
    availability: str
    pile_count: int
    scale: str | None
    max_power_kw: float | None
    fees: Fees
    hours: str | None
    park_info: str | None
    station_tel: str | None
    updated_at: datetime
    distance_m: float | None = None
    price_now: str | None = None
    reliability: Reliability | None = None


class FacetValue(msgspec.Struct):
    value: str | int
    label: str
    label_en: str
    count: int


class Facets(msgspec.Struct):
    operator: list[FacetValue]
    district: list[FacetValue]
    station_type: list[FacetValue]
    scale: list[FacetValue]
    facility_type: list[FacetValue]
    payment: list[FacetValue]


class SearchResponse(msgspec.Struct, omit_defaults=True):
    total: int | None
    items: list[StationItem]
    facets: Facets | None
    next_cursor: str | None
    #: present, and false, only when a text query (``q``) matched more than 2,000 stations after the
    #: filters: ``total`` is then a lower bound (2,000) and relevance ranks the first 2,001 found
    total_exact: bool = True
    #: present, and false, only when a text query's facets were counted on a sample (the first 2,001
    #: matches a facet counts) rather than on every match
    facets_exact: bool = True


class ConnectorOut(msgspec.Struct):
    connector_id: str
    connector_name: str | None
    connector_type: int
    connector_type_label: str | None
    connector_type_label_en: str | None
    power_kw: float
    voltage_upper_limits: int | None
    voltage_lower_limits: int | None
    current: int | None
    park_no: str | None
    national_standard: int | None
    status: int | None
    status_label: str | None
    status_label_en: str | None
    park_status: int | None
    lock_status: int | None
    status_since: datetime | None
    tariff: TariffOut | None = None
    estimate: EstimateOut | None = None


class EquipmentOut(msgspec.Struct):
    equipment_id: str
    equipment_name: str | None
    equipment_type: int
    facility_type: str | None
    manufacturer_name: str | None
    equipment_model: str | None
    power_kw: float
    connectors: list[ConnectorOut]


class StationDetail(StationItem, kw_only=True):
    site_guide: str | None = None
    service_tel: str | None = None
    construction: int | None = None
    park_nums: int = 0
    match_cars: str | None = None
    remark: str | None = None
    support_order: int | None = None
    pictures: list[str] = []
    equipment: list[EquipmentOut] = []
    tariff: TariffOut | None = None
    estimate: EstimateOut | None = None
    occupancy_profile: list[list[float | None]] = []
    """7 x 24 shares of the connectors occupied (charging, occupied or reserved), Monday first, hours
    0-23 China time, over the 8 weeks before today; null where under an hour was observed."""


class StatsTotals(msgspec.Struct):
    stations: int
    piles: int
    connectors: int
    connectors_free: int
    power_kw: float
    operators: int


class StatsRow(msgspec.Struct):
    value: str | int
    label: str
    label_en: str
    stations: int
    piles: int
    connectors: int
    power_kw: float


class StatsResponse(msgspec.Struct):
    totals: StatsTotals
    by_district: list[StatsRow]
    by_operator: list[StatsRow]
    by_station_type: list[StatsRow]
    data_version: int


class ReferenceResponse(msgspec.Struct):
    enumerations: dict[str, list[dict[str, Any]]]
    parameters: dict[str, Any]

"""The open API's reliability answers (msgspec: they document the OpenAPI schema)."""

from __future__ import annotations

import msgspec

__all__ = ["ConnectorHistory", "ConnectorReliability", "StationReliability", "StatusHistory", "StatusInterval"]


class StatusInterval(msgspec.Struct):
    status: int | None
    """The connector status (0 offline, 1 free, 2 occupied, 3 charging, 4 reserved, 255 fault); null: silent."""
    from_: str = msgspec.field(name="from")
    to: str | None
    """Null while the interval is still open."""


class ConnectorHistory(msgspec.Struct):
    connector_id: str
    intervals: list[StatusInterval]


class StatusHistory(msgspec.Struct):
    station_id: int
    connectors: list[ConnectorHistory]


class ConnectorReliability(msgspec.Struct):
    connector_id: str
    uptime: float | None
    down_seconds: int
    faults: int


class StationReliability(msgspec.Struct):
    station_id: int
    from_: str = msgspec.field(name="from")
    to: str
    uptime: float | None
    connectors: list[ConnectorReliability]

"""Prices for people and programs, written once: the ``tariff`` object of a station and of each
connector, the cost ``estimate`` of a charge, and the ``kwh`` parameter. The open API
(``/api/v1/stations/{id}``), the map popup (``/map/stations/{id}.json``) and anything else that
shows a price use these.

Representation (the README's "Prices" section): prices per kWh are strings with 4 decimals
(yuan, as :meth:`Tariff.api_periods` gives them: no float rounding reaches a client), money is a
string with 2 decimals (yuan), times are ISO 8601 with the China offset (``+08:00``).

>>> from datetime import UTC
>>> t = KnownTariff(Tariff.flat("0.6", "0.4"), "policy", datetime(2026, 12, 1, tzinfo=UTC),
...                 datetime(2026, 12, 6, tzinfo=UTC))
>>> api = t.to_api(datetime(2026, 12, 6, 10, 0, tzinfo=CHINA_TZ))
>>> api["source"], api["currency"], api["updated_at"], api["periods"][0]["total"], api["now"]["until"]
('policy', 'CNY', '2026-12-01T08:00:00+08:00', '1.0000', '2026-12-07T00:00:00+08:00')
>>> tariff_api(None, datetime(2026, 12, 6, tzinfo=UTC)) is None
True
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.errors import BadRequest
from services.prices.tariff import CHINA_TZ, Tariff

__all__ = ["CONNECTOR_TARIFF_COLUMNS", "CONNECTOR_TARIFF_JOINS", "CURRENCY", "MAX_KWH", "STATION_TARIFF_COLUMNS",
           "STATION_TARIFF_JOINS", "KnownTariff", "StationPrices", "add_prices", "estimate_api", "iso", "next_change",
           "parse_kwh", "pop_connector_tariff", "pop_station_tariff", "tariff_api"]

CURRENCY = "CNY"
#: the largest ``kwh`` an estimate is made for (a bus battery is about 400 kWh)
MAX_KWH = Decimal(500)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in China time, to the second.

    >>> from datetime import UTC
    >>> iso(datetime(2026, 12, 6, 1, 2, 3, 456, tzinfo=UTC)), iso(None)
    ('2026-12-06T09:02:03+08:00', None)
    """
    return None if moment is None else moment.astimezone(CHINA_TZ).replace(microsecond=0).isoformat()


@dataclass(frozen=True, slots=True)
class KnownTariff:
    """A tariff with where it came from (``policy``, ``fee_text``, or ``mixed`` for a station whose
    connectors differ in source), when the version in force took effect (``updated_at``) and when it
    was last confirmed (``checked_at``); ``varies``: a station whose connectors' tariffs differ (its
    periods are then the cheapest per moment)."""

    tariff: Tariff
    source: str
    updated_at: datetime
    checked_at: datetime | None
    varies: bool = False

    def to_api(self, now: datetime, memo: dict[Any, Any] | None = None) -> dict[str, Any]:
        """The ``tariff`` object at ``now``; ``memo`` shares the periods and price now of one tariff
        between the connectors that have it (a depot's hundred connectors have a handful)."""
        parts = memo.get(self.tariff) if memo is not None else None
        if parts is None:
            parts = (self.tariff.api_periods(), self.tariff.now(now))
            if memo is not None:
                memo[self.tariff] = parts
        return {"source": self.source, "currency": CURRENCY, "varies": self.varies,
                "updated_at": iso(self.updated_at), "checked_at": iso(self.checked_at),
                "periods": parts[0], "now": parts[1]}


def tariff_api(known: KnownTariff | None, now: datetime, memo: dict[Any, Any] | None = None) -> dict[str, Any] | None:
    """The ``tariff`` object, or ``None`` when nothing is known."""
    return None if known is None else known.to_api(now, memo)


def estimate_api(tariff: Tariff | None, kwh: Decimal, power_kw: Any, start: datetime) -> dict[str, Any] | None:
    """The ``estimate`` of ``kwh`` charged at ``power_kw`` from ``start`` (``None`` without a tariff or
    a power).

    >>> t = Tariff.flat("1", "0.5")
    >>> e = estimate_api(t, Decimal(30), 60.0, datetime(2026, 12, 6, 9, 0, tzinfo=CHINA_TZ))
    >>> e["yuan"], e["minutes"], e["end"]
    ('45.00', 30, '2026-12-06T09:30:00+08:00')
    >>> estimate_api(t, Decimal(30), 0, datetime(2026, 12, 6, tzinfo=CHINA_TZ)) is None
    True
    """
    if tariff is None or power_kw is None:
        return None
    power = Decimal(str(power_kw))
    if not power.is_finite() or power <= 0:
        return None
    return tariff.estimate(kwh, power, start).to_api()


def parse_kwh(value: str | None) -> Decimal | None:
    """The ``kwh`` query parameter: a number with 0 < kwh <= 500; anything else is a 400 naming it.

    >>> parse_kwh("30"), parse_kwh(None), parse_kwh("")
    (Decimal('30'), None, None)
    >>> parse_kwh("0")
    Traceback (most recent call last):
    ...
    services.errors.BadRequest: parameter 'kwh' must be a number greater than 0 and at most 500 (kWh), got '0'
    """
    if value is None or not value.strip():
        return None
    text_value = value.strip()
    try:
        kwh = Decimal(text_value) if len(text_value) <= 20 else None
    except (InvalidOperation, ValueError):
        kwh = None
    if kwh is None or not kwh.is_finite() or not 0 < kwh <= MAX_KWH:
        raise BadRequest(f"parameter 'kwh' must be a number greater than 0 and at most {MAX_KWH} (kWh), "
                         f"got {text_value[:40]!r}", param="kwh")
    return kwh


# --- a station's prices, read with the station and its connectors --------------------------------
# Column lists and joins to add to the statements that read a station (alias ``s``) and its
# connectors (alias ``c``), so the detail costs no extra round trip; the ``pop_*`` functions take
# those columns back out of a row. A connector's version is its current one (as
# ``services.prices.store.connector_tariffs`` reads it); tariffs come with their digest so each
# distinct day of prices is parsed once per process.
STATION_TARIFF_COLUMNS = ("st.source AS st_source, st.varies AS st_varies, st.updated_at AS st_updated_at, "
                          "ts.digest AS st_digest, ts.periods AS st_periods")
STATION_TARIFF_JOINS = ("LEFT JOIN station_tariffs st ON st.station_pk = s.id "
                        "LEFT JOIN tariffs ts ON ts.id = st.tariff_id")
CONNECTOR_TARIFF_COLUMNS = ("ct.source AS ct_source, ct.first_seen_at AS ct_first_seen_at, "
                            "ct.last_seen_at AS ct_last_seen_at, tc.digest AS ct_digest, tc.periods AS ct_periods")
CONNECTOR_TARIFF_JOINS = ("LEFT JOIN connector_tariffs ct ON ct.operator_id = c.operator_id "
                          "AND ct.connector_id = c.connector_id AND ct.valid_to IS NULL "
                          "LEFT JOIN tariffs tc ON tc.id = ct.tariff_id")

_TARIFFS: dict[str, Tariff] = {}  # by digest: a tariffs row never changes (content-addressed)
_TARIFFS_LOCK = threading.Lock()


def _tariff(digest: str, periods: Any) -> Tariff:
    t = _TARIFFS.get(digest)
    if t is None:
        t = Tariff.from_json(periods)
        with _TARIFFS_LOCK:
            if len(_TARIFFS) > 4096:
                _TARIFFS.clear()
            _TARIFFS[digest] = t
    return t


def _pop(row: dict[str, Any], prefix: str, names: tuple[str, ...]) -> list[Any]:
    return [row.pop(prefix + n, None) for n in names]


def pop_connector_tariff(row: dict[str, Any]) -> KnownTariff | None:
    """The connector's tariff from a row read with CONNECTOR_TARIFF_COLUMNS (removed from ``row``):
    updated when the version was first seen, checked when it was last seen."""
    source, first, last, digest, periods = _pop(row, "ct_", ("source", "first_seen_at", "last_seen_at", "digest",
                                                             "periods"))
    return None if digest is None else KnownTariff(_tariff(digest, periods), source, first, last)


def pop_station_tariff(row: dict[str, Any]) -> tuple[Tariff, str, datetime, bool] | None:
    """(tariff, source, updated_at, varies) from a station row read with STATION_TARIFF_COLUMNS
    (removed from ``row``)."""
    source, varies, updated, digest, periods = _pop(row, "st_", ("source", "varies", "updated_at", "digest",
                                                                 "periods"))
    return None if digest is None else (_tariff(digest, periods), source or "policy", updated, bool(varies))


@dataclass(frozen=True, slots=True)
class StationPrices:
    """What is known of a station's prices: its cheapest-per-moment tariff and each connector's."""

    station: KnownTariff | None
    connectors: Mapping[str, KnownTariff] = field(default_factory=dict)

    @classmethod
    def of(cls, station: tuple[Tariff, str, datetime, bool] | None,
           connectors: Mapping[str, KnownTariff]) -> StationPrices:
        """The station's tariff is checked when its connectors last were."""
        if station is None:
            return cls(None, connectors)
        checked = max((k.checked_at for k in connectors.values() if k.checked_at is not None), default=None)
        tariff, source, updated, varies = station
        return cls(KnownTariff(tariff, source, updated, checked, varies), connectors)


def _cheapest(estimates: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, Any] | None:
    """The cheapest connector's estimate (then the quickest, then the lowest id), naming it."""
    best = min(estimates, key=lambda ce: (Decimal(ce[1]["yuan"]), ce[1]["minutes"], ce[0]), default=None)
    return None if best is None else {"connector_id": best[0], **best[1]}


def add_prices(item: dict[str, Any], prices: StationPrices, now: datetime, kwh: Decimal | None = None) -> None:
    """Put ``tariff`` on a station detail (``item``, as ``services.search.catalog.station_detail``
    builds it; its ``price_now`` then follows the tariff at ``now`` exactly) and on each of its
    connectors; with ``kwh``, also ``estimate`` on each connector (at its power) and on the station (the cheapest connector's, with ``connector_id``), started at
    the minute of ``now`` (so an answer holds for that minute: ETags and caches can match)."""
    start = now.replace(second=0, microsecond=0)
    memo: dict[Any, Any] = {}  # per tariff: periods and price now; per (tariff, power): the estimate
    item["tariff"] = tariff_api(prices.station, now, memo)
    item["price_now"] = item["tariff"]["now"]["total"] if item["tariff"] else None
    estimates: list[tuple[str, dict[str, Any]]] = []
    for equipment in item.get("equipment", ()):
        for c in equipment.get("connectors", ()):
            known = prices.connectors.get(c["connector_id"])
            c["tariff"] = tariff_api(known, now, memo)
            if kwh is not None:
                key = (known.tariff if known else None, c.get("power_kw"))
                if key not in memo:
                    memo[key] = estimate_api(key[0], kwh, key[1], start)
                c["estimate"] = memo[key]
                if c["estimate"] is not None:
                    estimates.append((c["connector_id"], c["estimate"]))
    if kwh is not None:
        item["estimate"] = _cheapest(estimates)


def next_change(item: Mapping[str, Any]) -> datetime | None:
    """When the earliest price shown in a station detail changes (its own or a connector's ``until``)."""
    tariffs: list[Any] = [item.get("tariff")]
    tariffs += [c.get("tariff") for e in item.get("equipment", ()) for c in e.get("connectors", ())]
    untils = [datetime.fromisoformat(t["now"]["until"]) for t in tariffs if t]
    return min(untils, default=None)


"""From our tables to OCPI 2.2.1 objects: pure functions, no database (the README's "OCPI" section
has the same mapping as a table).

* station → Location (``id`` = the open API's station id, ``country_code`` CN, ``party_id`` of its
  operator, WGS84 coordinates with 7 decimals, address cut to OCPI's 45 characters, time zone
  Asia/Shanghai, opening times read from BusineHours, parking type and facilities from the park
  information and Construction, the operator's name);
* pile (equipment) → EVSE (``uid`` = EquipmentID, ``evse_id`` = ``CN*<party>*E<EquipmentID>`` in
  the eMI3 form when the EquipmentID allows it, status from its connectors' live status);
* connector → Connector (GB/T standards, socket or cable from ConnectorType, power type, voltage,
  current and power, the current tariff's id);
* tariff → Tariff (one element per period of the day, each with one ENERGY component per kWh of
  electricity + service, the split in ``tariff_alt_text``).

>>> connector_state(3, None, None)[0], evse_status(["CHARGING", "AVAILABLE"], 50), evse_status(["AVAILABLE"], 6)
('CHARGING', 'AVAILABLE', 'INOPERATIVE')
>>> opening_times("周一至周五 08:00-20:00").regular_hours[0]
RegularHours(weekday=1, period_begin='08:00', period_end='20:00')
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.ocpi.models import (EVSE, BusinessDetails, Connector, DisplayText, GeoLocation, Hours, Location,
                                  PriceComponent, RegularHours, Tariff, TariffElement, TariffRestrictions,
                                  ocpi_datetime)
from services.prices.tariff import Tariff as DayTariff

__all__ = ["CONNECTOR_STANDARDS", "CONNECTOR_STATUS", "COUNTRY", "COUNTRY_CODE", "CURRENCY", "FACILITIES",
           "PARKING_TYPES", "TIME_ZONE", "connector", "connector_state", "evse", "evse_id", "evse_status",
           "geo_location", "location", "ocpi_id", "opening_times", "parking_type", "tariff", "tariff_alt_text",
           "tariff_elements"]

COUNTRY_CODE = "CN"  # ISO 3166-1 alpha-2, of the party
COUNTRY = "CHN"  # ISO 3166-1 alpha-3, of the Location
TIME_ZONE = "Asia/Shanghai"
CURRENCY = "CNY"
ADDRESS_MAX = 45  # OCPI string(45)
_TEXT_MAX = 512  # DisplayText.text string(512)


def ocpi_id(value: Any, fallback: str, max_len: int = 36) -> str:
    """An identifier as OCPI's CiString needs it (printable ASCII without spaces, at most ``max_len``):
    ``value`` itself when it is one, else ``fallback`` (our own row id, equally stable).

    >>> ocpi_id("EQ0001", "e7"), ocpi_id("桩01", "e7"), ocpi_id(None, "e7")
    ('EQ0001', 'e7', 'e7')
    """
    text = "" if value is None else str(value)
    if 0 < len(text) <= max_len and all("!" <= ch <= "~" for ch in text):
        return text
    return fallback


def geo_location(lng: float, lat: float) -> GeoLocation:
    """WGS84 as OCPI strings with 7 decimals (about 1 cm).

    >>> geo_location(113.55, 22.27)
    GeoLocation(latitude='22.2700000', longitude='113.5500000')
    """
    return GeoLocation(latitude=f"{lat:.7f}", longitude=f"{lng:.7f}")


# --- status -------------------------------------------------------------------------------------
#: T/CEC 102 ConnectorStatus → OCPI EVSE Status (0 offline: OCPI's UNKNOWN "also used when offline")
CONNECTOR_STATUS: dict[int, str] = {0: "UNKNOWN", 1: "AVAILABLE", 2: "BLOCKED", 3: "CHARGING", 4: "RESERVED",
                                    255: "OUTOFORDER"}
#: StationStatus values in which nothing there can be used: 1 under construction, 5 closed, 6 maintenance
_STATION_NOT_IN_USE = frozenset({1, 5, 6})
#: a pile shows the most usable of its connectors' states (a free connector makes the pile free)
_EVSE_PRECEDENCE = ("AVAILABLE", "CHARGING", "BLOCKED", "RESERVED", "UNKNOWN", "OUTOFORDER")


def connector_state(status: int | None, status_since: datetime | None, reported_at: datetime | None, *,
                    now: datetime | None = None, stale_after: timedelta | None = None) -> tuple[str, datetime | None]:
    """One connector's OCPI status and since when it holds: the one place live status becomes OCPI.

    ``status`` is T/CEC's ConnectorStatus (``None``: never reported → UNKNOWN); ``status_since`` when
    it took that value, ``reported_at`` when the operator last reported it. With ``stale_after``
    (issue 16's freshness: a connector silent for longer is not known), a report older than that at
    ``now`` is UNKNOWN since ``reported_at + stale_after``.

    >>> from datetime import UTC
    >>> t0 = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)
    >>> connector_state(1, t0, t0)
    ('AVAILABLE', datetime.datetime(2026, 12, 6, 8, 0, tzinfo=datetime.timezone.utc))
    >>> connector_state(255, t0, t0)[0], connector_state(0, t0, t0)[0], connector_state(None, None, None)
    ('OUTOFORDER', 'UNKNOWN', ('UNKNOWN', None))
    >>> connector_state(1, t0, t0, now=t0 + timedelta(minutes=45), stale_after=timedelta(minutes=30))[0]
    'UNKNOWN'
    """
    if status is None:
        return "UNKNOWN", None
    if stale_after is not None and reported_at is not None and now is not None and now - reported_at > stale_after:
        return "UNKNOWN", reported_at + stale_after
    return CONNECTOR_STATUS.get(int(status), "UNKNOWN"), status_since


def evse_status(connector_states: Iterable[str], station_status: int | None) -> str:
    """A pile's status from its connectors': INOPERATIVE when the station is under construction,
    closed or under maintenance; otherwise the first of AVAILABLE, CHARGING, BLOCKED, RESERVED,
    UNKNOWN, OUTOFORDER that one of its connectors has (a pile is out of order only when every
    connector is).

    >>> evse_status(["OUTOFORDER", "UNKNOWN"], 50), evse_status(["OUTOFORDER"], 0), evse_status([], 50)
    ('UNKNOWN', 'OUTOFORDER', 'UNKNOWN')
    >>> evse_status(["BLOCKED", "RESERVED"], 50), evse_status(["AVAILABLE"], 5)
    ('BLOCKED', 'INOPERATIVE')
    """
    if station_status in _STATION_NOT_IN_USE:
        return "INOPERATIVE"
    states = set(connector_states)
    return next((s for s in _EVSE_PRECEDENCE if s in states), "UNKNOWN")


# --- connectors ---------------------------------------------------------------------------------
#: T/CEC ConnectorType → (OCPI ConnectorType, ConnectorFormat). 5 (wireless) and 6 (other) have no
#: OCPI 2.2.1 ConnectorType and are not published.
CONNECTOR_STANDARDS: dict[int, tuple[str, str]] = {
    1: ("DOMESTIC_I", "SOCKET"),  # household socket, mode 2: China's 3-pin plug (type I, GB 2099)
    2: ("GBT_AC", "SOCKET"),  # AC socket, mode 3, connection B: bring your own cable
    3: ("GBT_AC", "CABLE"),  # AC plug with cable, mode 3, connection C
    4: ("GBT_DC", "CABLE"),  # DC plug with cable, mode 4
}
_DEFAULT_VOLTAGE = {"DC": 750, "AC_1_PHASE": 220, "AC_3_PHASE": 220}  # GB/T 20234: DC up to 750 V; 220/380 V mains
_THREE_PHASE_LINE_V = 300  # a rated voltage from this up is line-to-line (380 V) three-phase
_SINGLE_PHASE_MAX_KW = 8.0  # China's single-phase AC tops out at 7 kW (220 V × 32 A)


def _power_type(standard: str, voltage: float | None, power_kw: float | None) -> str:
    if standard == "GBT_DC":
        return "DC"
    if standard == "DOMESTIC_I":
        return "AC_1_PHASE"
    if voltage:
        return "AC_3_PHASE" if voltage >= _THREE_PHASE_LINE_V else "AC_1_PHASE"
    return "AC_3_PHASE" if (power_kw or 0) > _SINGLE_PHASE_MAX_KW else "AC_1_PHASE"


def _electrics(power_type: str, voltage: float | None, current: float | None, power_kw: float | None) -> tuple[int, int]:
    """(max_voltage, max_amperage): the feed's rated values; line to neutral for three-phase AC (OCPI);
    a missing value from the others (P = U·I, three phases: P = 3·U·I) or the national default."""
    volts = float(voltage) if voltage and voltage > 0 else None
    if power_type == "AC_3_PHASE" and volts is not None and volts >= _THREE_PHASE_LINE_V:
        volts = volts / math.sqrt(3)
    if volts is None:
        volts = _DEFAULT_VOLTAGE[power_type]
    amps = float(current) if current and current > 0 else None
    if amps is None:
        watts = float(power_kw or 0) * 1000
        amps = watts / volts / (3 if power_type == "AC_3_PHASE" else 1) if watts > 0 else 0
    return int(round(volts)), max(1, int(round(amps)))


def connector(row: Mapping[str, Any]) -> Connector | None:
    """A Connector from a row of ``connectors`` (with ``tariff_id`` and ``last_updated``); ``None`` for
    a type OCPI cannot name.

    >>> from datetime import UTC
    >>> t = datetime(2026, 12, 6, tzinfo=UTC)
    >>> c = connector({"connector_pk": 9, "connector_id": "C1", "connector_type": 3, "voltage_upper_limits": 380,
    ...                "current": 63, "power_kw": 40.0, "tariff_id": 17, "last_updated": t})
    >>> c.standard, c.format, c.power_type, c.max_voltage, c.max_amperage, c.max_electric_power, c.tariff_ids
    ('GBT_AC', 'CABLE', 'AC_3_PHASE', 219, 63, 40000, ['17'])
    >>> connector({"connector_pk": 9, "connector_id": "C1", "connector_type": 5, "power_kw": 11}) is None
    True
    """
    kind = CONNECTOR_STANDARDS.get(row.get("connector_type"))  # type: ignore[arg-type]
    if kind is None:
        return None
    standard, fmt = kind
    power_kw = float(row["power_kw"]) if row.get("power_kw") is not None else None
    ptype = _power_type(standard, row.get("voltage_upper_limits"), power_kw)
    volts, amps = _electrics(ptype, row.get("voltage_upper_limits"), row.get("current"), power_kw)
    tariff_id = row.get("tariff_id")
    return Connector(id=ocpi_id(row.get("connector_id"), f"c{row['connector_pk']}"), standard=standard, format=fmt,
                     power_type=ptype, max_voltage=volts, max_amperage=amps,
                     max_electric_power=int(round(power_kw * 1000)) if power_kw and power_kw > 0 else None,
                     tariff_ids=[str(tariff_id)] if tariff_id is not None else [],
                     last_updated=ocpi_datetime(row["last_updated"]))


_EMI3_OUTLET = re.compile(r"[A-Za-z0-9]{1,31}")


def evse_id(party_id: str, equipment_id: str | None) -> str | None:
    """The eMI3 / ISO 15118 EVSE ID ``CN*<party>*E<EquipmentID>`` (the power outlet part: 1 to 31
    letters or digits), or ``None`` when the EquipmentID is not of that form (``evse_id`` is optional).

    >>> evse_id("001", "3201000012ab"), evse_id("001", "桩-1")
    ('CN*001*E3201000012AB', None)
    """
    if not equipment_id or not _EMI3_OUTLET.fullmatch(equipment_id):
        return None
    return f"{COUNTRY_CODE}*{party_id}*E{equipment_id.upper()}"


def evse(pile: Mapping[str, Any], party_id: str, station_status: int | None, *, now: datetime | None = None,
         stale_after: timedelta | None = None) -> EVSE | None:
    """An EVSE from a pile (``equipment`` row with ``connectors``: rows with their live status); ``None``
    when none of its connectors can be published (OCPI: an EVSE has at least one connector).
    ``last_updated`` is the latest of the pile's, its connectors', their status changes and
    ``info_changed_at`` (the station's status feeds the EVSE's)."""
    connectors: list[Connector] = []
    states: list[str] = []
    moments: list[datetime] = [m for m in (pile.get("updated_at"), pile.get("info_changed_at")) if m is not None]
    for row in pile.get("connectors", ()):
        c = connector(row)
        if c is None:
            continue
        connectors.append(c)
        state, since = connector_state(row.get("status"), row.get("status_since"), row.get("reported_at"), now=now,
                                       stale_after=stale_after)
        states.append(state)
        moments += [m for m in (row.get("last_updated"), since) if m is not None]
    if not connectors:
        return None
    lng, lat = pile.get("lng"), pile.get("lat")
    return EVSE(uid=ocpi_id(pile.get("equipment_id"), f"e{pile['equipment_pk']}"),
                evse_id=evse_id(party_id, pile.get("equipment_id")), status=evse_status(states, station_status),
                connectors=connectors, coordinates=geo_location(lng, lat) if lng is not None and lat is not None else None,
                last_updated=ocpi_datetime(max(moments)))


# --- opening times ------------------------------------------------------------------------------
_DAY_CHARS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "日": 7, "天": 7,
              "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7}
_TIME = r"([01]?\d|2[0-4]):([0-5]\d)"
_DAY = r"(?:周|星期|礼拜)([一二三四五六日天1-7])"
_TOKENS = re.compile(
    rf"(?P<always>7\*24|7x24|24/7|24小时|24h|全天候|全天|全年无休|不打烊)"
    rf"|(?P<range>{_TIME}-{_TIME})"
    rf"|(?P<dayrange>{_DAY}-{_DAY})"
    rf"|(?P<day>{_DAY})"
    rf"|(?P<every>每天|每日|天天|全年|全周)"
    rf"|(?P<workdays>工作日)"
    rf"|(?P<weekend>周末|双休日)")
_FILLER = re.compile(r"[\s,;、/|()\[\]:：.。开放营业时间对外服务充电小时均为及和与]+")
_ALL_DAYS = frozenset(range(1, 8))
DAY_MINUTES = 1440


def _normalise(text: str) -> str:
    out = text.strip().lower()
    for a, b in (("：", ":"), ("，", ","), ("；", ";"), ("（", "("), ("）", ")"), ("～", "-"), ("~", "-"),
                 ("—", "-"), ("–", "-"), ("－", "-"), ("至", "-"), ("到", "-"), ("×", "x"), (" - ", "-")):
        out = out.replace(a, b)
    return re.sub(r"\s*-\s*", "-", out)


def _day_span(a: int, b: int) -> set[int]:
    return set(range(a, b + 1)) if a <= b else set(range(a, 8)) | set(range(1, b + 1))


def _hhmm(minutes: int) -> str:
    """``"HH:MM"`` for a minute of the day; the end of the day is ``"23:59"`` (OCPI's regex has no 24:00)."""
    minutes = min(minutes, DAY_MINUTES - 1)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def opening_times(text: str | None) -> Hours | None:
    """OCPI opening times from the free-text BusineHours, or ``None`` when it cannot be read for sure
    (nothing is guessed: a word we do not understand, such as a holiday rule, leaves them out).

    Read: ``00:00-24:00``, ``24小时``/``全天``/``7*24`` (open all the time), ranges ``08:00-20:00``
    (several per day; past midnight continues on the next day), weekday prefixes ``周一至周五``,
    ``星期六、星期日``, ``工作日``, ``周末``, ``每天``. A day not named is closed.

    >>> opening_times("00:00-24:00"), opening_times("7×24小时").twentyfourseven
    (Hours(twentyfourseven=True, regular_hours=[]), True)
    >>> [(r.weekday, r.period_begin, r.period_end) for r in opening_times("22:00-06:00").regular_hours][:3]
    [(1, '00:00', '06:00'), (1, '22:00', '23:59'), (2, '00:00', '06:00')]
    >>> h = opening_times("周一至周五 08:00-12:00,14:00-18:00；周六 09:00-12:00")
    >>> [(r.weekday, r.period_begin, r.period_end) for r in h.regular_hours][-3:]
    [(5, '08:00', '12:00'), (5, '14:00', '18:00'), (6, '09:00', '12:00')]
    >>> opening_times("08:00-20:00，节假日休息"), opening_times(""), opening_times("周一")
    (None, None, None)
    """
    if not text or not text.strip():
        return None
    norm = _normalise(text)
    if _FILLER.sub("", _TOKENS.sub("", norm)):
        return None  # something we cannot read
    week: dict[int, list[tuple[int, int]]] = {d: [] for d in _ALL_DAYS}
    days: set[int] = set(_ALL_DAYS)
    pending: set[int] = set()
    dangling = False
    for m in _TOKENS.finditer(norm):
        kind = m.lastgroup
        if kind in ("day", "dayrange", "every", "workdays", "weekend"):
            if kind == "day":
                chosen = {_DAY_CHARS[m.group(m.re.groupindex["day"] + 1)]}
            elif kind == "dayrange":
                i = m.re.groupindex["dayrange"]
                chosen = _day_span(_DAY_CHARS[m.group(i + 1)], _DAY_CHARS[m.group(i + 2)])
            else:
                chosen = {"every": set(_ALL_DAYS), "workdays": {1, 2, 3, 4, 5}, "weekend": {6, 7}}[kind]
            pending |= chosen
            dangling = True
            continue
        if pending:
            days, pending = pending, set()
        dangling = False
        if kind == "always":
            spans = [(0, DAY_MINUTES)]
        else:
            i = m.re.groupindex["range"]
            h1, m1, h2, m2 = (int(m.group(i + k)) for k in (1, 2, 3, 4))
            begin, end = h1 * 60 + m1, h2 * 60 + m2
            if begin >= DAY_MINUTES or end > DAY_MINUTES:
                return None
            if end == begin:
                if begin != 0:
                    return None
                end = DAY_MINUTES  # 00:00-00:00: the whole day
            spans = [(begin, end)] if begin < end else [(begin, DAY_MINUTES), (0, end)]
        for d in days:
            week[d].append(spans[0])
            if len(spans) == 2 and spans[1][1] > 0:
                week[d % 7 + 1].append(spans[1])
    if dangling:
        return None  # a weekday without hours after it
    merged = {d: _merge(spans) for d, spans in week.items()}
    if all(spans == [(0, DAY_MINUTES)] for spans in merged.values()):
        return Hours(twentyfourseven=True)
    regular = [RegularHours(weekday=d, period_begin=_hhmm(b), period_end=_hhmm(e))
               for d in sorted(merged) for b, e in merged[d] if e > b]
    return Hours(twentyfourseven=False, regular_hours=regular) if regular else None


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for b, e in sorted(spans):
        if out and b <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((b, e))
    return out


# --- facilities and parking ---------------------------------------------------------------------
#: Construction (T/CEC 102 场所类型) → OCPI Facility; the others name no facility a driver can use
FACILITIES: dict[int, tuple[str, ...]] = {
    7: ("SPORT",),  # 大型文体设施: stadiums, gyms, culture venues
    8: ("RECREATION_AREA",),  # 城市绿地: parks
    11: ("FUEL_STATION", "RESTAURANT"),  # 城际高速服务区: every expressway service area has both
}
#: Construction → OCPI ParkingType, used when the park information says nothing clearer
PARKING_TYPES: dict[int, str] = {
    8: "PARKING_LOT",  # 城市绿地
    9: "PARKING_GARAGE",  # 大型建筑配建停车场
    10: "ON_STREET",  # 路边停车位
    11: "ALONG_MOTORWAY",  # 城际高速服务区
}
_PARK_WORDS: tuple[tuple[str, str], ...] = (("地下", "UNDERGROUND_GARAGE"), ("立体", "PARKING_GARAGE"),
                                            ("停车楼", "PARKING_GARAGE"), ("路边", "ON_STREET"),
                                            ("路侧", "ON_STREET"), ("露天", "PARKING_LOT"), ("地面", "PARKING_LOT"))


def parking_type(construction: int | None, park_info: str | None) -> str | None:
    """The ParkingType: from words in the park information first (地下 underground, 立体/停车楼
    multistorey, 路边/路侧 on street, 露天/地面 open-air lot), then from Construction.

    >>> parking_type(1, "地下停车场负一层"), parking_type(10, None), parking_type(1, None)
    ('UNDERGROUND_GARAGE', 'ON_STREET', None)
    """
    for word, kind in _PARK_WORDS:
        if park_info and word in park_info:
            return kind
    return PARKING_TYPES.get(construction) if construction is not None else None


# --- locations ----------------------------------------------------------------------------------
def location(station: Mapping[str, Any], piles: Sequence[Mapping[str, Any]], party_id: str, city: str, *,
             now: datetime | None = None, stale_after: timedelta | None = None) -> Location:
    """A Location from a station row (``id``, ``name``, ``address``, ``district_name``, ``lng``,
    ``lat``, ``construction``, ``park_info``, ``busine_hours``, ``site_guide``, ``station_status``,
    ``operator_name``, ``last_updated``) and its piles (see :func:`evse`)."""
    evses = [e for e in (evse(p, party_id, station.get("station_status"), now=now, stale_after=stale_after)
                         for p in piles) if e is not None]
    address = (station.get("address") or "").strip() or station.get("district_name") or city
    guide = (station.get("site_guide") or "").strip()
    last = max([ocpi_datetime(station["last_updated"]), *(e.last_updated for e in evses)])  # same format: sortable
    operator_name = (station.get("operator_name") or "").strip()
    return Location(
        country_code=COUNTRY_CODE, party_id=party_id, id=str(station["id"]), publish=True,
        name=station.get("name") or None, address=address[:ADDRESS_MAX], city=city, country=COUNTRY,
        coordinates=geo_location(station["lng"], station["lat"]),
        parking_type=parking_type(station.get("construction"), station.get("park_info")),
        evses=evses, directions=[DisplayText(language="zh", text=guide[:_TEXT_MAX])] if guide else [],
        operator=BusinessDetails(name=operator_name[:100]) if operator_name else None,
        facilities=list(FACILITIES.get(station.get("construction") or 0, ())), time_zone=TIME_ZONE,
        opening_times=opening_times(station.get("busine_hours")), last_updated=last)


# --- tariffs ------------------------------------------------------------------------------------
def _minute_periods(t: DayTariff) -> list[tuple[int, Any]]:
    """(start minute, period) of the compacted day; a start within a minute is taken at that minute
    (OCPI's times are HH:MM), the later period winning when two fall in one minute."""
    by_minute: dict[int, Any] = {}
    for p in t.compact().periods:
        by_minute[p.start // 60] = p
    return sorted(by_minute.items(), key=lambda kv: kv[0])


def tariff_elements(t: DayTariff) -> list[TariffElement]:
    """One TariffElement per period of the day, each with one ENERGY price component: electricity +
    service per kWh (what the driver pays, VAT included, so no ``vat``), billed per Wh
    (``step_size`` 1); ``restrictions`` ``start_time``/``end_time`` in local time, the last period
    ending at ``00:00`` (OCPI: the end of the day). A one-price day has one element and no restriction.

    >>> from services.prices.tariff import read_policy
    >>> t = read_policy({"PolicyInfos": [{"StartTime": "000000", "ElecPrice": 0.3, "SevicePrice": 0.6},
    ...                                  {"StartTime": "080000", "ElecPrice": 0.65, "SevicePrice": 0.6}]}).tariff
    >>> [(e.restrictions.start_time, e.restrictions.end_time, str(e.price_components[0].price))
    ...  for e in tariff_elements(t)]
    [('00:00', '08:00', '0.9000'), ('08:00', '00:00', '1.2500')]
    >>> tariff_elements(DayTariff.flat("0.6", "0.4"))[0].restrictions is None
    True
    """
    periods = _minute_periods(t)
    out: list[TariffElement] = []
    for i, (start, p) in enumerate(periods):
        component = PriceComponent(type="ENERGY", price=Decimal(p.total), step_size=1)
        if len(periods) == 1:
            out.append(TariffElement(price_components=[component]))
            continue
        end = periods[i + 1][0] if i + 1 < len(periods) else 0
        out.append(TariffElement(price_components=[component],
                                 restrictions=TariffRestrictions(start_time=_hhmm(start), end_time=_hhmm(end))))
    return out


def _fit(parts: list[str], head: str, sep: str) -> str:
    text = head + sep.join(parts)
    while len(text) > _TEXT_MAX and parts:
        parts = parts[:-1]
        text = head + sep.join(parts) + sep + "…"
    return text


def tariff_alt_text(t: DayTariff) -> list[DisplayText]:
    """The split OCPI's one ENERGY price hides, in Chinese and English: each period's electricity and
    service fee per kWh and their sum.

    >>> [d.text for d in tariff_alt_text(DayTariff.flat("0.6", "0.4"))]
    ['每度（元/kWh）电费+服务费：00:00-24:00 0.6000+0.4000=1.0000', 'Per kWh (yuan), electricity + service fee: 00:00-24:00 0.6000 + 0.4000 = 1.0000']
    """
    periods = t.api_periods()
    zh = [f"{p['start']}-{p['end']} {p['electricity']}+{p['service']}={p['total']}" for p in periods]
    en = [f"{p['start']}-{p['end']} {p['electricity']} + {p['service']} = {p['total']}" for p in periods]
    return [DisplayText(language="zh", text=_fit(zh, "每度（元/kWh）电费+服务费：", "；")),
            DisplayText(language="en", text=_fit(en, "Per kWh (yuan), electricity + service fee: ", "; "))]


def tariff(tariff_id: int, party_id: str, t: DayTariff, last_updated: datetime) -> Tariff:
    """The OCPI Tariff of one of our tariffs rows as published by one party (operator)."""
    return Tariff(country_code=COUNTRY_CODE, party_id=party_id, id=str(tariff_id), currency=CURRENCY,
                  tariff_alt_text=tariff_alt_text(t), elements=tariff_elements(t),
                  last_updated=ocpi_datetime(last_updated))

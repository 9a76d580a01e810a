"""A seeded, plausible Zhuhai charging city for the operator simulator.

Pure and deterministic: ``generate_city(seed)`` uses only ``random.Random(seed)`` (and
string-seeded ``random.Random`` for per-object values), so the same seed always gives the
same operators, stations, equipment, connectors, secrets and initial statuses.

Why one file of about 600 lines: the generator is one seeded sequence of random draws; splitting it
would make the order of draws (and so every seeded city the tests rely on) depend on import order.

Positions are GCJ-02, as T/CEC 102 requires, drawn from Gaussian clusters around real Zhuhai
centres and kept only when they fall on land inside the district polygons (which are GCJ-02).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from shapely.geometry import Point, shape
from shapely.prepared import prep

__all__ = [
    "SimConnector",
    "SimEquipment",
    "SimStation",
    "SimOperator",
    "generate_city",
    "org_code",
    "district_polygons",
    "CITY_EPOCH",
    "CHINA_TZ",
    "now_china",
]

#: China time (UTC+8), the clock of every T/CEC 102 time field.
CHINA_TZ = timezone(timedelta(hours=8), "CST")
#: Initial "last changed" times are spread over the half year before this instant.
CITY_EPOCH = datetime(2024, 1, 1, 0, 0, 0, tzinfo=CHINA_TZ)


def now_china() -> datetime:
    """Current China time at second resolution (the resolution of ``LastQueryTime``)."""
    return datetime.now(CHINA_TZ).replace(microsecond=0)

_REPO_ROOT = Path(__file__).resolve().parents[2]
_DISTRICT_FILES = (
    _REPO_ROOT / "geo" / "data" / "zhuhai-districts-gcj02.geojson",
    Path("/work/shared/data/zhuhai-districts-gcj02.geojson"),
)

# GB 11714 organisation code: 8 body characters + 1 check character.
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
# Characters of the unified social credit code (no I, O, S, V, Z).
_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_SECRET_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _org_value(ch: str) -> int:
    return int(ch) if ch.isdigit() else ord(ch) - ord("A") + 10


def org_code(body: str) -> str:
    """Append the GB 11714 check character to an 8-character body.

    >>> org_code("MA5ZHCIT")[:8]
    'MA5ZHCIT'
    >>> len(org_code("12345678"))
    9
    """
    if len(body) != 8:
        raise ValueError("organisation code body must be 8 characters")
    c = 11 - sum(w * _org_value(ch) for w, ch in zip(_ORG_WEIGHTS, body)) % 11
    check = "X" if c == 10 else "0" if c == 11 else str(c)
    return body + check


def _new_org_code(rng: random.Random) -> str:
    return org_code("MA" + "".join(rng.choice(_USCC_CHARS) for _ in range(6)))


def _secret(rng: random.Random) -> str:
    return "".join(rng.choice(_SECRET_CHARS) for _ in range(16))


# --------------------------------------------------------------------------- objects


@dataclass
class SimConnector:
    connector_id: str
    name: str
    connector_type: int
    voltage_upper: int
    voltage_lower: int
    current: int
    power: float
    park_no: str
    national_standard: int
    status: int = 1
    park_status: int = 10
    lock_status: int = 0
    changed_at: datetime = CITY_EPOCH

    def info(self) -> dict[str, Any]:
        return {
            "ConnectorID": self.connector_id,
            "ConnectorName": self.name,
            "ConnectorType": self.connector_type,
            "VoltageUpperLimits": self.voltage_upper,
            "VoltageLowerLimits": self.voltage_lower,
            "Current": self.current,
            "Power": self.power,
            "ParkNo": self.park_no,
            "NationalStandard": self.national_standard,
        }

    def status_info(self) -> dict[str, Any]:
        return {
            "ConnectorID": self.connector_id,
            "Status": self.status,
            "ParkStatus": self.park_status,
            "LockStatus": self.lock_status,
        }


@dataclass
class SimEquipment:
    equipment_id: str
    manufacturer_id: str
    manufacturer_name: str
    model: str
    production_date: str
    equipment_type: int
    lng: float
    lat: float
    power: float
    name: str
    connectors: list[SimConnector] = field(default_factory=list)
    changed_at: datetime = CITY_EPOCH

    def info(self) -> dict[str, Any]:
        return {
            "EquipmentID": self.equipment_id,
            "ManufacturerID": self.manufacturer_id,
            "ManufacturerName": self.manufacturer_name,
            "EquipmentModel": self.model,
            "ProductionDate": self.production_date,
            "EquipmentType": self.equipment_type,
            "EquipmentLng": self.lng,
            "EquipmentLat": self.lat,
            "Power": self.power,
            "EquipmentName": self.name,
            "ConnectorInfos": [c.info() for c in self.connectors],
        }


@dataclass
class SimStation:
    station_id: str
    operator_id: str
    fields: dict[str, Any]
    """Every StationInfo field except StationID, OperatorID and EquipmentInfos."""
    equipments: list[SimEquipment] = field(default_factory=list)
    changed_at: datetime = CITY_EPOCH
    """Last change of the station, any equipment or any connector (not sent in StationInfo)."""

    @property
    def area_code(self) -> str:
        return self.fields["AreaCode"]

    def connectors(self) -> list[SimConnector]:
        return [c for e in self.equipments for c in e.connectors]

    def info(self) -> dict[str, Any]:
        """The protocol StationInfo object."""
        out: dict[str, Any] = {"StationID": self.station_id, "OperatorID": self.operator_id}
        out.update(self.fields)
        out["EquipmentInfos"] = [e.info() for e in self.equipments]
        return out

    def status_info(self) -> dict[str, Any]:
        return {
            "StationID": self.station_id,
            "ConnectorStatusInfos": [c.status_info() for c in self.connectors()],
        }

    def touch(self, when: datetime) -> None:
        if when > self.changed_at:
            self.changed_at = when


@dataclass
class SimOperator:
    operator_id: str
    name: str
    short_name: str
    operator_secret: str
    data_secret: str
    data_iv: str
    sig_secret: str
    service_tel: str
    domain: str
    stations: list[SimStation] = field(default_factory=list)
    next_station_seq: int = 1

    _index: dict[str, SimStation] = field(default_factory=dict, repr=False, compare=False)

    def station(self, station_id: str) -> SimStation | None:
        # Stations are only ever added, so a size check keeps the index fresh.
        if len(self._index) != len(self.stations):
            self._index = {s.station_id: s for s in self.stations}
        return self._index.get(station_id)

    @property
    def connector_count(self) -> int:
        return sum(len(e.connectors) for s in self.stations for e in s.equipments)

    @property
    def equipment_count(self) -> int:
        return sum(len(s.equipments) for s in self.stations)


# --------------------------------------------------------------------------- geography


@lru_cache(maxsize=1)
def district_polygons() -> tuple[tuple[str, str, Any, Any], ...]:
    """((adcode, name, geometry, prepared geometry), ...) of Zhuhai's districts, GCJ-02."""
    for path in _DISTRICT_FILES:
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            break
    else:  # pragma: no cover - depends on the checkout
        raise FileNotFoundError("zhuhai-districts-gcj02.geojson not found")
    out = []
    for feat in data["features"]:
        geom = shape(feat["geometry"])
        props = feat["properties"]
        out.append((str(props["adcode"]), props["name"], geom, prep(geom)))
    return tuple(out)


def _district_of(lng: float, lat: float) -> tuple[str, str] | None:
    pt = Point(lng, lat)
    for adcode, name, _geom, prepared in district_polygons():
        if prepared.contains(pt):
            return adcode, name
    return None


@dataclass(frozen=True)
class _Centre:
    name: str
    lng: float
    lat: float
    sigma: float
    weight: float
    places: tuple[str, ...]
    roads: tuple[str, ...]


_CENTRES = (
    _Centre("拱北", 113.550, 22.220, 0.010, 16, ("拱北口岸", "华润万家拱北", "夏湾", "昌盛", "南屏"),
            ("迎宾南路", "粤海东路", "莲花路", "昌盛路", "夏湾路")),
    _Centre("吉大", 113.570, 22.250, 0.011, 14, ("九洲港", "吉大", "海滨公园", "景山", "珠海渔女"),
            ("景山路", "九洲大道东", "海滨南路", "石花西路", "情侣中路")),
    _Centre("香洲", 113.550, 22.270, 0.012, 16, ("香洲港", "梅华", "柠溪", "凤凰北", "狮山"),
            ("凤凰北路", "梅华东路", "柠溪路", "人民西路", "紫荆路")),
    _Centre("前山", 113.520, 22.260, 0.011, 12, ("前山", "翠微", "南湾", "明珠", "珠海站"),
            ("明珠南路", "翠前南路", "港昌路", "南湾北路", "前山路")),
    _Centre("唐家湾", 113.580, 22.360, 0.016, 9, ("唐家湾", "高新区", "金鼎", "淇澳", "科技创新海岸"),
            ("港湾大道", "金鼎路", "创新海岸大道", "哈工大路", "唐淇路")),
    _Centre("横琴", 113.530, 22.130, 0.014, 7, ("横琴口岸", "长隆", "十字门", "天沐河", "环岛"),
            ("环岛东路", "港澳大道", "天羽道", "横琴大道", "琴海东路")),
    _Centre("金湾", 113.360, 22.140, 0.016, 9, ("金湾航空城", "红旗", "三板", "平沙", "金湾机场高速"),
            ("金湖大道", "珠海大道", "藤山路", "红旗中路", "机场东路")),
    _Centre("斗门", 113.290, 22.210, 0.016, 8, ("井岸", "白蕉", "斗门镇", "黄杨河", "新青"),
            ("珠峰大道", "井湾路", "尖峰大桥路", "白藤湖路", "湖心路")),
    _Centre("三灶", 113.380, 22.060, 0.014, 5, ("三灶", "机场", "海澄", "鱼月", "金海岸"),
            ("机场北路", "三灶大道", "金海岸大道", "定湾路", "鱼林路")),
)

_PLACE_SUFFIXES = ("停车场", "广场", "公共停车场", "地下停车场", "商业中心", "产业园", "小区", "花园")


def _sample_point(rng: random.Random) -> tuple[float, float, str, str, _Centre]:
    weights = [c.weight for c in _CENTRES]
    while True:
        if rng.random() < 0.08:  # sparse background across the whole city
            c = _CENTRES[rng.randrange(len(_CENTRES))]
            lng = rng.uniform(113.10, 113.65)
            lat = rng.uniform(21.95, 22.42)
        else:
            c = rng.choices(_CENTRES, weights)[0]
            lng = rng.gauss(c.lng, c.sigma)
            lat = rng.gauss(c.lat, c.sigma)
        lng, lat = round(lng, 6), round(lat, 6)
        hit = _district_of(lng, lat)
        if hit is not None:
            # Name the place after the nearest centre (background points have none of their own).
            c = min(_CENTRES, key=lambda k: (k.lng - lng) ** 2 + (k.lat - lat) ** 2)
            return lng, lat, hit[0], hit[1], c


# --------------------------------------------------------------------------- catalogues

_OPERATOR_NAMES = (
    ("珠海星联充电科技有限公司", "星联充电", "xinglian"),
    ("珠海港湾新能源有限公司", "港湾新能源", "gangwan"),
    ("珠海横琴能链充电服务有限公司", "能链充电", "nenglian"),
    ("珠海湾区绿能充电有限公司", "湾区绿能", "wanqulv"),
    ("珠海金湾快充网络科技有限公司", "金湾快充", "jwkc"),
    ("珠海斗门电桩运营有限公司", "斗门电桩", "dmdz"),
    ("珠海海岸线新能源科技有限公司", "海岸线", "haianxian"),
    ("珠海智行充电设施有限公司", "智行充电", "zhixing"),
    ("珠海交投充电服务有限公司", "交投充电", "jiaotou"),
    ("珠海南屏电动汽车服务有限公司", "南屏电动", "nanping"),
)
# Market shares: one large operator, a few medium, a long tail.
_OPERATOR_WEIGHTS = (30, 20, 15, 12, 9, 6, 4, 2, 1.5, 0.5)

_MANUFACTURERS = (
    ("珠海启源电气有限公司", "QY"),
    ("深圳驰能充电设备有限公司", "CN"),
    ("广州穗电新能源装备有限公司", "SD"),
    ("中山博瑞电力科技有限公司", "BR"),
    ("东莞协能电子有限公司", "XN"),
)

_PAYMENTS = (
    "刷卡,线上,现金", "微信,支付宝", "APP,扫码", "刷卡,微信,支付宝", "线上", "扫码支付",
    "刷卡，APP", "微信，支付宝，刷卡", "APP,微信,支付宝", "线上,刷卡", "扫码,刷卡,现金",
)
_BUSINE_HOURS = ("00:00-24:00",) * 6 + ("07:00-22:00", "08:00-20:00", "06:30-23:30", "周一至周日 00:00-24:00")
_PARK_FEES = (
    "免费", "充电免停车费2小时，超时5元/小时", "按停车场标准收费", "首小时免费，之后3元/小时",
    "充电车辆停车费减半", "",
)
_MATCH_CARS = ("所有国标车型", "支持国标乘用车", "比亚迪、广汽埃安等国标车型", "乘用车及小型物流车", "")
_PARK_INFOS = ("地面停车场", "地下停车场负一层", "露天停车场，车位带充电标识", "立体车库旁地面车位", "")


def _fee_text(rng: random.Random, base: float, spread: float) -> str:
    """Zhuhai time-of-use periods: valley 00-08, flat 08-10/12-14/19-24, peak 10-12/14-19."""
    valley = round(base, 4)
    flat = round(base + spread, 4)
    peak = round(base + 2.2 * spread, 4)
    periods = (
        ("00:00-08:00", valley), ("08:00-10:00", flat), ("10:00-12:00", peak),
        ("12:00-14:00", flat), ("14:00-19:00", peak), ("19:00-24:00", flat),
    )
    return ";".join(f"{p} {v:.4f}元/度" for p, v in periods)


def _service_fee_text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice((0.5, 0.6, 0.7, 0.8, 0.9)):.2f}元/度"
    lo = rng.choice((0.3, 0.4, 0.45))
    hi = rng.choice((0.7, 0.8, 0.95))
    return f"00:00-08:00 {lo:.2f}元/度;08:00-24:00 {hi:.2f}元/度"


def _station_type(rng: random.Random) -> int:
    return rng.choices((1, 100, 103, 102, 50, 255), (86, 2, 4, 3, 4, 1))[0]


def _pile_count(rng: random.Random, station_type: int) -> int:
    if station_type == 50:
        return rng.randint(1, 2)
    if station_type == 100:
        return rng.randint(10, 40)
    r = rng.random()
    if r < 0.80:
        return rng.randint(1, 9)
    return rng.randint(10, 30)


# (equipment type, power kW, connector type, connectors per pile)
def _pile_kind(rng: random.Random, station_type: int) -> tuple[int, float, int, int]:
    if station_type == 50:
        return 2, 7.0, rng.choice((2, 3)), 1
    if station_type in (100, 103, 102):
        power = rng.choice((120.0, 160.0, 240.0)) if station_type != 102 else rng.choice((60.0, 120.0))
        return 1, power, 4, rng.choice((1, 2))
    r = rng.random()
    if r < 0.50:
        return 1, rng.choices((60.0, 120.0, 160.0, 240.0), (3, 4, 2, 1))[0], 4, rng.choices((1, 2), (6, 4))[0]
    if r < 0.96:
        return 2, 7.0, rng.choices((3, 2), (8, 2))[0], 1
    if r < 0.995:
        return 3, 60.0, 4, 2  # AC/DC integrated: one DC gun plus one AC gun
    return 4, 7.0, 5, 1  # wireless pad


def _initial_status(rng: random.Random, station_status: int) -> tuple[int, int, int]:
    if station_status in (1, 5, 6):
        return 0, 0, 0
    status = rng.choices((1, 2, 3, 4, 0, 255), (68, 5, 20, 1, 3, 3))[0]
    return status, park_status_for(status), lock_status_for(status, rng)


def park_status_for(status: int) -> int:
    return {1: 10, 2: 50, 3: 50, 4: 10}.get(status, 0)


def lock_status_for(status: int, rng: random.Random | None = None) -> int:
    return {1: 10, 2: 50, 3: 50, 4: 50}.get(status, 0)


def _build_connectors(
    rng: random.Random, equipment_id: str, eq_type: int, power: float, ctype: int, n: int,
    produced: date, park_counter: list[int], station_status: int, changed: datetime,
) -> list[SimConnector]:
    out = []
    for k in range(n):
        if eq_type == 3 and k == 1:
            c_type, c_power, up, low = 3, 7.0, 220, 220
        elif ctype == 4:
            c_type = 4
            c_power = round(power / n, 1) if eq_type != 3 else round(power - 7.0, 1)
            up, low = (1000, 200) if power >= 160 else (750, 200)
        else:
            c_type, c_power, up, low = ctype, power, 220, 220
        current = 32 if up == 220 else int(round(c_power * 1000 / up * 1.6))
        park_counter[0] += 1
        status, park, lock = _initial_status(rng, station_status)
        out.append(SimConnector(
            connector_id=f"{equipment_id}{k + 1:02d}",
            name=f"{'A' if k == 0 else 'B'}枪" if n > 1 else "充电枪",
            connector_type=c_type,
            voltage_upper=up,
            voltage_lower=low,
            current=current,
            power=c_power,
            park_no=f"P{park_counter[0]:03d}",
            national_standard=1 if produced.year < 2016 else 2,
            status=status,
            park_status=park,
            lock_status=lock,
            changed_at=changed,
        ))
    return out


def build_station(
    rng: random.Random, op: SimOperator, *, seq: int, lng: float, lat: float, adcode: str,
    district: str, centre: _Centre, changed: datetime, station_type: int | None = None,
    piles: int | None = None,
) -> SimStation:
    """One complete station (with equipment and connectors) for ``op``."""
    st_type = _station_type(rng) if station_type is None else station_type
    station_status = rng.choices((50, 1, 5, 6), (96, 1.5, 1.5, 1))[0]
    n_piles = _pile_count(rng, st_type) if piles is None else piles
    station_id = f"{adcode}{seq:06d}"

    place = rng.choice(centre.places)
    road = rng.choice(centre.roads)
    if st_type == 100:
        name = f"{place}公交总站充电站"
    elif st_type == 103:
        name = f"{place}出租车充电站"
    elif st_type == 102:
        name = f"{place}物流园充电站"
    elif st_type == 50:
        name = f"{place}{rng.choice(('花园', '小区'))}个人充电桩"
    else:
        name = f"{op.short_name}{place}{rng.choice(_PLACE_SUFFIXES)}充电站"
    address = f"广东省珠海市{district}{road}{rng.randint(1, 999)}号"
    construction = {
        100: rng.choice((6, 255)), 103: rng.choice((6, 9)), 102: 5, 50: 1,
    }.get(st_type, rng.choices((9, 10, 1, 4, 6, 7, 8, 2, 3, 5, 255), (25, 15, 12, 10, 8, 5, 5, 5, 5, 5, 5))[0])
    equipment_owner = op.operator_id if rng.random() < 0.85 else _new_org_code(rng)
    valley = round(rng.uniform(0.28, 0.40), 4)
    fields = {
        "EquipmentOwnerID": equipment_owner,
        "StationName": name[:50],
        "CountryCode": "CN",
        "AreaCode": adcode,
        "Address": address[:50],
        "StationTel": f"0756-{rng.randint(2000000, 8999999)}",
        "ServiceTel": op.service_tel,
        "StationType": st_type,
        "StationStatus": station_status,
        "ParkNums": 0 if rng.random() < 0.1 else n_piles + rng.randint(0, 20),
        "StationLng": lng,
        "StationLat": lat,
        "SiteGuide": f"从{road}入口进入，沿指示牌行驶至充电区"[:100],
        "Construction": construction,
        "Pictures": [f"https://img.{op.domain}.com/station/{station_id}/{k}.jpg" for k in range(1, rng.randint(1, 3) + 1)],
        "MatchCars": "公交车" if st_type == 100 else "出租车" if st_type == 103 else rng.choice(_MATCH_CARS),
        "ParkInfo": rng.choice(_PARK_INFOS),
        "BusineHours": rng.choice(_BUSINE_HOURS),
        "ElectricityFee": _fee_text(rng, valley, round(rng.uniform(0.25, 0.35), 4)),
        "ServiceFee": _service_fee_text(rng),
        "ParkFee": rng.choice(_PARK_FEES),
        "Payment": rng.choice(_PAYMENTS),
        "SupportOrder": rng.choice((0, 1)),
        "Remark": rng.choice(("", "", "节假日正常营业", "请勿占用充电车位", "充满请及时挪车")),
    }
    station = SimStation(station_id=station_id, operator_id=op.operator_id, fields=fields, changed_at=changed)
    park_counter = [0]
    for e in range(n_piles):
        eq_type, power, ctype, n_conn = _pile_kind(rng, st_type)
        add_equipment(rng, station, eq_type, power, ctype, n_conn, park_counter, changed)
    return station


def add_equipment(
    rng: random.Random, station: SimStation, eq_type: int, power: float, ctype: int, n_conn: int,
    park_counter: list[int] | None, changed: datetime,
) -> SimEquipment:
    """Append one pile to ``station`` (used at generation time and for live info changes)."""
    idx = len(station.equipments) + 1
    if park_counter is None:
        park_counter = [len(station.connectors())]
    equipment_id = f"{station.operator_id}{station.station_id[-6:]}{idx:03d}"
    man_name, man_prefix = rng.choice(_MANUFACTURERS)
    man_id = org_code("9144" + "".join(str((ord(ch) * 7) % 10) for ch in man_prefix) + "01")
    produced = date(2015, 1, 1) + timedelta(days=rng.randint(0, 9 * 365))
    kind = {1: "DC", 2: "AC", 3: "ACDC", 4: "WL"}[eq_type]
    eq = SimEquipment(
        equipment_id=equipment_id,
        manufacturer_id=man_id,
        manufacturer_name=man_name,
        model=f"{man_prefix}-{kind}{int(power)}-{n_conn}G",
        production_date=produced.isoformat(),
        equipment_type=eq_type,
        lng=round(station.fields["StationLng"] + rng.uniform(-0.0003, 0.0003), 6),
        lat=round(station.fields["StationLat"] + rng.uniform(-0.0003, 0.0003), 6),
        power=float(power),
        name=f"{idx}号{'直流' if eq_type == 1 else '交流' if eq_type == 2 else '交直流' if eq_type == 3 else '无线'}桩",
        changed_at=changed,
    )
    eq.connectors = _build_connectors(
        rng, equipment_id, eq_type, power, ctype, n_conn, produced, park_counter,
        station.fields["StationStatus"], changed,
    )
    station.equipments.append(eq)
    return eq


def new_operator(rng: random.Random, index: int) -> SimOperator:
    if index < len(_OPERATOR_NAMES):
        name, short, domain = _OPERATOR_NAMES[index]
    else:
        n = index - len(_OPERATOR_NAMES) + 2
        name, short, domain = f"珠海第{n}充电服务有限公司", f"第{n}充电", f"zhcd{n}"
    return SimOperator(
        operator_id=_new_org_code(rng),
        name=name,
        short_name=short,
        operator_secret=_secret(rng),
        data_secret=_secret(rng),
        data_iv=_secret(rng),
        sig_secret=_secret(rng),
        service_tel=f"400-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}",
        domain=f"{domain}-ev",
    )


def generate_city(seed: int = 1, stations: int = 1500, operators: int = 6) -> list[SimOperator]:
    """Generate ``operators`` operators sharing ``stations`` stations, deterministically.

    A couple of bus depots with 100+ piles are included for cities of 200 stations or more.
    """
    if operators < 1:
        raise ValueError("at least one operator")
    rng = random.Random(seed)
    ops = [new_operator(rng, i) for i in range(operators)]
    ids = set()
    for op in ops:  # organisation codes must be unique
        while op.operator_id in ids:
            op.operator_id = _new_org_code(rng)
        ids.add(op.operator_id)
    weights = [_OPERATOR_WEIGHTS[i] if i < len(_OPERATOR_WEIGHTS) else 0.5 for i in range(operators)]
    depots = 0 if stations < 200 else max(1, round(stations / 700))
    for n in range(stations):
        op = rng.choices(ops, weights)[0]
        lng, lat, adcode, district, centre = _sample_point(rng)
        changed = CITY_EPOCH - timedelta(seconds=rng.randint(3600, 180 * 86400))
        kw: dict[str, Any] = {}
        if n < depots:
            kw = {"station_type": 100, "piles": rng.randint(100, 120)}
        station = build_station(
            rng, op, seq=op.next_station_seq, lng=lng, lat=lat, adcode=adcode, district=district,
            centre=centre, changed=changed, **kw,
        )
        op.next_station_seq += 1
        op.stations.append(station)
    for op in ops:
        op.stations.sort(key=lambda s: s.station_id)
    return ops

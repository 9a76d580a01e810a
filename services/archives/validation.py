"""Field rules of the archives, shared by the forms and the Excel import.

A field is parsed the same way whatever the source (a form string, an Excel cell); "save" keeps
what parses (only the key field is required), "submit" also demands every required field and
checks the position against the city's districts. Errors are ``{field: message}`` with messages
in Chinese and English, so a page or an import report can name the field.

>>> parse_enum("1-公共", {1: ("公共", "public"), 50: ("个人", "personal")})
1
>>> parse_enum("个人", {1: ("公共", "public"), 50: ("个人", "personal")})
50
>>> valid_phone("0756-2212345"), valid_phone("13912345678"), valid_phone("400-820-8820"), valid_phone("12ab")
(True, True, True, False)
>>> STATION_ID_RE.fullmatch("440402000123") is not None, STATION_ID_RE.fullmatch("站点1") is None
(True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo import gcj02
from services.stations.enums import (
    CONNECTOR_TYPES,
    CONSTRUCTIONS,
    EQUIPMENT_TYPES,
    NATIONAL_STANDARDS,
    STATION_STATUSES,
    STATION_TYPES,
)

__all__ = [
    "EQUIPMENT_ID_RE",
    "FACILITY_FIELDS",
    "Field",
    "STATION_FIELDS",
    "STATION_ID_RE",
    "YES_NO",
    "district_choices",
    "parse_enum",
    "parse_fields",
    "valid_phone",
]

STATION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,20}")
EQUIPMENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,23}")
ORG_ID_RE = re.compile(r"[0-9A-Z]{9}")
_PHONE_RES = (
    re.compile(r"1[3-9]\d{9}"),                                   # mobile
    re.compile(r"(\(?0\d{2,3}\)?[- ]?)?[2-9]\d{6,7}(-\d{1,6})?"),  # landline, optional area code / extension
    re.compile(r"[48]00[- ]?\d{3}[- ]?\d{4}"),                     # 400 / 800 service numbers
    re.compile(r"95\d{3,6}|96\d{3,6}|12\d{3}"),                    # short service numbers
)
YES_NO: dict[int, tuple[str, str]] = {0: ("否", "no"), 1: ("是", "yes")}


def valid_phone(value: str) -> bool:
    """One phone number (mobile, landline with area code, 400/800 or short service number)."""
    v = value.strip()
    return any(r.fullmatch(v) for r in _PHONE_RES)


@dataclass(frozen=True)
class Field:
    """One archive field: its column, labels, kind and rules."""

    name: str
    zh: str
    en: str
    kind: str  # str | int | decimal | float | enum | phone | date | district | ref
    required: bool = False
    max_len: int | None = None
    choices: dict[int, tuple[str, str]] | None = None
    low: float | None = None
    high: float | None = None
    pattern: re.Pattern[str] | None = None
    note: str = ""

    def label(self, lang: str = "zh") -> str:
        return self.en if lang == "en" else self.zh


STATION_FIELDS: tuple[Field, ...] = (
    Field("station_id", "充电站编码", "StationID", "str", True, 20, pattern=STATION_ID_RE,
          note="必填；1–20位字母、数字、-或_，与运营系统上报的StationID一致"),
    Field("name", "充电站名称", "Station name", "str", True, 50, note="必填；不超过50字"),
    Field("district_adcode", "所属区域", "District", "district", True, note="必填；从下拉列表选择，须与坐标所在区一致"),
    Field("address", "详细地址", "Address", "str", True, 50, note="必填；不超过50字"),
    Field("lng_gcj02", "经度（GCJ-02）", "Longitude (GCJ-02)", "float", True, low=73.0, high=136.0,
          note="必填；高德/腾讯地图坐标（GCJ-02），6位小数"),
    Field("lat_gcj02", "纬度（GCJ-02）", "Latitude (GCJ-02)", "float", True, low=3.0, high=54.0,
          note="必填；高德/腾讯地图坐标（GCJ-02），6位小数"),
    Field("station_type", "站点类型", "Station type", "enum", True, choices=STATION_TYPES, note="必填；下拉选择"),
    Field("station_status", "站点状态", "Station status", "enum", True, choices=STATION_STATUSES, note="必填；下拉选择"),
    Field("construction", "建设场所", "Construction site", "enum", True, choices=CONSTRUCTIONS, note="必填；下拉选择"),
    Field("service_tel", "服务电话", "Service phone", "phone", True, 30, note="必填；手机、固话（含区号）或400号码"),
    Field("station_tel", "站点电话", "Station phone", "phone", False, 30, note="选填；手机或固话（含区号）"),
    Field("park_nums", "车位数量", "Parking spaces", "int", True, low=0, high=100000, note="必填；0表示未知"),
    Field("equipment_owner_id", "设备所属方ID", "Equipment owner ID", "str", False, 9, pattern=ORG_ID_RE,
          note="选填；9位组织机构代码，空白时为本运营商"),
    Field("busine_hours", "营业时间", "Business hours", "str", False, 100, note="选填；如 00:00-24:00"),
    Field("electricity_fee", "充电电费", "Electricity fee", "str", False, 256, note="选填；不超过256字"),
    Field("service_fee", "服务费", "Service fee", "str", False, 100, note="选填"),
    Field("park_fee", "停车费", "Parking fee", "str", False, 100, note="选填"),
    Field("payment", "支付方式", "Payment", "str", False, 20, note="选填；如 刷卡,线上,现金"),
    Field("support_order", "支持预约", "Supports booking", "enum", False, choices=YES_NO, note="选填；是/否"),
    Field("site_guide", "站点引导", "Site guide", "str", False, 100, note="选填"),
    Field("match_cars", "服务车型", "Matching vehicles", "str", False, 100, note="选填"),
    Field("park_info", "停车说明", "Parking information", "str", False, 100, note="选填"),
    Field("remark", "备注", "Remark", "str", False, 100, note="选填"),
)

FACILITY_FIELDS: tuple[Field, ...] = (
    Field("station_id", "所属充电站编码", "StationID of the station", "ref", True, 20,
          note="必填；已录入的站点档案的充电站编码"),
    Field("report_no", "检测报告编号", "Test report number", "ref", True, 50, note="提交审核时必填；已录入的报告档案编号"),
    Field("equipment_id", "设备编码", "EquipmentID", "str", True, 23, pattern=EQUIPMENT_ID_RE,
          note="必填；1–23位字母、数字、-或_，与运营系统上报的EquipmentID一致"),
    Field("equipment_name", "设备名称", "Equipment name", "str", False, 30, note="选填"),
    Field("equipment_type", "设备类型", "Equipment type", "enum", True, choices=EQUIPMENT_TYPES, note="必填；下拉选择"),
    Field("power_kw", "额定功率（kW）", "Rated power (kW)", "decimal", True, low=0.1, high=2000, note="必填；1位小数"),
    Field("connector_count", "充电接口数量", "Connectors", "int", True, low=1, high=20, note="必填；1–20"),
    Field("connector_type", "充电接口类型", "Connector type", "enum", True, choices=CONNECTOR_TYPES, note="必填；下拉选择"),
    Field("national_standard", "国标版本", "National standard", "enum", False, choices=NATIONAL_STANDARDS,
          note="选填；下拉选择"),
    Field("manufacturer_name", "生产厂商", "Manufacturer", "str", True, 30, note="必填"),
    Field("manufacturer_id", "厂商组织机构代码", "Manufacturer ID", "str", False, 9, pattern=ORG_ID_RE,
          note="选填；9位组织机构代码"),
    Field("equipment_model", "设备型号", "Equipment model", "str", True, 20, note="必填"),
    Field("production_date", "生产日期", "Production date", "date", True, note="必填；YYYY-MM-DD"),
    Field("lng_gcj02", "经度（GCJ-02）", "Longitude (GCJ-02)", "float", False, low=73.0, high=136.0,
          note="选填；空白时取充电站坐标"),
    Field("lat_gcj02", "纬度（GCJ-02）", "Latitude (GCJ-02)", "float", False, low=3.0, high=54.0,
          note="选填；空白时取充电站坐标"),
)


def _text(value: Any) -> str:
    """A form value or an Excel cell as stripped text (integral floats lose their ``.0``)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def parse_enum(value: Any, choices: dict[int, tuple[str, str]]) -> int:
    """``1``, ``"1"``, ``"1-公共"`` or a label (Chinese or English) → the code; ValueError otherwise."""
    s = _text(value)
    m = re.match(r"^(-?\d+)(?:\s*[-－:：]\s*.*)?$", s)
    if m and int(m.group(1)) in choices:
        return int(m.group(1))
    for code, (zh, en) in choices.items():
        if s in (zh, en) or s.lower() == en.lower():
            return code
    raise ValueError(s)


def district_choices(session: Session, city_adcode: int = 440400) -> dict[int, tuple[str, str]]:
    rows = session.execute(text("SELECT adcode, name, coalesce(name_en, name) FROM districts "
                                "WHERE city_adcode = :c ORDER BY adcode"), {"c": city_adcode}).all()
    return {r[0]: (r[1], r[2]) for r in rows}


def _bi(zh: str, en: str) -> str:
    return f"{zh} / {en}"


def parse_fields(fields: tuple[Field, ...], raw: dict[str, Any], *, submit: bool,
                 districts: dict[int, tuple[str, str]] | None = None,
                 key: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse ``raw`` by ``fields``: (clean values, errors by field name).

    Every field parses when present; required fields are demanded on submit (the key field
    always). Values that fail to parse are left out of the clean dict.
    """
    clean: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for f in fields:
        if f.name not in raw and f.kind == "ref" and not submit:
            continue
        s = _text(raw.get(f.name))
        if not s:
            clean[f.name] = None
            if (submit and f.required) or f.name == key:
                errors[f.name] = _bi(f"{f.zh}为必填项", f"{f.en} is required")
            continue
        try:
            clean[f.name] = _parse_one(f, s, districts)
        except ValueError as exc:
            errors[f.name] = str(exc)
    return clean, errors


def _parse_one(f: Field, s: str, districts: dict[int, tuple[str, str]] | None) -> Any:
    if f.kind in ("str", "ref"):
        if f.max_len and len(s) > f.max_len:
            raise ValueError(_bi(f"{f.zh}不能超过{f.max_len}个字符", f"{f.en} must be at most {f.max_len} characters"))
        if f.pattern and not f.pattern.fullmatch(s):
            if f.name in ("station_id", "equipment_id"):
                raise ValueError(_bi(f"{f.zh}只能包含字母、数字、-和_，且不超过{f.max_len}位",
                                     f"{f.en} may contain letters, digits, - and _ only, at most {f.max_len}"))
            raise ValueError(_bi(f"{f.zh}格式不正确（{f.note}）", f"{f.en} has the wrong format"))
        return s
    if f.kind == "phone":
        if len(s) > (f.max_len or 30) or not valid_phone(s):
            raise ValueError(_bi(f"{f.zh}不是有效的电话号码", f"{f.en} is not a valid phone number"))
        return s
    if f.kind in ("int", "float", "decimal"):
        try:
            if f.kind == "int":
                num: Any = int(Decimal(s)) if Decimal(s) == int(Decimal(s)) else None
                if num is None:
                    raise InvalidOperation
            elif f.kind == "decimal":
                num = Decimal(s).quantize(Decimal("0.1"))
            else:
                num = float(s)
        except (InvalidOperation, ValueError, OverflowError):
            what = "整数" if f.kind == "int" else "数字"
            raise ValueError(_bi(f"{f.zh}必须是{what}", f"{f.en} must be a {'whole ' if f.kind == 'int' else ''}number")) from None
        if (f.low is not None and num < f.low) or (f.high is not None and num > f.high):
            raise ValueError(_bi(f"{f.zh}应在{f.low:g}–{f.high:g}之间", f"{f.en} must be between {f.low:g} and {f.high:g}"))
        if f.kind == "float":
            num = round(num, 6)
        return num
    if f.kind == "enum":
        try:
            return parse_enum(s, f.choices or {})
        except ValueError:
            raise ValueError(_bi(f"{f.zh}的取值“{s[:20]}”无效，请从下拉列表选择",
                                 f"{f.en}: '{s[:20]}' is not one of the listed values")) from None
    if f.kind == "district":
        try:
            return parse_enum(s, districts or {})
        except ValueError:
            raise ValueError(_bi(f"{f.zh}“{s[:20]}”不是本市的区", f"{f.en} '{s[:20]}' is not a district of the city")) from None
    if f.kind == "date":
        try:
            d = date.fromisoformat(s[:10].replace("/", "-"))
        except ValueError:
            raise ValueError(_bi(f"{f.zh}应为YYYY-MM-DD格式的日期", f"{f.en} must be a date YYYY-MM-DD")) from None
        if d > date.today() or d.year < 1990:
            raise ValueError(_bi(f"{f.zh}不在合理范围内", f"{f.en} is out of range"))
        return d
    raise AssertionError(f.kind)


_LOCATE_GCJ = text("""
SELECT adcode FROM districts
WHERE city_adcode = :city AND ST_Intersects(geom, ST_SetSRID(ST_MakePoint(:lng, :lat), 4326))
ORDER BY adcode LIMIT 1
""")


def check_position(session: Session, clean: dict[str, Any], *, city_adcode: int = 440400,
                   district_field: str | None = "district_adcode", required: bool = True) -> dict[str, str]:
    """Coordinates inside the city and (when a district is given) inside that district."""
    lng, lat = clean.get("lng_gcj02"), clean.get("lat_gcj02")
    if lng is None or lat is None:
        return {}
    wlng, wlat = gcj02.gcj02_to_wgs84(lng, lat)
    found = session.execute(_LOCATE_GCJ, {"city": city_adcode, "lng": wlng, "lat": wlat}).scalar()
    if found is None:
        return {"lng_gcj02": _bi("坐标不在本市范围内（请使用GCJ-02坐标，经度在前）",
                                 "the position is outside the city (GCJ-02, longitude first)")}
    if district_field and clean.get(district_field) is not None and clean[district_field] != found:
        name = session.execute(text("SELECT name FROM districts WHERE adcode = :a"), {"a": found}).scalar()
        return {district_field: _bi(f"所属区域与坐标不一致：坐标位于{name}", f"the district does not match the position ({found})")}
    return {}


def wgs84_point(clean: dict[str, Any]) -> str | None:
    """EWKT of the WGS84 point for the entered GCJ-02 coordinates, or None."""
    lng, lat = clean.get("lng_gcj02"), clean.get("lat_gcj02")
    if lng is None or lat is None:
        return None
    wlng, wlat = gcj02.gcj02_to_wgs84(lng, lat)
    return f"SRID=4326;POINT({wlng:.8f} {wlat:.8f})"

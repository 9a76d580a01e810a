"""Enumerations of T/CEC 102 part 2: value -> (Chinese label, English label).

One copy for the codec (validation), search facets, the API's ``/reference`` and the pages.
"""

from __future__ import annotations

__all__ = [
    "CONNECTOR_STATUSES",
    "CONNECTOR_TYPES",
    "CONSTRUCTIONS",
    "EQUIPMENT_TYPES",
    "LOCK_STATUSES",
    "NATIONAL_STANDARDS",
    "PARK_STATUSES",
    "STATION_STATUSES",
    "STATION_TYPES",
]

# --------------------------------------------------------------------------------------------

STATION_TYPES: dict[int, tuple[str, str]] = {
    1: ("公共", "public"),
    50: ("个人", "personal"),
    100: ("公交（专用）", "bus (dedicated)"),
    101: ("环卫（专用）", "sanitation (dedicated)"),
    102: ("物流（专用）", "logistics (dedicated)"),
    103: ("出租车（专用）", "taxi (dedicated)"),
    104: ("分时租赁（专用）", "time-share rental (dedicated, provincial variant)"),
    105: ("小区共享（专用）", "residential shared (dedicated, provincial variant)"),
    106: ("单位（专用）", "workplace (dedicated, provincial variant)"),
    255: ("其他", "other"),
}
STATION_STATUSES: dict[int, tuple[str, str]] = {
    0: ("未知", "unknown"),
    1: ("建设中", "under construction"),
    5: ("关闭下线", "closed/offline"),
    6: ("维护中", "under maintenance"),
    50: ("正常使用", "in normal use"),
}
CONSTRUCTIONS: dict[int, tuple[str, str]] = {
    1: ("居民区", "residential area"),
    2: ("公共机构", "public institution"),
    3: ("企事业单位", "enterprise/institution"),
    4: ("写字楼", "office building"),
    5: ("工业园区", "industrial park"),
    6: ("交通枢纽", "transport hub"),
    7: ("大型文体设施", "large sports/culture venue"),
    8: ("城市绿地", "urban green space"),
    9: ("大型建筑配建停车场", "large building parking"),
    10: ("路边停车位", "roadside parking"),
    11: ("城际高速服务区", "intercity highway service area"),
    255: ("其他", "other"),
}
EQUIPMENT_TYPES: dict[int, tuple[str, str]] = {
    1: ("直流设备", "DC"),
    2: ("交流设备", "AC"),
    3: ("交直流一体设备", "AC/DC integrated"),
    4: ("无线设备", "wireless"),
    5: ("其他", "other"),
}
CONNECTOR_TYPES: dict[int, tuple[str, str]] = {
    1: ("家用插座（模式2）", "household socket (mode 2)"),
    2: ("交流接口插座（模式3，连接方式B）", "AC socket (mode 3, connection B)"),
    3: (
        "交流接口插头（带枪线，模式3，连接方式C）",
        "AC plug with cable (mode 3, connection C)",
    ),
    4: ("直流接口枪头（带枪线，模式4）", "DC plug with cable (mode 4)"),
    5: ("无线充电座", "wireless pad"),
    6: ("其他", "other"),
}
CONNECTOR_STATUSES: dict[int, tuple[str, str]] = {
    0: ("离网", "offline"),
    1: ("空闲", "free"),
    2: ("占用（未充电）", "occupied, not charging"),
    3: ("占用（充电中）", "occupied, charging"),
    4: ("占用（预约锁定）", "reserved/locked"),
    255: ("故障", "fault"),
}
PARK_STATUSES: dict[int, tuple[str, str]] = {
    0: ("未知", "unknown"),
    10: ("空闲", "free"),
    50: ("已停车", "occupied"),
}
LOCK_STATUSES: dict[int, tuple[str, str]] = {
    0: ("未知", "unknown"),
    10: ("已解锁", "unlocked"),
    50: ("已上锁", "locked"),
}
NATIONAL_STANDARDS: dict[int, tuple[str, str]] = {
    1: ("2011版", "GB/T 2011"),
    2: ("2015版", "GB/T 2015"),
}

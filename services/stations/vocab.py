"""Vocabularies the data does not give directly: facility type, payment method, scale, availability,
and pinyin for name search. Each is used alike in filters, facets, API items and tiles.

>>> normalize_payments("刷卡,微信，支付宝、现金")
(['card', 'online', 'cash'], [])
>>> normalize_payments("ETC/充电卡 月卡")
(['card', 'other'], ['ETC', '月卡'])
>>> scale_for(9), scale_for(10), scale_for(100), scale_for(0)
('small', 'medium', 'xlarge', None)
>>> pinyin_of("长隆充电站")
('changlongchongdianzhan', 'clcdz')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

__all__ = [
    "AVAILABILITY",
    "EQUIPMENT_TYPE_FACILITY",
    "FACILITY_TYPES",
    "PAYMENTS",
    "SCALES",
    "availability_of",
    "normalize_payments",
    "pinyin_of",
    "scale_for",
]

# facility_type = EquipmentType 1–5; a station has every facility type of its piles.
FACILITY_TYPES: dict[str, tuple[str, str]] = {
    "dc": ("直流", "DC"),
    "ac": ("交流", "AC"),
    "acdc": ("交直流一体", "AC/DC integrated"),
    "wireless": ("无线", "wireless"),
    "other": ("其他", "other"),
}
EQUIPMENT_TYPE_FACILITY: dict[int, str] = {1: "dc", 2: "ac", 3: "acdc", 4: "wireless", 5: "other"}

PAYMENTS: dict[str, tuple[str, str]] = {
    "card": ("刷卡", "card"),
    "online": ("线上支付（APP/扫码/微信/支付宝）", "online (app, QR code, WeChat, Alipay)"),
    "cash": ("现金", "cash"),
    "other": ("其他", "other"),
}
# Tokens seen in the free-text Payment field, lower-cased, mapped to the fixed vocabulary.
_PAYMENT_TOKENS: dict[str, str] = {
    "刷卡": "card", "卡": "card", "ic卡": "card", "充电卡": "card", "会员卡": "card", "银联": "card",
    "银行卡": "card", "信用卡": "card", "card": "card",
    "线上": "online", "在线": "online", "在线支付": "online", "线上支付": "online", "app": "online",
    "扫码": "online", "二维码": "online", "微信": "online", "微信支付": "online", "支付宝": "online",
    "小程序": "online", "云闪付": "online", "online": "online", "手机": "online", "手机支付": "online",
    "现金": "cash", "cash": "cash",
}
_PAYMENT_SPLIT = re.compile(r"[,，、;；/|\s+]+")

# Scale bands by number of piles; lower bounds of small, medium, large, xlarge (a setting).
SCALES: dict[str, tuple[str, str]] = {
    "small": ("小型（1–9 桩）", "small (1–9 piles)"),
    "medium": ("中型（10–29 桩）", "medium (10–29 piles)"),
    "large": ("大型（30–99 桩）", "large (30–99 piles)"),
    "xlarge": ("超大型（100 桩以上）", "very large (100+ piles)"),
}
DEFAULT_SCALE_BANDS: tuple[int, int, int, int] = (1, 10, 30, 100)

AVAILABILITY: dict[str, tuple[str, str]] = {
    "free": ("有空闲", "free now"),
    "busy": ("全部占用", "all busy"),
    "offline": ("离线/故障", "offline"),
    "unknown": ("未知", "unknown"),
}


def normalize_payments(text: str | None) -> tuple[list[str], list[str]]:
    """Map a Payment text to (codes in vocabulary order, unknown tokens as written).

    Unknown tokens count as ``other`` and are kept so they can be reported and mapped later.
    """
    if not text:
        return [], []
    codes: set[str] = set()
    unknown: list[str] = []
    for raw in _PAYMENT_SPLIT.split(text.strip()):
        if not raw:
            continue
        code = _PAYMENT_TOKENS.get(raw.lower())
        if code is None:
            code = next((c for tok, c in _PAYMENT_TOKENS.items() if len(tok) > 1 and tok in raw.lower()), None)
        if code is None:
            unknown.append(raw)
            code = "other"
        codes.add(code)
    return [c for c in PAYMENTS if c in codes], unknown


def scale_for(piles: int, bands: Sequence[int] = DEFAULT_SCALE_BANDS) -> str | None:
    """The scale band of a station with ``piles`` charging piles (None for a station with none)."""
    if piles < bands[0]:
        return None
    names = list(SCALES)
    for name, lower in zip(reversed(names), reversed(bands), strict=True):
        if piles >= lower:
            return name
    return None


def availability_of(station_status: int, free: int, busy: int, known: int) -> str:
    """free: ≥1 connector free; busy: none free but some occupied; offline: station not in normal
    use or every reported connector offline/faulty; unknown: no status reported yet."""
    if station_status != 50:
        return "offline"
    if free > 0:
        return "free"
    if busy > 0:
        return "busy"
    if known > 0:
        return "offline"
    return "unknown"


# Place names whose first reading in the general dictionary is wrong.
_PHRASES: dict[str, list[list[str]]] = {
    "长隆": [["cháng"], ["lóng"]],
    "长沙": [["cháng"], ["shā"]],
    "长安": [["cháng"], ["ān"]],
    "长江": [["cháng"], ["jiāng"]],
    "长南": [["cháng"], ["nán"]],
    "重庆": [["chóng"], ["qìng"]],
    "厦门": [["xià"], ["mén"]],
    "斗门": [["dǒu"], ["mén"]],
    "会展": [["huì"], ["zhǎn"]],
    "大都会": [["dà"], ["dū"], ["huì"]],
    "横琴": [["héng"], ["qín"]],
    "拱北": [["gǒng"], ["běi"]],
    "银行": [["yín"], ["háng"]],
    "停车场": [["tíng"], ["chē"], ["chǎng"]],
    "充电": [["chōng"], ["diàn"]],
}


@cache
def _pypinyin():  # noqa: ANN202 - loads the dictionary once, on first use
    import pypinyin

    pypinyin.load_phrases_dict(_PHRASES)
    return pypinyin


def pinyin_of(text: str | None) -> tuple[str, str]:
    """(full pinyin, initials) of the Chinese characters in ``text``, lower-case, no spaces.

    Latin letters and digits pass through in both forms, so "XX充电" gives ("xxchongdian", "xxcd").
    """
    if not text:
        return "", ""
    p = _pypinyin()
    full = p.lazy_pinyin(text, style=p.Style.NORMAL, errors=lambda s: list(s))
    initials = [w[0] if w else "" for w in full]
    keep = re.compile(r"[a-z0-9]")
    full_s = "".join(ch for w in full for ch in w.lower() if keep.match(ch))
    init_s = "".join(ch for w in initials for ch in w.lower() if keep.match(ch))
    return full_s, init_s

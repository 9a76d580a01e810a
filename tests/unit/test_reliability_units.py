"""Opening hours, time windows and window plans of services.reliability (no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.errors import BadRequest
from services.prices.tariff import CHINA_TZ
from services.reliability.hours import parse_busine_hours
from services.reliability.uptime import Coverage, plan_window
from services.reliability.window import parse_window


@pytest.mark.parametrize(("text", "spans"), [
    ("00:00-24:00", None), ("0:00-24:00", None), ("00:00—24:00", None), ("00:00～23:59", None), ("24小时", None),
    ("24小时营业", None), ("全天", None), ("全天24小时开放", None), ("7*24小时", None), ("7X24h", None),
    ("00:00-00:00", None), ("周一至周日 00:00-24:00", None), ("营业时间：00:00-24:00", None),
    ("08:00-22:00", ((480, 1320),)), ("8:00-22:00", ((480, 1320),)), ("08：00至22：00", ((480, 1320),)),
    ("每天 07:00~22:00", ((420, 1320),)), ("06:30-23:30", ((390, 1410),)),
    ("08:00-12:00；14:00-20:00", ((480, 720), (840, 1200))), ("08:00-12:00 13:00-18:00", ((480, 720), (780, 1080))),
    ("08:00-14:00,12:00-20:00", ((480, 1200),)), ("20:00-02:00", ((0, 120), (1200, 1440))),
])
def test_readable_hours(text: str, spans) -> None:  # noqa: ANN001
    got = parse_busine_hours(text)
    assert got.readable and got.spans == spans


@pytest.mark.parametrize("text", ["", None, "   ", "周一至周五 08:00-18:00", "工作日 09:00-17:00", "08:00-20:00，节假日休息",
                                  "24:30-25:00", "08:61-09:00", "10:00-10:00", "营业", "请电话咨询", "8-22"])
def test_unreadable_hours_are_open_all_day(text) -> None:  # noqa: ANN001
    got = parse_busine_hours(text)
    assert got.spans is None and not got.readable


NOW = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(("params", "param"), [
    ({"from": "2026-12-06T09:00:00Z"}, "from"),  # after the default 'to' (now)
    ({"to": "2026-12-06T08:00:00Z", "from": "2026-12-06T08:00:00+00:00"}, "from"),
    ({"from": "2025-12-06T07:00:00Z"}, "from"),
    ({"from": "1900-01-01T00:00:00Z"}, "from"),
    ({"to": "nonsense"}, "to"),
])
def test_bad_windows_name_their_parameter(params, param) -> None:  # noqa: ANN001
    with pytest.raises(BadRequest) as err:
        parse_window(params, NOW, timedelta(days=1))
    assert err.value.param == param


def test_defaults_and_a_year() -> None:
    w = parse_window({"to": "2027-12-06T09:00:00Z"}, NOW, timedelta(days=1))  # the future may be asked for
    assert w.end - w.start == timedelta(days=1)
    assert parse_window({}, NOW, timedelta(days=30)) == parse_window(
        {"from": "2026-11-06T08:00:00Z", "to": "2026-12-06T08:00:00Z"}, NOW, timedelta(days=1))
    w = parse_window({"from": "2028-02-29T00:00:00Z", "to": "2029-03-01T00:00:00Z"}, NOW, timedelta(days=1))
    assert w.end - w.start == timedelta(days=366)  # from 29 February, a year runs to 1 March


def _t(d: int, h: int = 0) -> datetime:
    return datetime(2026, 12, d, h, tzinfo=CHINA_TZ)


def test_plans_use_months_days_and_today_so_far() -> None:
    whole = frozenset(date(2026, 12, d) for d in range(1, 6))
    cov = Coverage(whole, {date(2026, 12, 6): _t(6, 7)}, frozenset({date(2026, 12, 1)}))
    plan = plan_window(_t(1), _t(7), cov, _t(6, 8))
    assert plan.months == [date(2026, 12, 1)] and plan.days == [date(2026, 12, 6)]
    assert plan.raw == [(_t(6, 7), _t(6, 8))]
    # a month is read whole only when the window holds all its aggregated days
    part = plan_window(_t(2), _t(7), cov, _t(6, 8))
    assert part.months == [] and part.days == [date(2026, 12, d) for d in range(2, 7)]
    # a window ending before today's aggregated hour reads today from the history
    early = plan_window(_t(6, 1), _t(6, 5), cov, _t(6, 8))
    assert early.days == [] and early.raw == [(_t(6, 1), _t(6, 5))]
    # per day (for tables by day) nothing is merged
    per_day = plan_window(_t(3, 12), _t(5, 12), Coverage(), _t(9), merge=False)
    assert [(a.day, b.day) for a, b in per_day.raw] == [(3, 4), (4, 5), (5, 5)]

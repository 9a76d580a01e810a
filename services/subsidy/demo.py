"""Demo subsidy rules: one published rule whose application period is open now, one whose
application period is over. Idempotent (looked up by name); dates follow today (China time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.models.subsidy import SubsidyRule
from services.subsidy.shared import china_today

__all__ = ["CLOSED_RULE_NAME", "OPEN_RULE_NAME", "ensure_demo_subsidy"]

OPEN_RULE_NAME = "珠海市公共充电设施建设补贴（示例）"
CLOSED_RULE_NAME = "珠海市公共充电设施运营补贴（示例，已截止）"


def ensure_demo_subsidy(session: Session, *, today: date | None = None) -> dict[str, int]:
    """Create the two demo rules if missing; returns ``{"open": id, "closed": id}``."""
    today = today or china_today()
    year_start = date(today.year - 1, 1, 1)
    specs = {
        "open": dict(name=OPEN_RULE_NAME, basis="per_kw",
                     description="对已接入市级平台并完成互联互通的公共充电设施，按额定功率给予一次性建设补贴："
                                 "直流 200 元/kW、交流 100 元/kW、交直流一体 150 元/kW。",
                     subsidy_start=year_start, subsidy_end=today + timedelta(days=365),
                     apply_start=today - timedelta(days=30), apply_end=today + timedelta(days=60),
                     rate_dc=Decimal("200"), rate_ac=Decimal("100"), rate_acdc=Decimal("150"),
                     rate_wireless=Decimal("100"), rate_other=Decimal("50"), cap_station=Decimal("300000.00"),
                     cap_operator=Decimal("2000000.00"), budget=Decimal("10000000.00"), required_station_status=50,
                     required_interconnection="none", min_operator_power_kw=Decimal("0")),
        "closed": dict(name=CLOSED_RULE_NAME, basis="per_kwh",
                       description="按补贴时间范围内的充电量给予运营补贴：0.10 元/kWh。",
                       subsidy_start=year_start, subsidy_end=date(today.year - 1, 12, 31),
                       apply_start=today - timedelta(days=120), apply_end=today - timedelta(days=60),
                       rate_kwh=Decimal("0.1000"), cap_station=Decimal("50000.00"), cap_operator=None,
                       budget=Decimal("1000000.00"), required_station_status=None,
                       required_interconnection="interconnected", min_operator_power_kw=Decimal("100")),
    }
    out = {}
    for key, values in specs.items():
        rule = session.scalars(select(SubsidyRule).where(SubsidyRule.name == values["name"])).first()
        if rule is None:
            rule = SubsidyRule(**values, published_at=datetime.now(UTC))
            session.add(rule)
            session.flush()
        out[key] = rule.id
    return out

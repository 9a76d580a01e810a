"""Factories for subsidy tests: operators with station and facility archives, feed stations,
rules. Every test makes its own operators and rules, so no table needs emptying."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from services.models.subsidy import SubsidyRule
from services.subsidy.energy import StationEnergy
from services.subsidy.shared import CHINA_TZ, Actor, china_today
from tests.accounts_helpers import create_operator_user, create_regulator

TODAY = china_today()


@dataclass
class Op:
    user: dict[str, Any]

    @property
    def pk(self) -> int:
        return self.user["operator_pk"]

    @property
    def operator_id(self) -> str:
        return self.user["operator_id"]

    @property
    def actor(self) -> Actor:
        return Actor(self.user["user_id"], self.user["account_name"], "operator", self.pk)


class Factory:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def operator(self) -> Op:
        return Op(create_operator_user(self.engine))

    def regulator(self) -> Actor:
        r = create_regulator(self.engine)
        return Actor(r["user_id"], r["account_name"], "regulator")

    def regulator_user(self) -> dict[str, Any]:
        return create_regulator(self.engine)

    def station(self, op: Op, *, status: int | None = 50, state: str = "approved", feed_interconnected: bool | None = None,
                name: str | None = None) -> int:
        sid = "ST" + secrets.token_hex(5).upper()
        with self.engine.begin() as conn:
            pk = conn.execute(text(
                "INSERT INTO station_archives (operator_pk, station_id, name, station_status, state) "
                "VALUES (:op, :sid, :n, :st, :state) RETURNING id"),
                {"op": op.pk, "sid": sid, "n": name or f"充电站{sid[-4:]}", "st": status, "state": state}).scalar_one()
            if feed_interconnected is not None:
                conn.execute(text(
                    "INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, "
                    "lat_gcj02, geom, geom_3857, interconnected) VALUES (:o, :sid, :n, 1, 50, 113.55, 22.27, "
                    "ST_SetSRID(ST_MakePoint(113.55, 22.27), 4326), "
                    "ST_Transform(ST_SetSRID(ST_MakePoint(113.55, 22.27), 4326), 3857), :ic)"),
                    {"o": op.operator_id, "sid": sid, "n": name or sid, "ic": feed_interconnected})
        return pk

    def station_id_of(self, station_pk: int) -> str:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT station_id FROM station_archives WHERE id = :s"), {"s": station_pk}).scalar_one()

    def facility(self, op: Op, station_pk: int, *, power: str = "60", equipment_type: int = 1,
                 state: str = "interconnected", in_service: date | None = None) -> int:
        """A facility archive; when interconnected, the approval event is dated ``in_service``."""
        eid = "EQ" + secrets.token_hex(6).upper()
        in_service = in_service or TODAY - timedelta(days=10)
        with self.engine.begin() as conn:
            pk = conn.execute(text(
                "INSERT INTO facility_archives (operator_pk, station_archive_pk, equipment_id, equipment_type, power_kw, "
                "state, ever_approved) VALUES (:op, :s, :e, :t, :p, :state, :ever) RETURNING id"),
                {"op": op.pk, "s": station_pk, "e": eid, "t": equipment_type, "p": Decimal(power), "state": state,
                 "ever": state in ("approved", "ic_review", "interconnected")}).scalar_one()
            if state == "interconnected":
                at = datetime.combine(in_service, time(12), CHINA_TZ).astimezone(UTC)
                conn.execute(text(
                    "INSERT INTO workflow_events (workflow, entity_id, action, from_state, to_state, actor_role, at) "
                    "VALUES ('facility_archive', :id, 'approve_ic', 'ic_review', 'interconnected', 'regulator', :at)"),
                    {"id": str(pk), "at": at})
        return pk

    def equipment_id_of(self, facility_pk: int) -> str:
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT equipment_id FROM facility_archives WHERE id = :f"),
                                {"f": facility_pk}).scalar_one()

    def rule(self, session: Session | None = None, **kw: Any) -> int:
        values: dict[str, Any] = dict(
            name=f"测试规则{secrets.token_hex(3)}", description="测试", basis="per_kw",
            subsidy_start=TODAY - timedelta(days=365), subsidy_end=TODAY + timedelta(days=30),
            apply_start=TODAY - timedelta(days=5), apply_end=TODAY + timedelta(days=5),
            rate_dc=Decimal("200"), rate_ac=Decimal("100"), rate_acdc=Decimal("150"), rate_wireless=Decimal("80"),
            rate_other=None, rate_kwh=None, cap_station=None, cap_operator=None, budget=Decimal("10000000"),
            required_station_status=None, required_interconnection="none", min_operator_power_kw=Decimal("0"),
            published_at=datetime.now(UTC))
        values.update(kw)
        from sqlalchemy.orm import sessionmaker

        with sessionmaker(self.engine).begin() as s:
            rule = SubsidyRule(**values)
            s.add(rule)
            s.flush()
            return rule.id


@pytest.fixture()
def factory(engine: Engine) -> Factory:
    return Factory(engine)


@pytest.fixture()
def session(engine: Engine) -> Iterator[Session]:
    from sqlalchemy.orm import sessionmaker

    with sessionmaker(engine, expire_on_commit=False).begin() as s:
        yield s


class FakeEnergy:
    """An EnergySource answering fixed kWh per EquipmentID and recording its calls."""

    def __init__(self, per_equipment: dict[str, str] | None = None) -> None:
        self.per_equipment = {k: Decimal(v) for k, v in (per_equipment or {}).items()}
        self.calls: list[tuple[str, str, date, date]] = []

    def __call__(self, operator_id: str, station_id: str, start: date, end: date) -> StationEnergy:
        self.calls.append((operator_id, station_id, start, end))
        return StationEnergy(sum(self.per_equipment.values(), Decimal(0)), dict(self.per_equipment))

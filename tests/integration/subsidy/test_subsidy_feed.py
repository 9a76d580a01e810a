"""Per-kWh applications are cross-checked against the operator's own statistics:
``feed_energy_source`` against the operator simulator over real HTTP (query_station_stats), and its
message when the operator's platform is not connected. (The amounts come from reconciled orders:
test_subsidy_orders.)"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy.engine import Engine

from portal_site.routes.subsidy import feed_energy_source
from services.db import Database
from services.subsidy.energy import EnergyUnavailable
from tests.integration.feed.conftest import feed_settings, forget_operators, make_sim, register_sim


def test_energy_comes_from_query_station_stats(engine: Engine, db_url: str, tmp_path) -> None:  # noqa: ANN001
    sim = make_sim(stations=6, operators=1)
    with sim.server:
        register_sim(engine, sim)
        try:
            app = SimpleNamespace(state={"settings": feed_settings(db_url, tmp_path), "db": Database(engine)})
            op = sim.state.operators[sim.operator_ids[0]]
            station = op.stations[0]
            start, end = date(2026, 1, 1), date(2026, 3, 31)
            energy = feed_energy_source(app)(op.operator_id, station.station_id, start, end)
            truth = sim.state.station_stats(op, station, start, end)
            assert energy.total == Decimal(str(truth["StationElectricity"]))
            for eq in truth["EquipmentStatsInfos"]:
                assert energy.for_equipment(eq["EquipmentID"]) == Decimal(str(eq["EquipmentElectricity"]))
            assert energy.total > 0
        finally:
            forget_operators(engine, sim.operator_ids)


def test_an_operator_without_a_connected_platform_gets_a_clear_message(engine: Engine, db_url: str,
                                                                       tmp_path) -> None:  # noqa: ANN001
    app = SimpleNamespace(state={"settings": feed_settings(db_url, tmp_path), "db": Database(engine)})
    with pytest.raises(EnergyUnavailable) as exc:
        feed_energy_source(app)("NOSUCHOP1", "S1", date(2026, 1, 1), date(2026, 1, 2))
    assert "尚未完成对接" in str(exc.value)

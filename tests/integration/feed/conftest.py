"""Feed fixtures: the operator simulator on uvicorn (real HTTP, loopback), registered operators.

Each test gets its own simulated city (its own seed, hence its own OperatorIDs) and removes only
the rows of those operators afterwards, so it never disturbs other domains' data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ingest.endpoints import register_operator
from ingest.simulator import SimConfig, build_app
from services.settings import AppSettings, DatabaseSettings, FeedSettings, Settings
from tests.conftest import ServerThread, free_port  # noqa: F401 (re-exported to the feed tests)

_SEEDS = itertools.count(101)


@pytest.fixture(autouse=True)
def _only_this_tests_operators(engine: Engine) -> None:
    """Feed tests sync "all operators": leave out endpoints earlier tests (of any domain) left behind,
    whose simulated platforms are gone. Each test registers (and so re-enables) its own."""
    with engine.begin() as conn:
        conn.execute(text("UPDATE feed_endpoints SET enabled = false WHERE enabled"))


@dataclass
class Sim:
    server: ServerThread
    app: object

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self):  # noqa: ANN201 - ingest.simulator.state.Simulator
        return self.app.state.sim

    @property
    def operator_ids(self) -> list[str]:
        return sorted(self.state.operators)

    def faults(self, **values: object) -> dict:
        return httpx.post(f"{self.url}/_admin/faults", json=values, timeout=5).raise_for_status().json()

    def admin(self, method: str, path: str, **kw: object) -> object:
        return httpx.request(method, f"{self.url}{path}", timeout=30, **kw).raise_for_status().json()


def feed_settings(db_url: str, tmp: Path, **feed: object) -> Settings:
    values = {"backoff_s": 0.01, "timeout_s": 5.0, "retries": 2, "db_retry_s": 5.0, "page_size": 20}
    values.update(feed)
    return Settings(db=DatabaseSettings(database_url=db_url),
                    app=AppSettings(env="test", run_scheduler=False, upload_dir=tmp / "uploads"),
                    feed=FeedSettings(**values))


@pytest.fixture()
def fsettings(db_url: str, tmp_path: Path) -> Settings:
    return feed_settings(db_url, tmp_path)


def make_sim(stations: int = 60, operators: int = 2, **config: object) -> Sim:
    cfg = SimConfig(seed=next(_SEEDS), stations=stations, operators=operators, token_ttl=600,
                    push_backoff_seconds=0.2, **config)
    app = build_app(cfg)
    return Sim(ServerThread(app), app)


@pytest.fixture()
def sim() -> Iterator[Sim]:
    s = make_sim()
    with s.server:
        yield s


def register_sim(engine: Engine, sim: Sim, *, api_version: str = "v20160701") -> dict[str, dict]:
    """Register every simulated operator as `feed add-operator` would; returns inbound creds by id."""
    out = {}
    with engine.begin() as conn:
        for op in sim.state.operators.values():
            creds, _ = register_operator(
                conn, operator_id=op.operator_id, name=op.name, base_url=f"{sim.url}/{op.operator_id}",
                platform_operator_id=sim.state.config.platform_id_for(op.operator_id),
                operator_secret=op.operator_secret, data_secret=op.data_secret, data_iv=op.data_iv,
                sig_secret=op.sig_secret, api_version=api_version)
            out[op.operator_id] = creds.as_dict()
    return out


def forget_operators(engine: Engine, operator_ids: list[str]) -> None:
    with engine.begin() as conn:
        for table in ("connector_status", "sync_runs", "feed_push_seen", "feed_tokens", "charge_orders", "order_checks",
                      "connector_tariffs"):
            conn.execute(text(f"DELETE FROM {table} WHERE operator_id = ANY(:ids)"), {"ids": operator_ids})
        conn.execute(text("DELETE FROM operators WHERE operator_id = ANY(:ids)"), {"ids": operator_ids})


@pytest.fixture()
def registered(engine: Engine, sim: Sim) -> Iterator[dict[str, dict]]:
    creds = register_sim(engine, sim)
    yield creds
    forget_operators(engine, sim.operator_ids)


def counts(engine: Engine, operator_ids: list[str]) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(text("""
            SELECT count(*) FILTER (WHERE feed_state = 'active') AS active,
                   count(*) FILTER (WHERE feed_state = 'withdrawn') AS withdrawn,
                   count(*) FILTER (WHERE feed_state = 'rejected') AS rejected,
                   (SELECT count(*) FROM equipment WHERE operator_id = ANY(:ids)) AS equipment,
                   (SELECT count(*) FROM connectors WHERE operator_id = ANY(:ids)) AS connectors,
                   (SELECT count(*) FROM connector_status WHERE operator_id = ANY(:ids)) AS statuses
            FROM stations WHERE operator_id = ANY(:ids)"""), {"ids": operator_ids}).mappings().one()
    return dict(row)


def sim_truth(sim: Sim) -> dict[str, int]:
    ops = sim.state.operators.values()
    return {"stations": sum(len(op.stations) for op in ops),
            "equipment": sum(op.equipment_count for op in ops),
            "connectors": sum(op.connector_count for op in ops)}

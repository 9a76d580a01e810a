"""Upward feed fixtures: a simulated city pulled into the database (stations, statuses, prices), our
app on uvicorn (the simulated operators push to its receiver, higher platforms call it), a higher
platform registered through ``zhcharge upstream add``, and clients built from the codec.

The city's operators and the platforms are removed afterwards; other domains' stations in the
session's database stay, and are served like any public station.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import Engine

from ingest.client import Endpoint, FeedClient, TokenCache
from ingest.endpoints import load_endpoints
from ingest.policies import pull_policies
from ingest.protocol import ParsedResponse, Secrets, build_request, parse_response
from ingest.sync import sync_all
from portal_site.cli import main
from services.db import Database
from services.settings import Settings, UpstreamSettings
from tests.conftest import ServerThread
from tests.integration.feed.conftest import Sim, feed_settings, forget_operators, make_sim, register_sim

VERSION = "v20160701"


@dataclass
class City:
    sim: Sim
    creds: dict[str, dict]
    """Inbound credentials of each simulated operator (what it pushes to our receiver with)."""
    settings: Settings
    url: str
    """Our app."""

    @property
    def operator_ids(self) -> list[str]:
        return self.sim.operator_ids

    def set_status(self, operator_id: str, connector_id: str, status: int) -> dict:
        """A connector status change at the operator, pushed to our receiver (waits until stored)."""
        out = self.sim.admin("POST", "/_admin/connector-status",
                             json={"operator_id": operator_id, "connector_id": connector_id, "status": status,
                                   "wait": True, "wait_seconds": 20})
        assert out["pushes_settled"] is True, out
        return out


def upstream_settings(db_url: str, tmp: Any, **upstream: object) -> Settings:
    s = feed_settings(db_url, tmp)
    s.upstream = UpstreamSettings(**{"push_backoff_s": 0.01, "push_retries": 3, "push_timeout_s": 5.0, **upstream})
    return s


@pytest.fixture(scope="module")
def city(engine: Engine, database: Database, db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    from portal_site.app import create_app

    settings = upstream_settings(db_url, tmp_path_factory.mktemp("upstream"))
    sim = make_sim(stations=60, operators=2, push_orders=True, order_retry_backoff_seconds=0.2,
                   order_retry_max_seconds=1.0)
    with sim.server, ServerThread(create_app(settings, database=database)) as ours:
        creds = register_sim(engine, sim)
        try:
            for op in sim.operator_ids:
                assert all(r.ok for r in sync_all(engine, settings, operator_id=op, full=True))
                with engine.connect() as conn:
                    assert pull_policies(engine, settings, load_endpoints(conn, op)[0]).ok
            targets = [{"operator_id": op, "base_url": ours.url, **{k: v for k, v in c.items() if k != "operator_id"}}
                       for op, c in creds.items()]
            httpx.post(f"{sim.url}/_admin/push-targets", json=targets, timeout=10).raise_for_status()
            yield City(sim, creds, settings, ours.url)
        finally:
            forget_operators(engine, sim.operator_ids)


def add_platform(db_url: str, *args: str, platform_id: str | None = None) -> dict[str, str]:
    """``zhcharge upstream add ... --json`` as an outside checker runs it; returns what it printed."""
    platform_id = platform_id or "UP" + secrets.token_hex(4).upper()[:7]
    r = CliRunner().invoke(main, ["upstream", "add", "--platform-id", platform_id, "--name", "广东省充电设施监管平台",
                                  *args, "--json"], env={"ZHCHARGE_DATABASE_URL": db_url})
    assert r.exit_code == 0, r.output
    import json

    return json.loads(r.output)


def drop_platforms(engine: Engine, *platform_ids: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM upstream_platforms WHERE platform_id = ANY(:p)"), {"p": list(platform_ids)})


@pytest.fixture()
def platform(engine: Engine, db_url: str, city: City) -> Iterator[dict[str, str]]:
    creds = add_platform(db_url)
    yield creds
    drop_platforms(engine, creds["operator_id"])


def secrets_of(creds: dict[str, str]) -> Secrets:
    return Secrets(**creds)


def upstream_client(url: str, creds: dict[str, str], **kw: Any) -> FeedClient:
    """The higher platform's client: the feed's own pull client, pointed at us with our credentials."""
    return FeedClient(Endpoint(creds["operator_id"], url, VERSION, secrets_of(creds)), tokens=TokenCache(),
                      **{"retries": 0, "backoff_s": 0.01, **kw})


class Caller:
    """A platform calling one interface with hand-built envelopes (for the error answers)."""

    def __init__(self, url: str, creds: dict[str, str]) -> None:
        self.url, self.s = url, secrets_of(creds)
        self.seq = 0
        self.token: str | None = None

    def envelope(self, data: Any, **kw: Any) -> dict:
        self.seq += 1
        return build_request(self.s.operator_id, data, self.s, timestamp=kw.pop("timestamp", datetime.now(UTC)),
                             seq=kw.pop("seq", self.seq % 10000))

    def post(self, interface: str, env: Any, *, token: str | None = None,
             secrets: Secrets | None = None) -> tuple[int, ParsedResponse]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.post(f"{self.url}/evcs/{VERSION}/{interface}", json=env, headers=headers, timeout=30)
        return resp.status_code, parse_response(resp.content, secrets or self.s)

    def get_token(self) -> str:
        _, r = self.post("query_token", self.envelope({"OperatorID": self.s.operator_id,
                                                      "OperatorSecret": self.s.operator_secret}))
        assert r.ret == 0 and r.data["SuccStat"] == 0, r
        self.token = r.data["AccessToken"]
        return self.token

    def call(self, interface: str, data: Any, **kw: Any) -> tuple[int, ParsedResponse]:
        return self.post(interface, self.envelope(data), token=kw.pop("token", self.token), **kw)


def public_stations(url: str) -> dict[tuple[str, str], dict]:
    """Every station of ``/api/v1/stations`` (GCJ-02 coordinates), by (OperatorID, StationID)."""
    out: dict[tuple[str, str], dict] = {}
    params: dict[str, Any] = {"crs": "gcj02", "limit": 500, "sort": "id"}
    while True:
        body = httpx.get(f"{url}/api/v1/stations", params=params, timeout=60).raise_for_status().json()
        for item in body["items"]:
            out[(item["operator_id"], item["station_id"])] = item
        if not body.get("next_cursor"):
            return out
        params["cursor"] = body["next_cursor"]

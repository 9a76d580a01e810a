"""The CLI contract exactly as an outside checker drives it (click's CliRunner, ZHCHARGE_DATABASE_URL)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from portal_site.cli import main

from .conftest import forget_operators

KEYS = {"operator_id", "operator_secret", "data_secret", "data_iv", "sig_secret"}


@pytest.fixture()
def run(db_url):  # noqa: ANN001, ANN201
    runner = CliRunner()
    env = {"ZHCHARGE_DATABASE_URL": db_url, "ZHCHARGE_FEED_BACKOFF_S": "0.01", "ZHCHARGE_FEED_RETRIES": "1",
           "ZHCHARGE_FEED_TIMEOUT_S": "5"}

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)
    return invoke


def _add_args(sim, op, base_url=None, secret=None):  # noqa: ANN001, ANN202
    return ["feed", "add-operator", "--operator-id", op.operator_id, "--name", op.name,
            "--base-url", base_url or f"{sim.url}/{op.operator_id}",
            "--our-operator-id", sim.state.config.platform_id_for(op.operator_id),
            "--operator-secret", secret or op.operator_secret, "--data-secret", op.data_secret,
            "--data-iv", op.data_iv, "--sig-secret", op.sig_secret]


def test_cli_contract(run, sim, engine) -> None:
    ops = [sim.state.operators[o] for o in sim.operator_ids]
    try:
        first = run(*_add_args(sim, ops[0]), "--json")
        assert first.exit_code == 0, first.output
        creds = json.loads(first.output)
        assert set(creds) == KEYS and creds["operator_id"] == ops[0].operator_id
        assert all(len(creds[k]) == 16 for k in KEYS - {"operator_id"})
        again = run(*_add_args(sim, ops[0], base_url=f"{sim.url}/{ops[0].operator_id}/evcs/v20160701"), "--json")
        assert json.loads(again.output) == creds  # re-run keeps the inbound credentials
        with engine.connect() as conn:
            row = conn.execute(text("SELECT f.interconnected, f.base_url, f.api_version, o.name FROM feed_endpoints f "
                                    "JOIN operators o USING (operator_id) WHERE operator_id = :op"),
                               {"op": ops[0].operator_id}).one()
        assert row.interconnected is True and row.base_url == f"{sim.url}/{ops[0].operator_id}"
        assert row.api_version == "v20160701" and row.name == ops[0].name
        human = run(*_add_args(sim, ops[1]))
        assert human.exit_code == 0 and "sig_secret" in human.output

        res = run("feed", "sync", "--full")
        assert res.exit_code == 0, res.output
        lines = res.output.strip().splitlines()
        assert any(ops[0].operator_id in ln and "ok" in ln for ln in lines)
        assert "2 operators: 2 ok, 0 failed" in lines[-1]
        res = run("feed", "sync", "--operator", ops[0].operator_id)
        assert res.exit_code == 0 and "incremental" in res.output

        res = run("feed", "status", "--json")
        assert res.exit_code == 0
        status = {s["operator_id"]: s for s in json.loads(res.output)}
        s0 = status[ops[0].operator_id]
        assert s0["circuit_state"] == "closed" and s0["last_run"]["ok"] is True
        assert s0["last_run"]["mode"] == "incremental" and s0["stations"]["active"] > 0
        assert run("feed", "status").exit_code == 0

        st = ops[0].stations[0]
        res = run("stations", "show", ops[0].operator_id, st.station_id, "--json")
        assert res.exit_code == 0, res.output
        d = json.loads(res.output)
        assert d["station_id"] == st.station_id and d["operator_id"] == ops[0].operator_id
        assert (d["lng_gcj02"], d["lat_gcj02"]) == (st.fields["StationLng"], st.fields["StationLat"])
        assert abs(d["lng"] - st.fields["StationLng"]) < 0.01 and d["lng"] != st.fields["StationLng"]
        assert d["district"]["adcode"] and d["status"] == st.fields["StationStatus"]
        assert len(d["equipment"]) == len(st.equipments)
        truth = {c.connector_id: c.status for c in st.connectors()}
        got = {c["connector_id"]: c["status"] for e in d["equipment"] for c in e["connectors"]}
        if d["feed_state"] == "active":
            assert got == truth
        assert run("stations", "show", ops[0].operator_id, "NOPE").exit_code == 1
        assert run("stations", "show", ops[0].operator_id, st.station_id).exit_code == 0

        # a broken operator: exit status 1, the others still ok
        bad = run(*_add_args(sim, ops[1], secret="wrong-secret"))
        assert bad.exit_code == 0
        res = run("feed", "sync")
        assert res.exit_code == 1
        assert "1 ok, 1 failed" in res.output and "wrong OperatorSecret" in res.output
        bad_key = run(*_add_args(sim, ops[1])[:-6], "--data-secret", "short", "--data-iv", ops[1].data_iv,
                      "--sig-secret", ops[1].sig_secret)
        assert bad_key.exit_code == 2 and "16" in bad_key.output
    finally:
        forget_operators(engine, sim.operator_ids)

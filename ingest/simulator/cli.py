"""``zhcharge simulate-operator``: run the operator simulator with uvicorn."""

from __future__ import annotations

import click

from ingest.simulator.config import SimConfig

__all__ = ["simulate_operator", "config_from_options"]


def config_from_options(
    *, config_file: str | None = None, seed: int | None = None, stations: int | None = None,
    operators: int | None = None, host: str | None = None, port: int | None = None,
    token_ttl: int | None = None, changes_per_second: float | None = None,
    push_url: str | None = None,
) -> SimConfig:
    """A config file first, then every option given on the command line on top of it."""
    cfg = SimConfig.from_json(config_file) if config_file else SimConfig()
    for name, value in (
        ("seed", seed), ("stations", stations), ("operators", operators), ("host", host),
        ("port", port), ("token_ttl", token_ttl), ("changes_per_second", changes_per_second),
        ("push_url", push_url),
    ):
        if value is not None:
            setattr(cfg, name, value)
    return cfg


@click.command("simulate-operator")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with SimConfig fields (options given here override it).")
@click.option("--seed", type=int, help="City seed (default 1): same seed, same city.")
@click.option("--stations", type=int, help="Number of stations (default 1500).")
@click.option("--operators", type=int, help="Number of operators (default 6).")
@click.option("--host", help="Bind address (default 127.0.0.1; the admin API is loopback-only).")
@click.option("--port", type=int, help="Port (default 9100).")
@click.option("--token-ttl", type=int, help="TokenAvailableTime in seconds (default 7200).")
@click.option("--changes-per-second", type=float, help="Live connector status changes per second (default 0).")
@click.option("--push-url", help="Platform base URL for notification_stationStatus pushes, e.g. http://127.0.0.1:8000.")
@click.option("--log-level", default="warning", show_default=True, help="uvicorn log level.")
def simulate_operator(config_file, seed, stations, operators, host, port, token_ttl,
                      changes_per_second, push_url, log_level) -> None:
    """Serve simulated charging operators' T/CEC 102 platforms (one base URL per operator)."""
    import uvicorn

    from ingest.simulator.server import build_app

    cfg = config_from_options(
        config_file=config_file, seed=seed, stations=stations, operators=operators, host=host,
        port=port, token_ttl=token_ttl, changes_per_second=changes_per_second, push_url=push_url,
    )
    app = build_app(cfg)
    sim = app.state.sim
    shown = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
    base = f"http://{shown}:{cfg.port}"
    for op in sim.operators.values():
        click.echo(
            f"{op.operator_id}  {base}/{op.operator_id}  {op.name}  "
            f"stations={len(op.stations)} connectors={op.connector_count}"
        )
    click.echo(f"admin: {base}/_admin/operators (secrets, counts)  caller OperatorID={cfg.platform_operator_id}"
               + (f"  pushing to {cfg.push_url}" if cfg.push_url else ""))
    uvicorn.run(app, host=cfg.host, port=cfg.port, log_level=log_level)


if __name__ == "__main__":  # pragma: no cover
    simulate_operator()

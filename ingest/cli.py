"""``zhcharge feed ...``, ``zhcharge stations show`` and ``zhcharge demo ...``.

Registered in ``portal_site.cli._COMMANDS``; this module imports nothing from ``portal_site``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

__all__ = ["demo", "feed", "orders", "stations"]


def _echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))


def _engine(settings):  # noqa: ANN001, ANN202
    from services.db import make_engine

    return make_engine(settings.db, start=settings.db.embedded)


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# --------------------------------------------------------------------------------------------
# feed
# --------------------------------------------------------------------------------------------


@click.group()
def feed() -> None:
    """The T/CEC 102 interconnection feed: operators, pulls, status."""


@feed.command("add-operator")
@click.option("--operator-id", required=True, help="The operator's own OperatorID (9-character organisation code).")
@click.option("--name", required=True, help="The operator's company name.")
@click.option("--base-url", required=True,
              help="Where we pull from: the part before /evcs/<version>/query_token "
                   "(a URL ending in /evcs/v20160701 is accepted too).")
@click.option("--our-operator-id", required=True, help="The OperatorID the operator issued to us (the city platform).")
@click.option("--operator-secret", required=True, help="OperatorSecret for our query_token calls.")
@click.option("--data-secret", required=True, help="DataSecret (16 characters) for our calls.")
@click.option("--data-iv", required=True, help="DataSecretIV (16 characters) for our calls.")
@click.option("--sig-secret", required=True, help="SigSecret for our calls.")
@click.option("--api-version", default=None, help="Version path segment (default FeedSettings.api_version, v20160701).")
@click.option("--json", "as_json", is_flag=True, help="Print the inbound credentials as one JSON object.")
def add_operator(operator_id: str, name: str, base_url: str, our_operator_id: str, operator_secret: str,
                 data_secret: str, data_iv: str, sig_secret: str, api_version: str | None, as_json: bool) -> None:
    """Register an operator (or update it): how we pull from it, and the credentials it pushes with.

    Creates the operator and its feed endpoint with fresh random 16-character inbound secrets, which
    the operator uses to call our /evcs/v20160701/query_token and notification_* interfaces (its
    envelope OperatorID is its own OperatorID). Running it again updates the pull settings and keeps
    the inbound credentials. Operators added here are marked interconnected, so their stations show
    on the public map.
    """
    from services.errors import AppError
    from services.feed.endpoints import register_operator
    from services.settings import load_settings

    settings = load_settings()
    engine = _engine(settings)
    try:
        with engine.begin() as conn:
            creds, created = register_operator(
                conn, operator_id=operator_id, name=name, base_url=base_url, platform_operator_id=our_operator_id,
                operator_secret=operator_secret, data_secret=data_secret, data_iv=data_iv, sig_secret=sig_secret,
                api_version=api_version or settings.feed.api_version, interconnected=True)
    except AppError as exc:
        _fail(exc.message, 2)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(creds.as_dict(), ensure_ascii=False))
        return
    click.echo(f"{'added' if created else 'updated'} operator {operator_id} ({name}); pulling from {base_url}")
    click.echo(f"push credentials for the operator (it calls {settings.app.public_url.rstrip('/')}"
               f"/evcs/{settings.feed.api_version}/...):")
    for key, value in creds.as_dict().items():
        click.echo(f"  {key:<16} {value}")


@feed.command("sync")
@click.option("--operator", "operator_id", default=None, help="Only this OperatorID.")
@click.option("--full", is_flag=True, help="Full listing (LastQueryTime empty); marks vanished stations withdrawn.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def sync(operator_id: str | None, full: bool, as_json: bool) -> None:
    """Pull now: StationInfos (incremental unless --full) and statuses, every operator at once.

    Prints a line per operator and a summary; the exit status is 1 when any operator failed.
    """
    from ingest.sync import sync_all
    from services.settings import load_settings

    settings = load_settings()
    engine = _engine(settings)
    try:
        results = sync_all(engine, settings, operator_id=operator_id, full=full, lock_wait_s=settings.feed.timeout_s,
                           on_result=None if as_json else (lambda r: click.echo(r.line())))
        if full:  # prices follow each full sync (the scheduler would do it too, if one runs)
            from ingest.policies import pull_policies_all

            for p in pull_policies_all(engine, settings, operator_id=operator_id):
                if not as_json:
                    click.echo(f"{p.operator_id}: prices {'ok' if p.ok else 'FAILED: ' + str(p.error)} "
                               f"({p.policies} policies, {p.fallback} from fee texts)")
    finally:
        engine.dispose()
    if operator_id and not results:
        _fail(f"no operator {operator_id!r} is registered (zhcharge feed add-operator)", 2)
    failed = [r for r in results if not r.ok and not r.skipped]
    skipped = [r for r in results if r.skipped]
    if as_json:
        _echo_json([r.as_dict() for r in results])
    else:
        if not results:
            click.echo("no operators registered (zhcharge feed add-operator)")
        else:
            total = {k: sum(getattr(r, k) for r in results)
                     for k in ("received", "inserted", "updated", "unchanged", "rejected", "withdrawn", "statuses")}
            ok = len(results) - len(failed) - len(skipped)
            click.echo(f"{len(results)} operators: {ok} ok, {len(failed)} failed"
                       + (f", {len(skipped)} skipped" if skipped else "") + "; "
                       f"{total['received']} stations received (inserted {total['inserted']}, updated "
                       f"{total['updated']}, unchanged {total['unchanged']}, rejected {total['rejected']}, "
                       f"withdrawn {total['withdrawn']}), {total['statuses']} statuses")
    if failed:
        sys.exit(1)


@feed.command("policies")
@click.option("--operator", "operator_id", default=None, help="Only this OperatorID.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def policies(operator_id: str | None, as_json: bool) -> None:
    """Pull every connector's business policy (query_equip_business_policy) now.

    Stores new tariff versions (unchanged ones are only marked seen), falls back to the stations'
    fee texts where an operator has no policy, and prints a line per operator; the exit status is
    1 when any operator failed.
    """
    from ingest.policies import pull_policies_all
    from services.settings import load_settings

    settings = load_settings()
    engine = _engine(settings)
    try:
        results = pull_policies_all(engine, settings, operator_id=operator_id)
    finally:
        engine.dispose()
    if operator_id and not results:
        _fail(f"no operator {operator_id!r} is registered (zhcharge feed add-operator)", 2)
    if as_json:
        _echo_json([r.as_dict() for r in results])
    else:
        for r in results:
            state = "ok" if r.ok else f"FAILED: {r.error}"
            c = r.counts
            click.echo(f"{r.operator_id}: {state}; {r.connectors} connectors, {r.policies} policies, {r.fallback} from "
                       f"fee texts; {c['new']} new, {c['changed']} changed, {c['unchanged']} unchanged, "
                       f"{c['problems']} with problems ({r.seconds:.1f} s)"
                       + (f"; {r.unsupported}" if r.unsupported else ""))
        if not results:
            click.echo("no operators registered (zhcharge feed add-operator)")
    if any(not r.ok for r in results):
        sys.exit(1)


@feed.command("status")
@click.option("--json", "as_json", is_flag=True)
def status(as_json: bool) -> None:
    """Per operator: last run, result, counts and circuit state."""
    from ingest.endpoints import endpoint_status
    from services.settings import load_settings

    settings = load_settings()
    engine = _engine(settings)
    try:
        with engine.connect() as conn:
            rows = endpoint_status(conn)
    finally:
        engine.dispose()
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("no operators registered (zhcharge feed add-operator)")
        return
    for r in rows:
        run = r["last_run"]
        st = r["stations"]
        head = (f"{r['operator_id']}  {r['name']}  circuit {r['circuit_state']}"
                f"{' (' + str(r['circuit']['failures']) + ' failures)' if r['circuit']['failures'] else ''}  "
                f"stations {st['active']} active, {st['withdrawn']} withdrawn, {st['rejected']} rejected")
        click.echo(head)
        if run:
            click.echo(f"    last run {run['mode']} at {run['started_at']}: {run['result']}, {run['pages']} pages, "
                       f"inserted {run['inserted']}, updated {run['updated']}, unchanged {run['unchanged']}, "
                       f"rejected {run['rejected']}, withdrawn {run['withdrawn']}, {run['statuses']} statuses"
                       + (f"; {run['error']}" if run["error"] else ""))
        else:
            click.echo("    never pulled")
        if r["last_push_at"]:
            click.echo(f"    last push {r['last_push_at']}")


# --------------------------------------------------------------------------------------------
# stations
# --------------------------------------------------------------------------------------------


@click.group()
def stations() -> None:
    """Stations as stored from the operators' feeds."""


@stations.command("show")
@click.argument("operator_id")
@click.argument("station_id")
@click.option("--json", "as_json", is_flag=True)
def show(operator_id: str, station_id: str, as_json: bool) -> None:
    """One stored station: WGS84 and reported GCJ-02 position, district, state, piles and live connectors."""
    from ingest.endpoints import station_detail
    from services.errors import NotFound
    from services.settings import load_settings

    settings = load_settings()
    engine = _engine(settings)
    try:
        with engine.connect() as conn:
            detail = station_detail(conn, operator_id, station_id)
    except NotFound as exc:
        _fail(exc.message)
    finally:
        engine.dispose()
    if as_json:
        _echo_json(detail)
        return
    d = detail
    click.echo(f"{d['station_id']}  {d['name']}  ({d['operator_name']})  {d['feed_state']}"
               + (f": {d['reject_reason']}" if d["reject_reason"] else ""))
    click.echo(f"  {d['address']}")
    dist = d["district"]
    click.echo(f"  WGS84 {d['lng']}, {d['lat']}  reported GCJ-02 {d['lng_gcj02']}, {d['lat_gcj02']}  district "
               f"{dist['name'] + ' ' + str(dist['adcode']) if dist else '-'}  AreaCode {d['area_code']}"
               + ("  (MISMATCH)" if d["area_code_mismatch"] else ""))
    click.echo(f"  status {d['station_status']}  availability {d['availability']}  "
               f"{d['connectors_free']}/{d['connectors_total']} connectors free")
    for e in d["equipment"]:
        click.echo(f"  {e['equipment_id']}  {e['equipment_name'] or ''}  type {e['equipment_type']}  {e['power_kw']} kW")
        for c in e["connectors"]:
            click.echo(f"    {c['connector_id']}  type {c['connector_type']}  {c['power_kw']} kW  status "
                       f"{c['status'] if c['status'] is not None else '-'} ({c['status_source'] or 'none'})")


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


@click.group()
def demo() -> None:
    """A living demo city: simulated operators, registered, synced and pushing."""


@demo.command("load")
@click.option("--stations", "n_stations", default=1500, show_default=True)
@click.option("--operators", "n_operators", default=6, show_default=True)
@click.option("--port", default=9100, show_default=True, help="Simulator port (loopback).")
@click.option("--rate", default=2.0, show_default=True, help="Live connector changes per second.")
def demo_load(n_stations: int, n_operators: int, port: int, rate: float) -> None:
    """Start the simulator (or reuse it), register its operators, sync, and leave pushes flowing. Idempotent."""
    from ingest.demo import load_demo
    from services.settings import load_settings

    import httpx

    try:
        ok = load_demo(load_settings(), stations=n_stations, operators=n_operators, port=port, rate=rate,
                       echo=click.echo)
    except (RuntimeError, httpx.HTTPError) as exc:
        _fail(f"the demo could not start: {exc}")
    if not ok:
        click.echo("some operators failed to sync (see above); the scheduler will retry", err=True)
        sys.exit(1)


@demo.command("stop")
def demo_stop() -> None:
    """Stop the demo simulator started by `zhcharge demo load`."""
    from ingest.demo import stop_simulator
    from services.settings import load_settings

    click.echo(stop_simulator(load_settings()))


# --------------------------------------------------------------------------------------------
# orders
# --------------------------------------------------------------------------------------------


@click.group()
def orders() -> None:
    """Charge orders pushed by the operators (T/CEC 102 part 3)."""


def _day(value: str | None, name: str):  # noqa: ANN202 - a date or None
    from datetime import date

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=name) from None


@orders.command("stats")
@click.option("--operator-id", required=True, help="The operator's OperatorID.")
@click.option("--from", "day_from", default=None, help="First day (China date, YYYY-MM-DD), included.")
@click.option("--to", "day_to", default=None, help="Last day (China date, YYYY-MM-DD), included.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def orders_stats(operator_id: str, day_from: str | None, day_to: str | None, as_json: bool) -> None:
    """Orders that ended in the window, each counted once in its latest version: orders, energy_kwh,
    money_yuan (as reported), disputed (answered ConfirmResult 1), overcharged (billed above the
    tariff in force) and overcharge_yuan (the sum billed above it)."""
    from services.orders.stats import order_stats
    from services.settings import load_settings

    a, b = _day(day_from, "--from"), _day(day_to, "--to")
    if a and b and a > b:
        raise click.BadParameter("--from is after --to", param_hint="--from")
    settings = load_settings()
    engine = _engine(settings)
    try:
        with engine.connect() as conn:
            stats = order_stats(conn, operator_id, a, b)
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(stats, ensure_ascii=False))
        return
    click.echo(f"{operator_id} {stats['from'] or '…'} – {stats['to'] or '…'}: {stats['orders']} orders, "
               f"{stats['energy_kwh']} kWh, {stats['money_yuan']} yuan; {stats['disputed']} disputed, "
               f"{stats['overcharged']} overcharged by {stats['overcharge_yuan']} yuan")

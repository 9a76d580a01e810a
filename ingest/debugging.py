"""The feed's side of B5 (interconnection set-up): live joint debugging and the system check.

Both call the operator's system over T/CEC 102, so they live here, next to the codec and the
client, and use :mod:`services.archives.interconnection` for everything else (the application
and its state, what is associated, the comparison of archives and pulled stations, what a
result means). The portal's B5 pages (:mod:`portal_site.routes.interconnection`) call:

* :func:`debug_call` (step 2): one interface called now; the decrypted request and response, Ret
  and pass/fail are stored on the application and returned;
* :func:`start_check` (step 3): :func:`run_check` in a background thread, one per operator: a full
  pull compared with the archives, the report recorded, the state moved, and after a pass a
  full sync so the operator's stations show at once; :func:`resume_checks` restarts the checks a
  restart interrupted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from ingest.client import Endpoint, FeedClient, FeedError
from ingest.crypto import Secrets, decrypt
from ingest.endpoints import load_endpoints
from ingest.envelope import build_request, parse_response
from ingest.errors import ProtocolError
from ingest.objects import stations_from_page, status_infos_from
from ingest.sync import sync_operator
from services.archives import interconnection as ic
from services.archives.common import Actor, now
from services.archives.interconnection import DEBUG_INTERFACES, PUSH_CHECK
from services.errors import BadRequest, Conflict
from services.models.archives import InterconnectionApplication
from services.models.feed import FeedEndpoint
from services.settings import Settings

__all__ = ["DebugResult", "debug_call", "resume_checks", "run_check", "start_check"]

log = logging.getLogger("zhcharge.archives.interconnection")


# ------------------------------------------------------------------------------------ step 2


@dataclass
class DebugResult:
    interface: str
    ok: bool
    ret: int | None
    msg: str
    request: Any
    response: Any
    url: str
    elapsed_ms: int
    at: str
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _secrets_of(ep: FeedEndpoint) -> Secrets:
    return Secrets(ep.platform_operator_id or "", ep.operator_secret or "", ep.data_secret or "", ep.data_iv or "",
                   ep.sig_secret or "")


def _trim(obj: Any, limit: int = 6000) -> Any:
    """Keep stored debug output small: long lists are cut, the text is capped."""
    if isinstance(obj, dict):
        out = {}
        for k, val in obj.items():
            if isinstance(val, list) and len(val) > 3:
                out[k] = [_trim(x) for x in val[:3]] + [f"… {len(val) - 3} more"]
            else:
                out[k] = _trim(val)
        obj = out
    if len(json.dumps(obj, ensure_ascii=False, default=str)) > limit and isinstance(obj, dict):
        return {"_truncated": json.dumps(obj, ensure_ascii=False, default=str)[:limit] + " …"}
    return obj


def _raw_call(ep: FeedEndpoint, interface: str, data: dict, token: str | None,
              transport: httpx.BaseTransport | None, timeout_s: float) -> tuple[dict, Any, str]:
    """One POST with the decrypted view: (request view, response view, url)."""
    s = _secrets_of(ep)
    env = build_request(s.operator_id, data, s, seq=1)
    url = f"{(ep.base_url or '').rstrip('/')}/evcs/{ep.api_version}/{interface}"
    req_view = {"url": url, "headers": {"Authorization": "Bearer …"} if token else {}, "envelope": env, "Data": data}
    with httpx.Client(timeout=timeout_s, transport=transport) as http:
        resp = http.post(url, json=env, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        body = resp.json()
    except ValueError:
        return req_view, {"http_status": resp.status_code, "body": resp.text[:500]}, url
    view: dict[str, Any] = {"http_status": resp.status_code, "envelope": {k: body.get(k) for k in ("Ret", "Msg", "Sig")}}
    try:
        parsed = parse_response(body, s)
        view.update({"Ret": int(parsed.ret), "Msg": parsed.msg, "Data": parsed.data, "verified": True})
    except ProtocolError as exc:
        view.update({"Ret": body.get("Ret"), "Msg": body.get("Msg"), "verified": False, "error": exc.msg})
        try:
            if body.get("Data"):
                view["Data (unverified)"] = decrypt(body["Data"], s.data_secret, s.data_iv)
        except Exception:  # noqa: BLE001 - a debugging view, any failure is shown as such
            pass
    return req_view, view, url


def _token(ep: FeedEndpoint, transport: httpx.BaseTransport | None, timeout_s: float) -> tuple[str | None, Any]:
    req, resp, _ = _raw_call(ep, "query_token", {"OperatorID": ep.platform_operator_id,
                                                 "OperatorSecret": ep.operator_secret}, None, transport, timeout_s)
    data = resp.get("Data") if isinstance(resp, dict) else None
    if resp.get("Ret") == 0 and isinstance(data, dict) and str(data.get("SuccStat")) == "0" and data.get("AccessToken"):
        return str(data["AccessToken"]), (req, resp)
    return None, (req, resp)


def debug_call(session: Session, settings: Settings, actor: Actor, interface: str, *,
               transport: httpx.BaseTransport | None = None) -> dict[str, Any]:
    """Call one interface of the operator's system now; store and return the result."""
    if interface not in DEBUG_INTERFACES and interface != PUSH_CHECK:
        raise BadRequest("unknown interface", param="interface")
    _op, ep = ic.operator_endpoint(session, actor.operator_pk)
    app = ic.application(session, actor.operator_pk, lock=True)
    ic.ensure_editable(app)
    if ep is None or not ep.base_url:
        raise Conflict("请先在第一步保存对接信息 / save the docking data in step 1 first")
    at = now().isoformat()
    if interface == PUSH_CHECK:
        ok = ep.last_push_at is not None
        res = DebugResult(interface, ok, None, "", None, {"last_push_at": ep.last_push_at.isoformat() if ok else None},
                          ic.push_urls(settings)["notification_stationStatus"], 0, at,
                          note="已收到推送 / a push was received" if ok else
                          "尚未收到推送：请用平台提供的凭证推送一次充电接口状态 / no push received yet")
        return _save_debug(app, res)
    t0 = time.monotonic()
    timeout = settings.feed.timeout_s
    associated = ic.associated_station_ids(session, actor.operator_pk)
    try:
        if interface == "query_token":
            token, (req, resp) = _token(ep, transport, timeout)
            ok, note = token is not None, ""
            if not ok and isinstance(resp.get("Data"), dict):
                note = {"1": "FailReason 1：OperatorID（平台）不被认可 / unknown OperatorID",
                        "2": "FailReason 2：OperatorSecret错误 / wrong OperatorSecret"}.get(
                    str(resp["Data"].get("FailReason")), "")
        else:
            token, (treq, tresp) = _token(ep, transport, timeout)
            if token is None:
                res = DebugResult(interface, False, tresp.get("Ret"), str(tresp.get("Msg") or ""), treq, tresp, treq["url"],
                                  int((time.monotonic() - t0) * 1000), at,
                                  note="获取token失败，请先调通query_token / query_token failed")
                return _save_debug(app, res)
            if interface == "query_stations_info":
                data = {"LastQueryTime": "", "PageNo": 1, "PageSize": 10}
            elif interface == "query_station_status":
                data = {"StationIDs": associated[:50] or ["0"]}
            else:
                end = date.today() - timedelta(days=1)
                data = {"StationID": associated[0] if associated else "0",
                        "StartTime": (end - timedelta(days=6)).isoformat(), "EndTime": end.isoformat()}
            req, resp, _ = _raw_call(ep, interface, data, token, transport, timeout)
            ok = resp.get("Ret") == 0 and resp.get("verified") is True
            note = ""
            if ok:
                try:
                    if interface == "query_stations_info":
                        infos = stations_from_page(resp.get("Data") or {})
                        note = f"本页{len(infos)}个充电站 / {len(infos)} stations on page 1"
                    elif interface == "query_station_status":
                        infos = status_infos_from(resp.get("Data") or {})
                        note = f"{len(infos)}个充电站的状态 / status of {len(infos)} stations"
                        if not associated:
                            ok, note = False, "请先在第一步关联充电站 / associate stations in step 1 first"
                    elif not associated:
                        ok, note = False, "请先在第一步关联充电站 / associate stations in step 1 first"
                except ProtocolError as exc:
                    ok, note = False, f"Data格式不符合协议：{exc.msg} / Data does not follow the protocol"
    except (httpx.HTTPError, OSError) as exc:
        res = DebugResult(interface, False, None, "", None, {"error": f"{type(exc).__name__}: {exc}"[:300]},
                          f"{(ep.base_url or '').rstrip('/')}/evcs/{ep.api_version}/{interface}",
                          int((time.monotonic() - t0) * 1000), at,
                          note="无法连接运营商系统 / the operator's system cannot be reached")
        return _save_debug(app, res)
    res = DebugResult(interface, bool(ok), resp.get("Ret"), str(resp.get("Msg") or ""), _trim(req), _trim(resp),
                      req["url"], int((time.monotonic() - t0) * 1000), at, note)
    return _save_debug(app, res)


def _save_debug(app: InterconnectionApplication, res: DebugResult) -> dict[str, Any]:
    ic.record_debug(app, res.interface, res.as_dict())
    return res.as_dict()


# ------------------------------------------------------------------------------------ step 3


def _pull_all(ep: FeedEndpoint, settings: Settings, transport: httpx.BaseTransport | None) -> list[dict]:
    endpoint = Endpoint(ep.operator_id, ep.base_url or "", ep.api_version, _secrets_of(ep))
    out: list[dict] = []
    with FeedClient(endpoint, timeout_s=settings.feed.timeout_s, retries=settings.feed.retries,
                    backoff_s=settings.feed.backoff_s, deadline=time.monotonic() + settings.feed.operator_budget_s,
                    transport=transport) as client:
        for _page, infos in client.iter_station_pages(settings.feed.page_size):
            out.extend(infos)
    return out


def run_check(db: Any, settings: Settings, operator_pk: int, *, transport: httpx.BaseTransport | None = None,
              after_pass: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Step 3: pull everything, compare with the archives, record the report, move the state."""
    with db.session() as s:
        due = ic.due_check(s, operator_pk)
        if due is None:
            return ic.application(s, operator_pk).check_report or {}
        s.expunge_all()
    started = now()
    max_distance_m = settings.supervision.archive_max_distance_m
    try:
        pulled = _pull_all(due.endpoint, settings, transport)
        report = ic.compare(due.stations, due.facilities, pulled, max_distance_m)
    except (FeedError, httpx.HTTPError, OSError) as exc:
        msg = exc.message if isinstance(exc, FeedError) else f"{type(exc).__name__}"
        report = ic.pull_failed_report(msg, len(due.stations), len(due.facilities), max_distance_m)
    report["started_at"] = started.isoformat()
    report["finished_at"] = now().isoformat()
    with db.session() as s:
        if not ic.record_check(s, operator_pk, due.operator_id, report):
            return ic.application(s, operator_pk).check_report or {}
    if report["passed"] and after_pass is not None:
        try:
            after_pass(due.operator_id)
        except Exception:  # noqa: BLE001 - the scheduled sync will pick the operator up anyway
            log.exception("sync after a passed check failed for %s", due.operator_id)
    return report


_RUNNING: dict[int, threading.Thread] = {}
_RUNNING_LOCK = threading.Lock()


def _sync_now(db: Any, settings: Settings) -> Callable[[str], None]:
    def run(operator_id: str) -> None:
        with db.engine.connect() as conn:
            eps = load_endpoints(conn, operator_id)
        for ep in eps:
            sync_operator(db.engine, settings, ep, full=True)

    return run


def start_check(db: Any, settings: Settings, operator_pk: int, *, sync_after: bool = True) -> threading.Thread:
    """Run :func:`run_check` in a background thread (one per operator at a time)."""
    with _RUNNING_LOCK:
        running = _RUNNING.get(operator_pk)
        if running is not None and running.is_alive():
            return running

        def target() -> None:
            try:
                run_check(db, settings, operator_pk, after_pass=_sync_now(db, settings) if sync_after else None)
            except Exception:  # noqa: BLE001 - a failed job leaves the state 'checking' for the next start
                log.exception("interconnection check of operator %s failed", operator_pk)

        t = threading.Thread(target=target, name=f"ic-check-{operator_pk}", daemon=True)
        _RUNNING[operator_pk] = t
        t.start()
        return t


def resume_checks(db: Any, settings: Settings) -> list[int]:
    """Start the checks left in 'checking' (e.g. by a restart)."""
    with db.session() as s:
        pks = ic.checking_operators(s)
    for pk in pks:
        start_check(db, settings, pk)
    return pks


"""The push receiver: T/CEC 102 interfaces the city platform serves to operators.

Framework-free: :meth:`Receiver.handle` takes the interface name, the raw body and the
``Authorization`` header and returns ``(http_status, response envelope)``; the web layer only
routes ``POST /evcs/{version}/{interface}`` to it.

Rules (decided here, documented for operators):

* The envelope's ``OperatorID`` is the operator's own OperatorID; requests are verified and
  answered with the *inbound* secret set we issued to it (``feed_endpoints.inbound_*``).
* ``query_token`` issues an AccessToken valid ``FeedSettings.token_ttl_s``; only its SHA-256 is
  stored (``feed_tokens``), so every app process accepts it.
* Notifications need ``Authorization: Bearer <AccessToken>`` (Ret 4002 otherwise).
* Replay protection: ``TimeStamp`` must lie within ``FeedSettings.timestamp_window_s`` of our
  clock (Ret 4003), and (OperatorID, TimeStamp, Seq) may be used once. The *same* envelope sent
  again (same Sig: a retry whose answer was lost) is acknowledged with Status 0 and changes
  nothing; a *different* envelope reusing the triple is refused with Ret 4003 so the sender
  resends it with a fresh Seq: nothing is acknowledged that was not stored.
* Ret 4001 bad signature, 4002 token, 4003 envelope, 4004 business data (inside ``Data``).
* When the database cannot store the push we answer Ret -1 (HTTP 503): the sender retries.
* The hot pushes (status, orders) are read on the event loop when the sender's secrets and token
  are cached (:meth:`Receiver.handle_async`), and await their batch's commit there; anything that
  needs the database first is answered by :meth:`Receiver.handle` in a worker thread.
* Status pushes arriving together are stored together (group commit, :mod:`ingest.group_commit`):
  one statement and one commit for a batch (``feed_store_status_pushes``, migration 1510), each
  request answered only after that commit. A push alone is one statement (``feed_store_status_push``):
  the same parts, in the same order. Each is: replay check,
  the status at the envelope's TimeStamp (``status_since`` moves only when the value changes; a
  report older than the one held goes to its place in the history and changes nothing else), the
  history row of a change, the station's free count and availability, and the data version bump,
  in one round trip and one transaction. Should the history lack this month's partition (the
  reliability job makes them months ahead), it is made and the push stored on a second try.
* ``notification_stationInfo`` stores one StationInfo like a pull would; a StationInfo that
  breaks the field rules is stored as rejected (never lost) and answered Ret 4004 with the reason.
  When its content changed, ``on_stations_changed`` (set by the app when it runs background
  jobs) pulls the business policies of that station's connectors.
* ``notification_charge_order_info`` and ``check_charge_orders`` (part 3) are
  :mod:`ingest.orders`: each order is checked and stored before the answer (ConfirmResult 0
  accepted, 1 disputed), idempotent on (OperatorID, StartChargeSeq); a day's list is reconciled.
  Orders arriving together are stored together too (``zh_store_orders``, migration 1403).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets as _secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from ingest.crypto import Secrets
from ingest.envelope import build_response, parse_request
from ingest.errors import ProtocolError, Ret
from ingest.group_commit import GroupCommitter
from ingest.objects import CONNECTOR_STATUSES, stations_from_page
from ingest.orders import ORDER_INTERFACES, charge_order_answer, check_orders, read_charge_order
from ingest.replay import claim_envelope
from ingest.retention import prune  # re-exported: it lived here before ingest.retention
from ingest.store import store_station_infos
from services.db import connect_args, is_disconnect, make_engine
from services.orders.store import PendingOrder, check_and_store
from services.reliability.partitions import ensure_partitions, is_missing_partition
from services.settings import Settings
from services.stations.summary import bump_version, refresh_station_summaries

__all__ = ["INTERFACES", "Receiver", "prune"]

log = logging.getLogger("zhcharge.feed.receiver")

INTERFACES = ("query_token", "notification_stationStatus", "notification_stationInfo", *ORDER_INTERFACES)

# Responses to senders we cannot identify are signed with this throwaway set (they cannot verify
# them anyway; the Msg says why).
_ANON = Secrets("", "", "0000000000000000", "0000000000000000", "0000000000000000")


@dataclass(frozen=True)
class _Inbound:
    secrets: Secrets
    name: str
    interconnected: bool


class _Unavailable(Exception):
    """The database could not be reached: answer Ret -1 so the sender retries."""


class _NeedsThread(Exception):
    """On the event loop, something is not cached: answer in a worker thread instead."""


class _State:
    """What a request has revealed so far: its sender (to sign even an error for it)."""

    __slots__ = ("inbound",)

    def __init__(self) -> None:
        self.inbound: _Inbound | None = None


@dataclass(frozen=True)
class _Pending:
    """A push read and checked, to be stored by ``committer`` (or ``alone`` without one); ``finish``
    turns what the store returned into the answer's Data (or raises the protocol error)."""

    committer: GroupCommitter | None
    args: Any
    finish: Callable[[Any], dict]
    alone: Callable[[Any], Any]


#: Answered on the event loop when everything is cached (Receiver.handle_async).
_ON_THE_LOOP = ("notification_stationStatus", "notification_charge_order_info")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Receiver:
    """One per app process: caches inbound secrets and verified tokens, owns the push pool."""

    SECRETS_TTL_S = 10.0

    def __init__(self, engine: Engine, settings: Settings, *, push_engine: Engine | None = None,
                 group_commit: bool = True) -> None:
        self.engine = engine
        self.settings = settings
        self._own_push_engine = push_engine is None
        # The hot path: autocommit, no pre-ping, so a push is exactly one round trip. After a
        # database restart the first use of each stale connection fails (answered Ret -1) and
        # SQLAlchemy invalidates the pool.
        # (services.db.make_engine: behind PgBouncer without the startup options it refuses)
        self.push_engine = push_engine or make_engine(
            settings.db, url=engine.url,
            connect_args=connect_args(settings.db, application_name="zhcharge-receiver", statement_timeout_ms=5000,
                                      connect_timeout=3),
            pool_pre_ping=False, pool_reset_on_return=None, isolation_level="AUTOCOMMIT", pool_recycle=-1,
            # a fixed pool: request threads beyond it wait for a connection rather than open one
            # (an overflow connection was opened and closed per request under load: SCRAM and a
            # backend start each time, more CPU than the push itself)
            pool_size=settings.db.pool_size + settings.db.max_overflow, max_overflow=0, pool_timeout=10)
        self.committer: GroupCommitter | None = None
        self.order_committer: GroupCommitter | None = None
        if group_commit:
            self.committer = GroupCommitter(self.push_engine, self._push_status_alone,
                                            on_missing_partition=self._make_partitions,
                                            is_missing_partition=is_missing_partition)
            self.order_committer = GroupCommitter(self.push_engine, self._order_alone, batch=check_and_store,
                                                  sort_key=lambda p: p.lock_order, max_batch=128,
                                                  name="zhcharge-order-commit")
        self._lock = threading.Lock()
        self._secrets: dict[str, tuple[_Inbound | None, float]] = {}
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self.counts: dict[str, int] = {}
        self.on_stations_changed: Callable[[str, list[int]], None] | None = None
        """Called (operator, station pks) after a pushed StationInfo changed stations."""

    def close(self) -> None:
        for committer in (self.committer, self.order_committer):
            if committer is not None:
                committer.close()
        if self._own_push_engine:
            self.push_engine.dispose()

    # ------------------------------------------------------------------ lookups

    def _inbound(self, operator_id: str, *, fresh: bool = False, cached_only: bool = False) -> _Inbound | None:
        now = time.monotonic()
        with self._lock:
            cached = self._secrets.get(operator_id)
        if cached and cached[1] > now and not fresh:
            return cached[0]
        if cached_only:
            raise _NeedsThread()
        try:
            with self.push_engine.connect() as conn:
                row = conn.execute(text(
                    "SELECT f.inbound_operator_secret, f.inbound_data_secret, f.inbound_data_iv, "
                    "f.inbound_sig_secret, f.enabled, f.interconnected, o.name FROM feed_endpoints f "
                    "JOIN operators o ON o.operator_id = f.operator_id WHERE f.operator_id = :op"),
                    {"op": operator_id}).first()
        except DBAPIError as exc:
            if cached:  # the database is down but we know this operator: we can still answer signed
                return cached[0]
            raise _Unavailable() from exc
        inbound = None
        if row is not None and row.enabled:
            inbound = _Inbound(Secrets(operator_id, row.inbound_operator_secret, row.inbound_data_secret,
                                       row.inbound_data_iv, row.inbound_sig_secret), row.name, row.interconnected)
        with self._lock:
            if len(self._secrets) > 10000:
                self._secrets.clear()
            self._secrets[operator_id] = (inbound, now + (self.SECRETS_TTL_S if inbound else 2.0))
        return inbound

    def _check_token(self, authorization: str | None, operator_id: str, *, cached_only: bool = False) -> None:
        if not authorization or not authorization[:7].lower() == "bearer ":
            raise ProtocolError(Ret.TOKEN, "Authorization: Bearer <AccessToken> is missing; call query_token")
        token = authorization[7:].strip()
        if not token:
            raise ProtocolError(Ret.TOKEN, "the AccessToken is empty; call query_token")
        digest = _hash_token(token)
        now = datetime.now(UTC)
        with self._lock:
            cached = self._tokens.get(digest)
        if cached is None:
            if cached_only:
                raise _NeedsThread()
            try:
                with self.push_engine.connect() as conn:
                    row = conn.execute(text("SELECT operator_id, expires_at FROM feed_tokens WHERE token_hash = :h"),
                                       {"h": digest}).first()
            except DBAPIError as exc:
                raise _Unavailable() from exc
            if row is None:
                raise ProtocolError(Ret.TOKEN, "the AccessToken is unknown; call query_token")
            cached = (row.operator_id, row.expires_at)
            with self._lock:
                if len(self._tokens) > 100000:
                    self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
                self._tokens[digest] = cached
        if not hmac.compare_digest(cached[0], operator_id):
            raise ProtocolError(Ret.TOKEN, "the AccessToken was issued to another OperatorID")
        if cached[1] <= now:
            raise ProtocolError(Ret.TOKEN, "the AccessToken has expired; call query_token")

    # ------------------------------------------------------------------ entry point

    def handle(self, interface: str, body: bytes, authorization: str | None) -> tuple[int, dict]:
        """Answer one request: (HTTP status, signed response envelope). In a worker thread: it may
        wait for the database."""
        state = _State()
        try:
            step = self._begin(state, interface, body, authorization, cached_only=False)
            if isinstance(step, _Pending):
                if step.committer is not None:
                    outcome = step.committer.store(step.args)
                else:
                    outcome = step.alone(step.args)
                step = step.finish(outcome)
            return 200, build_response(Ret.OK, "请求成功", step, state.inbound.secrets)
        except Exception as exc:  # noqa: BLE001 - every failure is an envelope (see _failure)
            return self._failure(state, body, exc)

    async def handle_async(self, interface: str, body: bytes, authorization: str | None) -> tuple[int, dict]:
        """:meth:`handle` on the event loop for the hot pushes (status, orders) when everything it
        needs is cached (the sender's secrets, its token): read and checked here, stored by the group
        committer, whose commit this coroutine awaits without holding a thread; answered only after
        that commit. Anything else, or anything that needs the database first, goes to :meth:`handle`
        in a worker thread."""
        if interface not in _ON_THE_LOOP or self.committer is None or self.order_committer is None:
            return await anyio.to_thread.run_sync(self.handle, interface, body, authorization)
        state = _State()
        try:
            step = self._begin(state, interface, body, authorization, cached_only=True)
            if isinstance(step, _Pending):
                step = step.finish(await step.committer.store_async(step.args))
            return 200, build_response(Ret.OK, "请求成功", step, state.inbound.secrets)
        except _NeedsThread:
            return await anyio.to_thread.run_sync(self.handle, interface, body, authorization)
        except Exception as exc:  # noqa: BLE001 - every failure is an envelope (see _failure)
            if state.inbound is None:  # naming the sender may need the database: nothing was stored
                return await anyio.to_thread.run_sync(self.handle, interface, body, authorization)
            return self._failure(state, body, exc)

    def _begin(self, state: _State, interface: str, body: bytes, authorization: str | None, *,
               cached_only: bool) -> dict | _Pending:
        """Read and verify the request; the answer's Data, or the push to store and how to answer it."""
        def lookup(operator_id: str) -> Secrets | None:
            state.inbound = self._inbound(operator_id, cached_only=cached_only)
            return state.inbound.secrets if state.inbound else None

        if interface not in INTERFACES:
            raise ProtocolError(Ret.BUSINESS, f"unknown interface {interface[:60]!r}; this platform serves "
                                + ", ".join(INTERFACES))
        try:
            parsed = parse_request(body, lookup, window_seconds=self.settings.feed.timestamp_window_s)
        except ProtocolError as exc:
            if exc.ret == Ret.SIGNATURE and state.inbound is not None:
                # The operator may have been re-registered a moment ago: re-read once.
                if cached_only:
                    raise _NeedsThread() from None
                fresh = self._inbound(state.inbound.secrets.operator_id, fresh=True)
                if fresh is not None and fresh.secrets != state.inbound.secrets:
                    state.inbound = fresh
                    parsed = parse_request(body, lambda _op: fresh.secrets,
                                           window_seconds=self.settings.feed.timestamp_window_s)
                else:
                    raise
            else:
                raise
        inbound = state.inbound
        assert inbound is not None
        if interface == "query_token":
            return self._query_token(inbound, parsed.data)
        self._check_token(authorization, parsed.operator_id, cached_only=cached_only)
        if interface == "notification_stationStatus":
            return self._status(inbound, parsed)
        if interface == "notification_stationInfo":
            return self._station_info(inbound, parsed)
        if interface == "notification_charge_order_info":
            pending = read_charge_order(inbound.secrets.operator_id, parsed)
            return _Pending(self.order_committer, pending, lambda result: charge_order_answer(pending, result, parsed),
                            self._order_alone)
        return self._part3(interface, inbound, parsed)

    def _failure(self, state: _State, body: bytes, exc: Exception) -> tuple[int, dict]:
        """The envelope of a failed request: Ret 4001-4004 as raised, Ret -1 (HTTP 503) when the
        database could not store it (the sender retries), Ret 500 for anything else."""
        inbound = state.inbound
        secrets = inbound.secrets if inbound else _ANON
        if isinstance(exc, ProtocolError):
            status = 404 if exc.msg.startswith("unknown interface") else 200
            if inbound is None:
                inbound = self._sender_of(body)
            return status, build_response(exc.ret, exc.msg, None, inbound.secrets if inbound else _ANON)
        if isinstance(exc, (DBAPIError, TimeoutError)) and (isinstance(exc, TimeoutError) or is_disconnect(exc)):
            exc = _Unavailable()
        if isinstance(exc, _Unavailable):
            return 503, build_response(Ret.BUSY, "system busy (storage unavailable), please retry later", None, secrets)
        log.error("push not stored", exc_info=exc)
        return 500, build_response(Ret.SYSTEM, "system error; the notification was not stored", None, secrets)

    def refuse(self, ret: int, msg: str) -> dict:
        """An error envelope for a request refused before it was read (unknown version, oversize)."""
        return build_response(ret, msg, None, _ANON)

    def _sender_of(self, body: bytes) -> _Inbound | None:
        """Best effort: the known sender of a malformed envelope, so our answer is signed for it."""
        try:
            op = json.loads(body).get("OperatorID")
            return self._inbound(op) if isinstance(op, str) and op.isalnum() and 0 < len(op) <= 9 else None
        except Exception:  # noqa: BLE001 - anything malformed just gets an unsigned-for-you answer
            return None

    # ------------------------------------------------------------------ interfaces

    def _query_token(self, inbound: _Inbound, data: Any) -> dict:
        data = data if isinstance(data, dict) else {}
        op = inbound.secrets.operator_id
        claimed = str(data.get("OperatorID") or "")
        out = {"OperatorID": claimed or op, "SuccStat": 1, "AccessToken": "", "TokenAvailableTime": 0,
               "FailReason": 0}
        if claimed != op:
            return {**out, "FailReason": 1}
        given = str(data.get("OperatorSecret") or "")
        if not hmac.compare_digest(given.encode("utf-8"), inbound.secrets.operator_secret.encode("utf-8")):
            return {**out, "FailReason": 2}
        token = _secrets.token_hex(16).upper()
        ttl = max(60, min(self.settings.feed.token_ttl_s, 7 * 86400))
        expires = datetime.now(UTC) + timedelta(seconds=ttl)
        try:
            with self.push_engine.connect() as conn:
                conn.execute(text("INSERT INTO feed_tokens (token_hash, operator_id, expires_at) VALUES (:h, :op, :e)"),
                             {"h": _hash_token(token), "op": op, "e": expires})
        except DBAPIError as exc:
            raise _Unavailable() from exc
        with self._lock:
            self._tokens[_hash_token(token)] = (op, expires)
        return {**out, "SuccStat": 0, "AccessToken": token, "TokenAvailableTime": ttl}

    def _status(self, inbound: _Inbound, parsed: Any) -> _Pending:
        data = parsed.data if isinstance(parsed.data, dict) else None
        info = data.get("ConnectorStatusInfo") if data else None
        if isinstance(info, list) and len(info) == 1:
            info = info[0]
        if not isinstance(info, dict):
            raise ProtocolError(Ret.BUSINESS, "Data must carry ConnectorStatusInfo (an object)")
        cid = info.get("ConnectorID")
        if isinstance(cid, int) and not isinstance(cid, bool):
            cid = str(cid)
        if not isinstance(cid, str) or not cid.strip() or len(cid) > 26:
            raise ProtocolError(Ret.BUSINESS, "ConnectorStatusInfo.ConnectorID is required (at most 26 characters)")
        status = _small(info.get("Status"))
        if status is None or status not in CONNECTOR_STATUSES:
            allowed = ", ".join(str(v) for v in CONNECTOR_STATUSES)
            raise ProtocolError(Ret.BUSINESS, f"ConnectorStatusInfo.Status {info.get('Status')!r} is not one of {allowed}")
        park, lock = _small(info.get("ParkStatus")), _small(info.get("LockStatus"))
        op = inbound.secrets.operator_id
        args = (op, parsed.timestamp, parsed.seq, parsed.raw["Sig"], cid, status, park, lock)

        def answer(outcome: str) -> dict:
            if outcome == "seq_reused":
                raise ProtocolError(Ret.ENVELOPE, f"Seq {parsed.seq} was already used by another notification in "
                                    f"second {parsed.raw['TimeStamp']}; Seq must count up within a second (resend "
                                    "with a new Seq)")
            with self._lock:
                self.counts[op] = self.counts.get(op, 0) + 1
            return {"Status": 0}

        return _Pending(self.committer, args, answer, self._push_status_alone)

    def _push_status_alone(self, args: tuple) -> str:
        """One push in one statement (the path without group commit, and a failed batch's fallback)."""
        try:
            return self._push_status(args)
        except DBAPIError as exc:
            if not is_missing_partition(exc):
                raise
            self._make_partitions()
            return self._push_status(args)

    def _order_alone(self, pending: PendingOrder) -> tuple | Exception:
        with self.push_engine.connect() as conn:
            return check_and_store(conn, [pending])[0]

    def _make_partitions(self) -> None:
        with self.engine.begin() as conn:
            ensure_partitions(conn, datetime.now(UTC))

    def _push_status(self, args: tuple) -> str:
        with self.push_engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT feed_store_status_push(%s, %s, %s, %s, %s, %s::smallint, %s::smallint, %s::smallint)",
                args).scalar()

    def _station_info(self, inbound: _Inbound, parsed: Any) -> dict:
        data = parsed.data if isinstance(parsed.data, dict) else None
        if data is None:
            raise ProtocolError(Ret.BUSINESS, "Data must be a StationInfo object")
        try:
            stations = stations_from_page(data) if ("StationInfo" in data or "StationInfos" in data) \
                else stations_from_page({"StationInfos": data})
        except ProtocolError:
            raise
        if len(stations) != 1 or not isinstance(stations[0], dict) or not stations[0].get("StationID"):
            raise ProtocolError(Ret.BUSINESS, "Data must carry exactly one StationInfo with a StationID")
        op = inbound.secrets.operator_id
        try:
            with self.engine.begin() as conn:
                if not claim_envelope(conn, op, parsed):
                    return {"Status": 0}
                counts = store_station_infos(conn, op, inbound.name, stations, interconnected=inbound.interconnected,
                                             city_adcode=self.settings.app.city_adcode)
                changed = refresh_station_summaries(conn, counts.touched)
                if counts.touched or changed:
                    bump_version(conn, "stations")
                reason = None
                if counts.rejected:
                    reason = conn.execute(text("SELECT reject_reason FROM stations WHERE operator_id = :op AND "
                                               "station_id = :sid"), {"op": op, "sid": stations[0]["StationID"]}).scalar()
        except DBAPIError as exc:
            if is_disconnect(exc):
                raise _Unavailable() from exc
            raise
        if counts.touched and not counts.rejected and self.on_stations_changed is not None:
            self.on_stations_changed(op, list(counts.touched))
        if reason:
            raise ProtocolError(Ret.BUSINESS, f"stored as rejected: {reason}"[:500])
        return {"Status": 0}

    def _part3(self, interface: str, inbound: _Inbound, parsed: Any) -> dict:
        try:
            return check_orders(self.engine, inbound.secrets.operator_id, parsed)
        except DBAPIError as exc:
            if is_disconnect(exc):
                raise _Unavailable() from exc
            raise
        except TimeoutError as exc:  # not known to be stored: the sender retries
            raise _Unavailable() from exc


def _small(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and -32768 <= value <= 32767 else None

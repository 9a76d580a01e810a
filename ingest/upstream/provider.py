"""zhcharge as a data provider: the T/CEC 102 queries a registered higher platform calls.

Framework-free like :class:`ingest.receiver.Receiver`: :meth:`Provider.dispatch` takes the
interface, the raw body and the ``Authorization`` header, and answers ``(http_status, envelope)``
when the caller is a registered platform, or ``None`` so the request goes to the receiver (the
operators' side of ``/evcs/...``).

Rules (documented for the platforms in the README, "Upward feed"):

* A request is a platform's when its envelope ``OperatorID`` is a registered platform's
  (``upstream_platforms.platform_id``), on ``query_token`` and the four queries; the operators'
  notifications never come here, so the push hot path does no extra work. Requests are verified
  (signature first, then decryption and the TimeStamp window, ``ingest.envelope.parse_request``)
  and answered with the inbound secrets we issued to the platform.
* ``query_token`` issues an AccessToken valid ``UpstreamSettings.token_ttl_s`` (at most 7 days);
  only its SHA-256 is stored (``upstream_tokens``), as the receiver does for operators
  (``feed_tokens``), so every app process accepts it. The queries need
  ``Authorization: Bearer <AccessToken>``: missing, unknown, expired or another platform's is Ret 4002.
* Ret 4001 bad signature, 4003 envelope, 4004 business data (the Msg names the field); the
  database unreachable is Ret -1 (HTTP 503); anything else Ret 500, logged, never a trace.
* Queries are read-only and may be repeated, so there is no replay bookkeeping; each reads one
  REPEATABLE READ snapshot (a page's count and items agree).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets as _secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from ingest.crypto import Secrets
from ingest.envelope import build_response, parse_request
from ingest.errors import ProtocolError, Ret
from ingest.times import parse_query_time
from ingest.upstream.business import connector_policy, station_stats
from ingest.upstream.platforms import Platform, find_platform
from ingest.upstream.stations import station_statuses, stations_page
from services.db import is_disconnect
from services.settings import Settings

__all__ = ["INTERFACES", "MAX_STATION_IDS", "Provider"]

log = logging.getLogger("zhcharge.upstream.provider")

INTERFACES = ("query_token", "query_stations_info", "query_station_status", "query_station_stats",
              "query_equip_business_policy")
MAX_STATION_IDS = 50
_MAX_INT = 2**31 - 1
_OK = "请求成功"
_BUSY = "system busy (storage unavailable), please retry later"
# answers to requests whose platform cannot be read are signed with this throwaway set
_ANON = Secrets("", "", "0000000000000000", "0000000000000000", "0000000000000000")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _peek_operator_id(body: bytes) -> str | None:
    """The envelope's OperatorID, or None when the body is not a JSON object carrying a string one."""
    try:
        env = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    op = env.get("OperatorID") if isinstance(env, dict) else None
    return op if isinstance(op, str) and 0 < len(op) <= 32 else None


# ------------------------------------------------------------------ business parameters

def _int(data: dict, name: str, default: int, low: int = 1) -> int:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,12}\s*", value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProtocolError(Ret.BUSINESS, f"{name} must be an integer, got {str(value)[:40]!r}")
    if not low <= value <= _MAX_INT:
        raise ProtocolError(Ret.BUSINESS, f"{name} must be from {low} to {_MAX_INT}, got {value}")
    return value


def _text(data: dict, name: str, limit: int) -> str:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(Ret.BUSINESS, f"{name} is required (a string of at most {limit} characters)")
    if len(value) > limit:
        raise ProtocolError(Ret.BUSINESS, f"{name} is {len(value)} characters long, the limit is {limit}")
    return value.strip()


def _day(data: dict, name: str) -> date:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError(Ret.BUSINESS, f"{name} is required (yyyy-MM-dd, a China date)")
    try:
        return datetime.strptime(value.strip()[:10], "%Y-%m-%d").date()
    except ValueError:
        raise ProtocolError(Ret.BUSINESS, f"{name} {value[:40]!r} is not a date yyyy-MM-dd") from None


def _station_ids(data: dict) -> list[str]:
    ids = data.get("StationIDs")
    if isinstance(ids, (str, int)) and not isinstance(ids, bool):
        ids = [ids]
    if not isinstance(ids, list) or not ids:
        raise ProtocolError(Ret.BUSINESS, "StationIDs is required: an array of 1 to 50 StationIDs")
    if len(ids) > MAX_STATION_IDS:
        raise ProtocolError(Ret.BUSINESS, f"StationIDs holds {len(ids)} StationIDs; at most {MAX_STATION_IDS} "
                            "per query_station_status")
    out = []
    for i, sid in enumerate(ids):
        if isinstance(sid, int) and not isinstance(sid, bool):
            sid = str(sid)
        if not isinstance(sid, str) or not sid.strip() or len(sid) > 20:
            raise ProtocolError(Ret.BUSINESS, f"StationIDs[{i}] must be a StationID (a string of 1 to 20 characters)")
        out.append(sid.strip())
    return out


class Provider:
    """One per app process; stateless apart from its engine and settings."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._handlers: dict[str, Callable[[Connection, dict], dict]] = {
            "query_stations_info": self._stations_info, "query_station_status": self._station_status,
            "query_station_stats": self._station_stats, "query_equip_business_policy": self._policy}

    # ------------------------------------------------------------------ entry point

    def dispatch(self, interface: str, body: bytes, authorization: str | None) -> tuple[int, dict] | None:
        """Answer a registered platform's request; ``None`` when the caller is not one."""
        if interface not in INTERFACES:
            return None
        op = _peek_operator_id(body)
        if op is None:
            return None
        try:
            with self.engine.connect() as conn:
                platform = find_platform(conn, op)
        except SQLAlchemyError:
            if interface == "query_token":  # may be an operator's: the receiver answers for itself
                return None
            return 503, build_response(Ret.BUSY, _BUSY, None, _ANON)
        if platform is None:
            return None
        return self.handle(platform, interface, body, authorization)

    def handle(self, platform: Platform, interface: str, body: bytes, authorization: str | None) -> tuple[int, dict]:
        """Verify, answer and sign one request of ``platform``."""
        secrets = platform.inbound
        try:
            parsed = parse_request(body, lambda op: secrets if op == platform.platform_id else None,
                                   window_seconds=self.settings.feed.timestamp_window_s)
            if interface == "query_token":
                return 200, build_response(Ret.OK, _OK, self._query_token(platform, parsed.data), secrets)
            if not isinstance(parsed.data, dict):
                raise ProtocolError(Ret.BUSINESS, "Data must be a JSON object")
            with self.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    self._check_token(conn, platform, authorization)
                    data = self._handlers[interface](conn, parsed.data)
            return 200, build_response(Ret.OK, _OK, data, secrets)
        except ProtocolError as exc:
            return 200, build_response(exc.ret, exc.msg, None, secrets)
        except SQLAlchemyError as exc:
            if isinstance(exc, DBAPIError) and is_disconnect(exc):
                return 503, build_response(Ret.BUSY, _BUSY, None, secrets)
            log.exception("upstream %s %s failed", platform.platform_id, interface)
            return 500, build_response(Ret.SYSTEM, "system error", None, secrets)
        except Exception:  # noqa: BLE001 - never a stack trace to a peer
            log.exception("upstream %s %s failed", platform.platform_id, interface)
            return 500, build_response(Ret.SYSTEM, "system error", None, secrets)

    # ------------------------------------------------------------------ tokens

    def _query_token(self, platform: Platform, data: Any) -> dict:
        data = data if isinstance(data, dict) else {}
        claimed = str(data.get("OperatorID") or "")
        out = {"OperatorID": claimed or platform.platform_id, "SuccStat": 1, "AccessToken": "",
               "TokenAvailableTime": 0, "FailReason": 0}
        if claimed != platform.platform_id:
            return {**out, "FailReason": 1}
        given = str(data.get("OperatorSecret") or "")
        if not hmac.compare_digest(given.encode("utf-8"), platform.inbound.operator_secret.encode("utf-8")):
            return {**out, "FailReason": 2}
        token = _secrets.token_hex(16).upper()
        ttl = max(60, min(self.settings.upstream.token_ttl_s, 7 * 86400))
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM upstream_tokens WHERE platform_pk = :pk AND expires_at < now()"),
                         {"pk": platform.pk})
            conn.execute(text("INSERT INTO upstream_tokens (token_hash, platform_pk, expires_at) VALUES (:h, :pk, :e)"),
                         {"h": _hash(token), "pk": platform.pk, "e": datetime.now(UTC) + timedelta(seconds=ttl)})
            conn.execute(text("UPDATE upstream_platforms SET last_token_at = now() WHERE id = :pk"), {"pk": platform.pk})
        return {**out, "SuccStat": 0, "AccessToken": token, "TokenAvailableTime": ttl}

    @staticmethod
    def _check_token(conn: Connection, platform: Platform, authorization: str | None) -> None:
        auth = (authorization or "").strip()
        token = auth[7:].strip() if auth[:7].lower() == "bearer " else auth
        if not token:
            raise ProtocolError(Ret.TOKEN, "Authorization: Bearer <AccessToken> is missing; call query_token")
        row = conn.execute(text("SELECT platform_pk, expires_at > now() AS valid FROM upstream_tokens "
                                "WHERE token_hash = :h"), {"h": _hash(token)}).first()
        if row is None or row.platform_pk != platform.pk:
            raise ProtocolError(Ret.TOKEN, "the AccessToken is unknown; call query_token")
        if not row.valid:
            raise ProtocolError(Ret.TOKEN, "the AccessToken has expired; call query_token")

    # ------------------------------------------------------------------ queries

    def _stations_info(self, conn: Connection, data: dict) -> dict:
        last = data.get("LastQueryTime")
        if last is not None and not isinstance(last, str):
            raise ProtocolError(Ret.BUSINESS, "LastQueryTime must be a string yyyy-MM-dd HH:mm:ss (China time) "
                                "or empty")
        try:
            since = parse_query_time(last)
        except ProtocolError:
            raise ProtocolError(Ret.BUSINESS, f"LastQueryTime {str(last)[:40]!r} is not in the form "
                                "yyyy-MM-dd HH:mm:ss (China time)") from None
        page_no = _int(data, "PageNo", 1)
        page_size = min(_int(data, "PageSize", 10), self.settings.upstream.max_page_size)
        return stations_page(conn, since=since, page_no=page_no, page_size=page_size)

    def _station_status(self, conn: Connection, data: dict) -> dict:
        infos = station_statuses(conn, _station_ids(data))
        return {"Total": len(infos), "StationStatusInfos": infos}

    def _station_stats(self, conn: Connection, data: dict) -> dict:
        station_id = _text(data, "StationID", 20)
        start, end = _day(data, "StartTime"), _day(data, "EndTime")
        if end < start:
            raise ProtocolError(Ret.BUSINESS, f"EndTime {end} is before StartTime {start}")
        days = self.settings.upstream.max_stats_days
        if (end - start).days + 1 > days:
            raise ProtocolError(Ret.BUSINESS, f"StartTime to EndTime spans more than {days} days")
        stats = station_stats(conn, station_id, start, end)
        if stats is None:
            raise ProtocolError(Ret.BUSINESS, f"StationID {station_id!r} is not a station of this platform")
        return {"StationStats": stats}

    def _policy(self, conn: Connection, data: dict) -> dict:
        seq = _text(data, "EquipBizSeq", 64)
        connector_id = _text(data, "ConnectorID", 26)
        fail, periods = connector_policy(conn, connector_id)
        return {"EquipBizSeq": seq, "ConnectorID": connector_id, "SuccStat": 1 if fail else 0, "FailReason": fail,
                "SumPeriod": len(periods), "PolicyInfos": periods}

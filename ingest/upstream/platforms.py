"""The higher platforms zhcharge serves (``upstream_platforms``): registering one, finding the one
behind a request, and where and how we push to it.

A platform calls us with its own OperatorID (``platform_id``) and the *inbound* secrets we issued
to it: random 16-character values made once and kept when it is registered again, so a
re-registration never breaks its calls. It may give us a push URL and the secrets it issued to us;
our envelopes to it then carry our own OperatorID (``ZHCHARGE_OPERATOR_ID``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ingest.client import Endpoint
from ingest.crypto import Secrets
from services.errors import BadRequest
from services.feed.endpoints import InboundCredentials, random_secret

__all__ = ["Platform", "find_platform", "list_platforms", "push_platforms", "register_platform", "remove_platform"]

#: what an envelope's OperatorID may be (ingest.envelope): 9 characters by the standard, up to 32
_PLATFORM_ID = re.compile(r"[0-9A-Za-z_-]{1,32}")
_VERSION = re.compile(r"v?\d{8}")


@dataclass(frozen=True)
class Platform:
    """A registered platform: the secrets it calls us with, and how we push to it (if we do)."""

    pk: int
    platform_id: str
    name: str
    inbound: Secrets
    push_base_url: str | None = None
    api_version: str = "v20160701"
    their_operator_id: str | None = None
    outbound: tuple[str, str, str, str] | None = None
    """(OperatorSecret, DataSecret, DataSecretIV, SigSecret) it issued to us, for our pushes."""

    def push_endpoint(self, our_operator_id: str) -> Endpoint | None:
        """How :class:`ingest.client.FeedClient` reaches it: our envelopes carry ``our_operator_id``."""
        if not self.push_base_url or self.outbound is None:
            return None
        return Endpoint(self.their_operator_id or self.platform_id, self.push_base_url, self.api_version,
                        Secrets(our_operator_id, *self.outbound))


_COLUMNS = ("id, platform_id, name, inbound_operator_secret, inbound_data_secret, inbound_data_iv, "
            "inbound_sig_secret, push_base_url, api_version, their_operator_id, operator_secret, data_secret, "
            "data_iv, sig_secret")


def _platform(row: Any) -> Platform:
    outbound = None
    if row.push_base_url:
        outbound = (row.operator_secret, row.data_secret, row.data_iv, row.sig_secret)
    return Platform(row.id, row.platform_id, row.name,
                    Secrets(row.platform_id, row.inbound_operator_secret, row.inbound_data_secret,
                            row.inbound_data_iv, row.inbound_sig_secret),
                    row.push_base_url, row.api_version, row.their_operator_id, outbound)


def find_platform(conn: Connection, platform_id: str) -> Platform | None:
    """The enabled platform whose OperatorID is ``platform_id``, or None."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM upstream_platforms WHERE platform_id = :p AND enabled"),
                       {"p": platform_id}).first()
    return _platform(row) if row is not None else None


def push_platforms(conn: Connection) -> list[Platform]:
    """The enabled platforms that take pushes and are not waiting out a backoff, oldest first."""
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM upstream_platforms WHERE enabled AND push_base_url IS NOT NULL "
                             "AND (push_next_at IS NULL OR push_next_at <= now()) ORDER BY id"))
    return [_platform(r) for r in rows]


def _sixteen(name: str, value: str) -> None:
    if not value.isascii() or len(value) != 16:
        raise BadRequest(f"{name} must be 16 ASCII characters (AES-128 keys are used as raw bytes)", param=name)


def _push_url(url: str, api_version: str) -> tuple[str, str]:
    """The part before ``/evcs/...`` and the version; a URL given up to the version, or up to an
    interface, is accepted too."""
    if not re.match(r"https?://[^/\s]+", url):
        raise BadRequest("push-base-url must be an http(s) URL: the part before /evcs/<version>/...",
                         param="push_base_url")
    url = url.rstrip("/")
    m = re.search(r"/evcs/(v?\d{8})(/[A-Za-z_]+)?$", url)
    if m:
        return url[: m.start()], m.group(1)
    return url, api_version


def register_platform(conn: Connection, *, platform_id: str, name: str, push_base_url: str | None = None,
                      their_operator_id: str | None = None, operator_secret: str | None = None,
                      data_secret: str | None = None, data_iv: str | None = None, sig_secret: str | None = None,
                      api_version: str = "v20160701") -> tuple[InboundCredentials, bool]:
    """Create or update a platform; returns (the inbound credentials it calls us with, created).

    The push settings are replaced on every call (given all together, or none: then we do not
    push to it); the inbound credentials are generated once and kept. An OperatorID that is a
    registered operator's is refused: a request could not say which of the two is calling.
    """
    if not _PLATFORM_ID.fullmatch(platform_id or ""):
        raise BadRequest("platform-id must be the OperatorID the platform calls us with: 1 to 32 letters, digits, "
                         "'-' or '_' (normally its 9-character organisation code)", param="platform_id")
    if not name or len(name) > 100:
        raise BadRequest("name must be 1 to 100 characters", param="name")
    if not _VERSION.fullmatch(api_version or ""):
        raise BadRequest("api-version must look like v20160701", param="api_version")
    given = {"operator-secret": operator_secret, "data-secret": data_secret, "data-iv": data_iv,
             "sig-secret": sig_secret}
    if push_base_url:
        missing = [k for k, v in given.items() if not v]
        if missing:
            raise BadRequest("--push-base-url needs the secrets the platform issued to us: --"
                             + ", --".join(missing) + " missing", param=missing[0].replace("-", "_"))
        push_base_url, api_version = _push_url(push_base_url, api_version)
        _sixteen("data-secret", data_secret or "")
        _sixteen("data-iv", data_iv or "")
        for key in ("operator-secret", "sig-secret"):
            if len(given[key] or "") > 64:
                raise BadRequest(f"{key} must be 1 to 64 characters", param=key.replace("-", "_"))
        if their_operator_id is not None and not _PLATFORM_ID.fullmatch(their_operator_id):
            raise BadRequest("their-operator-id must be 1 to 32 letters, digits, '-' or '_'",
                             param="their_operator_id")
    elif their_operator_id or any(given.values()):
        raise BadRequest("the platform's OperatorID and secrets are for pushing to it: give --push-base-url too",
                         param="push_base_url")
    if conn.execute(text("SELECT 1 FROM operators WHERE operator_id = :p"), {"p": platform_id}).first():
        raise BadRequest(f"{platform_id} is a charging operator's OperatorID; a platform needs an OperatorID of its "
                         "own (requests are told apart by it)", param="platform_id")
    row = conn.execute(text("""
        INSERT INTO upstream_platforms (platform_id, name, inbound_operator_secret, inbound_data_secret,
                                        inbound_data_iv, inbound_sig_secret, push_base_url, api_version,
                                        their_operator_id, operator_secret, data_secret, data_iv, sig_secret)
        VALUES (:p, :name, :ios, :ids, :iiv, :iss, :url, :ver, :their, :os, :ds, :iv, :ss)
        ON CONFLICT (platform_id) DO UPDATE SET
            name = EXCLUDED.name, push_base_url = EXCLUDED.push_base_url, api_version = EXCLUDED.api_version,
            their_operator_id = EXCLUDED.their_operator_id, operator_secret = EXCLUDED.operator_secret,
            data_secret = EXCLUDED.data_secret, data_iv = EXCLUDED.data_iv, sig_secret = EXCLUDED.sig_secret,
            enabled = true, push_failures = 0, push_next_at = NULL, updated_at = now()
        RETURNING id, inbound_operator_secret, inbound_data_secret, inbound_data_iv, inbound_sig_secret,
                  (xmax = 0) AS created
    """), {"p": platform_id, "name": name, "ios": random_secret(), "ids": random_secret(), "iiv": random_secret(),
           "iss": random_secret(), "url": push_base_url or None, "ver": api_version,
           "their": their_operator_id if push_base_url else None, "os": operator_secret if push_base_url else None,
           "ds": data_secret if push_base_url else None, "iv": data_iv if push_base_url else None,
           "ss": sig_secret if push_base_url else None}).one()
    if not push_base_url:  # no longer pushed to: nothing left to send
        conn.execute(text("DELETE FROM upstream_push_queue WHERE platform_pk = :pk"), {"pk": row.id})
    creds = InboundCredentials(platform_id, row.inbound_operator_secret, row.inbound_data_secret,
                               row.inbound_data_iv, row.inbound_sig_secret)
    return creds, bool(row.created)


def remove_platform(conn: Connection, platform_id: str) -> bool:
    """Forget a platform, its tokens and what was still to be pushed to it; False when unknown."""
    return conn.execute(text("DELETE FROM upstream_platforms WHERE platform_id = :p"),
                        {"p": platform_id}).rowcount > 0


def list_platforms(conn: Connection) -> list[dict[str, Any]]:
    """Every platform without its secrets: how it is pushed to, how the pushes go, when it last asked for a token."""
    rows = conn.execute(text("""
        SELECT p.platform_id, p.name, p.enabled, p.push_base_url, p.api_version, p.their_operator_id,
               p.pushed, p.push_ok_at, p.push_failures, p.push_next_at, p.push_error, p.last_token_at, p.created_at,
               (SELECT count(*) FROM upstream_push_queue q WHERE q.platform_pk = p.id) AS queued
        FROM upstream_platforms p ORDER BY p.platform_id"""))
    return [dict(r._mapping) for r in rows]

"""An operator's feed endpoint: registering the platform we pull from and the credentials it pushes with.

Plain database work on ``operators`` and ``feed_endpoints``, used by the B5 docking form
(:mod:`services.archives.interconnection`), the ``zhcharge feed register`` command and the demo
loader. The inbound credentials (what the operator signs its pushes with) are random 16-character
values, generated once and kept.
"""

from __future__ import annotations

import re
import secrets as _secrets
import string
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from services.errors import BadRequest

__all__ = ["InboundCredentials", "random_secret", "register_operator"]

_ALPHABET = string.ascii_letters + string.digits
_OPERATOR_ID = re.compile(r"[0-9A-Za-z]{1,9}")


def random_secret() -> str:
    """16 random letters and digits: one inbound secret (AES keys are used as raw ASCII bytes)."""
    return "".join(_secrets.choice(_ALPHABET) for _ in range(16))


@dataclass(frozen=True)
class InboundCredentials:
    """What the operator uses to push to us (its envelope OperatorID is its own OperatorID)."""

    operator_id: str
    operator_secret: str
    data_secret: str
    data_iv: str
    sig_secret: str

    def as_dict(self) -> dict[str, str]:
        return {"operator_id": self.operator_id, "operator_secret": self.operator_secret,
                "data_secret": self.data_secret, "data_iv": self.data_iv, "sig_secret": self.sig_secret}


def _check_16(name: str, value: str) -> None:
    if len(value.encode("ascii", "replace")) != 16 or not value.isascii():
        raise BadRequest(f"{name} must be 16 ASCII characters (AES-128 keys are used as raw bytes)", param=name)


def register_operator(conn: Connection, *, operator_id: str, name: str, base_url: str, platform_operator_id: str,
                      operator_secret: str, data_secret: str, data_iv: str, sig_secret: str,
                      api_version: str = "v20160701", interconnected: bool = True) -> tuple[InboundCredentials, bool]:
    """Create or update an operator and its feed endpoint; returns (inbound credentials, created).

    The pull settings are replaced on every call; the inbound credentials are generated once
    (fresh random 16-character values) and kept, so re-registering never breaks the operator's pushes.
    """
    if not _OPERATOR_ID.fullmatch(operator_id or ""):
        raise BadRequest("operator-id must be the operator's OperatorID: 1 to 9 letters or digits "
                         "(normally the 9-character organisation code)", param="operator_id")
    if not name or len(name) > 100:
        raise BadRequest("name must be 1 to 100 characters", param="name")
    if not re.match(r"https?://[^/\s]+", base_url or ""):
        raise BadRequest("base-url must be an http(s) URL, the part before /evcs/... (or before /query_token)",
                         param="base_url")
    base_url = base_url.rstrip("/")
    m = re.search(r"/evcs/(v?\d{8})(/query_token)?$", base_url) or re.search(r"/(query_token)$", base_url)
    if m:  # accept a base URL given up to the version or up to /query_token
        if m.group(1) and m.group(1) != "query_token":
            api_version = m.group(1)
        base_url = base_url[: m.start()]
    if not platform_operator_id or len(platform_operator_id) > 32:
        raise BadRequest("our-operator-id must be 1 to 32 characters", param="platform_operator_id")
    if not operator_secret or len(operator_secret) > 64:
        raise BadRequest("operator-secret must be 1 to 64 characters", param="operator_secret")
    _check_16("data-secret", data_secret)
    _check_16("data-iv", data_iv)
    if not sig_secret or len(sig_secret) > 64:
        raise BadRequest("sig-secret must be 1 to 64 characters", param="sig_secret")

    conn.execute(text("INSERT INTO operators (operator_id, name) VALUES (:op, :name) "
                      "ON CONFLICT (operator_id) DO UPDATE SET name = EXCLUDED.name, updated_at = now() "
                      "WHERE operators.name IS DISTINCT FROM EXCLUDED.name"), {"op": operator_id, "name": name})
    row = conn.execute(text("""
        INSERT INTO feed_endpoints (operator_id, base_url, api_version, platform_operator_id, operator_secret,
                                    data_secret, data_iv, sig_secret, inbound_operator_secret, inbound_data_secret,
                                    inbound_data_iv, inbound_sig_secret, enabled, interconnected)
        VALUES (:op, :base, :ver, :pid, :os, :ds, :iv, :ss, :ios, :ids, :iiv, :iss, true, :ic)
        ON CONFLICT (operator_id) DO UPDATE SET
            base_url = EXCLUDED.base_url, api_version = EXCLUDED.api_version,
            platform_operator_id = EXCLUDED.platform_operator_id, operator_secret = EXCLUDED.operator_secret,
            data_secret = EXCLUDED.data_secret, data_iv = EXCLUDED.data_iv, sig_secret = EXCLUDED.sig_secret,
            enabled = true, interconnected = EXCLUDED.interconnected,
            circuit_state = 'closed', circuit_failures = 0, circuit_opened_at = NULL, updated_at = now()
        RETURNING inbound_operator_secret, inbound_data_secret, inbound_data_iv, inbound_sig_secret,
                  (xmax = 0) AS created
    """), {"op": operator_id, "base": base_url, "ver": api_version, "pid": platform_operator_id,
           "os": operator_secret, "ds": data_secret, "iv": data_iv, "ss": sig_secret,
           "ios": random_secret(), "ids": random_secret(), "iiv": random_secret(), "iss": random_secret(),
           "ic": interconnected}).one()
    creds = InboundCredentials(operator_id, row.inbound_operator_secret, row.inbound_data_secret,
                               row.inbound_data_iv, row.inbound_sig_secret)
    return creds, bool(row.created)


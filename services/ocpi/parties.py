"""Who talks OCPI with us, and under which party each charging operator publishes.

**Client parties** (``ocpi_parties``, migration 1600): an eMSP, hub or app that may read our
Locations and Tariffs, known by its ``country_code`` and ``party_id``, with one credentials
token. ``zhcharge ocpi add-party`` creates it (or gives it a new token) and prints the token once;
only its SHA-256 is stored (a 256-bit random bearer token: a plain hash makes a stolen table
useless and lets a request find its party by an index lookup). Requests carry
``Authorization: Token <Base64 of the token>`` (OCPI 2.2.1) or the raw token (OCPI 2.1.1/2.2
clients); both are looked up in one statement.

**Publishing parties** (``ocpi_cpo_parties``): in OCPI 2.2 a platform publishes for several
CPOs, each object carrying its owner's ``country_code``/``party_id``. Each charging operator gets
one ``party_id`` the first time its stations are published, kept for good: the last three
characters of its OperatorID when they are letters or digits and still free (the organisation
code's tail: ``MA5ABCD21`` → ``D21``), otherwise three characters of a hash of the OperatorID.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from services.errors import BadRequest, NotFound
from services.ocpi.errors import bad_credentials

__all__ = ["ClientParty", "PARTY_LOCK", "add_party", "authenticate", "hash_token", "list_parties", "party_candidates",
           "publishing_parties", "revoke_party", "token_candidates"]

PARTY_LOCK = 0x7A68_1600  # pg advisory lock while publishing parties are assigned
_COUNTRY = re.compile(r"[A-Z]{2}")
_PARTY = re.compile(r"[A-Z0-9]{3}")
_B36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MAX_HEADER = 1024


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ClientParty:
    id: int
    country_code: str
    party_id: str
    name: str


# --- client parties -----------------------------------------------------------------------------
def _check_party(country_code: str, party_id: str, name: str) -> tuple[str, str, str]:
    cc, pid, nm = (country_code or "").strip().upper(), (party_id or "").strip().upper(), (name or "").strip()
    if not _COUNTRY.fullmatch(cc):
        raise BadRequest("--country-code must be an ISO 3166-1 alpha-2 code (two letters), e.g. CN",
                         param="country_code")
    if not _PARTY.fullmatch(pid):
        raise BadRequest("--party-id must be three letters or digits (OCPI CiString(3)), e.g. ABC", param="party_id")
    if not 0 < len(nm) <= 100:
        raise BadRequest("--name must have 1 to 100 characters", param="name")
    return cc, pid, nm


def add_party(conn: Any, country_code: str, party_id: str, name: str) -> tuple[ClientParty, str]:
    """Create the party (or, when it exists, rename it and replace its token: the old one stops working
    at once, a revoked party is reinstated); returns it and its new token, shown only now."""
    cc, pid, nm = _check_party(country_code, party_id, name)
    token = secrets.token_urlsafe(32)
    row = conn.execute(text(
        "INSERT INTO ocpi_parties (country_code, party_id, name, token_hash) VALUES (:cc, :pid, :n, :h) "
        "ON CONFLICT (country_code, party_id) DO UPDATE SET name = EXCLUDED.name, token_hash = EXCLUDED.token_hash, "
        "token_issued_at = now(), revoked_at = NULL RETURNING id"),
        {"cc": cc, "pid": pid, "n": nm, "h": hash_token(token)}).scalar_one()
    return ClientParty(row, cc, pid, nm), token


def revoke_party(conn: Any, country_code: str, party_id: str) -> datetime:
    """Revoke a party's token (idempotent); its requests get 401 from then on."""
    at = conn.execute(text(
        "UPDATE ocpi_parties SET revoked_at = coalesce(revoked_at, now()) "
        "WHERE country_code = :cc AND party_id = :pid RETURNING revoked_at"),
        {"cc": (country_code or "").strip().upper(), "pid": (party_id or "").strip().upper()}).scalar()
    if at is None:
        raise NotFound(f"no OCPI party {country_code}*{party_id}")
    return at


def list_parties(conn: Any) -> list[dict[str, Any]]:
    return [dict(r) for r in conn.execute(text(
        "SELECT country_code, party_id, name, created_at, token_issued_at, last_used_at, revoked_at "
        "FROM ocpi_parties ORDER BY country_code, party_id")).mappings()]


def token_candidates(header: str | None) -> list[str]:
    """The tokens an Authorization header may carry: ``Token <Base64 of the token>`` (2.2.1) and the raw
    token (2.1.1, and 2.2 clients that do not encode). A header of another scheme names none.

    >>> token_candidates("Token " + base64.b64encode(b"abc-123").decode())
    ['YWJjLTEyMw==', 'abc-123']
    >>> token_candidates("Token abc-123"), token_candidates("Bearer abc"), token_candidates(None)
    (['abc-123'], [], [])
    """
    if not header or len(header) > _MAX_HEADER:
        return []
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value:
        return []
    out = [value]
    try:
        decoded = base64.b64decode(value, validate=True).decode("ascii")
    except (binascii.Error, ValueError):
        decoded = ""
    if decoded and decoded.isprintable() and not any(ch.isspace() for ch in decoded) and decoded != value:
        out.append(decoded)
    return out


_AUTH = text("""
WITH p AS (
    SELECT id, country_code, party_id, name, last_used_at FROM ocpi_parties
    WHERE token_hash = ANY(:h) AND revoked_at IS NULL
), touched AS (
    UPDATE ocpi_parties o SET last_used_at = now() FROM p
    WHERE o.id = p.id AND (p.last_used_at IS NULL OR p.last_used_at < now() - interval '60 seconds')
)
SELECT id, country_code, party_id, name FROM p
""")


_AUTH_READ_ONLY = text("SELECT id, country_code, party_id, name FROM ocpi_parties "
                       "WHERE token_hash = ANY(:h) AND revoked_at IS NULL")


def authenticate(conn: Any, header: str | None, *, touch: bool = True) -> ClientParty:
    """The party whose token the Authorization header carries; OCPI 4001 (HTTP 401) otherwise.
    ``last_used_at`` is written at most once a minute per party (not with ``touch=False``: on a read
    replica, while the primary is down)."""
    candidates = token_candidates(header)
    if not header:
        raise bad_credentials("missing Authorization header: send 'Authorization: Token <Base64 of your token>'")
    if not candidates:
        raise bad_credentials("the Authorization header must be 'Token <Base64 of your token>'")
    row = conn.execute(_AUTH if touch else _AUTH_READ_ONLY, {"h": [hash_token(c) for c in candidates]}).first()
    if row is None:
        raise bad_credentials("unknown or revoked credentials token")
    return ClientParty(row.id, row.country_code, row.party_id, row.name)


# --- publishing parties -------------------------------------------------------------------------
def party_candidates(operator_id: str) -> Iterator[str]:
    """The party ids an operator may get, in order of preference.

    >>> from itertools import islice
    >>> list(islice(party_candidates("MA5abcd21"), 3))
    ['D21', 'IOK', 'JOX']
    """
    tail = operator_id[-3:].upper()
    if _PARTY.fullmatch(tail):
        yield tail
    n = 0
    while True:
        value = int.from_bytes(hashlib.sha256(f"{operator_id}#{n}".encode()).digest()[:8], "big") % 36**3
        yield _B36[value // 1296] + _B36[value // 36 % 36] + _B36[value % 36]
        n += 1


def publishing_parties(conn: Any, operator_ids: Iterable[str]) -> dict[str, str]:
    """OperatorID → party_id for the given operators, assigning the missing ones (one process at a time:
    an advisory lock for the rest of ``conn``'s transaction)."""
    wanted = sorted({o for o in operator_ids if o})
    if not wanted:
        return {}
    sql = text("SELECT operator_id, party_id FROM ocpi_cpo_parties WHERE operator_id = ANY(:o)")
    found = {r.operator_id: r.party_id for r in conn.execute(sql, {"o": wanted})}
    missing = [o for o in wanted if o not in found]
    if not missing:
        return found
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PARTY_LOCK})
    taken = {r[0] for r in conn.execute(text("SELECT party_id FROM ocpi_cpo_parties"))}
    found = {r.operator_id: r.party_id for r in conn.execute(sql, {"o": wanted})}
    for op in (o for o in missing if o not in found):
        party = next(c for c in party_candidates(op) if c not in taken)
        conn.execute(text("INSERT INTO ocpi_cpo_parties (operator_id, party_id) VALUES (:o, :p) "
                          "ON CONFLICT (operator_id) DO NOTHING"), {"o": op, "p": party})
        taken.add(party)
    return {r.operator_id: r.party_id for r in conn.execute(sql, {"o": wanted})}

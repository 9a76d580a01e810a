"""API keys for the open API: created once, shown once, stored as a SHA-256 hash.

A key looks like ``zk_<8 hex>_<32 url-safe chars>``; the first part (``key_prefix``) is kept in
clear so owners can tell their keys apart, the whole key only as ``sha256(key)``. A key is a
bearer token with 190+ bits of randomness, so a plain (unsalted) hash is enough to make a stolen
table useless and lets a request find its key by an index lookup.

Used by the CLI (``zhcharge apikeys``) and the open-platform self-service pages (accounts).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from services.errors import BadRequest, NotFound

__all__ = ["create_key", "hash_key", "list_keys", "lookup_key", "revoke_key"]

_PREFIX = "zk_"


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_key(conn: Connection | Session, owner_user_id: int | None, name: str,
               rate_per_min: int | None = None) -> tuple[int, str]:
    """Create a key; returns (id, plaintext). The plaintext is never stored: show it once."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise BadRequest("an API key needs a name of 1 to 100 characters", param="name")
    if rate_per_min is not None and rate_per_min <= 0:
        raise BadRequest("rate_per_min must be positive", param="rate_per_min")
    prefix = _PREFIX + secrets.token_hex(4)
    plaintext = f"{prefix}_{secrets.token_urlsafe(24)}"
    key_id = conn.execute(text(
        "INSERT INTO api_keys (key_prefix, key_hash, name, owner_user_id, rate_per_min) "
        "VALUES (:prefix, :hash, :name, :owner, :rate) RETURNING id"),
        {"prefix": prefix, "hash": hash_key(plaintext), "name": name, "owner": owner_user_id,
         "rate": rate_per_min}).scalar_one()
    return key_id, plaintext


def list_keys(conn: Connection | Session, owner_user_id: int | None = None) -> list[dict[str, Any]]:
    """Keys (never their hashes), newest first; only the owner's when ``owner_user_id`` is given."""
    sql = ("SELECT id, key_prefix, name, owner_user_id, rate_per_min, created_at, revoked_at, last_used_at "
           "FROM api_keys")
    params: dict[str, Any] = {}
    if owner_user_id is not None:
        sql += " WHERE owner_user_id = :owner"
        params["owner"] = owner_user_id
    sql += " ORDER BY created_at DESC, id DESC"
    return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def revoke_key(conn: Connection | Session, key_id: int, owner_user_id: int | None = None) -> datetime:
    """Revoke a key (idempotent); with ``owner_user_id``, only that owner's key. Returns revoked_at."""
    sql = "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id"
    params: dict[str, Any] = {"id": key_id}
    if owner_user_id is not None:
        sql += " AND owner_user_id = :owner"
        params["owner"] = owner_user_id
    revoked = conn.execute(text(sql + " RETURNING revoked_at"), params).scalar()
    if revoked is None:
        raise NotFound(f"no API key {key_id}" + (" of this account" if owner_user_id is not None else ""))
    return revoked


def lookup_key(conn: Connection | Session, plaintext: str) -> dict[str, Any] | None:
    """The live key with this plaintext (None when unknown or revoked)."""
    if not plaintext.startswith(_PREFIX) or len(plaintext) > 100:
        return None
    row = conn.execute(text("SELECT id, rate_per_min FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL"),
                       {"h": hash_key(plaintext)}).mappings().first()
    return dict(row) if row else None

"""Per-client-IP rate limits for login and for sending codes, shared by every app process.

A fixed window per bucket (``login:<ip>``, ``code:<ip>``) in the UNLOGGED table ``auth_rate``
(migration 0401): each attempt is one statement that adds a hit to the current window and
returns the count, so ``zhcharge serve --workers N`` cannot give a client N times its quota.
This comes on top of the per-account lockout (5 wrong passwords) and the per-recipient resend
interval of codes (one a minute).

A successful login gives its hit back (:func:`refund`), so the login limit counts failures (and
attempts in flight): people who log in correctly are never slowed down.

Limits come from ``settings.accounts`` when it has the fields (``login_per_ip``,
``login_window_s``, ``codes_per_ip``, ``codes_window_s``), else from :data:`DEFAULTS`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from services.errors import RateLimited

__all__ = ["DEFAULTS", "Limit", "RateDecision", "check", "hit", "limit_for", "refund"]


@dataclass(frozen=True, slots=True)
class Limit:
    name: str  # the bucket prefix: "login" or "code"
    hits: int  # allowed per window
    window_s: int


DEFAULTS = {"login": Limit("login", 20, 300), "code": Limit("code", 30, 600)}
_SETTING_NAMES = {"login": ("login_per_ip", "login_window_s"), "code": ("codes_per_ip", "codes_window_s")}

MESSAGES = {
    "login": ("登录尝试过于频繁，请 {wait} 秒后再试 / too many login attempts from your network: "
              "retry in {wait} s"),
    "code": ("获取验证码过于频繁，请 {wait} 秒后再试 / too many code requests from your network: "
             "retry in {wait} s"),
}

_HIT = text("""
INSERT INTO auth_rate (bucket, window_start, window_s, hits)
VALUES (:bucket, to_timestamp(floor(extract(epoch FROM now()) / :w) * :w), :w, 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET hits = auth_rate.hits + 1
RETURNING hits, greatest(ceil(extract(epoch FROM window_start) + :w - extract(epoch FROM now())), 1)::int AS retry_after
""")
_REFUND = text("""
UPDATE auth_rate SET hits = greatest(hits - 1, 0)
WHERE bucket = :bucket AND window_start = to_timestamp(floor(extract(epoch FROM now()) / :w) * :w)
""")
_CLEANUP = text("DELETE FROM auth_rate WHERE window_start + make_interval(secs => window_s) < now()")


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    hits: int
    limit: int
    retry_after: int  # seconds until the window ends

    def raise_if_denied(self, kind: str) -> None:
        if not self.allowed:
            raise RateLimited(MESSAGES[kind].format(wait=self.retry_after), retry_after=self.retry_after)


def limit_for(kind: str, settings: Any = None) -> Limit:
    """The limit of ``kind`` ("login" or "code"), from ``settings.accounts`` if it defines it."""
    base = DEFAULTS[kind]
    accounts = getattr(settings, "accounts", settings)
    hits_name, window_name = _SETTING_NAMES[kind]
    return Limit(kind, int(getattr(accounts, hits_name, base.hits)), int(getattr(accounts, window_name, base.window_s)))


def _bucket(limit: Limit, ip: str | None) -> str:
    return f"{limit.name}:{(ip or 'unknown')[:64]}"


def hit(conn: Any, limit: Limit, ip: str | None) -> RateDecision:
    """Count one attempt of ``ip`` (one statement); ``allowed`` is False once over the limit.

    Run it in its own short transaction (the hit must stay counted when the attempt fails)."""
    row = conn.execute(_HIT, {"bucket": _bucket(limit, ip), "w": limit.window_s}).one()
    if random.random() < 0.01:  # noqa: S311 - housekeeping, not security
        conn.execute(_CLEANUP)
    return RateDecision(row.hits <= limit.hits, int(row.hits), limit.hits, int(row.retry_after))


def check(db: Any, limit: Limit, ip: str | None) -> None:
    """:func:`hit` in a transaction of its own (committed), then :class:`RateLimited` if over the limit."""
    with db.session() as s:
        decision = hit(s, limit, ip)
    decision.raise_if_denied(limit.name)


def refund(conn: Any, limit: Limit, ip: str | None) -> None:
    """Give back the hit of an attempt that succeeded (a correct login)."""
    conn.execute(_REFUND, {"bucket": _bucket(limit, ip), "w": limit.window_s})

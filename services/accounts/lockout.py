"""Login failures: brute force stays impossible, and no stranger can lock an owner out.

The policy (also in the README):

* Failures are counted per **account and client address** (table ``login_failures``, migration
  1300). Names that are no account are counted the same way under a hash of the name, and get
  the same answers, so nothing reveals whether an account exists.
* **Slow down first**: from the ``slow_after``-th consecutive failure (3) an address must wait
  before its next try on that account: 1 s, then 2 s, 4 s … (at most a minute). A try that comes
  too early is answered 429 with ``Retry-After`` and not even checked.
* **Then lock, for that address only**: ``lockout_failures`` (5) failures from one address within
  ``lockout_s`` (15 minutes) lock the account *for that address* for ``lockout_s``. The owner,
  logging in from anywhere else, is not affected.
* **An account-wide ceiling** against attacks spread over many addresses:
  ``account_failures_per_hour`` (100, the ASVS 2.2.1 figure) failures in an hour from all
  addresses together lock the account everywhere for ``lockout_s``.
* **The owner unlocks at once** with a code sent to the account's phone (SMS) and e-mail
  (``/login/unlock``): every lock and counter of the account is cleared.
* A successful login clears the counter of that address; a password reset clears them all.
* On top of this, the per-address limit of ``services.accounts.ratelimit`` (20 failed logins per
  5 minutes over all accounts) stops password spraying from one address.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from services.errors import RateLimited

__all__ = ["ACCOUNT_WIDE", "LOCKED", "LoginLocked", "LoginThrottled", "account_key", "check", "clear",
           "clear_all", "record_failure"]

ACCOUNT_WIDE = "*"
LOCKED = ("因多次密码错误，该账户已暂时锁定（{minutes} 分钟后自动解除）；账户本人可通过发送到手机或邮箱的验证码立即解锁 / "
          "too many failed logins: this account is locked for {minutes} more minute(s) — its owner can unlock it "
          "at once with a code sent to the account's phone or e-mail")
THROTTLED = ("密码错误次数较多，请 {wait} 秒后再试 / several failed logins: please wait {wait} s before the next try")


class LoginLocked(RateLimited):
    """The account is locked for this address (or everywhere); the page offers the unlock code."""


class LoginThrottled(RateLimited):
    """Too early after the last failure: wait ``retry_after`` seconds."""


@dataclass(frozen=True, slots=True)
class Policy:
    slow_after: int = 3
    lockout_failures: int = 5
    lockout_s: int = 900
    account_failures_per_hour: int = 100
    max_delay_s: int = 60

    @classmethod
    def of(cls, settings: Any) -> Policy:
        names = ("slow_after", "lockout_failures", "lockout_s", "account_failures_per_hour")
        return cls(**{n: int(getattr(settings, n)) for n in names if hasattr(settings, n)})

    def delay_after(self, failures: int) -> int:
        """Seconds to wait after ``failures`` consecutive failures.

        >>> [Policy().delay_after(n) for n in range(1, 6)]
        [0, 0, 1, 2, 4]
        """
        if failures < self.slow_after:
            return 0
        return min(2 ** (failures - self.slow_after), self.max_delay_s)


def account_key(user_id: int | None, login: str) -> str:
    """``u:<id>`` for an account, ``n:<hash>`` for a name that is none (never stored in clear).

    >>> account_key(7, "x"), account_key(None, "Nobody")[:10] == account_key(None, "nobody ")[:10]
    ('u:7', True)
    """
    if user_id is not None:
        return f"u:{user_id}"
    return "n:" + hashlib.sha256(login.strip().lower().encode("utf-8")).hexdigest()[:32]


def _client(client: str | None) -> str:
    return (client or "unknown")[:64]


_STATE = text("""
SELECT client, failures, coalesce(locked_until > now(), false) AS locked,
       greatest(ceil(extract(epoch FROM locked_until - now())), 1)::int AS locked_s,
       extract(epoch FROM now() - last_failed_at)::float AS since_s
FROM login_failures WHERE account_key = :k AND client IN (:c, :all)
""")


def check(conn: Any, key: str, client: str | None, settings: Any = None) -> None:
    """Raise :class:`LoginLocked` / :class:`LoginThrottled` before the password is looked at."""
    policy = Policy.of(settings)
    for row in conn.execute(_STATE, {"k": key, "c": _client(client), "all": ACCOUNT_WIDE}):
        if row.locked:
            minutes = max(1, (row.locked_s + 59) // 60)
            raise LoginLocked(LOCKED.format(minutes=minutes), retry_after=row.locked_s)
        if row.client != ACCOUNT_WIDE:
            wait = policy.delay_after(row.failures) - row.since_s
            if wait > 0:
                seconds = max(1, int(wait + 0.999))
                raise LoginThrottled(THROTTLED.format(wait=seconds), retry_after=seconds)


_FAIL = text("""
INSERT INTO login_failures AS f (account_key, client, failures)
VALUES (:k, :c, 1)
ON CONFLICT (account_key, client) DO UPDATE SET
    failures = CASE WHEN f.first_failed_at < now() - make_interval(secs => :window)
                      OR (f.locked_until IS NOT NULL AND f.locked_until <= now()) THEN 1 ELSE f.failures + 1 END,
    first_failed_at = CASE WHEN f.first_failed_at < now() - make_interval(secs => :window)
                             OR (f.locked_until IS NOT NULL AND f.locked_until <= now()) THEN now()
                           ELSE f.first_failed_at END,
    locked_until = CASE WHEN f.locked_until IS NOT NULL AND f.locked_until <= now() THEN NULL ELSE f.locked_until END,
    last_failed_at = now()
RETURNING failures
""")
_LOCK = text("UPDATE login_failures SET locked_until = now() + make_interval(secs => :s) "
             "WHERE account_key = :k AND client = :c")
_HOUR = text("SELECT coalesce(sum(failures), 0) FROM login_failures WHERE account_key = :k AND client <> :all "
             "AND last_failed_at > now() - interval '1 hour'")
_WIDE = text("""
INSERT INTO login_failures (account_key, client, failures, locked_until)
VALUES (:k, :all, 0, now() + make_interval(secs => :s))
ON CONFLICT (account_key, client) DO UPDATE SET locked_until = excluded.locked_until, last_failed_at = now()
""")
_CLEANUP = text("DELETE FROM login_failures WHERE last_failed_at < now() - interval '1 day' "
                "AND (locked_until IS NULL OR locked_until < now())")


def record_failure(conn: Any, key: str, client: str | None, settings: Any = None) -> None:
    """Count one failure of ``key`` from ``client``; lock the address (or the account) when due."""
    policy = Policy.of(settings)
    c = _client(client)
    failures = conn.execute(_FAIL, {"k": key, "c": c, "window": policy.lockout_s}).scalar_one()
    if failures >= policy.lockout_failures:
        conn.execute(_LOCK, {"k": key, "c": c, "s": policy.lockout_s})
    if conn.execute(_HOUR, {"k": key, "all": ACCOUNT_WIDE}).scalar_one() >= policy.account_failures_per_hour:
        conn.execute(_WIDE, {"k": key, "all": ACCOUNT_WIDE, "s": policy.lockout_s})
    if failures == 1:
        conn.execute(_CLEANUP)


def clear(conn: Any, key: str, client: str | None) -> None:
    """A successful login: this address starts afresh (the account-wide lock, if any, stays)."""
    conn.execute(text("DELETE FROM login_failures WHERE account_key = :k AND client = :c"),
                 {"k": key, "c": _client(client)})


def clear_all(conn: Any, key: str) -> None:
    """The owner proved control (unlock code, password reset): every counter and lock goes."""
    conn.execute(text("DELETE FROM login_failures WHERE account_key = :k"), {"k": key})

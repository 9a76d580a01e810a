"""How long the feed keeps its bookkeeping: replay entries, AccessTokens and the run log.

Called by the scheduler once a minute and at the end of every ``sync_all`` (so the tables
stay small also where no scheduler runs, e.g. when pulls come from cron and the CLI).
"""

from __future__ import annotations

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from services.settings import Settings

__all__ = ["prune"]


def prune(engine: Engine, settings: Settings) -> tuple[int, int]:
    """Forget replay entries older than the TimeStamp window, expired tokens and runs older than 90 days."""
    keep_s = settings.feed.timestamp_window_s * 2 + 60
    try:
        with engine.begin() as conn:
            seen = conn.execute(text("DELETE FROM feed_push_seen WHERE ts < now() - make_interval(secs => :s)"),
                                {"s": keep_s}).rowcount
            tokens = conn.execute(text("DELETE FROM feed_tokens WHERE expires_at < now() - interval '1 day'")).rowcount
            conn.execute(text("DELETE FROM sync_runs WHERE started_at < now() - interval '90 days'"))
        return seen, tokens
    except SQLAlchemyError:
        return 0, 0

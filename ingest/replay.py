"""Replay protection of pushed envelopes: (OperatorID, TimeStamp second, Seq) may be used once.

The same envelope again (same Sig: a retry whose answer was lost) is a resend and gets the same
answer; another envelope reusing the triple is refused with Ret 4003 so the sender resends it
with a fresh Seq. Rows older than the TimeStamp window are pruned (``ingest.retention``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from ingest.errors import ProtocolError, Ret

__all__ = ["claim_envelope"]

_SEEN = text("INSERT INTO feed_push_seen (operator_id, ts, seq, sig) VALUES (:op, :ts, :seq, :sig) "
             "ON CONFLICT DO NOTHING RETURNING 1")
_SEEN_SIG = text("SELECT sig FROM feed_push_seen WHERE operator_id = :op AND ts = :ts AND seq = :seq")


def claim_envelope(conn: Any, operator_id: str, parsed: Any) -> bool:
    """Record the envelope's (operator, second, Seq); ``False`` for an exact resend (same Sig), a
    Ret 4003 when another envelope already used that second and Seq."""
    params = {"op": operator_id, "ts": parsed.timestamp, "seq": parsed.seq, "sig": parsed.raw["Sig"]}
    if conn.execute(_SEEN, params).first() is not None:
        return True
    prev = conn.execute(_SEEN_SIG, params).scalar()
    if prev and prev.upper() == str(parsed.raw["Sig"]).upper():
        return False
    raise ProtocolError(Ret.ENVELOPE, f"Seq {parsed.seq} was already used in second {parsed.raw['TimeStamp']}; "
                        "resend with a new Seq")



"""T/CEC 102 return codes (``Ret``) and the one exception every codec function raises.

``ProtocolError`` carries the ``Ret`` to answer with and a ``Msg`` for the other platform; the
receiver turns it into a signed response envelope, the feed client into a ``FeedError``.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ProtocolError", "Ret"]


class Ret(IntEnum):
    """Envelope ``Ret`` codes (Part 4)."""

    BUSY = -1
    OK = 0
    SIGNATURE = 4001
    TOKEN = 4002
    ENVELOPE = 4003
    BUSINESS = 4004
    SYSTEM = 500


class ProtocolError(Exception):
    """A protocol failure carrying the ``Ret`` to answer with and a ``Msg`` for the peer.

    ``msg`` is sent to the other platform, so it names the offending field and never
    includes secrets or stack traces.

    >>> e = ProtocolError(Ret.ENVELOPE, "Seq is missing")
    >>> e.ret, e.msg, str(e)
    (<Ret.ENVELOPE: 4003>, 'Seq is missing', '4003: Seq is missing')
    """

    def __init__(self, ret: int, msg: str) -> None:
        try:
            ret = Ret(ret)
        except ValueError:
            pass
        self.ret = ret
        self.msg = msg
        super().__init__(f"{int(ret)}: {msg}")

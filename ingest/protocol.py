"""T/CEC 102 codec: cryptography, signed envelopes and tolerant business-object parsing.

Pure functions only (no I/O, no database) so that the feed client, the push receiver and the
simulator all speak exactly the same dialect, and so the rules can be tested without a server.

Input is tolerant (operators' platforms misspell keys, send numbers as strings, wrap Base64,
send arrays as objects); output is always the standard's spelling and shapes.

This module is the codec's public face; each part lives in a module of its own:

* :mod:`ingest.errors`: ``Ret`` codes and ``ProtocolError``;
* :mod:`ingest.crypto`: the secret sets, AES-128-CBC of ``Data``, HMAC-MD5 signatures;
* :mod:`ingest.times`: ``TimeStamp`` and ``LastQueryTime`` in China time;
* :mod:`ingest.json_text`: tolerant JSON, and what we refuse (deep nesting, NUL);
* :mod:`ingest.envelope`: building, verifying and opening requests and responses;
* :mod:`ingest.objects`: StationInfo and status objects: normalised, validated, the enumerations.
"""

from __future__ import annotations

from ingest import envelope, errors, objects, times
from ingest.crypto import Secrets, decrypt, encrypt, sign
from ingest.envelope import *  # noqa: F403
from ingest.errors import *  # noqa: F403
from ingest.json_text import MAX_JSON_DEPTH, json_problem  # public too, though never in __all__
from ingest.objects import *  # noqa: F403
from ingest.times import *  # noqa: F403

__all__ = sorted([*errors.__all__, *times.__all__, *envelope.__all__, *objects.__all__,
                  "Secrets", "decrypt", "encrypt", "sign"])

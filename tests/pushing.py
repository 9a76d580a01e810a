"""An operator pushing to our receiver (``/evcs/<version>/<interface>``) with its inbound credentials,
for the tests that push envelopes they build themselves (the feed's receiver tests, the scale tests).

Every Pusher of the process takes its Seq from one counter (1 to 9999, then round again), so two
Pushers of one operator never send the same Seq in the same second (the receiver rightly refuses the
second as a replay); a test that wants a given Seq passes ``seq=``.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from ingest.protocol import Secrets, build_request, parse_response

__all__ = ["Pusher", "secrets_of"]

_SEQ = itertools.count()
_OWN = object()  # post's default token: the Pusher's own (None until get_token)


def secrets_of(creds: dict) -> Secrets:
    """The Secrets of an operator's inbound credentials (a dict as the tests register them)."""
    return Secrets(creds["operator_id"], creds["operator_secret"], creds["data_secret"], creds["data_iv"],
                   creds["sig_secret"])


class Pusher:
    """One operator's pushes. ``client`` (a test client, or one of a server) is given per call, or once
    here for :meth:`get_token` and :meth:`status` to use when the call names none."""

    def __init__(self, creds: dict, *, client: Any = None, version: str = "v20160701") -> None:
        self.s = secrets_of(creds)
        self.client = client
        self.version = version
        self.seq = 0  # the last Seq this Pusher took from the counter
        self.token: str | None = None

    def envelope(self, data: dict, *, seq: int | None = None, ts: datetime | None = None) -> dict:
        if seq is None:
            self.seq = seq = next(_SEQ) % 9999 + 1
        return build_request(self.s.operator_id, data, self.s, timestamp=ts or datetime.now(UTC), seq=seq)

    def post(self, client: Any, interface: str, env: dict, *, token: Any = _OWN) -> tuple[Any, Any]:
        """(HTTP response, parsed answer or None); ``token``: this Pusher's own by default, None for none."""
        token = self.token if token is _OWN else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = self.client if client is None else client
        resp = client.post(f"/evcs/{self.version}/{interface}", json=env, headers=headers)
        return resp, (parse_response(resp.content, self.s) if resp.content else None)

    def get_token(self, client: Any = None) -> str:
        _, r = self.post(client, "query_token", self.envelope({"OperatorID": self.s.operator_id,
                                                               "OperatorSecret": self.s.operator_secret}))
        assert r.ret == 0 and r.data["SuccStat"] == 0 and r.data["TokenAvailableTime"] > 0, r
        self.token = r.data["AccessToken"]
        return self.token

    def status_envelope(self, connector_id: str, status: int, **kw: Any) -> dict:
        return self.envelope({"ConnectorStatusInfo": {"ConnectorID": connector_id, "Status": status,
                                                      "ParkStatus": 10, "LockStatus": 10}}, **kw)

    def status(self, connector_id: str, status: int, *, client: Any = None, **kw: Any) -> tuple[Any, Any]:
        """Push one connector's status with this Pusher's token (``kw``: ``seq``, ``ts``)."""
        return self.post(client, "notification_stationStatus", self.status_envelope(connector_id, status, **kw))

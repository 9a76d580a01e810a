"""Ingest of operator data over the T/CEC 102 interconnection protocol.

The codec (``ingest.protocol``) is kept pure — no I/O, no database — so the feed client, the
push receiver and the simulator share one audited implementation of the envelope, the
cryptography and the tolerant parsing of real operators' payloads.
"""

"""The interconnection feed's own records, as the domain sees them (``feed_endpoints``).

The T/CEC 102 protocol itself (codec, client, receiver, sync) lives in :mod:`ingest`, which builds
on this package; nothing here speaks the protocol.
"""

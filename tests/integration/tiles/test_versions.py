"""Data versions in memory: LISTEN/NOTIFY delivers bumps; without LISTEN, get() polls in the
background and never blocks."""

from __future__ import annotations

import time

from services.stations.summary import bump_version
from tiles.render import connect_kwargs
from tiles.versions import DataVersions


def _wait(fn, timeout: float = 5.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_listen_notify_delivers_bumps_and_subscribers_hear_them(engine) -> None:  # noqa: ANN001
    dv = DataVersions(connect_kwargs(engine.url))
    heard: list[tuple[str, int]] = []
    dv.subscribe(lambda layer, v: heard.append((layer, v)))
    dv.start()
    try:
        _wait(lambda: dv.listening)
        with engine.begin() as conn:
            v = bump_version(conn, "stations")
        _wait(lambda: dv.get("stations") == v)
        assert ("stations", v) in heard
    finally:
        dv.stop()


def test_polling_fallback_without_listen(engine) -> None:  # noqa: ANN001
    dv = DataVersions(connect_kwargs(engine.url), listen=False, poll_s=0.05)
    dv.start()
    with engine.begin() as conn:
        v = bump_version(conn, "stations")
    t0 = time.perf_counter()
    dv.get("stations")
    assert time.perf_counter() - t0 < 0.01  # never waits for the database
    _wait(lambda: dv.get("stations") == v)
    assert dv.get("no-such-layer") == 1

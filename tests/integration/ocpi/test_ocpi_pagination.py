"""Walking the Link headers to the end while stations change: no duplicates and no gaps.

A writer thread keeps changing the city while a client follows ``Link`` page by page: it withdraws
the lowest-numbered station still published (always one the walk has passed), touches stations
everywhere (their ``last_updated`` moves), changes connector statuses and adds stations. Every
page waits for at least one change, so changes fall between every two pages. The same walk done
with plain ``offset`` paging (what a client building its own URLs gets) misses stations: the test
shows it, so it would notice a server that ignored ``after``.
"""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import text

from tests.integration.ocpi.conftest import OCPI_OP, envelope

pytestmark = pytest.mark.usefixtures("world")

LOC = "/ocpi/2.2.1/locations"


class Writer(threading.Thread):
    def __init__(self, engine, seed: int) -> None:  # noqa: ANN001
        super().__init__(daemon=True)
        self.engine, self.rng = engine, random.Random(seed)
        self.stop, self.changes, self.error = threading.Event(), 0, None
        self.withdrawn: set[int] = set()
        self.added: list[int] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.change()
                self.changes += 1
                time.sleep(0.002)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def change(self) -> None:
        with self.engine.begin() as conn:
            ids = [r[0] for r in conn.execute(text(
                "SELECT id FROM stations WHERE feed_state = 'active' AND interconnected ORDER BY id"))]
            lowest = ids[0]
            conn.execute(text("UPDATE stations SET feed_state = 'withdrawn', withdrawn_at = now(), updated_at = now() "
                              "WHERE id = :i"), {"i": lowest})
            self.withdrawn.add(lowest)
            touched = self.rng.sample(ids[1:], 5)
            conn.execute(text("UPDATE stations SET updated_at = now(), name = name || '' WHERE id = ANY(:i)"),
                         {"i": touched})
            conn.execute(text(
                "UPDATE connector_status cs SET status = CASE cs.status WHEN 1 THEN 3 ELSE 1 END, status_since = now() "
                "FROM connectors c WHERE c.operator_id = cs.operator_id AND c.connector_id = cs.connector_id "
                "AND c.station_pk = ANY(:i)"), {"i": touched})
            n = len(self.added)
            self.added.append(conn.execute(text("""
                INSERT INTO stations (operator_id, station_id, name, station_type, station_status, lng_gcj02, lat_gcj02,
                    geom, geom_3857, district_adcode, feed_state, interconnected)
                VALUES (:o, :sid, :n, 1, 50, 113.5, 22.2, ST_SetSRID(ST_MakePoint(113.5, 22.2), 4326),
                    ST_Transform(ST_SetSRID(ST_MakePoint(113.5, 22.2), 4326), 3857), 440402, 'active', true)
                RETURNING id"""), {"o": OCPI_OP, "sid": f"WALK-{self.rng.randrange(10**9)}-{n}",
                                   "n": f"新增站{n}"}).scalar_one())


def _visible(engine) -> set[int]:  # noqa: ANN001
    with engine.connect() as conn:
        return {r[0] for r in conn.execute(text("SELECT id FROM stations WHERE feed_state = 'active' AND interconnected"))}


def _restore(engine, writer: Writer) -> None:  # noqa: ANN001
    with engine.begin() as conn:
        conn.execute(text("UPDATE stations SET feed_state = 'active', withdrawn_at = NULL WHERE id = ANY(:i)"),
                     {"i": list(writer.withdrawn)})
        conn.execute(text("DELETE FROM stations WHERE id = ANY(:i)"), {"i": writer.added})


def _walk(ocpi, writer: Writer, *, follow_link: bool, limit: int) -> list[int]:  # noqa: ANN001
    """Page by page, waiting for at least one change between two pages."""
    ids: list[int] = []
    url, params, offset = LOC, {"limit": limit}, 0
    while True:
        seen = writer.changes
        r = ocpi.get(url, params=params)
        page = envelope(r)
        ids += [int(x["id"]) for x in page]
        link = r.headers.get("link")
        if not link:
            return ids
        if follow_link:
            url, params = link[1:link.index(">")], None
        else:
            offset += len(page)
            params = {"limit": limit, "offset": offset}
        deadline = time.monotonic() + 5
        while writer.changes <= seen and time.monotonic() < deadline:
            time.sleep(0.001)
        assert writer.error is None, writer.error


@pytest.mark.parametrize("follow_link", [True, False], ids=["link", "plain-offset"])
def test_walk_to_the_end_while_stations_change(ocpi, engine, follow_link) -> None:  # noqa: ANN001
    before = _visible(engine)
    writer = Writer(engine, seed=17)
    writer.start()
    try:
        ids = _walk(ocpi, writer, follow_link=follow_link, limit=40)
    finally:
        writer.stop.set()
        writer.join(10)
        _restore(engine, writer)
    assert writer.error is None, writer.error
    assert writer.changes >= len(before) // 40  # changes fell between the pages
    stayed = before - writer.withdrawn
    missed = stayed - set(ids)
    if follow_link:
        assert len(ids) == len(set(ids)), "a station came twice"
        assert ids == sorted(ids)
        assert not missed, f"{len(missed)} stations published throughout were skipped: {sorted(missed)[:10]}"
        assert set(ids) - before <= set(writer.added)  # nothing that was never published
    else:  # what the Link's 'after' prevents: every withdrawal behind the walk shifts the offsets
        assert missed, "plain offset paging should have skipped stations here"

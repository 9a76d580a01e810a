"""The two contract endpoints: /api/v1/stations/{id}/status-history and /reliability — shapes,
clipping, the open interval, errors by name, visibility, and the open API's treatment."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from litestar.testing import TestClient

from tests.integration.search.conftest import make_search_app

from .conftest import DAY, at

NEXT = DAY + timedelta(days=1)


@pytest.fixture(scope="module")
def rapp(db_url, tmp_path_factory, database):  # noqa: ANN001, ANN201
    app = make_search_app(db_url, tmp_path_factory.mktemp("reliability-app"), database)
    app.state.clock = lambda: at(DAY + timedelta(days=5))
    return app


@pytest.fixture()
def api(rapp) -> Iterator[TestClient]:  # noqa: ANN001
    with TestClient(rapp, base_url="http://127.0.0.1:8000") as c:
        yield c


def _window(a, b) -> dict:  # noqa: ANN001
    return {"from": a.isoformat(), "to": b.isoformat()}


def test_status_history(api, hand_built) -> None:  # noqa: ANN001
    r = api.get(f"/api/v1/stations/{hand_built.a}/status-history", params=_window(at(DAY, 10.5), at(DAY, 17.5)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"station_id", "connectors"} and body["station_id"] == hand_built.a
    assert [c["connector_id"] for c in body["connectors"]] == ["RLBAE0C1", "RLBAE1C1"]
    a1 = body["connectors"][0]["intervals"]
    assert all(set(i) == {"status", "from", "to"} for i in a1)
    assert [i["status"] for i in a1] == [0, None, 1, 255, 1]
    assert a1[0]["from"] == "2026-01-15T02:30:00+00:00" and a1[-1]["to"] == "2026-01-15T09:30:00+00:00"  # clipped
    assert all(x["to"] == y["from"] for x, y in zip(a1, a1[1:]))  # in time order, back to back
    # without offsets times are UTC; a "+" that arrived as a space is read as one
    r2 = api.get(f"/api/v1/stations/{hand_built.a}/status-history?from=2026-01-15T10:30:00 08:00"
                 "&to=2026-01-15T09:30:00")
    assert r2.json() == body


def test_the_open_interval(api, rapp, hand_built) -> None:  # noqa: ANN001
    rapp.state.clock = lambda: at(NEXT, 9.5)
    try:
        body = api.get(f"/api/v1/stations/{hand_built.a}/status-history",
                       params={"from": at(NEXT, 8).isoformat()}).json()
    finally:
        rapp.state.clock = lambda: at(DAY + timedelta(days=5))
    assert body["connectors"][0]["intervals"] == [
        {"status": 1, "from": "2026-01-16T00:00:00+00:00", "to": "2026-01-16T01:00:00+00:00"},
        {"status": 2, "from": "2026-01-16T01:00:00+00:00", "to": None}]
    assert body["connectors"][1]["intervals"][-1]["to"] is None


def test_reliability(api, hand_built) -> None:  # noqa: ANN001
    r = api.get(f"/api/v1/stations/{hand_built.a}/reliability", params=_window(at(DAY), at(NEXT)))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"station_id", "from", "to", "uptime", "connectors"}
    assert (body["station_id"], body["from"], body["to"]) == (
        hand_built.a, "2026-01-14T16:00:00+00:00", "2026-01-15T16:00:00+00:00")
    assert body["uptime"] == pytest.approx(64800 / 77400, abs=1e-6)
    assert body["connectors"] == [
        {"connector_id": "RLBAE0C1", "uptime": 0.72, "down_seconds": 12600, "faults": 1},
        {"connector_id": "RLBAE1C1", "uptime": 1.0, "down_seconds": 0, "faults": 0}]
    # the default window is the last 30 days before now: nothing observed then
    later = api.get(f"/api/v1/stations/{hand_built.a}/reliability", params={"from": at(NEXT, 12).isoformat(),
                                                                              "to": at(NEXT, 13).isoformat()})
    assert later.json()["uptime"] == 1.0


@pytest.mark.parametrize(("query", "param"), [
    ({"from": "2026-01-15T10:00:00Z", "to": "2026-01-15T10:00:00Z"}, "from"),
    ({"from": "2026-01-15T11:00:00Z", "to": "2026-01-15T10:00:00Z"}, "from"),
    ({"from": "2025-01-15T00:00:00Z", "to": "2026-01-15T00:00:01Z"}, "from"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-01-15T10:00:00Z", "to": "2026-13-01"}, "to"),
    ({"to": "x" * 300}, "to"),
    ({"frm": "2026-01-15T10:00:00Z"}, "frm"),
])
def test_bad_input_is_a_400_naming_the_parameter(api, hand_built, query, param) -> None:  # noqa: ANN001
    for path in ("status-history", "reliability"):
        r = api.get(f"/api/v1/stations/{hand_built.a}/{path}", params=query)
        assert r.status_code == 400, (path, query, r.text)
        body = r.json()
        assert body["param"] == param and body["error"] == "BadRequest", body
        if query.get("to") == "2026-01-15T10:00:00Z":
            assert "'from'" in body["message"] and "'to'" in body["message"]


def test_a_year_at_most(api, hand_built) -> None:  # noqa: ANN001
    ok = api.get(f"/api/v1/stations/{hand_built.a}/reliability",
                 params={"from": "2025-01-15T00:00:00Z", "to": "2026-01-15T00:00:00Z"})
    assert ok.status_code == 200
    assert "longer than a year" in api.get(f"/api/v1/stations/{hand_built.a}/reliability", params={
        "from": "2024-01-15T00:00:00Z", "to": "2026-01-15T00:00:00Z"}).json()["message"]


def test_unknown_or_hidden_stations_are_404(api, hand_built) -> None:  # noqa: ANN001
    for path in ("status-history", "reliability"):
        assert api.get(f"/api/v1/stations/{hand_built.b}/{path}").status_code == 404  # not interconnected
        r = api.get(f"/api/v1/stations/987654321/{path}")
        assert r.status_code == 404 and r.json()["error"] == "NotFound"
        assert api.get(f"/api/v1/stations/0/{path}").status_code == 400


def test_open_api_treatment(api, hand_built) -> None:  # noqa: ANN001
    r = api.get(f"/api/v1/stations/{hand_built.a}/reliability", params=_window(at(DAY), at(NEXT)),
                headers={"Origin": "https://app.example"})
    assert r.headers["x-ratelimit-limit"] and r.headers["access-control-allow-origin"] in ("*", "https://app.example")
    again = api.get(f"/api/v1/stations/{hand_built.a}/reliability", params=_window(at(DAY), at(NEXT)),
                    headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    assert api.get(f"/api/v1/stations/{hand_built.a}/reliability", headers={"X-API-Key": "nope"}).status_code == 401
    paths = api.get("/api/docs/openapi.json").json()["paths"]
    for path in ("/api/v1/stations/{station_pk}/status-history", "/api/v1/stations/{station_pk}/reliability"):
        names = {p["name"] for p in paths[path]["get"]["parameters"]}
        assert {"station_pk", "from", "to"} <= names

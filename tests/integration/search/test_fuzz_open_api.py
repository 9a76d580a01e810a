"""Fuzzing of every open-API operation from its OpenAPI document (issue 13).

Two layers, both bounded so the suite stays fast:

* schemathesis in positive *and* negative mode over every documented operation (``/api/v1/…``
  and ``/tiles/…``): never a 5xx, errors are JSON;
* a targeted hypothesis fuzz that puts hostile values (NUL, huge and negative numbers, overlong
  strings, wrong types, invalid UTF-8, stray unknown parameters) into one parameter at a time:
  never a 5xx, and every 4xx is a JSON error naming the parameter it was given.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.usefixtures("search_data")

OPEN_PATHS = r"^/(api/v1|tiles)/"

HOSTILE = st.one_of(
    st.sampled_from(["%00", "a%00b", "%00%00", "99999999999999999999", "-99999999999999999999", "-1", "0",
                     "1e309", "NaN", "Infinity", "[]", "{}", "true", "null", "%ff%fe", "%ed%a0%80", "%c0%80",
                     "' OR 1=1 --", "<script>", "..%2F..%2Fetc%2Fpasswd", "POLYGON((0 0,1 1,1 0,0 0))",
                     "LINESTRING(1 1)", "113.5,22.2,113.4,22.1", "181,91,182,92", quote("长隆" * 40)]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(min_size=1, max_size=30).map(lambda s: quote(s, safe="")),
    st.just("x" * 9000),
)


def _operations(app):  # noqa: ANN001, ANN202
    schema = schemathesis.openapi.from_asgi("/api/docs/openapi.json", app).include(path_regex=OPEN_PATHS)
    return [r.ok() for r in schema.get_all_operations()]


def test_every_open_operation_survives_positive_and_negative_generation(api_app) -> None:  # noqa: ANN001
    operations = _operations(api_app)
    paths = {op.path for op in operations}
    assert {"/api/v1/stations", "/api/v1/reference", "/api/v1/stats", "/tiles/{layer}/{z}/{x}/{y}"} <= paths
    negative_skipped: list[str] = []
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=op.as_strategy(generation_mode=mode))
            @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def run(case) -> None:  # noqa: ANN001
                response = case.call()
                assert response.status_code < 500, (mode, case.path, case.query, response.text[:300])
                case.validate_response(response, checks=[not_a_server_error])
                if 400 <= response.status_code < 500 and response.status_code != 404:
                    ctype = response.headers.get("content-type", "")
                    ctype = ctype[0] if isinstance(ctype, list) else ctype
                    assert ctype.startswith("application/json"), (case.path, case.query, response.text[:200])
                    assert "error" in response.json()

            try:
                run()
            except Unsatisfiable:  # nothing of this operation can be made invalid (e.g. no typed parameter)
                assert mode is GenerationMode.NEGATIVE, op.path
                negative_skipped.append(op.path)
    assert len(negative_skipped) < len(operations) / 2, negative_skipped


def _documented(app) -> list[tuple[str, list[str]]]:  # noqa: ANN001
    """(URL to call, documented query parameter names) of every open operation."""
    out = []
    for op in _operations(app):
        url = (op.path.replace("{station_pk}", "1").replace("{layer}", "stations").replace("{z}", "12")
               .replace("{x}", "3340").replace("{y}", "1786").replace("{name}", "stations.json"))
        names = [p.name for p in op.query]
        out.append((url, names))
    return out


def test_hostile_values_in_each_parameter_get_a_json_error_naming_it(api, api_app) -> None:  # noqa: ANN001
    targets = _documented(api_app)
    assert sum(len(names) for _, names in targets) > 30

    @given(target=st.sampled_from([(u, n) for u, names in targets for n in names]), value=HOSTILE)
    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(target, value) -> None:  # noqa: ANN001
        url, name = target
        r = api.get(f"{url}?{name}={value}")
        assert r.status_code < 500, (url, name, value[:80], r.status_code, r.text[:300])
        if r.status_code >= 400 and r.status_code not in (401, 404, 429):
            body = r.json()
            assert body.get("error") and body.get("message"), body
            # the parameter given is named (a pair such as lat/lng may name its missing partner too)
            assert body.get("param") == name or f"'{name}'" in body["message"], (url, name, value[:80], body)

    run()


@pytest.mark.parametrize("value", ["%00", "a%00", "99999999999999999999", "x" * 9000])
def test_unknown_and_hostile_names_are_refused_by_name(api, api_app, value) -> None:  # noqa: ANN001
    for url, names in _documented(api_app):
        r = api.get(f"{url}?operater={value}")
        assert r.status_code == 400, (url, r.status_code, r.text[:200])
        body = r.json()
        assert body["param"] == "operater"
        if value.startswith(("%00", "a%00", "99")) and "/tiles/" not in url:
            assert "known parameters" in body["message"] or "NUL" in body["message"], body


def test_nul_in_a_parameter_name_is_refused(api) -> None:  # noqa: ANN001
    r = api.get("/api/v1/stations?q%00=1")
    assert r.status_code == 400 and "NUL" in r.json()["message"]
    assert json.loads(r.text)["param"] == "q\\0"

"""Schemathesis against the OpenAPI document of /api/v1, in process (ASGI): no input gives a 5xx,
and every 200 matches its documented schema.

(The operations are driven from one test with ``as_strategy()``: ``schemathesis.pytest.from_fixture``
does not work with pytest 9 in schemathesis 4.32.)
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

pytestmark = pytest.mark.usefixtures("search_data")


def test_api_never_fails_with_5xx(api_app) -> None:  # noqa: ANN001
    schema = schemathesis.openapi.from_asgi("/api/docs/openapi.json", api_app).include(path_regex=r"^/api/v1/")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/stations", "/api/v1/stations/{station_pk}",
                                               "/api/v1/stations.geojson", "/api/v1/stations.csv",
                                               "/api/v1/reference", "/api/v1/stats"}
    statuses: dict[str, set[int]] = {}
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # noqa: ANN001
            response = case.call()
            statuses.setdefault(op.path, set()).add(response.status_code)
            assert response.status_code < 500, (case.path, case.query, response.text[:500])
            checks = [not_a_server_error]
            if response.status_code == 200 and not op.path.endswith(".csv"):
                checks.append(response_schema_conformance)
            case.validate_response(response, checks=checks)

        run()
    assert all(codes for codes in statuses.values())

"""One world of tariffs, orders and reconciliations (tests/orders_helpers.py) for every test of
this package, and clients logged in as its operators and as a regulator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts_helpers import create_regulator
from tests.integration.messaging.conftest import make_client  # noqa: F401 - a fixture
from tests.orders_helpers import World, build_world


@pytest.fixture(scope="package")
def world(engine) -> World:  # noqa: ANN001
    return build_world(engine)


@pytest.fixture(scope="package")
def regulator(engine) -> dict[str, Any]:  # noqa: ANN001
    return create_regulator(engine)

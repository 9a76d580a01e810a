"""Several logged-in clients at once (a regulator and operators), each with its own session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.accounts_helpers import csrf_from, login

HTML = {"accept": "text/html"}


@pytest.fixture()
def make_client(app, client) -> Iterator[Callable[..., Any]]:  # noqa: ANN001
    """``client`` runs the app's lifespan once; the extra clients only carry their own cookies
    (several entered TestClients on one app wait on each other's shutdown)."""
    from litestar.testing import TestClient


    def _make(account: dict[str, Any] | None = None) -> Any:
        c = TestClient(app, base_url="http://127.0.0.1:8000")
        if account is not None:
            login(c, account["account_name"], account["password"])
            c.csrf = csrf_from(c, "/admin/messages" if account["account_name"].startswith(("reg_", "adm_")) else "/backoffice/messages")
        return c

    yield _make

"""The docstring examples of this domain's pure modules (no database)."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("name", ["services.supervision.fees", "services.messaging.files", "services.feedback.service",
                                  "services.supervision.tasks"])
def test_doctests(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0

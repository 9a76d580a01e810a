"""Alembic revisions are frozen: what a revision runs is written in it, or in its own copy under
``sql/migrations/versions/sql/``, never read from code or SQL that keeps changing after it
(``services``, ``sql/functions``, ``sql/queries``). Upgrading an old database then replays history
exactly; ``sql/functions`` holds today's definitions (tests/integration/test_foundation_db.py
checks that the head of the migrations equals them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

VERSIONS = Path(__file__).resolve().parents[2] / "sql" / "migrations" / "versions"
REVISIONS = sorted(VERSIONS.glob("*.py"))
OUR_PACKAGES = {"geo", "services", "tiles", "ingest", "portal_site", "sql"}


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", REVISIONS, ids=lambda p: p.name)
def test_a_revision_imports_none_of_our_packages(path: Path) -> None:
    assert not _imported(ast.parse(path.read_text(encoding="utf-8"))) & OUR_PACKAGES


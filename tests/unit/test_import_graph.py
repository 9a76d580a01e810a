"""The house is one-way: ``geo ← services ← {ingest, tiles, portal_site}``, and has no import cycles.

The import graph of the packages is built from their source with :mod:`ast` (not a grep, and
without importing anything): every ``import`` and ``from … import`` at any depth (also inside
functions), relative imports resolved, ``from pkg import name`` mapped to the submodule when
``name`` is one; imports under ``if TYPE_CHECKING:`` are left out (they never run).

Rules, by top-level package (``portal_site`` may import all of them):

* ``geo`` imports none of the others: pure geography;
* ``services`` imports only ``geo``: the domain, which the feed, the tiles and the web call;
* ``ingest`` (the T/CEC 102 feed), ``tiles`` and ``sql`` (the migrations) build on ``geo`` and
  ``services`` and never import ``portal_site`` nor each other.

A failure names every offending edge, and every cycle (a strongly connected component of more
than one module) with its modules.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("geo", "services", "tiles", "portal_site", "ingest", "sql")

#: package -> the packages it may import (besides itself).
ALLOWED: dict[str, frozenset[str]] = {
    "geo": frozenset(),
    "services": frozenset({"geo"}),
    "ingest": frozenset({"geo", "services"}),
    "tiles": frozenset({"geo", "services"}),
    "sql": frozenset({"geo", "services"}),
    "portal_site": frozenset({"geo", "services", "ingest", "tiles", "sql"}),
}

Graph = Mapping[str, set[str]]


# ------------------------------------------------------------------------------------ the graph


def module_files(root: Path, packages: Iterable[str]) -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package ``__init__``) for every ``.py`` file of the packages."""
    out: dict[str, tuple[Path, bool]] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            rel = path.relative_to(root).with_suffix("")
            if "__pycache__" in rel.parts:
                continue
            parts = list(rel.parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out[".".join(parts)] = (path, is_pkg)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported_names(tree: ast.AST, module: str, is_pkg: bool) -> list[tuple[str, str | None]]:
    """(absolute module, name imported from it or None) for every import that can run."""
    found: list[tuple[str, str | None]] = []
    package = module if is_pkg else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the ``else`` of ``if TYPE_CHECKING`` does run
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                base_parts = base_parts[: len(base_parts) - (node.level - 1)] if node.level > 1 else base_parts
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.extend((base, alias.name) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _known_prefix(name: str, modules: Mapping[str, object]) -> str | None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def import_graph(root: Path, packages: Iterable[str] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports (self-imports left out)."""
    modules = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for module, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for base, name in _imported_names(tree, module, is_pkg):
            target = None
            if name is not None and name != "*" and f"{base}.{name}" in modules:
                target = f"{base}.{name}"  # ``from pkg import submodule``
            elif base:
                target = _known_prefix(base, modules)
            if target is not None and target != module:
                targets.add(target)
        graph[module] = targets
    return graph


# ------------------------------------------------------------------------------------ the checks


def top(module: str) -> str:
    return module.partition(".")[0]


def backward_edges(graph: Graph, allowed: Mapping[str, frozenset[str]] = ALLOWED) -> list[tuple[str, str]]:
    """Edges from one package into another that it may not import, sorted."""
    bad = []
    for src, targets in graph.items():
        for dst in targets:
            a, b = top(src), top(dst)
            if a != b and a in allowed and b not in allowed[a]:
                bad.append((src, dst))
    return sorted(bad)


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    nodes = sorted(set(graph) | {d for ts in graph.values() for d in ts})
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, list[str]]] = [(start, sorted(graph.get(start, ())))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, todo = work[-1]
            if todo:
                nxt = todo.pop()
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, sorted(graph.get(nxt, ()))))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return sorted(out)


def describe(edges: list[tuple[str, str]], loops: list[list[str]]) -> str:
    lines = [f"backward import: {a} -> {b}" for a, b in edges]
    lines += [f"import cycle: {' <-> '.join(c)}" for c in loops]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ the house


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_the_graph_covers_the_packages(graph: dict[str, set[str]]) -> None:
    assert {top(m) for m in graph} == set(PACKAGES)
    assert "ingest.receiver" in graph["portal_site.routes.evcs"]
    assert "services.settings" in graph["ingest.receiver"]


def test_imports_flow_one_way(graph: dict[str, set[str]]) -> None:
    edges = backward_edges(graph)
    assert not edges, "imports against geo <- services <- {ingest, tiles, sql} <- portal_site:\n" + describe(edges, [])


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    loops = cycles(graph)
    assert not loops, "modules that import each other (directly or in a ring):\n" + describe([], loops)


# ------------------------------------------------------------------------------------ the checker


def test_checker_reports_cycles_and_backward_edges() -> None:
    synthetic = {
        "geo.a": {"services.b"},  # backward
        "services.b": {"services.c", "geo.a"},
        "services.c": {"services.b"},  # services.b <-> services.c, and geo.a through services.b
        "services.d": {"ingest.x"},  # backward
        "ingest.x": {"services.d", "ingest.y"},  # ring services.d -> ingest.x -> services.d
        "ingest.y": set(),
        "portal_site.z": {"ingest.x", "tiles.t", "geo.a"},  # portal_site may import all
        "tiles.t": {"portal_site.z"},  # backward, and a ring with portal_site.z
    }
    assert backward_edges(synthetic) == [("geo.a", "services.b"), ("services.d", "ingest.x"),
                                         ("tiles.t", "portal_site.z")]
    assert cycles(synthetic) == [["geo.a", "services.b", "services.c"], ["ingest.x", "services.d"],
                                 ["portal_site.z", "tiles.t"]]
    text = describe(backward_edges(synthetic), cycles(synthetic))
    assert "backward import: geo.a -> services.b" in text and "import cycle: ingest.x <-> services.d" in text
    assert cycles({"a.x": {"a.y"}, "a.y": set()}) == [] and backward_edges({"geo.x": {"geo.y"}}) == []


def test_graph_builder_sees_every_kind_of_import(tmp_path: Path) -> None:
    files = {
        "geo/__init__.py": "",
        "geo/pure.py": "import math\n",
        "services/__init__.py": "",
        "services/feed/__init__.py": "from . import store\n",
        "services/feed/store.py": "from ..model import Thing\nfrom services import model\n",
        "services/model.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from ingest.hint import Hint\nelse:\n    import geo.pure\n"
            "def later():\n    from ingest import late\n    return late\n"),
        "ingest/__init__.py": "",
        "ingest/hint.py": "",
        "ingest/late.py": "import services.feed.store as s\nfrom services.feed import store, missing_name\n",
    }
    for name, body in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(body, encoding="utf-8")
    g = import_graph(tmp_path, ("geo", "services", "ingest"))
    assert g["services.feed"] == {"services.feed.store"}  # relative, submodule
    assert g["services.feed.store"] == {"services.model"}  # ``..model`` and ``from services import model``
    assert g["services.model"] == {"geo.pure", "ingest.late"}  # function-level counts; TYPE_CHECKING does not
    assert g["ingest.late"] == {"services.feed.store", "services.feed"}  # a name that is no module: the package
    assert backward_edges(g) == [("services.model", "ingest.late")]
    assert cycles(g) == [["ingest.late", "services.feed", "services.feed.store", "services.model"]]

"""Which code may import which (docs/architecture.md, "Packages"), checked.

The core (``searchcore``) imports neither Flask nor click; the indexer and the web
app never import each other; the benchmarks and the tests never import each other
(what both need lives in ``devtools/``); the product never imports ``devtools``,
which in turn needs neither ``bench`` nor ``tests``; ``devtools/esnode`` uses
the standard library alone, because scripts/es-node.sh runs it with whatever
python3 the machine has, before the project's venv exists; and the core's modules
import each other without a cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported(path: Path) -> set[str]:
    """The top-level names of every module ``path`` imports (relative imports,
    which stay inside its own package, are left out)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
    return names


def test_core_imports_neither_flask_nor_click():
    code = (
        "import sys, searchcore.search, searchcore.posts, searchcore.indexing, "
        "searchcore.engines.tantivy_engine, searchcore.engines.elasticsearch_engine; "
        "bad = [m for m in ('flask', 'click', 'searchapp', 'indexer') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    "folder, forbidden",
    [
        ("indexer", {"searchapp"}),
        ("searchapp", {"indexer"}),
        ("bench", {"tests"}),
        ("tests", {"bench"}),
        ("searchcore", {"devtools"}),
        ("indexer", {"devtools"}),
        ("searchapp", {"devtools"}),
        ("devtools", {"bench", "tests"}),
    ],
)
def test_folder_never_imports_what_it_must_not(folder, forbidden):
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, folder
    wrong = {str(path.relative_to(ROOT)): sorted(imported(path) & forbidden) for path in files}
    assert not {path: names for path, names in wrong.items() if names}


def test_the_node_manager_needs_only_the_standard_library():
    files = sorted((ROOT / "devtools" / "esnode").glob("*.py"))
    assert files
    outside = {str(path.relative_to(ROOT)): sorted(imported(path) - sys.stdlib_module_names - {"__future__"}) for path in files}
    assert not {path: names for path, names in outside.items() if names}


@pytest.mark.parametrize(
    "source, names",
    [
        ("from tests.ranking_eval import score\n", {"tests"}),
        ("import bench.bench_slowclients as b\n", {"bench"}),
        ("def f():\n    from tests import conftest\n", {"tests"}),
        ("from . import helpers\nfrom .conftest import ROOT\n", set()),
        ("import os.path, json\n", {"os", "json"}),
    ],
)
def test_imported_finds_every_import_statement(tmp_path, source, names):
    """The checker itself: an import of a forbidden package, anywhere in a file
    (a function's body too), is seen; a relative import is not a package's."""
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    assert imported(path) == names


# -- the core's modules import each other without a cycle -------------------------
# A cycle means two modules that cannot be read, tested or changed apart: the facets
# and the search request once imported each other (the facets named the request's
# type, the request parsed itself with the facets). Every import counts, those made
# only for type checkers (``if TYPE_CHECKING:``) and those deferred into a function
# too, since each says that one module needs the other.

CORE = "searchcore"


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Every module of ``package`` by dotted name (a package by its own name)."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``known`` that module ``name`` imports, anywhere in it. Importing
    ``a.b`` runs ``a`` too: a package that is not one of the importer's own counts."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # from . import module
    out = set()
    for target in found:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and prefix != name and not name.startswith(prefix + "."):
                out.add(prefix)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph(root: Path = ROOT, package: str = CORE) -> dict[str, set[str]]:
    modules = _modules(root, package)
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def test_the_core_has_no_import_cycle():
    graph = import_graph()
    assert {"searchcore.search", "searchcore.facets", "searchcore.fields", "searchcore.model"} <= set(graph)
    assert "searchcore.fields" in graph["searchcore.model"]  # the graph is read at all
    assert _cycles(graph) == []


def test_a_cycle_is_found_even_through_a_type_checking_import(tmp_path):
    """The check itself: two modules that import each other, one only for type
    checkers, and a package whose module imports a sibling relatively."""
    pkg = tmp_path / "core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .sub.b import B\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..a import A\n")
    (pkg / "c.py").write_text("def f():\n    from . import a\n")
    graph = import_graph(tmp_path, "core")
    assert graph["core.c"] == {"core.a"}
    assert graph["core.a"] == {"core.sub", "core.sub.b"} and graph["core.sub.b"] == {"core.a"}
    assert _cycles(graph) == [["core.a", "core.sub.b"]]

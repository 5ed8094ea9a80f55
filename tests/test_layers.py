"""Which code may import which (docs/architecture.md, "Packages"), checked.

The core (``searchcore``) imports neither Flask nor click; the indexer and the web
app never import each other; the benchmarks and the tests never import each other
(what both need lives in ``devtools/``); the product never imports ``devtools``,
which in turn needs neither ``bench`` nor ``tests``; and ``devtools/esnode`` uses
the standard library alone, because scripts/es-node.sh runs it with whatever
python3 the machine has, before the project's venv exists.
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

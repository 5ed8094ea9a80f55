"""Adding a field that readers see and filter by is one field row, one parse line
and one facet line (issue 22): docs/architecture.md shows the diff for an ``author``
taken from the front matter, and this test applies that very diff to a copy of the
code, never to the product, then indexes real post files with the copy on each
engine and reads what readers get: the author stored, in each hit's JSON and on
its line of the results page, in the article's JSON and on its page, and counted
as a facet that filters.

The copy runs in a process of its own, so the product's modules in this one stay
as they are; if the diff no longer applies (the code around it changed), the test
says to update the docs.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import cli_env

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
MARK = "<!-- tests/test_adding_a_field.py applies the diff below -->"
COPIED = ("searchcore", "searchapp", "indexer", "templates")

POSTS = {
    "2024-05-01-zhang-a.md": ("张三", "作者测试：港口吞吐量创新高", "port"),
    "2024-05-02-zhang-b.md": ("张三", "作者测试：春耕备耕有序推进", "farm"),
    "2024-05-03-li.md": ("李四", "作者测试：新能源汽车出口增长", "car"),
    "2024-05-04-nobody.md": (None, "作者测试：无署名的短讯", "note"),
}

# Run in the copy: index the posts, then ask the app as a reader would.
SCRIPT = r"""
import json, sys
from pathlib import Path
import searchcore
from indexer.pipeline import run
from searchapp import create_app
from searchcore.config import load_settings
from searchcore.engines import open_engine

assert Path(searchcore.__file__).resolve().is_relative_to(Path.cwd().resolve()), searchcore.__file__
settings = load_settings()
report = run(settings, Path(sys.argv[1]))
engine = open_engine(settings)
client = create_app({"TESTING": True}).test_client()
print(json.dumps({
    "indexed": report.indexed,
    "stored": {i: engine.get(i).author for i in ("2024-05-01-zhang-a", "2024-05-04-nobody")},
    "search": client.get("/api/search", query_string={"q": "作者测试"}).get_json(),
    "by_author": client.get("/api/search", query_string={"q": "作者测试", "author": "张三"}).get_json(),
    "page": client.get("/", query_string={"q": "作者测试"}).get_data(as_text=True),
    "article": client.get("/api/article/2024-05-01-zhang-a").get_json(),
    "article_page": client.get("/article/2024-05-01-zhang-a").get_data(as_text=True),
}, ensure_ascii=False))
"""


def example_diff() -> str:
    """The diff docs/architecture.md shows, as it shows it."""
    text = DOC.read_text(encoding="utf-8")
    assert MARK in text, f"{DOC} lost the author example"
    return text.split(MARK, 1)[1].split("```diff\n", 1)[1].split("```", 1)[0]


def test_the_documented_diff_is_one_row_one_parse_line_one_facet_line():
    diff = example_diff()
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
    files = re.findall(r"^\+\+\+ b/(\S+)", diff, flags=re.M)
    assert files == ["searchcore/fields.py", "searchcore/posts.py", "searchcore/facets.py"]
    assert len(added) == 3 and not removed
    assert added[0][1:].strip().startswith('Field("author"') and "author=" in added[1] and "TermsFacet(" in added[2]


@pytest.fixture(scope="module")
def patched(tmp_path_factory) -> Path:
    """A copy of the code with the documented diff applied."""
    tree = tmp_path_factory.mktemp("with-author")
    for name in COPIED:
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    patch = tree / "author.diff"
    patch.write_text(example_diff(), encoding="utf-8")
    done = subprocess.run(["git", "apply", "--verbose", str(patch)], cwd=tree, capture_output=True, text=True)
    assert done.returncode == 0, f"the author example of {DOC} no longer applies; update it:\n{done.stderr}"
    return tree


def _write_posts(folder: Path) -> None:
    folder.mkdir()
    for name, (author, title, slug) in POSTS.items():
        head = f"---\ntitle: {title}\ndate: {name[:10]} 09:00:00 +0800\ncategories: economy\ntags: 测试\n"
        if author:
            head += f"author: {author}\n"
        body = f"{title}。这是一篇关于{slug}的报道，作者测试用的正文，足够长，可以被搜索到。\n"
        (folder / name).write_text(head + "---\n" + body + f"\n<https://news.example/{slug}.html>\n", encoding="utf-8")


def test_an_author_added_by_the_documented_diff_is_stored_shown_and_faceted(patched, settings, tmp_path):
    posts = tmp_path / "posts"
    _write_posts(posts)
    env = {**cli_env(settings), "PYTHONPATH": str(patched), "SEARCH_RECENCY_WEIGHT": "0"}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(posts)], cwd=patched, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])

    assert got["indexed"] == len(POSTS)
    assert got["stored"] == {"2024-05-01-zhang-a": "张三", "2024-05-04-nobody": ""}
    hits = {h["id"]: h for h in got["search"]["hits"]}
    assert {i: h["author"] for i, h in hits.items()} == {
        "2024-05-01-zhang-a": "张三",
        "2024-05-02-zhang-b": "张三",
        "2024-05-03-li": "李四",
        "2024-05-04-nobody": "",
    }
    # counted like any facet: no bucket for the post without an author
    assert [(v["value"], v["count"], v["selected"]) for v in got["search"]["facets"]["author"]] == [
        ("张三", 2, False),
        ("李四", 1, False),
    ]
    selected = got["by_author"]
    assert sorted(h["id"] for h in selected["hits"]) == ["2024-05-01-zhang-a", "2024-05-02-zhang-b"]
    assert [f["label"] for f in selected["filters"]] == ["作者：张三"]
    # disjunctive: the other author's count stays, for adding them
    assert [(v["value"], v["count"], v["selected"]) for v in selected["facets"]["author"]] == [
        ("张三", 2, True),
        ("李四", 1, False),
    ]
    assert got["page"].count('<span class="author">张三</span>') == 2
    assert got["page"].count('<span class="author">李四</span>') == 1
    assert '<h2 id="facet-author">作者</h2>' in got["page"]
    assert got["article"]["author"] == "张三"
    assert '<a class="author" href="/?author=%E5%BC%A0%E4%B8%89">张三</a>' in got["article_page"]


def test_without_the_diff_there_is_no_author(settings, tmp_path):
    """The same posts through the product as it is: the front-matter key is read by
    nothing, so what the test above sees comes from the three lines alone."""
    posts = tmp_path / "posts"
    _write_posts(posts)
    env = {**cli_env(settings), "PYTHONPATH": str(ROOT), "SEARCH_RECENCY_WEIGHT": "0"}
    script = SCRIPT.replace("engine.get(i).author", "getattr(engine.get(i), 'author', None)")
    done = subprocess.run([sys.executable, "-c", script, str(posts)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["stored"] == {"2024-05-01-zhang-a": None, "2024-05-04-nobody": None}
    assert "author" not in got["search"]["facets"] and "author" not in got["search"]["hits"][0]
    assert 'class="author"' not in got["page"] + got["article_page"]


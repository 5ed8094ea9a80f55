#!/usr/bin/env python3
"""Render a fixed set of 40 requests and write each answer to a folder: the guard of a
refactoring that must not change what readers get.

Run it on the code before a change and on the code after, then compare the folders
(``--compare``, or ``diff -r``): a refactoring that claims to change nothing shows no
difference, and one that changes a page on purpose shows exactly that page.

The requests cover the search page (queries, each facet selected, several values,
more values, date drill-downs and ranges, open ranges, a backwards range, sorts,
pages, a page past the last, zero results with their ways out, bad parameters),
htmx partials, ``/api/search``, ``/article/<id>`` and ``/api/article/<id>`` (one
post in Beijing time, one written in UTC, a missing one), ``/suggest`` and
``/api/suggest``. They run on a fixed corpus: 400 synthetic posts (seed 22, 5 %
broken or awkward files, so a UTC-dated post and rejected files are among them),
indexed into tantivy in a temporary data folder.

Each answer is written as ``NN-name.html`` or ``.json`` with its body as the app
sent it, except that ``took_ms`` (a time) reads 0; ``index.tsv`` lists each
request's URL, status, content type and redirect target. Nothing else varies
between runs of the same code: the zero-result ways out are counted without their
time budget (``Searcher.RELAX_BUDGET_S``), which a loaded machine would otherwise
cut short.

  python scripts/page_snapshots.py OUT_DIR             # about 30 s (indexing)
  python scripts/page_snapshots.py --compare OLD NEW   # lists what differs; exit 1 if any

``--compare`` prints a diff per file that differs, or, for JSON, that it is the
same value with its keys in another order.

It renders the code of the tree it sits in: to snapshot another revision, copy it
into a worktree of that revision and run it there.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this tree's code, whatever else is installed

CORPUS = {"n": 400, "seed": 22, "broken": 0.05}
UTC_POST = "2021-11-10-xuexiao-gi"  # the corpus's post dated in UTC (its local time differs)
POST = "2019-09-27-rongzi-xiaofei-wujia-ax"  # an ordinary post, +08:00
HX = {"HX-Request": "true", "HX-Current-URL": "http://localhost/"}

# (name, path and query, extra headers)
REQUESTS: list[tuple[str, str, dict[str, str]]] = [
    ("home", "/", {}),
    ("query", "/?q=经济", {}),
    ("two-words", "/?q=经济 发展", {}),
    ("quoted", '/?q="人工智能"', {}),
    ("negated", "/?q=经济 -金融", {}),
    ("category", "/?category=tech", {}),
    ("tag", "/?q=经济&tag=天津", {}),
    ("site", "/?site=cctv.example", {}),
    ("two-categories", "/?category=tech&category=finance&tag=人工智能", {}),
    ("more-sites", "/?more=site", {}),
    ("more-tags-selected", "/?q=经济&tag=5G&more=tag", {}),
    ("year", "/?from=2022-01-01&to=2022-12-31", {}),
    ("month", "/?q=经济&from=2022-03-01&to=2022-03-31", {}),
    ("day", "/?from=2022-03-15&to=2022-03-15", {}),
    ("range", "/?from=2021-07-01&to=2021-08-15&category=world", {}),
    ("to-only", "/?q=教育&to=2020-06-30", {}),
    ("backwards-range", "/?from=2022-12-31&to=2022-01-01", {}),
    ("newest", "/?q=经济&sort=newest", {}),
    ("oldest", "/?q=经济&sort=oldest&category=finance", {}),
    ("page-2", "/?q=经济&page=2", {}),
    ("past-last-page", "/?q=经济&page=40", {}),
    ("zero-words", "/?q=经济 屿屿屿 天津", {}),
    ("zero-filters", "/?q=经济 -金融&tag=天津&from=2019-01-01&to=2019-01-31", {}),
    ("zero-one-word", "/?q=屿屿屿", {}),
    ("zero-filters-only", "/?category=sports&tag=产教融合&from=2019-01-01&to=2019-01-02", {}),
    ("bad-page", "/?q=经济&page=0", {}),
    ("bad-dates", "/?from=2022-13-01&to=2022-02-30&tag=天津", {}),
    ("bad-sort-and-tag", "/?q=经济&sort=best&tag=" + "长" * 101, {}),
    ("htmx-query", "/?q=经济&tag=天津", HX),
    ("htmx-month", "/?from=2022-03-01&to=2022-03-31&site=cctv.example", HX),
    ("api-search", "/api/search?q=经济&category=tech&from=2022-01-01&to=2022-12-31&sort=newest", {}),
    ("api-search-zero", "/api/search?q=经济 屿屿屿&tag=天津&from=2019-01-01&to=2019-01-31", {}),
    ("api-search-error", "/api/search?page=abc", {}),
    ("article", f"/article/{POST}?back=/%3Fq%3D经济", {}),
    ("article-utc", f"/article/{UTC_POST}", {}),
    ("article-missing", "/article/2020-01-01-no-such-post", {}),
    ("api-article", f"/api/article/{POST}", {}),
    ("api-article-utc", f"/api/article/{UTC_POST}", {}),
    ("suggest", "/suggest?q=经济", {}),
    ("api-suggest", "/api/suggest?q=天津", {}),
]
assert len({n for n, _, _ in REQUESTS}) == len(REQUESTS) == 40
# What each answers (200 unless named): a request that stops answering as meant (a
# post id the generator no longer makes, a parameter no longer refused) would
# compare an error page with an error page, so the run stops instead.
STATUS = {
    "backwards-range": 302,
    "bad-page": 400,
    "bad-dates": 400,
    "bad-sort-and-tag": 400,
    "api-search-error": 400,
    "article-missing": 404,
}

_TOOK = re.compile(rb'("took_ms":\s*)[0-9.eE+-]+')


def build_app(work: Path):
    """The app over the fixed corpus, indexed into tantivy under ``work``."""
    from indexer.pipeline import run
    from searchapp import create_app
    from searchcore.config import load_settings
    from searchcore.search import Searcher
    from synthetic import write_corpus

    Searcher.RELAX_BUDGET_S = 3600.0  # count every way out, however loaded the machine
    posts = work / "posts"
    write_corpus(posts, CORPUS["n"], seed=CORPUS["seed"], broken=CORPUS["broken"])
    env = {"SEARCH_ENGINE": "tantivy", "SEARCH_DATA_DIR": str(work / "data"), "SEARCH_INDEX": "snapshots"}
    settings = load_settings(env)
    report = run(settings, posts)
    if report.indexed < 350:
        raise SystemExit(f"indexing the fixed corpus went wrong: {report.summary()}")
    overrides = {"engine": "tantivy", "data_dir": settings.data_dir, "index": settings.index}
    return create_app({"TESTING": True, "SETTINGS_OVERRIDES": overrides})


def render(app, out: Path) -> list[tuple[str, str, int, str, str]]:
    """Every request's answer written to ``out``; (file, URL, status, type, location) each."""
    out.mkdir(parents=True, exist_ok=True)
    client = app.test_client()
    rows = []
    for i, (name, url, headers) in enumerate(REQUESTS, 1):
        resp = client.get(url, headers=headers)
        kind = resp.mimetype or ""
        ext = "json" if kind.endswith("json") else "html"
        body = _TOOK.sub(rb"\g<1>0", resp.get_data())
        fname = f"{i:02d}-{name}.{ext}"
        (out / fname).write_bytes(body)
        rows.append((fname, url, resp.status_code, kind, resp.headers.get("Location", "")))
    wrong = [f"{r[1]}: {r[2]}" for r, (name, _, _) in zip(rows, REQUESTS, strict=True) if r[2] != STATUS.get(name, 200)]
    if wrong:
        raise SystemExit("requests that did not answer as meant (see STATUS): " + "; ".join(wrong))
    lines = ["file\turl\tstatus\ttype\tlocation"] + ["\t".join(map(str, r)) for r in rows]
    (out / "index.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes())
    except ValueError:
        return path  # not JSON: equal to nothing else


def compare(old: Path, new: Path, context: int = 2) -> int:
    """Print what differs between two snapshot folders (a unified diff per file, cut
    short); the number of files that differ."""
    names = sorted({p.name for p in old.iterdir()} | {p.name for p in new.iterdir()})
    differing = 0
    for name in names:
        a, b = old / name, new / name
        if a.exists() and b.exists() and a.read_bytes() == b.read_bytes():
            continue
        differing += 1
        print(f"--- differs: {name}")
        if not (a.exists() and b.exists()):
            print("    only in", old if a.exists() else new)
            continue
        if name.endswith(".json") and _json(a) == _json(b):
            print("    the same JSON value (its keys in another order)")
            continue
        diff = difflib.unified_diff(
            a.read_text("utf-8").splitlines(), b.read_text("utf-8").splitlines(), str(a), str(b), n=context, lineterm=""
        )
        for k, line in enumerate(diff):
            if k >= 60:
                print("    ... (cut)")
                break
            print("   ", line[:300])
    print(f"{differing} of {len(names)} files differ")
    return differing


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, nargs="?", help="folder to write the answers to (created)")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two snapshot folders")
    p.add_argument("--work", type=Path, help="folder for the corpus and index (default: a temporary one)")
    args = p.parse_args(argv)
    if args.compare:
        return 1 if compare(*args.compare) else 0
    if args.out is None:
        p.error("give OUT_DIR, or --compare OLD NEW")
    import searchcore

    print(f"code: {Path(searchcore.__file__).parent.parent}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="page-snapshots-") as tmp:
        work = args.work or Path(tmp)
        rows = render(build_app(work), args.out)
    for fname, url, status, _, location in rows:
        print(f"{status} {fname} {url}" + (f" -> {location}" if location else ""))
    print(f"{len(rows)} answers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

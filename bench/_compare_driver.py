"""The side of ``bench/compare.py`` that runs inside one commit's checkout.

``compare.py`` starts this file with ``cwd`` and ``PYTHONPATH`` set to a temporary
worktree of the commit under test, so every ``searchcore``/``indexer``/``searchapp``
import below is that commit's code (``hello`` reports where ``searchcore`` came from,
and ``compare.py`` refuses a driver whose code is not the worktree's). The file
itself comes from the tree ``compare.py`` runs in, never from the worktree: a commit
older than ``compare.py`` has none.

It therefore imports only the standard library and the project's public entry
points that both the oldest commit compared (cd880af) and main offer:
``indexer.pipeline.run(settings, path)``, ``searchcore.config.load_settings(env)``,
``searchcore.engines.open_engine``, ``searchcore.search.{Searcher, SearchRequest}``
(``Searcher.engine_query(req, limit=, facets=)``, ``Searcher.search(req)``),
``searchcore.analysis.{normalize, query_words}`` and
``searchapp.create_app({"SETTINGS_OVERRIDES": ..., "TESTING": True})``.
Where the commits differ, a small adapter below says how (``_title``).
No ``_benchlib`` here: importing it would put the running tree ahead of the worktree.

Three ways to run it:

  index  build the index of a corpus (one fresh process per build, so its CPU is its
         own); prints one JSON line: seconds, CPU of the process and its workers, counts
  count  print the number of documents in an index (to check a reused one)
  serve  open the index, the core Searcher and the Flask app once, then answer JSON
         lines on stdin (``hello``, ``mix``, ``totals``, ``warmup``, ``run``, ``quit``)
         with JSON lines on stdout, so imports and warm-up happen once per commit and
         ``compare.py`` can alternate rounds between two live processes

Anything the project prints goes to stderr: stdout carries the protocol only.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import resource
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

MODES = ("engine_nofacets", "engine_facets", "searcher", "app_html", "app_json", "app_html_cold")


def _settings(a: argparse.Namespace, **extra: str):
    """The commit's own Settings from the same environment variables an operator sets."""
    from searchcore.config import load_settings

    # credentials as the operator set them (compare.py passes no SEARCH_* variable and
    # no ELASTICSEARCH_URL: those come from the flags, the same for both commits)
    env = {k: v for k, v in os.environ.items() if k.startswith("ELASTICSEARCH_")}
    env.update({"SEARCH_ENGINE": a.engine, "SEARCH_DATA_DIR": a.data_dir, "SEARCH_INDEX": a.index})
    if a.es_url:
        env["ELASTICSEARCH_URL"] = a.es_url
    env.update(extra)
    return load_settings(env)


def _title(doc: Any) -> str:
    """Adapter: a stored hit is a dict at cd880af (``doc["title"]``), a StoredDoc later."""
    return doc["title"] if isinstance(doc, dict) else doc.title


def _cpu_self_children() -> tuple[float, float]:
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, ch.ru_utime + ch.ru_stime


# -- index / count -------------------------------------------------------------------------


def cmd_index(a: argparse.Namespace) -> dict[str, Any]:
    """One full run of the commit's indexer into a fresh index; imports happen before the clock."""
    from indexer.pipeline import run

    settings = _settings(a)
    cpu0 = _cpu_self_children()
    t0 = time.perf_counter()
    report = run(settings, Path(a.corpus))
    seconds = time.perf_counter() - t0
    cpu1 = _cpu_self_children()
    return {
        "seconds": seconds,
        "cpu_main": cpu1[0] - cpu0[0],  # the indexer's process, all threads (tantivy's writer and merges too)
        "cpu_workers": cpu1[1] - cpu0[1],  # its worker processes (reaped when the pool closes)
        "read": report.read,
        "indexed": report.indexed,
        "rejected": report.rejected,
        "documents": report.documents,
        "summary": report.summary(),
    }


def cmd_count(a: argparse.Namespace) -> dict[str, Any]:
    from searchcore.engines import open_engine

    engine = open_engine(_settings(a))
    try:
        return {"documents": engine.count()}
    finally:
        engine.close()


# -- serve ---------------------------------------------------------------------------------------


def _url(path: str, args: dict[str, Any]) -> str:
    return path + ("?" + urlencode(args, doseq=True) if args else "")


class Server:
    """One commit's engine, core Searcher and Flask app, opened once."""

    def __init__(self, a: argparse.Namespace) -> None:
        from searchapp import create_app
        from searchcore.engines import open_engine
        from searchcore.search import Searcher, SearchRequest

        self.SearchRequest = SearchRequest
        self.settings = _settings(a)
        self.engine = open_engine(self.settings)
        self.searcher = Searcher(self.engine, self.settings)
        overrides = {
            "engine": self.settings.engine,
            "data_dir": str(self.settings.data_dir),
            "index": self.settings.index,
            "elasticsearch_url": self.settings.elasticsearch_url,
        }
        app = create_app({"SETTINGS_OVERRIDES": overrides, "TESTING": True})
        if app.config["SETTINGS"] != self.settings:
            raise SystemExit("the app's settings differ from the core's: is a SEARCH_* variable set?")
        self.client = app.test_client()
        self.cold = create_app({"SETTINGS_OVERRIDES": {**overrides, "facet_cache": 0}, "TESTING": True}).test_client()
        self.calls = {
            "engine_nofacets": self.engine_nofacets,
            "engine_facets": self.engine_facets,
            "searcher": lambda args: self.searcher.search(self.SearchRequest.from_args(args)).total,
            "app_html": lambda args: self.page(self.client, args),
            "app_json": self.app_json,
            "app_html_cold": lambda args: self.page(self.cold, args),
        }

    # the timed calls: the same as bench/bench_search.py's modes
    def engine_nofacets(self, args: dict[str, Any]) -> int:
        req = self.SearchRequest.from_args(args)
        return self.engine.search(self.searcher.engine_query(req, facets=False)).total

    def engine_facets(self, args: dict[str, Any]) -> int:
        req = self.SearchRequest.from_args(args)
        return self.engine.search(self.searcher.engine_query(req)).total

    @staticmethod
    def page(client, args: dict[str, Any]) -> int:
        resp = client.get(_url("/", args))
        if resp.status_code != 200:
            raise RuntimeError(f"GET {_url('/', args)} answered {resp.status_code}")
        return len(resp.data)

    def app_json(self, args: dict[str, Any]) -> int:
        resp = self.client.get(_url("/api/search", args))
        if resp.status_code != 200:
            raise RuntimeError(f"GET {_url('/api/search', args)} answered {resp.status_code}")
        return resp.get_json()["total"]

    # -- commands
    def hello(self, msg: dict[str, Any]) -> dict[str, Any]:
        import searchcore

        return {
            "searchcore": searchcore.__file__,
            "documents": self.engine.count(),
            "engine": self.settings.engine,
            "search_threads": getattr(self.settings, "search_threads", None),
        }

    def mix(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {"mix": pick_mix(self, int(msg.get("words", 10)), int(msg.get("seed", 7)))}

    def totals(self, msg: dict[str, Any]) -> dict[str, Any]:
        """What each query finds, from the core and from /api/search (they must agree)."""
        out = []
        for q in msg["mix"]:
            core = self.searcher.search(self.SearchRequest.from_args(q["args"])).total
            out.append({"core": core, "app": self.app_json(q["args"])})
        return {"totals": out}

    def warmup(self, msg: dict[str, Any]) -> dict[str, Any]:
        mix = msg["mix"]
        for mode in msg["modes"]:
            for i in range(int(msg["requests"])):
                self.calls[mode](mix[i % len(mix)]["args"])
        return {}

    def run(self, msg: dict[str, Any]) -> dict[str, Any]:
        """``requests`` calls of one mode cycling through the mix, one at a time:
        wall ms and CPU ms of this process (all its threads: tantivy's search threads too)."""
        call = self.calls[msg["mode"]]
        mix = msg["mix"]
        wall: list[float] = []
        cpu: list[float] = []
        gc.collect()  # no collection owed by the previous block lands in this one
        perf, ptime = time.perf_counter, time.process_time
        for i in range(int(msg["requests"])):
            args = mix[i % len(mix)]["args"]
            c0, t0 = ptime(), perf()
            call(args)
            t1, c1 = perf(), ptime()
            wall.append((t1 - t0) * 1000)
            cpu.append((c1 - c0) * 1000)
        return {"wall_ms": wall, "cpu_ms": cpu}


def pick_mix(s: Server, n_words: int, seed: int) -> list[dict[str, Any]]:
    """The query mix, drawn from the indexed titles as bench/bench_search.py draws it,
    plus the kinds the comparison needs (two words unspaced, quoted, category filter,
    newest first).

    Words: two or more characters, not ASCII, in 0.2-7 % of the ~2,000 newest titles;
    pairs: two such words next to each other in one title, so the unspaced and the
    quoted forms find that title too.
    """
    from searchcore.analysis import normalize, query_words

    newest = s.searcher.engine_query(s.SearchRequest.from_args({}), limit=2000, facets=False)
    titles = [_title(h.doc) for h in s.engine.search(newest).hits]
    df: Counter[str] = Counter()
    per_title: list[tuple[str, list[str]]] = []
    for t in titles:
        norm = normalize(t)
        words = [w for w in query_words(norm) if len(w) >= 2 and not w.isascii()]
        per_title.append((norm, words))
        df.update(list(dict.fromkeys(words)))
    n = max(1, len(titles))
    lo, hi = max(2, n // 500), max(3, n // 15)
    pool = sorted(w for w, c in df.items() if lo <= c <= hi)
    rng = random.Random(seed)
    words = rng.sample(pool, min(n_words, len(pool)))
    n_pairs = max(1, n_words // 3)
    pairs: list[tuple[str, str]] = []
    for norm, ws in rng.sample(per_title, len(per_title)):
        for w1, w2 in zip(ws, ws[1:], strict=False):
            if w1 != w2 and df[w1] >= 2 and df[w2] >= 2 and w1 + w2 in norm and (w1, w2) not in pairs:
                pairs.append((w1, w2))
                break
        if len(pairs) >= n_pairs:
            break

    def top(args: dict[str, Any], facet: str) -> str | None:
        values = s.searcher.search(s.SearchRequest.from_args(args)).facets[facet].values
        return values[0].value if values else None

    mix: list[dict[str, Any]] = []

    def add(kind: str, args: dict[str, Any], tag: bool = False) -> None:
        mix.append({"kind": kind, "args": args})
        if tag and (t := top(args, "tag")):
            mix.append({"kind": kind + " + tag", "args": {**args, "tag": [t]}})

    for w in words:
        add("one word", {"q": w}, tag=True)
    for w in words[:n_pairs]:
        if c := top({"q": w}, "category"):
            add("one word + category", {"q": w, "category": [c]})
        add("one word, newest", {"q": w, "sort": "newest"})
    for w1, w2 in pairs:
        add("two words", {"q": f"{w1} {w2}"}, tag=True)
        add("two words unspaced", {"q": w1 + w2})
        add("quoted", {"q": f'"{w1}{w2}"'})
    add("empty", {}, tag=True)
    return mix


def serve(a: argparse.Namespace, proto) -> None:
    server = Server(a)
    handlers = {
        "hello": server.hello,
        "mix": server.mix,
        "totals": server.totals,
        "warmup": server.warmup,
        "run": server.run,
    }
    proto.write(json.dumps({"ready": True}) + "\n")
    proto.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        if msg.get("cmd") == "quit":
            break
        try:
            reply = handlers[msg["cmd"]](msg)
        except Exception as exc:  # noqa: BLE001 - the parent prints it and stops
            import traceback

            traceback.print_exc()
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        proto.write(json.dumps(reply, ensure_ascii=False) + "\n")
        proto.flush()
    server.engine.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["index", "count", "serve"])
    ap.add_argument("--engine", default="tantivy")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--index", required=True)
    ap.add_argument("--es-url")
    ap.add_argument("--corpus")
    a = ap.parse_args()
    # stdout is the protocol: keep a private copy of it and send fd 1 (prints, C-level
    # writes of any library) to stderr
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    if a.command == "serve":
        serve(a, proto)
    else:
        result = cmd_index(a) if a.command == "index" else cmd_count(a)
        proto.write(json.dumps(result) + "\n")
        proto.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

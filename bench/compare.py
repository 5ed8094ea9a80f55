#!/usr/bin/env python
"""Two commits side by side on one machine, in one run: indexing, engine, searcher, page.

  python bench/compare.py BASE [HEAD]

BASE and HEAD are commits (anything ``git rev-parse`` takes); HEAD defaults to ``.``,
the working tree as it is now, uncommitted and untracked (not ignored) files
included, which is HEAD itself when nothing is changed (``WORKTREE`` is a synonym).
Each is checked out in a temporary git worktree. One synthetic corpus (seed 3) is
written once (``--synthetic-cache``) and indexed by each commit's own indexer,
base first, each build in a fresh process. Then one long-lived driver process per
commit (``bench/_compare_driver.py``, with that commit's code on PYTHONPATH) opens
its index, its core Searcher and its Flask app, and the two answer the same query
mix in alternating blocks: for each mode, one commit's block of ``--requests``
requests, then the other's, and which commit goes first alternates from round to
round. Figures are medians over the rounds of each round's median and p95, wall
time and CPU time (the driver process's, all threads) per request; ratios are
HEAD / BASE. It never fails on a timing: it is a benchmark, not a test.

  python bench/compare.py cd880af                      # the working tree against cd880af
  python bench/compare.py cd880af HEAD --posts 100000 \\
      --synthetic-cache /work/cache/syn100k --reuse-index /work/cache/cmp-index
  python bench/compare.py HEAD --smoke                 # 300 posts, one round: does it work?
  python bench/compare.py --report bench/out/compare-….json   # print a saved run again

See bench/README.md for what each figure means and how to read the ratios.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _benchlib as B

DRIVER = Path(__file__).resolve().parent / "_compare_driver.py"
WORKING_TREE = (".", "WORKTREE")
MODES = ("engine_nofacets", "engine_facets", "searcher", "app_html", "app_json", "app_html_cold")
LABELS = {
    "engine_nofacets": "engine alone (no facets)",
    "engine_facets": "engine with facets",
    "searcher": "Searcher.search (facets, highlight)",
    "app_html": "whole HTML page",
    "app_json": "JSON API page",
    "app_html_cold": "HTML page, facet cache off",
}
# What a built index depends on: the key under which --reuse-index keeps it. A change in
# searchapp/ alone reuses the index; any change in searchcore/ (the query side too) rebuilds it.
INDEX_INPUTS = ("searchcore", "indexer")
HTMX = ("searchapp/static/vendor/htmx.min.js", "node_modules/htmx.org/dist/htmx.min.js")


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="Compare two commits' indexing and search speed in one interleaved run (ratios HEAD/BASE).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("base", nargs="?", help="the reference commit (e.g. cd880af, main, HEAD~3)")
    ap.add_argument("head", nargs="?", default=".", help="the commit under test; '.' or WORKTREE = the working tree as it is")
    B.add_corpus_args(ap, None, posts=100_000)
    ap.add_argument(
        "--engine", choices=["tantivy", "elasticsearch"], default="tantivy", help="elasticsearch needs ELASTICSEARCH_URL"
    )
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds; each commit runs every mode once per round")
    ap.add_argument("--requests", type=int, default=240, help="timed requests per mode, commit and round")
    B.add_query_mix_args(ap, MODES, "mode and commit")
    ap.add_argument("--index-repeat", type=int, default=1, help="indexing runs per commit (alternating base/head first)")
    ap.add_argument(
        "--reuse-index",
        metavar="DIR",
        help="keep the built indexes here, keyed by the code they were built with (searchcore/, indexer/) and the "
        "corpus, and reuse them next time (indexing figures then come from the run that built them)",
    )
    ap.add_argument(
        "--measure-index", action="store_true", help="with --reuse-index: time indexing anyway (into temporary folders)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the worktrees and the temporary folder (their paths are printed)")
    ap.add_argument("--smoke", action="store_true", help="a quick check that it works: 300 posts, 1 round, 1 pass over the mix")
    ap.add_argument(
        "--python", default=sys.executable, help="the interpreter for the drivers (third-party packages shared by both commits)"
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        help="wait up to this many seconds for other busy processes before each build and before timing",
    )
    ap.add_argument("--json", help="write the JSON here (default: bench/out/compare-<base>-<head>-<time>.json)")
    ap.add_argument("--report", metavar="JSON", help="print the tables of a saved run and stop")
    a = ap.parse_args(argv)
    if not a.report and not a.base:
        ap.error("BASE is required (e.g. python bench/compare.py cd880af)")
    if a.smoke:
        if not any(x == "--posts" or x.startswith("--posts=") for x in argv):
            a.posts = 300
        a.rounds = 1
        a.words = min(a.words, 4)
        a.requests = 0  # one pass over the mix, whatever its length
    return a


# -- git -----------------------------------------------------------------------------------------


def git(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["git", "-C", str(B.ROOT), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


def snapshot_working_tree(work: Path) -> tuple[str, bool]:
    """A commit holding the working tree as it is (tracked changes and untracked files
    git does not ignore), made with a private index so the real one is untouched, and
    left dangling (no branch names it). Returns (commit, whether it differs from HEAD)."""
    head = git("rev-parse", "HEAD")
    index = work / "snapshot.index"
    shutil.copyfile(B.ROOT / git("rev-parse", "--git-path", "index"), index)
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    git("add", "-A", env=env)
    tree = git("write-tree", env=env)
    index.unlink()
    if tree == git("rev-parse", "HEAD^{tree}"):
        return head, False
    who = {"GIT_AUTHOR_NAME": "bench/compare.py", "GIT_AUTHOR_EMAIL": "compare@localhost"}
    who |= {"GIT_COMMITTER_NAME": who["GIT_AUTHOR_NAME"], "GIT_COMMITTER_EMAIL": who["GIT_AUTHOR_EMAIL"]}
    commit = git(
        "commit-tree", tree, "-p", head, "-m", "bench/compare.py: snapshot of the working tree", env={**os.environ, **who}
    )
    return commit, True


@dataclass
class Side:
    """One of the two commits: where its code is checked out, its index, its driver."""

    role: str  # "base" or "head"
    spec: str  # as typed
    commit: str = ""
    label: str = ""
    tree: Path | None = None
    index_key: str = ""
    data_dir: Path | None = None
    index: str = ""
    cached: bool = False
    driver: Driver | None = None
    indexing: dict[str, Any] = field(default_factory=dict)

    def resolve(self, work: Path) -> None:
        if self.spec in WORKING_TREE:
            self.commit, dirty = snapshot_working_tree(work)
            short = git("rev-parse", "--short", "HEAD")
            self.label = f"{short}+uncommitted" if dirty else short
        else:
            self.commit = git("rev-parse", "--verify", f"{self.spec}^{{commit}}")
            self.label = git("rev-parse", "--short", self.commit)

    def checkout(self, work: Path) -> None:
        self.tree = work / f"tree-{self.role}"
        git("worktree", "add", "--detach", "--quiet", str(self.tree), self.commit)
        for rel in HTMX:  # htmx is installed by scripts/setup.sh, never committed: the app warns without it
            src = B.ROOT / rel
            if src.exists():
                dest = self.tree / HTMX[0]
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
                break

    def env(self) -> dict[str, str]:
        """The driver's environment: this commit's code first on the path; no SEARCH_*
        variable (settings come from the driver's flags, identical for both commits)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEARCH_") and k != "ELASTICSEARCH_URL"}
        env["PYTHONPATH"] = str(self.tree)
        return env


# -- the drivers -----------------------------------------------------------------------------------


def driver_cmd(a: argparse.Namespace, side: Side, command: str, data_dir: Path, index: str, url: str | None) -> list[str]:
    cmd = [a.python, str(DRIVER), command, "--engine", a.engine, "--data-dir", str(data_dir), "--index", index]
    return cmd + (["--es-url", url] if url else [])


def driver_once(
    a: argparse.Namespace, side: Side, command: str, data_dir: Path, index: str, url: str | None, *extra: str
) -> dict:
    cmd = driver_cmd(a, side, command, data_dir, index, url) + list(extra)
    proc = subprocess.run(cmd, cwd=side.tree, env=side.env(), stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{side.role} ({side.label}): driver {command} exited with {proc.returncode} (its stderr is above)")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Driver:
    """A live driver process answering one JSON line per request."""

    def __init__(self, a: argparse.Namespace, side: Side, url: str | None) -> None:
        self.name = f"{side.role} ({side.label})"
        cmd = driver_cmd(a, side, "serve", side.data_dir, side.index, url)
        self.proc = subprocess.Popen(
            cmd, cwd=side.tree, env=side.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the driver stopped (exit {self.proc.wait()}); its stderr is above")
        reply = json.loads(line)
        if "error" in reply:
            raise SystemExit(f"{self.name}: {reply['error']}")
        return reply

    def ask(self, cmd: str, **msg: Any) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **msg}, ensure_ascii=False) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"cmd": "quit"}\n')
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


# -- indexes -----------------------------------------------------------------------------------------


def corpus_id(corpus: Path) -> dict[str, Any]:
    marker = corpus / B.MARKER
    if marker.exists():
        return {"path": str(corpus), "synthetic": json.loads(marker.read_text())}
    return {"path": str(corpus), "files": B.count_posts(corpus), "bytes": B.corpus_bytes(corpus)}


def index_key(side: Side, engine: str, url: str | None, corpus: dict[str, Any]) -> str:
    trees = {}
    for d in INDEX_INPUTS:
        try:
            trees[d] = git("rev-parse", f"{side.commit}:{d}")
        except SystemExit:
            trees[d] = None
    ident = {"trees": trees, "engine": engine, "url": url if engine == "elasticsearch" else None, "corpus": corpus}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all processes, all cores): what is
    left after subtracting our own CPU is the other work that ran beside a measurement."""
    import psutil

    t = psutil.cpu_times()
    return sum(getattr(t, k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))


def warm_page_cache(corpus: Path) -> None:
    """Read every file once, so the first build does not pay the disk for the second."""
    t0 = time.perf_counter()
    n = 0
    for dirpath, _dirs, files in os.walk(corpus):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                n += len(fh.read())
    B.log(f"read the corpus once ({n / 1e6:.0f} MB in {time.perf_counter() - t0:.1f} s) to warm the page cache")


def drop_index(engine: str, url: str | None, data_dir: Path, index: str) -> None:
    if engine == "elasticsearch" and url:
        B.es_drop(url, index)
    B.rmtree(data_dir)


def reusable(a: argparse.Namespace, s: Side, home: Path, url: str | None) -> bool:
    """Whether ``home`` (a --reuse-index folder) holds a complete index: its meta.json
    is written last, and the engine still counts the documents it recorded."""
    meta = home / "meta.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        docs = driver_once(a, s, "count", s.data_dir, s.index, url)["documents"]
        if docs and docs == info["indexing"]["documents"]:
            B.log(f"{s.role} ({s.label}): reusing index {home} ({docs} documents, built {info['built']})")
            return True
        B.log(f"{home} holds {docs} documents, not {info['indexing']['documents']}: rebuilding it")
        meta.unlink()
    drop_index(a.engine, url, home, s.index)  # what a build cut short left
    return False


def prepare_indexes(a: argparse.Namespace, sides: list[Side], corpus: Path, work: Path, url: str | None) -> None:
    """Each side's serving index: reused from --reuse-index when valid, else built
    (``build_indexes``). Two commits whose searchcore/ and indexer/ are the same build
    the same index: with --reuse-index they share one folder."""
    locks: list[Any] = []  # open lock files, held until the indexes are ready
    try:
        _prepare(a, sides, corpus, work, url, locks)
    finally:
        for fh in locks:
            fh.close()  # closing releases the lock


def lock_folder(home: Path, locks: list[Any]) -> None:
    """Hold ``<home>.lock`` while this run checks or builds the index in ``home``, so two
    comparisons sharing --reuse-index never build the same index at once or read one
    another is building (two runs in parallel would also spoil each other's figures)."""
    import fcntl

    home.parent.mkdir(parents=True, exist_ok=True)
    fh = open(home.parent / f"{home.name}.lock", "w")  # noqa: SIM115 - held open until released
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        B.log(f"waiting for another compare.py building or checking {home} …")
        fcntl.flock(fh, fcntl.LOCK_EX)
    locks.append(fh)


def _prepare(a: argparse.Namespace, sides: list[Side], corpus: Path, work: Path, url: str | None, locks: list[Any]) -> None:
    cid = corpus_id(corpus)
    for s in sides:
        s.index_key = index_key(s, a.engine, url, cid)
        s.data_dir, s.index = work / f"data-{s.role}", f"cmp-{uuid.uuid4().hex[:8]}-{s.role}"
    if a.reuse_index:
        root = Path(a.reuse_index).resolve()
        for key in sorted({s.index_key for s in sides}):  # one order for every run: no deadlock
            lock_folder(root / key, locks)
        valid: dict[Path, bool] = {}  # reuse folder -> holds a complete index
        for s in sides:
            home = root / s.index_key
            s.data_dir, s.index = home / "data", f"cmp-{s.index_key[:12]}"
            if home in valid:
                B.log(f"{s.role}: the same searchcore/ and indexer/ as base: it serves the same index")
            else:
                valid[home] = reusable(a, s, home, url)
            if valid[home]:
                info = json.loads((home / "meta.json").read_text())
                s.cached, s.indexing = True, {**info["indexing"], "cached": info["built"]}
    to_time = [s for s in sides if not s.cached or a.measure_index]
    if to_time:
        build_indexes(a, to_time, corpus, work, url)
    for s in to_time:
        meta_path = s.data_dir.parent / "meta.json"
        if a.reuse_index and not s.cached and not meta_path.exists():
            built = s.indexing["runs"][0]["finished"]  # the serving build is the side's first
            meta = {"commit": s.commit, "label": s.label, "built": built, "corpus": cid, "engine": a.engine}
            meta_path.write_text(json.dumps({**meta, "indexing": s.indexing}, indent=2))


def build_indexes(a: argparse.Namespace, to_time: list[Side], corpus: Path, work: Path, url: str | None) -> None:
    """Builds alternate base/head (``--index-repeat`` each), each in a fresh process
    into a fresh folder, timed by the driver. A side's first build is the index it
    serves, unless it has one already or shares one built earlier in this run (then
    the build is timed in a temporary folder, never as an incremental run)."""
    warm_page_cache(corpus)
    runs: dict[str, list[dict]] = {s.role: [] for s in to_time}
    built: set[Path] = set()
    for i in range(max(1, a.index_repeat)):
        for s in to_time if i % 2 == 0 else to_time[::-1]:
            serving = not s.cached and s.data_dir not in built
            if serving:
                data_dir, index = s.data_dir, s.index
                built.add(s.data_dir)
            else:
                data_dir, index = work / f"data-{s.role}-{i}", f"cmp-{uuid.uuid4().hex[:8]}-{s.role}"
            busy = B.wait_quiet(a.wait_quiet) if a.wait_quiet else []
            B.log(f"{s.role} ({s.label}): indexing {corpus} into {a.engine} ({B.load_note()}) …")
            before, busy0, t0 = [round(x, 2) for x in os.getloadavg()], machine_busy_s(), time.perf_counter()
            r = driver_once(a, s, "index", data_dir, index, url, "--corpus", str(corpus))
            others = machine_busy_s() - busy0 - r["cpu_main"] - r["cpu_workers"]
            r["other_cores"] = max(0.0, others) / (time.perf_counter() - t0)  # cores busy with other work, on average
            r["loadavg_before"], r["loadavg_after"] = before, [round(x, 2) for x in os.getloadavg()]
            r["busy_before"], r["finished"] = busy, B.stamp()
            B.log(f"{s.role} ({s.label}): {r['summary']}")
            runs[s.role].append(r)
            if not serving:
                drop_index(a.engine, url, data_dir, index)
    for s in to_time:
        rs = runs[s.role]
        s.indexing = {
            "runs": rs,
            "seconds": statistics.median(r["seconds"] for r in rs),
            "cpu_s": statistics.median(r["cpu_main"] + r["cpu_workers"] for r in rs),
            "indexed": rs[0]["indexed"],
            "documents": rs[0]["documents"],
        }


# -- timing ------------------------------------------------------------------------------------------


def summarize(wall: list[float], cpu: list[float], kinds: list[str]) -> dict[str, Any]:
    ws, cs = sorted(wall), sorted(cpu)
    by_kind: dict[str, list[float]] = {}
    for k, w in zip(kinds, wall, strict=True):
        by_kind.setdefault(k, []).append(w)
    return {
        "median_ms": B.percentile(ws, 50),
        "p95_ms": B.percentile(ws, 95),
        "cpu_median_ms": B.percentile(cs, 50),
        "cpu_p95_ms": B.percentile(cs, 95),
        "mean_ms": sum(ws) / len(ws),
        "by_kind_median_ms": {k: statistics.median(v) for k, v in by_kind.items()},
    }


STATS = ("median_ms", "p95_ms", "cpu_median_ms", "cpu_p95_ms", "mean_ms")


def time_rounds(a: argparse.Namespace, sides: list[Side], mix: list[dict], modes: list[str], es_pid: int | None) -> dict:
    """Alternating blocks: per round and mode, one commit's block then the other's;
    the commit that goes first alternates from round to round."""
    import psutil

    es = psutil.Process(es_pid) if es_pid else None
    n = a.requests or len(mix)
    kinds = [mix[i % len(mix)]["kind"] for i in range(n)]
    rounds: list[dict] = []
    for r in range(a.rounds):
        order = sides if r % 2 == 0 else sides[::-1]
        this: dict[str, dict[str, Any]] = {m: {} for m in modes}
        B.log(f"round {r + 1}/{a.rounds}: {' then '.join(s.role for s in order)} per mode ({B.load_note()})")
        for mode in modes:
            for s in order:
                es0 = sum(es.cpu_times()[:2]) if es else 0.0
                busy0, t0 = machine_busy_s(), time.perf_counter()
                res = s.driver.ask("run", mode=mode, mix=mix, requests=n)
                others = machine_busy_s() - busy0 - sum(res["cpu_ms"]) / 1000
                stats = summarize(res["wall_ms"], res["cpu_ms"], kinds)
                if es:
                    es_cpu = sum(es.cpu_times()[:2]) - es0
                    stats["es_cpu_ms_per_request"] = es_cpu * 1000 / n
                    others -= es_cpu
                stats["other_cores"] = max(0.0, others) / (time.perf_counter() - t0)
                stats["samples"] = {
                    "wall_ms": [round(x, 4) for x in res["wall_ms"]],
                    "cpu_ms": [round(x, 4) for x in res["cpu_ms"]],
                }
                this[mode][s.role] = stats
        rounds.append({"order": [s.role for s in order], "loadavg": [round(x, 2) for x in os.getloadavg()], "modes": this})
    return {"requests_per_block": n, "rounds": rounds}


def aggregate(timing: dict, modes: list[str]) -> dict[str, dict[str, Any]]:
    """Per mode and commit: the median over rounds of each round's figure; per mode the
    head/base ratio of those, and the range of the per-round ratios of the medians."""
    out: dict[str, dict[str, Any]] = {}
    rounds = timing["rounds"]
    for mode in modes:
        m: dict[str, Any] = {}
        for role in ("base", "head"):
            per = [rd["modes"][mode][role] for rd in rounds]
            m[role] = {k: statistics.median(p[k] for p in per) for k in STATS}
            kinds = per[0]["by_kind_median_ms"]
            m[role]["by_kind_median_ms"] = {k: statistics.median(p["by_kind_median_ms"][k] for p in per) for k in kinds}
            if "es_cpu_ms_per_request" in per[0]:
                m[role]["es_cpu_ms_per_request"] = statistics.median(p["es_cpu_ms_per_request"] for p in per)
        m["ratio"] = {k: m["head"][k] / m["base"][k] if m["base"][k] else None for k in STATS}
        for k in ("median_ms", "cpu_median_ms"):
            rr = [rd["modes"][mode]["head"][k] / rd["modes"][mode]["base"][k] for rd in rounds if rd["modes"][mode]["base"][k]]
            m["ratio"][k + "_rounds"] = [min(rr), max(rr)] if rr else None
        out[mode] = m
    return out


# -- report ---------------------------------------------------------------------------------------------


def _div(a: float, b: float) -> float | None:
    return a / b if b else None


def _x(v: float | None) -> str:
    return "–" if v is None else f"×{v:.2f}"


def _range(v: list[float] | None) -> str:
    return "" if not v else f"×{v[0]:.2f}–{v[1]:.2f}"


def other_work(r: dict) -> str:
    """How many cores other work kept busy while each commit was measured: the noise
    the figures carry (the machine's busy CPU time minus our own processes')."""
    n = r["machine"]["cpus"]
    parts = []
    for role in ("base", "head"):
        side = r["sides"][role]
        idx = [run["other_cores"] for run in side["indexing"].get("runs", []) if "other_cores" in run]
        blocks = [rd["modes"][m][role].get("other_cores") for rd in r["timing"]["rounds"] for m in r["modes"]]
        blocks = [b for b in blocks if b is not None]
        what = [f"indexing {', '.join(f'{x:.2f}' for x in idx)}"] if idx else []
        if blocks:
            what.append(f"timed blocks median {statistics.median(blocks):.2f} (range {min(blocks):.2f}–{max(blocks):.2f})")
        if what:
            parts.append(f"{side['label']}: " + ", ".join(what))
    return f"\nOther work on the machine, in cores busy out of {n}: " + "; ".join(parts) + "." if parts else ""


def print_report(r: dict) -> None:
    sides, figures = r["sides"], r["figures"]
    base, head = sides["base"], sides["head"]
    la = {k: " ".join(f"{x:.2f}" for x in v) for k, v in r["loadavg"].items()}
    print(f"\n### bench/compare.py: head {head['label']} against base {base['label']}\n")
    print(
        f"{r['label']}; engine {r['engine']}; {len(r['mix'])} queries in the mix; {r['rounds']} round(s) × "
        f"{r['requests_per_block']} requests per mode and commit after {r['warmup']} warm-up requests, the commit "
        f"going first alternating by round; one client, sequential. Load average at start {la['start']}, "
        f"before timing {la['before_timing']}, at end {la['end']} ({r['machine']['cpus']} cores).\n"
    )
    rows: list[list[Any]] = []
    ib, ih = base["indexing"], head["indexing"]
    if ib and ih:

        def note(i: dict) -> str:
            return f" (built {i['cached']})" if i.get("cached") else ""

        # a cached build was timed by the run that built it, maybe under another load
        cached = " (cached builds)" if ib.get("cached") or ih.get("cached") else ""
        rate_b, rate_h = ib["indexed"] / ib["seconds"], ih["indexed"] / ih["seconds"]
        rows.append(
            [
                "indexing, articles/s",
                f"{rate_b:,.0f}{note(ib)}",
                f"{rate_h:,.0f}{note(ih)}",
                _x(_div(rate_h, rate_b)) + cached,
                "",
            ]
        )
        cb, ch = ib["cpu_s"], ih["cpu_s"]
        rows.append(
            [
                "indexing, CPU s (ms per article)",
                f"{cb:,.1f} ({_div(cb * 1000, ib['indexed']) or 0:.2f})",
                f"{ch:,.1f} ({_div(ch * 1000, ih['indexed']) or 0:.2f})",
                _x(_div(ch, cb)) + cached,
                "",
            ]
        )
    for mode in r["modes"]:
        f = figures[mode]
        name = LABELS[mode]
        rows.append(
            [
                f"{name}, median ms",
                f["base"]["median_ms"],
                f["head"]["median_ms"],
                _x(f["ratio"]["median_ms"]),
                _range(f["ratio"]["median_ms_rounds"]),
            ]
        )
        rows.append([f"{name}, p95 ms", f["base"]["p95_ms"], f["head"]["p95_ms"], _x(f["ratio"]["p95_ms"]), ""])
        rows.append(
            [
                f"{name}, CPU median ms",
                f["base"]["cpu_median_ms"],
                f["head"]["cpu_median_ms"],
                _x(f["ratio"]["cpu_median_ms"]),
                _range(f["ratio"]["cpu_median_ms_rounds"]),
            ]
        )
        if "es_cpu_ms_per_request" in f["base"]:
            eb, eh = f["base"]["es_cpu_ms_per_request"], f["head"]["es_cpu_ms_per_request"]
            rows.append([f"{name}, Elasticsearch CPU ms/request", eb, eh, _x(_div(eh, eb)), ""])
    eng = figures.get("engine_nofacets")
    if eng and "two words" in eng["base"]["by_kind_median_ms"]:
        tb, th = eng["base"]["by_kind_median_ms"]["two words"], eng["head"]["by_kind_median_ms"]["two words"]
        rows.append(["two-word queries at the engine, median ms", tb, th, _x(_div(th, tb)), ""])
    headers = ["figure", f"base {base['label']}", f"head {head['label']}", "head/base", "rounds"]
    print(B.markdown_table(headers, rows))
    loads = []
    for side in (base, head):
        for run in side["indexing"].get("runs", []):
            la_run = " → ".join(f"{x[0]:.2f}" for x in (run["loadavg_before"], run.get("loadavg_after")) if x)
            loads.append(f"{side['label']} {run['seconds']:.0f} s at load {la_run}")
    if loads:
        print("\nIndexing runs (1-minute load average before → after): " + "; ".join(loads) + ".")
    if note := other_work(r):
        print(note)

    kinds = list(dict.fromkeys(q["kind"] for q in r["mix"]))
    shown = [m for m in ("engine_nofacets", "searcher", "app_html") if m in r["modes"]]
    print("\nMedian ms by query kind, base → head (×ratio):\n")
    rows = []
    for k in kinds:
        row: list[Any] = [k, sum(1 for q in r["mix"] if q["kind"] == k)]
        for m in shown:
            b, h = figures[m]["base"]["by_kind_median_ms"].get(k), figures[m]["head"]["by_kind_median_ms"].get(k)
            row.append("–" if b is None or h is None else f"{b:.2f} → {h:.2f} ({_x(_div(h, b))})")
        rows.append(row)
    print(B.markdown_table(["query kind", "queries", *[LABELS[m] for m in shown]], rows))
    diff = [(q, tb, th) for q, tb, th in zip(r["mix"], r["totals"]["base"], r["totals"]["head"], strict=True) if tb != th]
    if diff:
        print(f"\n{len(diff)} of {len(r['mix'])} queries find a different number of articles (base → head):\n")
        print(
            B.markdown_table(
                ["kind", "query", "base", "head"], [[q["kind"], B.show_args(q["args"]), tb, th] for q, tb, th in diff]
            )
        )
    else:
        print(f"\nAll {len(r['mix'])} queries find the same number of articles on both commits.")
    if r.get("busy_before_timing"):
        print("\nOther busy processes before timing: " + "; ".join(" ".join(b.split()) for b in r["busy_before_timing"]))


# -- main -------------------------------------------------------------------------------------------------


def check_args(a: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The Elasticsearch URL (checked when it is used) and the modes, or SystemExit saying why not."""
    url = B.es_url(a.es_url)
    if a.engine == "elasticsearch":
        if not url:
            raise SystemExit("--engine elasticsearch needs ELASTICSEARCH_URL (or --es-url)")
        problem = B.es_check(url)
        if problem:
            raise SystemExit(f"Elasticsearch at {url} is not usable: {problem}")
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise SystemExit(f"unknown mode(s) {bad}; choose from {', '.join(MODES)}")
    return url, modes


def start_drivers(a: argparse.Namespace, sides: list[Side], url: str | None) -> None:
    """Both drivers start together (imports overlap); each must run its own worktree's code."""
    for s in sides:
        s.driver = Driver(a, s, url)
    for s in sides:
        s.driver.read()  # {"ready": true}: imports done, index and app open
        hello = s.driver.ask("hello")
        if not Path(hello["searchcore"]).resolve().is_relative_to(s.tree.resolve()):
            raise SystemExit(f"{s.role}: searchcore came from {hello['searchcore']}, not from {s.tree}")
        B.log(f"{s.role} ({s.label}): {hello['documents']} documents, searchcore from {hello['searchcore']}")


def draw_mix(a: argparse.Namespace, sides: list[Side]) -> tuple[list[dict], dict[str, list[int]]]:
    """The query mix, drawn by the base commit (so it stays the same while HEAD changes),
    and what each query finds on each commit (the core and /api/search must agree)."""
    mix = sides[0].driver.ask("mix", words=a.words, seed=a.seed)["mix"]
    if not mix:
        raise SystemExit("no query could be drawn from the base index (is the corpus empty?)")
    B.log(f"{len(mix)} queries: " + " | ".join(B.show_args(q["args"]) for q in mix))
    totals = {}
    for s in sides:
        t = s.driver.ask("totals", mix=mix)["totals"]
        for q, x in zip(mix, t, strict=True):
            if x["core"] != x["app"]:
                B.log(f"warning: {s.role} {B.show_args(q['args'])}: core total {x['core']} != app total {x['app']}")
        totals[s.role] = [x["core"] for x in t]
    return mix, totals


@contextmanager
def one_at_a_time(enabled: bool) -> Iterator[None]:
    """Builds and timed rounds of one comparison at a time on this machine: two at once
    would each measure the other's load (a --smoke run, whose figures mean nothing,
    neither waits nor blocks). The lock file names the run holding it."""
    if not enabled:
        yield
        return
    import fcntl

    path = Path(tempfile.gettempdir()) / "newsearch-compare.lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            B.log(f"waiting for another comparison to finish measuring ({fh.read().strip() or path}) …")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}: {' '.join(sys.argv)}\n")
        fh.flush()
        yield


def compare(a: argparse.Namespace, sides: list[Side], work: Path, url: str | None, modes: list[str]) -> dict[str, Any]:
    env = B.machine()
    loadavg = {"start": env["loadavg"]}
    for s in sides:
        s.resolve(work)
        s.checkout(work)
    B.log("comparing " + " against ".join(f"{s.role} {s.label} ({s.tree})" for s in sides[::-1]))
    corpus, label = B.prepare_corpus(a.corpus, a.posts, work, a.synthetic_cache)
    with one_at_a_time(not a.smoke):
        prepare_indexes(a, sides, corpus, work, url)
        start_drivers(a, sides, url)
        mix, totals = draw_mix(a, sides)
        warmup = a.warmup or (len(mix) if a.smoke else 2 * len(mix))
        for s in sides:
            B.log(f"{s.role} ({s.label}): warm-up, {warmup} requests per mode")
            s.driver.ask("warmup", mix=mix, modes=modes, requests=warmup)
        busy = B.wait_quiet(a.wait_quiet)
        loadavg["before_timing"] = [round(x, 2) for x in os.getloadavg()]
        timing = time_rounds(a, sides, mix, modes, B.es_node_pid(url) if a.engine == "elasticsearch" else None)
        for s in sides:
            s.driver.close()
    loadavg["end"] = [round(x, 2) for x in os.getloadavg()]
    return {
        "label": label,
        "corpus": str(corpus),
        "engine": a.engine,
        "modes": modes,
        "rounds": a.rounds,
        "requests_per_block": timing["requests_per_block"],
        "warmup": warmup,
        "mix": mix,
        "totals": totals,
        "sides": {
            s.role: {"spec": s.spec, "commit": s.commit, "label": s.label, "index_key": s.index_key, "indexing": s.indexing}
            for s in sides
        },
        "figures": aggregate(timing, modes),
        "loadavg": loadavg,
        "busy_before_timing": busy,
        "machine": env,
        "timing": timing,
    }


def clean_up(a: argparse.Namespace, sides: list[Side], work: Path, url: str | None) -> None:
    """Drivers stopped; worktrees, temporary folder and Elasticsearch indices removed
    (unless --keep; --reuse-index folders always stay)."""
    for s in sides:
        if s.driver:
            s.driver.close()
    if a.keep:
        B.log(f"kept {work} (remove its worktrees with: git worktree remove --force {work}/tree-*)")
        return
    for s in sides:
        if s.tree and s.tree.exists():
            subprocess.run(["git", "-C", str(B.ROOT), "worktree", "remove", "--force", str(s.tree)], check=False)
        if not a.reuse_index and s.index and a.engine == "elasticsearch" and url:
            B.es_drop(url, s.index)
    B.rmtree(work)
    subprocess.run(["git", "-C", str(B.ROOT), "worktree", "prune"], check=False)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.report:
        print_report(json.loads(Path(a.report).read_text()))
        return 0
    url, modes = check_args(a)
    work = Path(tempfile.mkdtemp(prefix="compare-"))
    sides = [Side("base", a.base), Side("head", a.head)]
    try:
        results = compare(a, sides, work, url, modes)
        out = a.json or B.OUT / f"compare-{sides[0].label}-{sides[1].label}-{B.stamp()}.json"
        B.write_json("", results, str(out))
        print_report(results)
        B.log(f"JSON written to {out} (print it again with --report {out})")
    finally:
        clean_up(a, sides, work, url)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

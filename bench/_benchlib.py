"""Shared helpers for the benchmarks in this folder (not a benchmark itself).

Everything here is measurement plumbing: corpus preparation, settings, a sampler
for the peak RSS of the process tree, Elasticsearch bookkeeping (unique index
names, cleanup, store size, node pid), percentiles and Markdown tables.
Nothing here asserts on timings: benchmarks print figures and ratios.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

OUT = ROOT / "bench" / "out"
SYNTHETIC_SEED = 3
MARKER = ".bench-synthetic.json"  # hidden: the indexer's scan skips dot files


# -- corpus ------------------------------------------------------------------------


def prepare_corpus(corpus: str | None, posts: int, work: Path, cache: str | None = None) -> tuple[Path, str]:
    """The folder to index and a label for it.

    ``corpus`` is used as is (read-only: nothing is written into it). Otherwise
    ``posts`` synthetic posts (seed 3) are written under ``work``, or reused from
    ``cache`` when that folder already holds the same corpus.
    """
    if corpus:
        path = Path(corpus).resolve()
        if not path.exists():
            raise SystemExit(f"--corpus {path} does not exist")
        return path, f"corpus {path} ({count_posts(path)} files)"
    from synthetic import write_corpus

    target = Path(cache) if cache else work / f"synthetic-{posts}"
    marker = target / MARKER
    want = {"n": posts, "seed": SYNTHETIC_SEED}
    if marker.exists():
        try:
            if {k: json.loads(marker.read_text())[k] for k in want} == want:
                return target, f"{posts} synthetic posts (seed {SYNTHETIC_SEED}, reused {target})"
        except (KeyError, ValueError):
            pass
        raise SystemExit(f"{target} holds another corpus; remove it or pick another --synthetic-cache")
    t0 = time.perf_counter()
    summary = write_corpus(target, posts, seed=SYNTHETIC_SEED)
    marker.write_text(json.dumps({**want, "bytes": summary["bytes"], "files": summary["files"]}))
    log(
        f"wrote {summary['files']} synthetic posts ({summary['bytes'] / 1e6:.1f} MB)"
        f" in {time.perf_counter() - t0:.1f} s to {target}"
    )
    return target, f"{posts} synthetic posts (seed {SYNTHETIC_SEED})"


def count_posts(path: Path) -> int:
    from indexer.pipeline import scan

    return sum(1 for _ in scan(path))


def corpus_bytes(path: Path) -> int:
    from indexer.pipeline import scan

    return sum(os.stat(p).st_size for p, _ in scan(path))


# -- settings and engines ------------------------------------------------------------


def es_url(arg: str | None) -> str | None:
    return arg or os.environ.get("ELASTICSEARCH_URL") or None


def engines_from_arg(engine: str, url: str | None) -> list[str]:
    names = ["tantivy", "elasticsearch"] if engine == "both" else [engine]
    if "elasticsearch" in names and not url:
        if engine == "both":
            log("ELASTICSEARCH_URL is not set: skipping elasticsearch")
            return ["tantivy"]
        raise SystemExit("--engine elasticsearch needs ELASTICSEARCH_URL (or --es-url)")
    return names


def unique_index() -> str:
    return f"bench-{uuid.uuid4().hex[:8]}"


def make_settings(engine: str, data_dir: Path, index: str, url: str | None, extra_env: dict[str, str] | None = None):
    from searchcore.config import load_settings

    env = {"SEARCH_ENGINE": engine, "SEARCH_DATA_DIR": str(data_dir), "SEARCH_INDEX": index}
    if url:
        env["ELASTICSEARCH_URL"] = url
    env.update(extra_env or {})
    return load_settings(env)


def es_client(url: str):
    from elasticsearch import Elasticsearch

    return Elasticsearch(url, request_timeout=60)


def es_check(url: str) -> str | None:
    """None if a node answers, else why not (the test distribution answers 405 to GET /)."""
    try:
        es = es_client(url)
        health = es.cluster.health(request_timeout=5)
        es.close()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None if health.get("status") in ("green", "yellow") else f"cluster status {health.get('status')}"


def es_drop(url: str, alias: str) -> None:
    """Delete every physical index behind a benchmark alias (``<alias>-*``)."""
    es = es_client(url)
    try:
        es.indices.delete(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
    finally:
        es.close()


def es_store_bytes(url: str, alias: str) -> int | None:
    es = es_client(url)
    try:
        es.indices.refresh(index=alias)
        stats = es.indices.stats(index=alias, metric="store")
        return int(stats["_all"]["primaries"]["store"]["size_in_bytes"])
    except Exception as exc:  # noqa: BLE001
        log(f"could not read _stats/store for {alias}: {exc}")
        return None
    finally:
        es.close()


def es_node_pid(url: str) -> int | None:
    """The local node's pid, to sample its CPU and RSS (only when it runs on this machine)."""
    es = es_client(url)
    try:
        info = es.nodes.info(node_id="_local", metric="process")
        for node in info["nodes"].values():
            pid = int(node["process"]["id"])
            return pid if psutil.pid_exists(pid) else None
    except Exception:  # noqa: BLE001
        return None
    finally:
        es.close()
    return None


def folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


# -- measuring ----------------------------------------------------------------------------


class Sampler:
    """Samples RSS of this process and all its descendants every ``interval`` s.

    Also keeps the last CPU time seen for each descendant (``children_cpu``): a
    cross-check for RUSAGE_CHILDREN, which only counts children that were reaped.

    Reports the peak of the tree's summed PSS (proportional set size: a page shared
    by the forked workers is split between them, so the sum is the memory the tree
    really holds), the peak of the summed RSS (shared pages counted once per
    process: an upper bound), the peak RSS of this process alone, and optionally
    the RSS of one outside process (the ES node).
    """

    def __init__(self, interval: float = 0.05, extra_pid: int | None = None, include_self: bool = True) -> None:
        self.interval = interval
        self.include_self = include_self
        self.me = psutil.Process()
        self.extra = psutil.Process(extra_pid) if extra_pid else None
        self.peak_tree = 0
        self.peak_tree_pss = 0
        self.peak_main = 0
        self.peak_extra = 0
        self.max_procs = 0
        self.child_cpu: dict[int, float] = {}  # last CPU seconds seen per descendant
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _sample(self) -> None:
        try:
            m = self.me.memory_full_info()
        except psutil.Error:
            return
        total, total_pss = (m.rss, m.pss) if self.include_self else (0, 0)
        procs = 1 if self.include_self else 0
        direct = set() if self.include_self else {c.pid for c in self.me.children()}
        for child in self.me.children(recursive=True):
            try:
                cm = child.memory_full_info()
                t = child.cpu_times()
            except psutil.Error:
                continue
            total += cm.rss
            total_pss += cm.pss
            if child.pid not in direct:  # without self, the direct child is the "main" process
                self.child_cpu[child.pid] = t.user + t.system
            procs += 1
        self.peak_main = max(self.peak_main, m.rss)
        self.peak_tree = max(self.peak_tree, total)
        self.peak_tree_pss = max(self.peak_tree_pss, total_pss)
        self.max_procs = max(self.max_procs, procs)
        if self.extra is not None:
            try:
                self.peak_extra = max(self.peak_extra, self.extra.memory_info().rss)
            except psutil.Error:
                self.extra = None

    @property
    def children_cpu(self) -> float:
        return sum(self.child_cpu.values())

    def _run(self) -> None:
        # A PSS sample walks every page table of the tree: at a million posts the
        # phase's processes are big and a sample takes tens of milliseconds. Wait
        # ten times as long as the last sample took (at least ``interval``), so the
        # sampler never takes more than about a tenth of a core from what it measures.
        while not self._stop.is_set():
            t0 = time.perf_counter()
            self._sample()
            self._stop.wait(max(self.interval, 10 * (time.perf_counter() - t0)))

    def __enter__(self) -> Sampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class Clock:
    """Wall time, CPU time of this process and of its reaped children, and of one
    outside process (the ES node), over a ``with`` block."""

    def __init__(self, extra_pid: int | None = None) -> None:
        self.extra = psutil.Process(extra_pid) if extra_pid else None

    @staticmethod
    def _cpu() -> tuple[float, float]:
        me = resource.getrusage(resource.RUSAGE_SELF)
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime, ch.ru_utime + ch.ru_stime

    def _extra_cpu(self) -> float:
        if self.extra is None:
            return 0.0
        try:
            t = self.extra.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    def __enter__(self) -> Clock:
        self.cpu0 = self._cpu()
        self.extra0 = self._extra_cpu()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.t0
        cpu1 = self._cpu()
        self.cpu_main = cpu1[0] - self.cpu0[0]
        self.cpu_children = cpu1[1] - self.cpu0[1]
        self.cpu_extra = self._extra_cpu() - self.extra0


def percentile(sorted_values: list[float], p: float) -> float:
    """Linear-interpolated percentile of an already sorted list (p in 0..100)."""
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def latency_stats(samples_s: list[float], wall_s: float) -> dict[str, float]:
    ms = sorted(s * 1000 for s in samples_s)
    return {
        "n": len(ms),
        "median_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else float("nan"),
        "max_ms": ms[-1] if ms else float("nan"),
        "rps": len(ms) / wall_s if wall_s > 0 else float("nan"),
    }


# -- environment and output ---------------------------------------------------------------


def git_state() -> str:
    """The commit the code under test comes from, and whether the tree differs from it."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "searchcore", "indexer", "searchapp"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "not a git checkout"
    return head.stdout.strip() + (" + uncommitted changes in the code" if dirty.stdout.strip() else "")


def machine() -> dict[str, Any]:
    la = os.getloadavg()
    return {
        "code": git_state(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "loadavg": [round(x, 2) for x in la],
    }


def load_note() -> str:
    la = os.getloadavg()
    return f"load average {la[0]:.2f} {la[1]:.2f} {la[2]:.2f} on {os.cpu_count()} cores"


def busy_processes(threshold: float = 20.0, ignore: Iterable[int] = ()) -> list[str]:
    """Other processes using more than ``threshold`` % CPU right now (noise warning)."""
    skip = {os.getpid(), *ignore}
    procs = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.info["pid"] not in skip]
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(0.5)
    out = []
    for p in procs:
        try:
            pct = p.cpu_percent(None)
        except psutil.Error:
            continue
        if pct >= threshold:
            cmd = " ".join(p.info["cmdline"] or [p.info["name"] or "?"])[:80]
            out.append(f"pid {p.info['pid']} {pct:.0f}% {cmd}")
    return out


def markdown_table(headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            if v != v:  # NaN
                return "–"
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def finish(results: dict[str, Any], report: Callable[[dict[str, Any]], None], out: str | Path) -> None:
    """How every timed benchmark ends: the load average now, the printed tables,
    the JSON with everything."""
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    report(results)
    write_json("", results, str(out))
    log(f"JSON written to {out}")


def write_json(name: str, data: dict[str, Any], out: str | None = None) -> Path:
    path = Path(out) if out else OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def mb(n: int | float | None) -> float | None:
    return None if n is None else n / 2**20


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# -- worker functions (module level so ProcessPoolExecutor can pickle them) ----------------


def process_star(a: tuple):
    """What a worker of ``indexer.pool`` does per file: the full FileOutcome comes back."""
    from searchcore.indexing import process_file

    return process_file(*a)


def process_discard(a: tuple) -> tuple[str, bool]:
    """Same work, but only a flag crosses the process boundary (no token lists)."""
    from searchcore.indexing import process_file

    out = process_file(*a)
    return out.relpath, out.article is not None


def wait_quiet(max_seconds: float, threshold: float = 20.0) -> list[str]:
    """Wait (up to ``max_seconds``) until no other process uses ``threshold`` % CPU.

    Returns what was still busy when the wait ended (empty when it is quiet).
    Our own children are ignored; the ES node counts (other people's tests use it).
    """
    deadline = time.monotonic() + max_seconds
    mine = [c.pid for c in psutil.Process().children(recursive=True)]
    busy = busy_processes(threshold, ignore=mine)
    while busy and time.monotonic() < deadline:
        log("waiting for a quiet machine: " + "; ".join(busy))
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
        busy = busy_processes(threshold, ignore=mine)
    return busy


def show_args(args: dict[str, Any]) -> str:
    """Readable query string for tables: q=数据 tag=经济."""
    parts = []
    for k, v in args.items():
        for x in v if isinstance(v, list) else [v]:
            parts.append(f"{k}={x}")
    return " ".join(parts) or "(empty)"


def noop(_: int) -> None:
    return None


def add_corpus_args(
    ap,
    engine_help: str | None = "engines to run; elasticsearch needs ELASTICSEARCH_URL (skipped by 'both' when unset)",
    posts: int = 3000,
    es_url_help: str = "Elasticsearch URL (default: $ELASTICSEARCH_URL)",
):
    """The corpus and engine options every benchmark takes, declared once
    (``engine_help`` None: an Elasticsearch-only benchmark, no --engine)."""
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--posts", type=int, default=posts, help="number of synthetic posts (seed 3) when no --corpus is given")
    src.add_argument("--corpus", help="index this folder instead (read-only; nothing is written into it)")
    ap.add_argument("--synthetic-cache", help="folder to write the synthetic posts to, or reuse them from (default: a temp dir)")
    if engine_help is not None:
        ap.add_argument("--engine", choices=["tantivy", "elasticsearch", "both"], default="both", help=engine_help)
    ap.add_argument("--es-url", help=es_url_help)


def add_query_mix_args(ap, modes: tuple[str, ...], per: str) -> None:
    """The query mix and warm-up of the latency benchmarks (``per``: what a count
    of warm-up requests is per, e.g. "mode and engine")."""
    ap.add_argument("--warmup", type=int, default=0, help=f"warm-up requests per {per} (0 = two passes over the mix)")
    ap.add_argument(
        "--words", type=int, default=10, help="one-word queries in the mix (plus about a third as many two-word ones)"
    )
    ap.add_argument("--seed", type=int, default=7, help="seed for picking the query words")
    ap.add_argument("--modes", default=",".join(modes), help="comma-separated subset of " + ", ".join(modes))

"""Slow clients against the serving stack, before and after nginx.

before: gunicorn's sync workers facing clients directly, as the Dockerfile and
        scripts/demo.sh ran them (`gunicorn --bind 127.0.0.1:PORT --workers 2
        'searchapp:create_app()'`);
after:  scripts/serve.sh, nginx buffering in front of the same gunicorn.

For each stack: build (or reuse) a small tantivy index, start the stack on a free
127.0.0.1 port, hold --trickle connections that send a request header one byte a
second and --silent connections that send nothing (both reconnect when the server
drops them, so the pressure stays constant), and meanwhile time --searches normal
searches from another client, one after another, each on a new connection.
Prints searches served, errors, p50 / p99 / max latency, and how many times the
server dropped a slow client.

Bounded: a search gives up after --timeout seconds (counted as an error), and a
stack's run stops after --budget seconds (the searches not attempted are
reported). All traffic stays on 127.0.0.1.

    python bench/bench_slowclients.py                           # 200 + 50 slow clients, both stacks
    python bench/bench_slowclients.py --trickle 2 --silent 0 --searches 5 --stack before

tests/test_serve.py drives the same attack against scripts/serve.sh (devtools.slowclients).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as `python bench/bench_slowclients.py` from anywhere
    sys.path.insert(0, str(ROOT))

from devtools.servers import build_index, free_port, get, stop_group, wait_healthy  # noqa: E402
from devtools.slowclients import Figures, SlowClients, search_paths, timed_searches  # noqa: E402

SERVE = ROOT / "scripts" / "serve.sh"
@contextmanager
def bare_gunicorn(port: int, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """The stack before the fix. (--no-control-socket: gunicorn >= 25.1 would take
    over the control socket of any other gunicorn of this user; it changes nothing
    in serving.)"""
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    cmd = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "--no-control-socket", "searchapp:create_app()"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_healthy(port, 60, proc)
        yield proc
    finally:
        stop_group(proc, wait=20)


@contextmanager
def serve_stack(port: int, env: Mapping[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """The stack after the fix: scripts/serve.sh (nginx + gunicorn)."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(SERVE), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(port, 60, proc)
        yield proc
    finally:
        stop_group(proc, wait=20)


def attack(port: int, args: argparse.Namespace) -> tuple[Figures, SlowClients]:
    """Warm both workers up, start the slow clients, then time the searches."""
    for path in search_paths(6):
        get(port, path, timeout=30)
    slow = SlowClients(port, args.trickle, args.silent)
    slow.start()
    slow.ready.wait(30)
    time.sleep(args.settle)  # let every slow connection be accepted and start trickling
    try:
        figures = timed_searches(port, args.searches, args.timeout, args.budget, args.pace)
    finally:
        slow.stop()
    return figures, slow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", choices=["before", "after", "both"], default="both")
    parser.add_argument("--trickle", type=int, default=200, help="connections sending a header one byte a second [200]")
    parser.add_argument("--silent", type=int, default=50, help="connections sending nothing [50]")
    parser.add_argument("--searches", type=int, default=100, help="normal searches, one after another [100]")
    parser.add_argument("--pace", type=float, default=0.15, help="seconds from one search's start to the next [0.15]")
    parser.add_argument("--timeout", type=float, default=60, help="seconds a search may take before it counts as failed [60]")
    parser.add_argument("--budget", type=float, default=150, help="seconds of searching per stack at most [150]")
    parser.add_argument("--settle", type=float, default=2, help="seconds between the attack's start and the first search [2]")
    parser.add_argument("--posts", type=int, default=300, help="synthetic posts in the index [300]")
    parser.add_argument("--work", help="folder for the index and logs [a temporary folder]")
    args = parser.parse_args(argv)

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-slowclients-"))
    env = build_index(work / "data", args.posts)
    stacks = ["before", "after"] if args.stack == "both" else [args.stack]
    print(
        f"slow clients: {args.trickle} trickling a header at 1 byte/s + {args.silent} silent; "
        f"{args.searches} sequential searches (one per {args.pace} s, timeout {args.timeout} s, budget {args.budget} s); "
        f"{args.posts} posts, tantivy; {os.cpu_count()} cores"
    )
    print("| stack | served / planned | errors | p50 ms | p99 ms | max ms | slow clients dropped by the server |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for stack in stacks:
        port = free_port()
        starter = bare_gunicorn if stack == "before" else serve_stack
        label = "before: bare gunicorn, 2 sync workers" if stack == "before" else "after: scripts/serve.sh (nginx + gunicorn)"
        t0 = time.monotonic()
        with starter(port, env, work / f"{stack}.log"):
            figures, slow = attack(port, args)
        errors = ", ".join(sorted({e for e in figures.errors})) or "-"
        print(
            f"| {label} | {figures.attempted - len(figures.errors)} / {figures.planned} | {len(figures.errors)} ({errors}) "
            f"| {figures.percentile(50):.1f} | {figures.percentile(99):.1f} | {max(figures.latencies_ms, default=math.nan):.1f} "
            f"| {slow.dropped} |",
            flush=True,
        )
        each = ""
        if figures.attempted <= 10:  # few searches: show each one's time
            each = "; searches took " + ", ".join(
                f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.1f} ms" for ms in figures.latencies_ms
            )
        print(f"  ({stack}: {time.monotonic() - t0:.0f} s{each}; log {work / (stack + '.log')})", file=sys.stderr)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

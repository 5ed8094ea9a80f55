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

tests/test_serve.py drives the same attack against scripts/serve.sh.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE = ROOT / "scripts" / "serve.sh"
QUERIES = ["经济", "天津", "教育", "科技", "长江", "国际", "人工智能", "碳中和"]
# A header that never ends: at one byte a second it outlasts any run here.
TRICKLE_HEADER = b"GET /?q=slow HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client\r\nX-Padding: " + b"a" * 4000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SlowClients(threading.Thread):
    """Hold `trickle` connections that send a header one byte per `interval` and
    `silent` ones that send nothing; reconnect any the server drops."""

    def __init__(self, port: int, trickle: int, silent: int, interval: float = 1.0, host: str = "127.0.0.1") -> None:
        super().__init__(name="slow-clients", daemon=True)
        self.addr = (host, port)
        self.trickle, self.silent, self.interval = trickle, silent, interval
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.dropped = 0  # connections the server closed (or answered with an error)
        self.connect_errors = 0
        self.bytes_sent = 0
        self.error: BaseException | None = None
        self._sel = selectors.DefaultSelector()
        self._sent: dict[socket.socket, int] = {}  # trickle socket -> bytes sent so far

    def _connect(self, trickles: bool) -> None:
        try:
            sock = socket.create_connection(self.addr, timeout=5)
        except OSError:
            self.connect_errors += 1
            return
        sock.setblocking(False)
        self._sel.register(sock, selectors.EVENT_READ, trickles)
        if trickles:
            self._sent[sock] = 0

    def _drop(self, sock: socket.socket) -> bool:
        """Forget a closed connection; say whether it was a trickling one."""
        trickles = bool(self._sel.get_key(sock).data)
        self._sel.unregister(sock)
        self._sent.pop(sock, None)
        sock.close()
        return trickles

    def run(self) -> None:
        try:
            for _ in range(self.trickle):
                self._connect(True)
            for _ in range(self.silent):
                self._connect(False)
            self.ready.set()
            next_tick = time.monotonic()
            while not self.stop_event.is_set():
                now = time.monotonic()
                if now >= next_tick:
                    next_tick = now + self.interval
                    for sock in list(self._sent):
                        n = self._sent[sock]
                        chunk = TRICKLE_HEADER[n : n + 1] or b"a"
                        try:
                            sock.send(chunk)
                            self._sent[sock] = n + 1
                            self.bytes_sent += 1
                        except (BlockingIOError, InterruptedError):
                            pass
                        except OSError:
                            self.dropped += 1
                            self._connect(self._drop(sock))
                timeout = max(0.0, min(next_tick - time.monotonic(), 0.2))
                for key, _ in self._sel.select(timeout):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(4096)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    # Any answer to an unfinished header is a refusal (408, 400):
                    # the server is done with it. Reconnect, as an attacker would.
                    self.dropped += 1
                    self._connect(self._drop(sock))
                    del data
        except BaseException as exc:  # noqa: BLE001 - reported by stop()
            self.error = exc
            self.ready.set()
        finally:
            for key in list(self._sel.get_map().values()):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                self._sel.unregister(sock)
                sock.close()
            self._sel.close()

    def held(self) -> int:
        return len(self._sel.get_map()) if not self.stop_event.is_set() else 0

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
        if self.error:
            raise RuntimeError(f"slow clients failed: {self.error!r}") from self.error


@dataclass
class Figures:
    """Latencies of the searches that were attempted (an error counts at its time)."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    planned: int = 0

    @property
    def attempted(self) -> int:
        return len(self.latencies_ms)

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile: with 100 samples, p99 is the second slowest."""
        if not self.latencies_ms:
            return math.nan
        ordered = sorted(self.latencies_ms)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def summary(self) -> str:
        return (
            f"{self.attempted - len(self.errors)}/{self.planned} served, {len(self.errors)} errors, "
            f"p50 {self.percentile(50):.1f} ms, p99 {self.percentile(99):.1f} ms, "
            f"max {max(self.latencies_ms, default=math.nan):.1f} ms"
        )


def get(
    port: int, path: str, timeout: float, headers: Mapping[str, str] | None = None, host: str = "127.0.0.1"
) -> tuple[int, dict[str, str], bytes]:
    """One GET on a new connection: (status, lower-cased headers, body). A header
    sent more than once (Vary) is joined with commas, as HTTP allows."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.putrequest("GET", path, skip_host="Host" in (headers or {}), skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        headers: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        return resp.status, headers, body
    finally:
        conn.close()


def search_paths(n: int) -> list[str]:
    return ["/?" + urllib.parse.urlencode({"q": QUERIES[i % len(QUERIES)]}) for i in range(n)]


def timed_searches(port: int, n: int, timeout: float, budget: float, pace: float = 0.0) -> Figures:
    """n searches, one after another, each started at least `pace` s after the last."""
    figures = Figures(planned=n)
    deadline = time.monotonic() + budget
    for path in search_paths(n):
        started = time.monotonic()
        if started >= deadline:
            break
        t0 = time.perf_counter()
        try:
            status, _, body = get(port, path, timeout=min(timeout, max(0.5, deadline - started)))
            if status != 200 or b"</html>" not in body:
                figures.errors.append(f"HTTP {status}")
        except (OSError, http.client.HTTPException) as exc:
            figures.errors.append(type(exc).__name__)
        figures.latencies_ms.append((time.perf_counter() - t0) * 1000)
        rest = pace - (time.monotonic() - started)
        if rest > 0:
            time.sleep(rest)
    return figures


def wait_healthy(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last = "nothing answered"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode} while starting")
        try:
            status, _, body = get(port, "/healthz", timeout=5)
            if status == 200:
                return
            last = f"HTTP {status} {body[:200]!r}"
        except OSError as exc:
            last = type(exc).__name__
        time.sleep(0.2)
    raise RuntimeError(f"no healthy answer on port {port} within {timeout:.0f} s: {last}")


def build_index(data_dir: Path, posts: int = 300, index: str = "news") -> dict[str, str]:
    """A tantivy index of synthetic posts; returns the environment that serves it."""
    from indexer.pipeline import run
    from searchcore.config import load_settings
    from synthetic import write_corpus

    env = {"SEARCH_ENGINE": "tantivy", "SEARCH_DATA_DIR": str(data_dir), "SEARCH_INDEX": index}
    corpus = data_dir.parent / "posts"
    if not corpus.exists():
        write_corpus(corpus, posts, seed=17)
    report = run(load_settings(env), corpus)
    if report.indexed + report.unchanged < posts // 2:
        raise RuntimeError(f"indexing failed: {report.summary()}")
    return env


def _stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 20) -> None:
    """Stop a server started in its own session: the signal to its leader, then
    whatever is left of its process group."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


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
        _stop_group(proc)


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
        _stop_group(proc)


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
    if str(ROOT) not in sys.path:  # run as `python bench/bench_slowclients.py` from anywhere
        sys.path.insert(0, str(ROOT))
    sys.exit(main())

"""Servers that tests and benchmarks start on 127.0.0.1: a free port, one GET,
waiting until a server is healthy, stopping its whole process group, and the small
index the serving stack is tried on.

Written once here for tests/test_serve.py, tests that need a port nobody
listens on, and the benchmarks that start gunicorn or scripts/serve.sh.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listened on a moment ago (the system's
    choice), for a server the caller is about to start or for a refused connection."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, wait: float = 30) -> int | None:
    """Stop a server started in a session of its own (``start_new_session=True``):
    ``sig`` to its leader, up to ``wait`` seconds for it to exit, then SIGKILL to
    whatever is left of its process group, so nothing outlives a test or a run.
    Returns the leader's exit status before the SIGKILL (None if it had not exited)."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            pass
    status = proc.poll()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    return status


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
        received: dict[str, str] = {}
        for name, value in resp.getheaders():
            key = name.lower()
            received[key] = f"{received[key]}, {value}" if key in received else value
        return resp.status, received, body
    finally:
        conn.close()


def wait_healthy(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Wait until the app on ``port`` answers /healthz with 200; fail if ``proc``
    exits first or ``timeout`` seconds pass."""
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

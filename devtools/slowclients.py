"""The slow-client attack on a server, and the searches timed meanwhile: shared by
tests/test_serve.py (which asserts what scripts/serve.sh withstands) and
bench/bench_slowclients.py (which prints the figures for each serving stack).

``SlowClients`` holds connections that send a request header one byte a second
and connections that send nothing, reconnecting any the server drops, so the
pressure stays constant; ``timed_searches`` times normal searches from another
client, one after another, each on a new connection.
"""

from __future__ import annotations

import http.client
import math
import selectors
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from .servers import get

QUERIES = ["经济", "天津", "教育", "科技", "长江", "国际", "人工智能", "碳中和"]
# A header that never ends: at one byte a second it outlasts any run here.
TRICKLE_HEADER = b"GET /?q=slow HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow-client\r\nX-Padding: " + b"a" * 4000


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

"""The production serving stack, scripts/serve.sh: nginx buffering in front of
gunicorn's sync workers, from the files docker-compose.yml uses too.

The attack that motivated it: clients that send half a request header and wait
hold a sync worker each until gunicorn's timeout (30 s), so two of them stall
every search and ten take the site down. Here 200 connections trickle a header
one byte a second and 50 send nothing while another client searches; every search
must succeed and the 99th percentile stay under 200 ms. A control run shows the
same attack stalls gunicorn alone. Also: gzip, redirects that never leave the
site, the headers nginx passes and sets, limits, and a clean stop.

Everything runs on 127.0.0.1 and is bounded in count and time. Without nginx the
tests skip, except under CI, where scripts/setup.sh installs it and they must run.
bench/bench_slowclients.py prints the same figures for both stacks (the attack is
devtools.slowclients, shared by both).
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from devtools.servers import build_index, free_port, get, stop_group, wait_healthy
from devtools.slowclients import SlowClients, timed_searches

ROOT = Path(__file__).resolve().parent.parent
SERVE = ROOT / "scripts" / "serve.sh"
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)
IN_CI = os.environ.get("CI") == "true"

pytestmark = [
    pytest.mark.skipif(
        NGINX is None and not IN_CI, reason="nginx is not installed (scripts/setup.sh installs it when run as root)"
    ),
    pytest.mark.timeout(180),
]

TRICKLE, SILENT, SEARCHES = 200, 50, 100
P99_LIMIT_MS = 200.0


def render_template(values: dict[str, str]) -> str:
    """The template with its ${NAME} variables replaced, as envsubst (serve.sh and
    the nginx image's entrypoint) does; nginx's own $variables stay."""
    text = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    left = re.findall(r"\$\{[A-Z_]+\}", text)
    assert not left, f"unset template variables: {left}"
    return text


@pytest.fixture(scope="module")
def index_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A small tantivy index of synthetic posts, and the environment serving it."""
    return build_index(tmp_path_factory.mktemp("serve") / "data", posts=300)


def start_serve(port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(SERVE), "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: nothing survives the test
        )
    try:
        wait_healthy(port, 60, proc)
    except BaseException:
        stop_group(proc)
        raise
    return proc


@pytest.fixture(scope="module")
def stack(index_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """scripts/serve.sh on a free port: (port, its log)."""
    port = free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    proc = start_serve(port, index_env, log)
    yield port, log
    stop_group(proc)


def test_help_names_the_options() -> None:
    out = subprocess.run([str(SERVE), "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for word in ("--port", "SEARCH_DATA_DIR", "deploy/nginx.conf.template", "deploy/gunicorn.conf.py"):
        assert word in out.stdout, word
    bad = subprocess.run([str(SERVE), "--port", "http"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "port" in bad.stderr


def test_slow_clients_do_not_slow_down_searches(stack: tuple[int, Path]) -> None:
    port, log = stack
    for _ in range(6):  # both workers open the index before the clock starts
        assert get(port, "/?q=%E7%BB%8F%E6%B5%8E", timeout=30)[0] == 200
    slow = SlowClients(port, TRICKLE, SILENT)
    slow.start()
    try:
        assert slow.ready.wait(30)
        time.sleep(2)  # every slow connection accepted and trickling
        held = slow.held()
        # 100 searches over ~13 s: longer than nginx's 10 s header timeout, so the
        # slow clients are dropped and reconnect (as attackers do) meanwhile.
        figures = timed_searches(port, SEARCHES, timeout=10, budget=60, pace=0.13)
    finally:
        slow.stop()
    summary = f"{figures.summary()}; slow clients held {held}, dropped by nginx {slow.dropped}"
    print(f"\nthrough serve.sh under {TRICKLE} trickling + {SILENT} silent connections: {summary}")
    assert held == TRICKLE + SILENT, summary
    assert figures.attempted == SEARCHES and not figures.errors, summary
    assert figures.percentile(99) < P99_LIMIT_MS, summary
    # nginx, not the attacker, ended the slow connections (client_header_timeout) ...
    assert slow.dropped >= TRICKLE, summary
    # ... and gunicorn never waited on one.
    assert "WORKER TIMEOUT" not in log.read_text(encoding="utf-8", errors="replace")


def test_control_the_same_attack_stalls_gunicorn_alone(index_env: dict[str, str], tmp_path: Path) -> None:
    """Without nginx, two trickling connections take both sync workers: a search
    does not finish in 3 s (it would wait for gunicorn's 30 s timeout)."""
    port = free_port()
    gunicorn = shutil.which("gunicorn") or str(Path(sys.executable).parent / "gunicorn")
    # HOME: gunicorn >= 25.1 puts a control socket under $HOME; keep it private.
    env = {**os.environ, **index_env, "HOME": str(tmp_path)}
    env.pop("XDG_RUNTIME_DIR", None)
    cmd = [gunicorn, "--bind", f"127.0.0.1:{port}", "--workers", "2", "searchapp:create_app()"]
    with open(tmp_path / "gunicorn.log", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(port, 60, proc)
        slow = SlowClients(port, trickle=2, silent=0)
        slow.start()
        try:
            assert slow.ready.wait(10)
            time.sleep(1)
            figures = timed_searches(port, 1, timeout=3, budget=10)
        finally:
            slow.stop()
    finally:
        stop_group(proc, wait=15)
    assert figures.errors == ["TimeoutError"], figures.summary()


@pytest.mark.parametrize("path", ["/?q=经济", "/api/search?q=经济", "/static/app.css"])
def test_text_answers_are_gzip_compressed(stack: tuple[int, Path], path: str) -> None:
    port, _ = stack
    from urllib.parse import quote

    url = quote(path, safe="/?=&")
    status, headers, body = get(port, url, timeout=10, headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert headers.get("content-encoding") == "gzip", headers
    assert "accept-encoding" in headers.get("vary", "").lower()
    plain = gzip.decompress(body)
    assert len(body) < len(plain) / 2
    # Without Accept-Encoding: the same kind of answer, uncompressed. (Not the same
    # bytes: a search answer carries its own timing.)
    status, headers, body = get(port, url, timeout=10)
    assert status == 200 and "content-encoding" not in headers
    assert abs(len(body) - len(plain)) < 100


def test_server_header_names_no_version(stack: tuple[int, Path]) -> None:
    port, _ = stack
    _, headers, _ = get(port, "/healthz", timeout=10)
    assert headers.get("server") == "nginx"


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/",
        "//evil.example/static/app.css",
        "/static//app.css",
        "//evil.example//",
        "/%2F%2Fevil.example/",
        "/static",
    ],
)
def test_forged_host_never_redirects_elsewhere(stack: tuple[int, Path], path: str) -> None:
    port, _ = stack
    status, headers, _ = get(port, path, timeout=10, headers={"Host": "evil.example"})
    location = headers.get("location")
    if location is not None:
        parts = urlsplit(location)
        assert not parts.scheme and not parts.netloc, (status, location)
        assert location.startswith("/") and location[1:2] not in ("/", "\\"), (status, location)


# -- nginx's configuration alone, before a stub upstream ---------------------------


class _Stub(http.server.BaseHTTPRequestHandler):
    """Answers /redirect?to=X with that Location, /static/* with or without a
    Cache-Control, and anything else with the request headers it received."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path, _, query = self.path.partition("?")
        headers: list[tuple[str, str]] = []
        body = b"ok"
        if path == "/redirect":
            from urllib.parse import unquote

            self.send_response(302)
            headers.append(("Location", unquote(query.removeprefix("to="))))
        elif path.startswith("/static/"):
            self.send_response(404 if path.endswith("missing") else 200)
            if path.endswith("cached"):
                headers.append(("Cache-Control", "max-age=60"))
        else:
            self.send_response(200)
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture(scope="module")
def nginx_before_stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """nginx from the template, in front of a stub upstream that echoes."""
    stub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    run_dir = tmp_path_factory.mktemp("nginx-run")
    port = free_port()
    conf = run_dir / "nginx.conf"
    conf.write_text(
        render_template(
            {
                "NGINX_LISTEN": f"127.0.0.1:{port}",
                "NGINX_UPSTREAM": f"127.0.0.1:{stub.server_address[1]}",
                "NGINX_RUN_DIR": str(run_dir),
                "NGINX_ACCESS_LOG": str(run_dir / "access.log"),
            }
        ),
        encoding="utf-8",
    )
    os.chmod(run_dir, 0o755)  # as root, nginx's workers drop to an unprivileged user
    nginx = NGINX or "nginx"
    proc = subprocess.Popen([nginx, "-e", "stderr", "-c", str(conf)], stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                get(port, "/", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start: {proc.stderr.read().decode() if proc.stderr else ''}") from None
                time.sleep(0.1)
        yield port
    finally:
        stop_group(proc, signal.SIGQUIT, wait=15)  # SIGQUIT: nginx's graceful stop
        stub.shutdown()


@pytest.mark.parametrize(
    "upstream_location, expected",
    [
        ("http://evil.example/a?b=1", "/a?b=1"),
        ("https://evil.example", "/"),
        ("HTTP://Evil.Example//x", "/x"),
        ("//evil.example/x", "/evil.example/x"),
        ("/\\evil.example/x", "/evil.example/x"),
        ("\\\\evil.example", "/evil.example"),
        ("https:evil.example/x", "/x"),
        ("/\t/evil.example", "/evil.example"),
        ("/search?q=1", "/search?q=1"),
        ("/a//b", "/a//b"),
    ],
)
def test_nginx_keeps_every_redirect_on_the_site(nginx_before_stub: int, upstream_location: str, expected: str) -> None:
    from urllib.parse import quote

    status, headers, _ = get(nginx_before_stub, "/redirect?to=" + quote(upstream_location, safe=""), timeout=10)
    assert status == 302
    assert headers["location"] == expected


@pytest.mark.parametrize(
    "path, expected", [("/static/plain", "public, max-age=3600"), ("/static/cached", "max-age=60"), ("/static/missing", None)]
)
def test_static_files_get_a_lifetime_only_when_the_app_gave_none(nginx_before_stub: int, path: str, expected: str | None) -> None:
    _, headers, _ = get(nginx_before_stub, path, timeout=10)
    assert headers.get("cache-control") == expected


def test_nginx_passes_the_client_address_not_a_claimed_one(nginx_before_stub: int) -> None:
    status, _, body = get(nginx_before_stub, "/echo", timeout=10, headers={"X-Forwarded-For": "203.0.113.9"})
    seen = json.loads(body)
    assert status == 200
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"


def test_nginx_bounds_request_size(nginx_before_stub: int) -> None:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", nginx_before_stub, timeout=10)
    try:
        conn.request("POST", "/echo", body=b"x" * 20_000, headers={"Content-Type": "text/plain"})
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    status, _, _ = get(nginx_before_stub, "/?q=" + "a" * 9000, timeout=10)
    assert status == 414


def test_sigterm_stops_nginx_and_gunicorn(index_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    proc = start_serve(port, index_env, tmp_path / "serve.log")
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "nginx" in names and "gunicorn" in names, names
        conf = re.search(r"-c (\S+/nginx\.conf)", names)
        assert conf, names
        run_dir = Path(conf.group(1)).parent
        assert run_dir.is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [p.pid for p in alive]
        assert not run_dir.exists()
        with pytest.raises(OSError):
            get(port, "/healthz", timeout=2)
    finally:
        stop_group(proc)

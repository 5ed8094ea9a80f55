"""The Elasticsearch node manager (scripts/es-node.sh, devtools/esnode): whose node
it uses, stops and reports, the words it says, and the distribution it fetches.

Starting a real node is checked where one runs: scripts/test.sh starts one with it
(the engine suite runs on it, and tests/test_resilience.py restarts it), and
scripts/cluster-test.sh runs a 3-node cluster of it. Here, without Java, the rules
that keep it off nodes it did not start are checked against real servers on real
ports: a stand-in Elasticsearch (an HTTP server answering the three questions
es-node asks, with the cluster name and pid we choose), a plain HTTP server and a
TCP listener that speaks no HTTP, and a live process whose command line names
org.elasticsearch, as the pid file of a running node does.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from devtools.esnode.cli import main
from devtools.esnode.cluster import Cluster, free_ports
from devtools.esnode.config import DEFAULT_ES_VERSION, Config, Failure
from devtools.esnode.launch import unpack
from devtools.esnode.node import describe_port
from devtools.esnode.single import choose_port
from devtools.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "es-node.sh"


class FakeElasticsearch:
    """An HTTP server on a free port that answers as an Elasticsearch node of
    ``cluster`` with process ``pid`` would (``/`` answers 405, as the test zip does)."""

    def __init__(self, cluster: str, pid: int) -> None:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?")[0]
                if path == "/_nodes/_local/process":
                    fake.reply(self, 200, {"cluster_name": fake.cluster, "nodes": {"n1": {"process": {"id": fake.pid}}}})
                elif path == "/_cluster/health":
                    fake.reply(self, 200, {"cluster_name": fake.cluster, "status": "green"})
                elif path == "/_cat/nodes":
                    fake.reply(self, 200, [{"version": DEFAULT_ES_VERSION}])
                else:
                    fake.reply(self, 405, {"error": "Incorrect HTTP method"})

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

        self.cluster, self.pid = cluster, pid
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def reply(handler: http.server.BaseHTTPRequestHandler, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class PlainHttp(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def fake_node_process() -> Iterator[subprocess.Popen]:
    """A live process whose command line names org.elasticsearch, as a node's does."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "org.elasticsearch.bootstrap.Elasticsearch"])
    yield proc
    proc.kill()
    proc.wait()


@pytest.fixture
def listeners() -> Iterator[list]:
    """Servers a test opens; all closed after it."""
    opened: list = []
    yield opened
    for server in opened:
        server.close()


def plain_http(listeners: list) -> int:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PlainHttp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    listeners.append(_Closing(server))
    return server.server_address[1]


def silent_tcp(listeners: list) -> int:
    """A listener that accepts and closes without a word of HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    listeners.append(sock)
    return sock.getsockname()[1]


class _Closing:
    def __init__(self, server: http.server.HTTPServer) -> None:
        self.server = server

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def es_node(*args: str, cache: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/es-node.sh from another folder with its cache in ``cache``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ES_")}
    environ.update(ES_HOME_CACHE=str(cache), **env)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=environ, cwd=cache, timeout=60)


def own_node(cache: Path, port: int, pid: int) -> Path:
    """The files a node es-node.sh started on ``port`` leaves: its pid and port files."""
    data = cache / f"node-{DEFAULT_ES_VERSION}-{port}"
    data.mkdir(parents=True)
    (data / "es.pid").write_text(f"{pid}\n", encoding="utf-8")
    (data / "http.port").write_text(f"{port}\n", encoding="utf-8")
    return data


# -- what holds a port ---------------------------------------------------------------


def test_describe_port_names_what_listens(listeners):
    other = FakeElasticsearch("someone-else", 4242)
    listeners.append(other)
    assert describe_port(other.port) == 'an Elasticsearch node of cluster "someone-else" (pid 4242)'
    assert describe_port(plain_http(listeners)) == "an HTTP server that is not Elasticsearch"
    assert describe_port(silent_tcp(listeners)) == "a program that is not an HTTP server"


def test_start_never_uses_a_node_it_did_not_start(tmp_path, listeners):
    other = FakeElasticsearch("someone-else", 4242)
    listeners.append(other)
    done = es_node("start", cache=tmp_path, ES_PORT=str(other.port))
    assert done.returncode == 1 and done.stdout == ""
    assert f'port {other.port} is taken by an Elasticsearch node of cluster "someone-else" (pid 4242)' in done.stderr
    assert "it will not use a node it does not own" in done.stderr
    assert not list(tmp_path.glob("node-*")), "nothing prepared for a node it did not start"
    # Not its node: status and url say so, and stop refuses to touch it.
    status = es_node("status", cache=tmp_path, ES_PORT=str(other.port))
    assert status.returncode == 3 and "was not started by this script" in status.stderr
    assert es_node("url", cache=tmp_path, ES_PORT=str(other.port)).returncode == 3
    stop = es_node("stop", cache=tmp_path, ES_PORT=str(other.port))
    assert stop.returncode == 1 and "stop it yourself" in stop.stderr


def test_without_es_port_a_taken_port_is_skipped(tmp_path, listeners):
    """Without ES_PORT the next free port is taken, saying which was skipped and why."""
    taken = FakeElasticsearch("someone-else", 4242)
    listeners.append(taken)
    cfg = replace(Config.from_env({"ES_HOME_CACHE": str(tmp_path)}), port=taken.port, port_given=False, port_range=3)
    node = choose_port(cfg)
    assert node.port is not None and taken.port < node.port < taken.port + 3
    assert node.data_dir == tmp_path / f"node-{DEFAULT_ES_VERSION}-{node.port}"
    # Every candidate taken: an error that says what to do.
    cfg = replace(cfg, port_range=1)
    with pytest.raises(Failure, match=rf"ports {taken.port} to {taken.port} are all taken; set ES_PORT"):
        choose_port(cfg)


def test_a_stale_pid_file_is_not_a_node(tmp_path):
    """A pid file naming a live process that is not Elasticsearch (a reused pid):
    not running, and stop leaves that process alone."""
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        port = free_port()
        own_node(tmp_path, port, bystander.pid)
        status = es_node("status", cache=tmp_path, ES_PORT=str(port))
        assert status.returncode == 3 and f"not running (port {port})" in status.stderr
        assert es_node("url", cache=tmp_path, ES_PORT=str(port)).returncode == 3
        stop = es_node("stop", cache=tmp_path, ES_PORT=str(port))
        assert stop.returncode == 0 and "not running" in stop.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_its_own_node_is_reported_reused_and_stopped(tmp_path, listeners, fake_node_process):
    """The node in its pid file, answering on its port with that pid in cluster
    newsearch-test: url and status report it, start reuses it, stop stops it."""
    ours = FakeElasticsearch("newsearch-test", fake_node_process.pid)
    listeners.append(ours)
    data = own_node(tmp_path, ours.port, fake_node_process.pid)
    url = f"http://127.0.0.1:{ours.port}"
    done = es_node("url", cache=tmp_path, ES_PORT=str(ours.port))
    assert (done.returncode, done.stdout) == (0, url + "\n")
    status = es_node("status", cache=tmp_path, ES_PORT=str(ours.port))
    assert status.returncode == 0
    assert f"running: Elasticsearch {DEFAULT_ES_VERSION} at {url}, pid {fake_node_process.pid}" in status.stderr
    start = es_node("start", cache=tmp_path, ES_PORT=str(ours.port))
    assert (start.returncode, start.stdout) == (0, url + "\n")
    assert "already running" in start.stderr
    stop = es_node("stop", cache=tmp_path, ES_PORT=str(ours.port))
    assert stop.returncode == 0 and "stopped" in stop.stderr
    assert fake_node_process.wait(timeout=10) is not None
    assert not (data / "es.pid").exists()


def test_its_live_node_behind_another_clusters_answer_is_an_error(tmp_path, listeners, fake_node_process):
    """Our pid file names a live node, but the port answers for another cluster:
    start neither adopts that node nor starts a second one on the port."""
    other = FakeElasticsearch("someone-else", fake_node_process.pid)
    listeners.append(other)
    own_node(tmp_path, other.port, fake_node_process.pid)
    done = es_node("start", cache=tmp_path, ES_PORT=str(other.port))
    assert done.returncode == 1
    assert f"is alive, but port {other.port} is answered by an Elasticsearch node of cluster" in done.stderr
    assert f"ES_PORT={other.port} es-node.sh stop" in done.stderr


# -- the cluster's bookkeeping ----------------------------------------------------------


def test_cluster_nodes_keep_their_ports_and_bootstrap_only_when_fresh(tmp_path, listeners):
    cfg = Config.from_env({"ES_HOME_CACHE": str(tmp_path), "ES_CLUSTER_NAME": "c1"}, cluster=True)
    cluster = Cluster(cfg)
    taken = plain_http(listeners)
    http_ports = free_ports(replace(cfg, cluster_port_range=20), 3, taken)
    assert taken not in http_ports and len(http_ports) == 3
    transport = free_ports(replace(cfg, cluster_port_range=50), 3, taken, http_ports)
    assert not set(transport) & set(http_ports)
    for k, (h, t) in enumerate(zip(http_ports, transport, strict=True), start=1):
        folder = cluster.folder / f"node-{k}"
        folder.mkdir(parents=True)
        (folder / "http.port").write_text(f"{h}\n")
        (folder / "transport.port").write_text(f"{t}\n")
    (cluster.nodes_file).write_text("3\n")
    assert cluster.size() == 3
    assert cluster.urls(3) == ",".join(f"http://127.0.0.1:{p}" for p in http_ports)
    node = cluster.node(2)
    fresh = cluster.settings(node, 3, bootstrap=True)
    assert fresh["cluster.name"] == "c1" and fresh["node.name"] == "c1-2"
    assert fresh["http.port"] == str(http_ports[1]) and fresh["transport.port"] == str(transport[1])
    assert fresh["discovery.seed_hosts"] == ",".join(f"127.0.0.1:{p}" for p in transport)
    assert fresh["cluster.initial_master_nodes"] == "c1-1,c1-2,c1-3"
    assert "cluster.initial_master_nodes" not in cluster.settings(node, 3, bootstrap=False)
    assert "discovery.type" not in fresh


def test_cluster_commands_name_their_errors(tmp_path):
    env = {"ES_CLUSTER_NAME": "c1"}
    status = es_node("status", "--cluster", cache=tmp_path, **env)
    assert status.returncode == 3 and "not running (no cluster c1)" in status.stderr
    stop_node = es_node("stop-node", "2", cache=tmp_path, **env)
    assert stop_node.returncode == 1 and "no cluster c1 was started by this script" in stop_node.stderr
    folder = tmp_path / f"cluster-c1-{DEFAULT_ES_VERSION}"
    folder.mkdir()
    (folder / "nodes").write_text("3\n")
    wrong = es_node("start-node", "4", cache=tmp_path, **env)
    assert wrong.returncode == 1 and "node number must be 1 to 3, not '4'" in wrong.stderr
    resized = es_node("url", "--nodes", "3", cache=tmp_path, **env)
    assert resized.returncode == 3
    same_as_single = es_node("status", "--cluster", cache=tmp_path, ES_CLUSTER_NAME="newsearch-test")
    assert same_as_single.returncode == 1 and "must not be newsearch-test" in same_as_single.stderr
    purge = es_node("stop", "--cluster", "--purge", cache=tmp_path, **env)
    assert purge.returncode == 0 and not folder.exists()


# -- the command line --------------------------------------------------------------------


def test_help_lists_every_command_and_variable(capsys):
    assert main(["--help"], {}) == 0
    out = capsys.readouterr().out
    for word in ("start", "stop", "status", "url", "fetch", "stop-node K", "start-node K", "--nodes N", "--cluster", "--purge"):
        assert word in out, word
    for name in ("ES_VERSION", "ES_PORT", "ES_PORT_RANGE", "ES_JAVA_HOME", "ES_JAVA_OPTS", "ES_HOME_CACHE", "ES_DATA_DIR",
                 "ES_START_TIMEOUT", "ES_STOP_TIMEOUT", "ES_USER", "ES_CLUSTER_NAME", "ES_CLUSTER_PORT",
                 "ES_CLUSTER_TRANSPORT_PORT", "ES_CLUSTER_PORT_RANGE"):
        assert name in out, name


@pytest.mark.parametrize(
    "args, status, says",
    [
        ([], 2, "Usage:"),
        (["bogus"], 2, "unknown command: bogus"),
        (["start", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["start", "--nodes", "12"], 1, "--nodes must be 1 to 9, not '12'"),
        (["start", "--cluster"], 1, "start --cluster needs --nodes N (N >= 2)"),
        (["stop", "--purge"], 1, "--purge is for stop --cluster"),
        (["stop-node"], 1, "stop-node needs a node number (1..N)"),
    ],
)
def test_wrong_arguments_say_what_is_wrong(tmp_path, args, status, says):
    done = es_node(*args, cache=tmp_path)
    assert done.returncode == status and says in done.stderr, done.stderr


def test_wrong_environment_says_which_variable(tmp_path):
    done = es_node("status", cache=tmp_path, ES_PORT="http")
    assert done.returncode == 1 and "ES_PORT must be a port number, not 'http'" in done.stderr
    done = es_node("status", cache=tmp_path, ES_PORT_RANGE="0")
    assert done.returncode == 1 and "ES_PORT_RANGE must be a whole number of at least 1" in done.stderr


def test_the_wrapper_runs_this_checkouts_package_from_anywhere(tmp_path):
    """Run from a folder holding another devtools/esnode, the wrapper still runs its
    own checkout's (python3 -P: the current folder is not on sys.path)."""
    decoy = tmp_path / "devtools" / "esnode"
    decoy.mkdir(parents=True)
    (tmp_path / "devtools" / "__init__.py").write_text("")
    (decoy / "__init__.py").write_text("")
    (decoy / "__main__.py").write_text("print('the wrong es-node')\n")
    done = es_node("--help", cache=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("Usage: es-node.sh")


# -- the distribution ---------------------------------------------------------------------


def test_unpack_keeps_the_launchers_executable(tmp_path):
    archive = tmp_path / "dist.zip"
    with zipfile.ZipFile(archive, "w") as z:
        launcher = zipfile.ZipInfo("elasticsearch-9.9.9/bin/elasticsearch")
        launcher.external_attr = 0o100755 << 16
        z.writestr(launcher, "#!/bin/sh\n")
        config = zipfile.ZipInfo("elasticsearch-9.9.9/config/jvm.options")
        config.external_attr = 0o100644 << 16
        z.writestr(config, "-Xms1g\n")
    unpack(archive, tmp_path / "out")
    home = tmp_path / "out" / "elasticsearch-9.9.9"
    assert os.access(home / "bin" / "elasticsearch", os.X_OK)
    assert not os.access(home / "config" / "jvm.options", os.X_OK)


def test_fetch_prints_the_distributions_folder(tmp_path):
    """``fetch`` gives the folder an image build copies; an unpacked distribution
    is used as it is (the real download and unpack run on every clean machine:
    scripts/test.sh starts a node through them)."""
    home = tmp_path / f"elasticsearch-{DEFAULT_ES_VERSION}"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "elasticsearch").write_text("#!/bin/sh\n")
    (home / "bin" / "elasticsearch").chmod(0o755)
    done = es_node("fetch", cache=tmp_path, PATH="/usr/bin:/bin")  # the system python3, outside any venv
    assert (done.returncode, done.stdout) == (0, f"{home}\n"), done.stderr
    assert "fetching" not in done.stderr

"""The single test node (cluster newsearch-test): start, stop, status, url."""

from __future__ import annotations

import time

from .config import NOT_RUNNING, PROG, TEST_CLUSTER, Config, Failure, say
from .launch import Launches, prepare_home, stop
from .node import Node, describe_port, port_in_use, read_file


def single_node(cfg: Config, port: int) -> Node:
    """The node for ``port``. One data folder per version and port: an index
    written by a newer version cannot be read by an older one, and two nodes must
    not share a data path."""
    data_dir = cfg.data_dir or cfg.cache / f"node-{cfg.version}-{port}"
    return Node(f"es-node-{port}", TEST_CLUSTER, data_dir, port)


def candidate_ports(cfg: Config) -> range:
    """ES_PORT given: that port or nothing. Not given: ES_PORT_RANGE ports from 9200."""
    return range(cfg.port, cfg.port + (1 if cfg.port_given else cfg.port_range))


def find_own(cfg: Config) -> Node | None:
    """The node this script started that is still alive (running or starting)."""
    for port in candidate_ports(cfg):
        node = single_node(cfg, port)
        if node.pid() is None:
            continue
        # With a given ES_DATA_DIR every port shares one pid file: the port file
        # says which port that node was started on.
        recorded = read_file(node.port_file)
        if recorded is not None and recorded != str(port):
            continue
        return node
    return None


def choose_port(cfg: Config) -> Node:
    """A node on the first candidate port where nothing listens."""
    first: tuple[int, str] | None = None
    for port in candidate_ports(cfg):
        node = single_node(cfg, port)
        if not port_in_use(port):
            if first:
                say(f"port {first[0]} is taken by {first[1]}, not started by this script; using port {port}")
            return node
        if cfg.port_given:
            raise Failure(
                f"port {port} is taken by {describe_port(port)}, which this script did not start (no live node in "
                f"{node.pid_file}); it will not use a node it does not own. Free the port, choose another ES_PORT, or "
                "leave ES_PORT unset to take the next free port (or set ELASTICSEARCH_URL to use that node deliberately)"
            )
        first = first or (port, describe_port(port))
    last = cfg.port + cfg.port_range - 1
    raise Failure(f"ports {cfg.port} to {last} are all taken; set ES_PORT to a free port")


def start_single(cfg: Config) -> int:
    started = time.monotonic()
    node = find_own(cfg)
    if node is not None:
        pid = node.pid()
        if node.ours_answering() and node.healthy():
            say(f"already running at {node.url} (Elasticsearch {node.version()}, pid {pid})")
            print(node.url)
            return 0
        if port_in_use(node.port or 0) and not node.ours_answering():
            raise Failure(
                f"this script's node (pid {pid}, {node.data_dir}) is alive, but port {node.port} is answered by "
                f"{describe_port(node.port or 0)}; stop ours with ES_PORT={node.port} {PROG} stop"
            )
    else:
        node = choose_port(cfg)
    prepare_home(cfg)
    launches = Launches(cfg)
    pid = node.pid()
    if pid is not None:
        say(f"node {pid} is starting; waiting for it")
        launches.adopt(node)
    else:
        node.record_ports()
        say(f"starting Elasticsearch {cfg.version} on {node.url} (heap: {cfg.java_opts}; data: {node.data_dir})")
        launches.start(node, node.settings(**{"discovery.type": "single-node"}))
    launches.wait(
        lambda: [] if node.healthy() and node.ours_answering() else [node],
        "was not yellow",
        f"Elasticsearch {cfg.version} did not become healthy in {cfg.start_timeout}s; raise ES_START_TIMEOUT "
        f"or see {node.log_dir}",
    )
    say(f"ready in {time.monotonic() - started:.0f}s: Elasticsearch {node.version()} at {node.url} (pid {node.pid() or '?'})")
    print(node.url)
    return 0


def stop_single(cfg: Config) -> int:
    node = find_own(cfg)
    if node is None or node.pid() is None:
        if cfg.port_given and port_in_use(cfg.port):
            here = single_node(cfg, cfg.port)
            raise Failure(
                f"{describe_port(cfg.port)} answers on {here.url} but was not started by this script (no live pid in "
                f"{here.pid_file}); stop it yourself"
            )
        say("not running")
        return 0
    stop(cfg, [node])
    say("stopped")
    return 0


def status_single(cfg: Config) -> int:
    node = find_own(cfg)
    pid = node.pid() if node else None
    if node and pid:
        if node.healthy():
            say(f"running: Elasticsearch {node.version()} at {node.url}, pid {pid}, RSS {node.rss_mib(pid)} MiB")
        else:
            say(f"starting (not yet yellow): pid {pid} at {node.url}, RSS {node.rss_mib(pid)} MiB")
        return 0
    if port_in_use(cfg.port):
        url = single_node(cfg, cfg.port).url
        say(f"not running; {describe_port(cfg.port)} answers at {url} but was not started by this script")
    else:
        say(f"not running (port {cfg.port})")
    return NOT_RUNNING


def url_single(cfg: Config) -> int:
    node = find_own(cfg)
    if node is None:
        say("not running")
        return NOT_RUNNING
    print(node.url)
    return 0



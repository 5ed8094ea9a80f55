"""A local cluster of N nodes (ES_CLUSTER_NAME): start --nodes N, stop-node K,
start-node K, and stop, status and url --cluster."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .config import NOT_RUNNING, PROG, TEST_CLUSTER, Config, Failure, say
from .launch import Launches, locked, prepare_home, single_lock, stop
from .node import Node, answers_ok, describe_port, get_json, port_in_use, read_file


@dataclass(frozen=True)
class Cluster:
    """The cluster ES_CLUSTER_NAME: its folder, its size as recorded by its last
    fresh start, and its nodes 1..N (their ports, once chosen, are in their folders:
    a restarted node keeps them, so its URL and the other nodes' seed list stay right)."""

    cfg: Config

    def __post_init__(self) -> None:
        name = self.cfg.cluster_name
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise Failure(f"ES_CLUSTER_NAME must be letters, digits, '-' and '_', not '{name}'")
        if name == TEST_CLUSTER:
            raise Failure(f"ES_CLUSTER_NAME must not be {TEST_CLUSTER}, the single test node's cluster: the two would join")

    @property
    def name(self) -> str:
        return self.cfg.cluster_name

    @property
    def folder(self) -> Path:
        return self.cfg.cache / f"cluster-{self.name}-{self.cfg.version}"

    @property
    def nodes_file(self) -> Path:
        return self.folder / "nodes"

    def size(self) -> int | None:
        text = read_file(self.nodes_file)
        return int(text) if text and text.isdigit() and int(text) >= 2 else None

    def require_size(self) -> int:
        n = self.size()
        if n is None:
            raise Failure(
                f"no cluster {self.name} was started by this script ({self.nodes_file} missing); "
                f"start one with {PROG} start --nodes N"
            )
        return n

    def node(self, k: int) -> Node:
        name = f"{self.name}-{k}"
        return Node(name, self.name, self.folder / f"node-{k}", None, title=f"node {k} ({name})").with_recorded_ports()

    def nodes(self, n: int) -> list[Node]:
        return [self.node(k) for k in range(1, n + 1)]

    def urls(self, n: int) -> str:
        return ",".join(node.url for node in self.nodes(n))

    def settings(self, node: Node, n: int, bootstrap: bool) -> dict[str, str]:
        """Node settings in a cluster of ``n``; bootstrap only on a fresh cluster's
        first start: cluster.initial_master_nodes must not outlive it."""
        more = {
            "transport.port": str(node.transport_port),
            "discovery.seed_hosts": ",".join(f"127.0.0.1:{other.transport_port}" for other in self.nodes(n)),
        }
        if bootstrap:
            more["cluster.initial_master_nodes"] = ",".join(other.name for other in self.nodes(n))
        return node.settings(**more)

    def launch(self, launches: Launches, node: Node, n: int, bootstrap: bool) -> None:
        say(f"starting {node.title} on {node.url}, transport {node.transport_port} (heap: {self.cfg.java_opts})")
        launches.start(node, self.settings(node, n, bootstrap))


def free_ports(cfg: Config, want: int, base: int, taken: Sequence[int] = ()) -> list[int]:
    """``want`` free ports from ``base`` on (ES_CLUSTER_PORT_RANGE tried), none of ``taken``."""
    span = range(base, base + cfg.cluster_port_range)
    ports = [port for port in span if port not in taken and not port_in_use(port)][:want]
    if len(ports) < want:
        raise Failure(
            f"fewer than {want} free ports in {base}-{span[-1]}; set ES_CLUSTER_PORT / ES_CLUSTER_TRANSPORT_PORT"
        )
    return ports


def check_port_free(node: Node) -> None:
    """A restarting node keeps its port: fail if something else took it meanwhile."""
    if port_in_use(node.port or 0):
        raise Failure(f"{node.title}'s port {node.port} is taken by {describe_port(node.port or 0)}")


def wait_cluster(cluster: Cluster, n: int, launches: Launches) -> None:
    """Wait until every node answers as ours and has joined, and the cluster holds
    ``n`` nodes and is yellow."""
    nodes = cluster.nodes(n)
    health = f"{nodes[0].url}/_cluster/health?wait_for_nodes={n}&wait_for_status=yellow&timeout=2s"

    def pending() -> list[Node]:
        waiting = [node for node in nodes if not (node.ours_answering() and node.joined())]
        return waiting or ([] if answers_ok(health, 5) else nodes[:1])

    launches.wait(
        pending,
        "was not ready",
        f"cluster {cluster.name} did not form (all {n} nodes, yellow) in {cluster.cfg.start_timeout}s; "
        f"raise ES_START_TIMEOUT or see {cluster.folder}/node-*/logs",
    )


def start_cluster(cluster: Cluster, n: int) -> int:
    """A fresh cluster when none of its nodes runs, else the missing nodes of the
    running one."""
    cfg, started = cluster.cfg, time.monotonic()
    recorded = cluster.size()
    running = [node for node in cluster.nodes(recorded or 0) if node.pid() is not None]
    if running and recorded != n:
        raise Failure(f"cluster {cluster.name} runs with {recorded} nodes, not {n}; stop it first ({PROG} stop --cluster)")
    # Under the single node's lock: one download, one keystore.
    with single_lock(cfg):
        prepare_home(cfg)
    launches = Launches(cfg)
    if not running:
        # Fresh: wipe the old folders, choose ports, bootstrap all N.
        for old in cluster.folder.glob("node-*"):
            shutil.rmtree(old)
        http_ports = free_ports(cfg, n, cfg.cluster_port)
        transport_ports = free_ports(cfg, n, cfg.cluster_transport_port, http_ports)
        for k, ports in enumerate(zip(http_ports, transport_ports, strict=True), start=1):
            replace(cluster.node(k), port=ports[0], transport_port=ports[1]).record_ports()
        cluster.nodes_file.write_text(f"{n}\n", encoding="utf-8")
        say(f"starting a fresh cluster {cluster.name} of {n} nodes (data: {cluster.folder})")
        for node in cluster.nodes(n):
            cluster.launch(launches, node, n, bootstrap=True)
    else:
        missing = [node for node in cluster.nodes(n) if node not in running]
        if missing:
            names = ", ".join(node.title for node in missing)
            say(f"cluster {cluster.name}: {len(running)} of {n} nodes run; starting {names} with their data")
        for node in missing:
            check_port_free(node)
        for node in missing:
            cluster.launch(launches, node, n, bootstrap=False)
    wait_cluster(cluster, n, launches)
    first = cluster.node(1)
    say(f"ready in {time.monotonic() - started:.0f}s: cluster {cluster.name}, {n} nodes, Elasticsearch {first.version()}")
    print(cluster.urls(n))
    return 0


def stop_cluster(cluster: Cluster, purge: bool) -> int:
    n = cluster.size()
    if n is None:
        say(f"not running (no cluster {cluster.name})")
    elif stopped := stop(cluster.cfg, cluster.nodes(n)):
        say(f"stopped cluster {cluster.name} ({stopped} nodes)")
    else:
        say(f"not running (cluster {cluster.name})")
    if purge and cluster.folder.exists():
        shutil.rmtree(cluster.folder)
        say(f"deleted {cluster.folder}")
    return 0


def cluster_member(cluster: Cluster, number: str) -> tuple[Node, int]:
    """Node ``number`` of the running cluster, and the cluster's size."""
    n = cluster.require_size()
    if not number.isdigit() or not 1 <= int(number) <= n:
        raise Failure(f"node number must be 1 to {n}, not '{number}'")
    return cluster.node(int(number)), n


def stop_cluster_node(cluster: Cluster, number: str) -> int:
    node, _ = cluster_member(cluster, number)
    if stop(cluster.cfg, [node]):
        say(f"{node.title} stopped")
    else:
        say(f"{node.title} is not running")
    return 0


def start_cluster_node(cluster: Cluster, number: str) -> int:
    """Start one node again with its data; wait until it has joined (not for the
    cluster's colour: that is the caller's to wait for, and to time)."""
    cfg, started = cluster.cfg, time.monotonic()
    node, n = cluster_member(cluster, number)
    launches = Launches(cfg)
    if node.pid() is not None:
        say(f"{node.title} is already running")
    else:
        if not (node.data_dir / "data").is_dir():
            raise Failure(f"{node.title} has no data folder ({node.data_dir}): start the cluster with {PROG} start --nodes {n}")
        check_port_free(node)
        prepare_home(cfg)  # without the single node's lock: its start must not delay a restart timed by the cluster test
        cluster.launch(launches, node, n, bootstrap=False)
    launches.wait(
        lambda: [] if node.ours_answering() and node.joined() else [node],
        "had not joined",
        f"{node.title} of {cluster.name} did not join in {cfg.start_timeout}s; see {node.log_dir}",
    )
    say(f"{node.title} joined in {time.monotonic() - started:.0f}s at {node.url}")
    print(node.url)
    return 0


def status_cluster(cluster: Cluster) -> int:
    n = cluster.size()
    if n is None:
        say(f"not running (no cluster {cluster.name})")
        return NOT_RUNNING
    nodes = cluster.nodes(n)
    master, health = "", ""  # asked of the nodes of ours that answer, until one knows
    for node in nodes:
        if (master and health) or not node.ours_answering():
            continue
        found = get_json(f"{node.url}/_cat/master?h=node&master_timeout=2s&format=json", 3)
        master = master or (found[0].get("node", "") if isinstance(found, list) and found else "")
        found = get_json(f"{node.url}/_cat/health?h=status,node.total,shards,unassign&master_timeout=2s&format=json", 3)
        health = health or (" ".join(str(v) for v in found[0].values()) if isinstance(found, list) and found else "")
    up = 0
    for node in nodes:
        pid = node.pid()
        if pid is None:
            say(f"{node.title}: not running (port {node.port or '?'})")
            continue
        up += 1
        role = ", elected master" if master == node.name else ""
        say(f"{node.title}: running at {node.url}, pid {pid}, RSS {node.rss_mib(pid)} MiB{role}")
    if up:
        health = health or "no master"
        say(f"cluster {cluster.name}: {up} of {n} nodes running; health (status nodes shards unassigned): {health}")
    else:
        say(f"cluster {cluster.name}: not running")
    return 0 if up == n else NOT_RUNNING


def url_cluster(cluster: Cluster) -> int:
    n = cluster.size()
    if n is not None and any(node.pid() is not None for node in cluster.nodes(n)):
        print(cluster.urls(n))
        return 0
    say(f"not running (cluster {cluster.name})")
    return NOT_RUNNING


def cluster_command(cfg: Config, command: str, nodes: int, number: str, purge: bool) -> int:
    """Cluster commands hold their own lock, not the single node's: a 3-node start
    must not make a developer's single-node start wait. (Their port ranges do not
    overlap, so the two never race for a port.) status and url only read."""
    cluster = Cluster(cfg)
    if command in ("status", "url"):
        return status_cluster(cluster) if command == "status" else url_cluster(cluster)
    message = f"timed out waiting for another {PROG} cluster command"
    with locked(cfg.cache / ".lock-cluster", cfg.start_timeout + 120, message):
        if command == "start":
            return start_cluster(cluster, nodes)
        if command == "stop":
            return stop_cluster(cluster, purge)
        if command == "stop-node":
            return stop_cluster_node(cluster, number)
        return start_cluster_node(cluster, number)



"""The command line: the subcommands, options and words of scripts/es-node.sh."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from .cluster import cluster_command
from .config import DEFAULT_ES_VERSION, PROG, TEST_CLUSTER, Config, Failure, say
from .launch import ensure_distribution, single_lock
from .single import start_single, status_single, stop_single, url_single

USAGE = """\
Usage: {prog} start|stop|status|url|fetch|--help
       {prog} start --nodes N
       {prog} stop|status|url --cluster [--purge]
       {prog} stop-node K|start-node K

Manage a single-node Elasticsearch {version} for tests and CI, on 127.0.0.1,
or a local cluster of N nodes (--nodes N, N >= 2) for the cluster test.
(It runs devtools/esnode with python3 >= 3.11.)

Commands (single node):
  start    fetch (Maven, cached in ~/.m2), unpack (once), start the node and wait
           until the cluster is yellow; print its URL. If this script's node is
           already running, only print its URL. A node it did not start is never
           used: without ES_PORT it starts its own on the next free port.
  stop     stop the node started by 'start' (via its pid file) and wait until it is gone.
  status   say whether this script's node runs, its pid, RSS and health; exit 3 if
           it does not (also when some other node answers on the port).
  url      print the URL this script's node answers on; exit 3 if it is not running.
  fetch    fetch and unpack the distribution only (once); print the folder it is
           in, $ES_HOME_CACHE/elasticsearch-<version> (e.g. to build an image from).

Commands (cluster ES_CLUSTER_NAME; never the single node's {test_cluster}):
  start --nodes N   start N nodes of one cluster in parallel, each with its own data
           folder, pid file, HTTP and transport port (the first free ones from
           ES_CLUSTER_PORT and ES_CLUSTER_TRANSPORT_PORT), all master-eligible;
           wait until all N have joined and the cluster is yellow; print the N
           URLs comma-separated on stdout (what ELASTICSEARCH_URL takes). When none
           of its nodes runs, the cluster starts afresh: its data folders are wiped
           and it bootstraps (cluster.initial_master_nodes). When some run, only
           the missing ones are started, with their data.
  stop --cluster    stop every node of the cluster (in parallel); with --purge,
           then delete the cluster's folder (data and logs).
  status --cluster  a line per node (pid, port, RSS, the elected master) and the
           cluster's health; exit 3 unless all its nodes run.
  url --cluster     print the N URLs comma-separated; exit 3 if no node runs.
  stop-node K       stop node K (1..N) and wait until it is gone; its data stays.
  start-node K      start node K again with its data and ports and wait until it
           has joined the cluster (not for green: that is the caller's to wait
           for, and to time); print its URL.
  --nodes N (N >= 2) selects the cluster for stop, status and url too; --nodes 1
  is the single node.

Environment (defaults in brackets):
  ES_VERSION        Elasticsearch version [{version}]
  ES_PORT           HTTP port; only this one when given [the first free from 9200]
  ES_PORT_RANGE     ports tried from 9200 when ES_PORT is not given [20]
  ES_JAVA_HOME      JDK to run it with (the test zip bundles none)
                    [/usr/lib/jvm/temurin-25-jdk-amd64]
  ES_JAVA_OPTS      JVM options [-Xms1g -Xmx1g; per cluster node
                    -Xms512m -Xmx512m -XX:TieredStopAtLevel=1]
  ES_HOME_CACHE     where the distribution is unpacked
                    [$HOME/.cache/newsearch-es; /var/cache/newsearch-es as root]
  ES_DATA_DIR       data, logs and pid file [$ES_HOME_CACHE/node-<version>-<port>]
  ES_START_TIMEOUT  seconds to wait for yellow health [120; 180 for a cluster]
  ES_STOP_TIMEOUT   seconds to wait for a node to stop before killing it [60]
  ES_USER           unprivileged user that runs the node when started as root [esnode]
  ES_CLUSTER_NAME   the cluster's name; its folder is
                    $ES_HOME_CACHE/cluster-<name>-<version> [newsearch-cluster]
  ES_CLUSTER_PORT   first HTTP port tried for cluster nodes [9250]
  ES_CLUSTER_TRANSPORT_PORT  first transport port tried for cluster nodes [9450]
  ES_CLUSTER_PORT_RANGE      ports tried from each of those two [50]

Examples:
  ES_URL=$(scripts/es-node.sh start) && pytest && scripts/es-node.sh stop
  ES_CLUSTER_URL=$(scripts/es-node.sh start --nodes 3)
  scripts/es-node.sh stop-node 2 && scripts/es-node.sh start-node 2
  scripts/es-node.sh stop --cluster
"""

COMMANDS = ("start", "stop", "status", "url", "fetch", "stop-node", "start-node")


def parser() -> argparse.ArgumentParser:
    """The subcommands and options of USAGE (the same as the bash script had)."""
    top = argparse.ArgumentParser(prog=PROG, add_help=False)
    sub = top.add_subparsers(dest="command", required=True)
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument("--nodes", default="1", help="N nodes: N >= 2 is the cluster, 1 the single node [1]")
    options.add_argument("--cluster", action="store_true", help="the cluster (ES_CLUSTER_NAME), not the single node")
    options.add_argument("--purge", action="store_true", help="stop --cluster: then delete its folder")
    for name in ("start", "stop", "status", "url"):
        sub.add_parser(name, parents=[options])
    for name in ("stop-node", "start-node"):
        sub.add_parser(name, parents=[options]).add_argument("node", nargs="?", default="", help="the node's number K (1..N)")
    sub.add_parser("fetch")
    return top


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if env is None else env
    usage = USAGE.format(prog=PROG, version=DEFAULT_ES_VERSION, test_cluster=TEST_CLUSTER)
    try:
        if argv[:1] in (["-h"], ["--help"], ["help"]):
            print(usage, end="")
            return 0
        if not argv or argv[0] not in COMMANDS:
            if argv:
                say(f"unknown command: {argv[0]}")
            print(usage, end="", file=sys.stderr)
            return 2
        args = parser().parse_args(argv)
        return run(args, env)
    except Failure as exc:
        print(f"es-node: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    nodes_text = getattr(args, "nodes", "1")
    if not nodes_text.isdigit() or not 1 <= int(nodes_text) <= 9:
        raise Failure(f"--nodes must be 1 to 9, not '{nodes_text}'")
    nodes = int(nodes_text)
    cluster = getattr(args, "cluster", False) or nodes >= 2
    if args.command in ("stop-node", "start-node"):
        if not args.node:
            raise Failure(f"{args.command} needs a node number (1..N)")
        return cluster_command(Config.from_env(env, cluster=True), args.command, nodes, args.node, args.purge)
    if cluster and args.command != "fetch":
        if args.command == "start" and nodes < 2:
            raise Failure("start --cluster needs --nodes N (N >= 2)")
        return cluster_command(Config.from_env(env, cluster=True), args.command, nodes, "", args.purge)
    if getattr(args, "purge", False):
        raise Failure("--purge is for stop --cluster")
    cfg = Config.from_env(env)
    if args.command == "status":
        return status_single(cfg)
    if args.command == "url":
        return url_single(cfg)
    with single_lock(cfg):
        if args.command == "fetch":
            print(ensure_distribution(cfg))
            return 0
        return start_single(cfg) if args.command == "start" else stop_single(cfg)

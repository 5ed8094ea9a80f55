"""The environment, read once: versions, ports, folders, timeouts, the node's user;
and how this tool reports (``say``, ``Failure``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ES_VERSION = "9.5.3"
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch"
TEST_CLUSTER = "newsearch-test"  # the single node's cluster name
PROG = "es-node.sh"
NOT_RUNNING = 3


class Failure(Exception):
    """Something the operator must fix; the message says what and how (exit 1)."""


def say(message: str) -> None:
    print(f"es-node: {message}", file=sys.stderr, flush=True)


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    text = env.get(name) or str(default)
    if not text.isdigit() or int(text) < low:
        raise Failure(f"{name} must be a whole number of at least {low}, not '{text}'")
    return int(text)


@dataclass(frozen=True)
class Config:
    """What the environment asks for (USAGE lists the variables and defaults)."""

    version: str
    port: int  # the first HTTP port tried for the single node
    port_given: bool  # ES_PORT set: that port or nothing
    port_range: int
    data_dir: Path | None  # ES_DATA_DIR: one folder whatever the port
    java_home: Path
    java_opts: str
    start_timeout: int
    stop_timeout: int
    user: str
    as_root: bool  # Elasticsearch refuses root: run it as ``user``
    cache: Path  # ES_HOME_CACHE
    cluster_name: str
    cluster_port: int
    cluster_transport_port: int
    cluster_port_range: int

    @classmethod
    def from_env(cls, env: Mapping[str, str], cluster: bool = False) -> Config:
        """The settings for the single node, or (``cluster``) for a cluster's nodes:
        smaller heaps and a longer start."""
        port_text = env.get("ES_PORT") or "9200"
        if not port_text.isdigit():
            raise Failure(f"ES_PORT must be a port number, not '{port_text}'")
        as_root = os.geteuid() == 0
        # Root's $HOME is usually mode 700, which the unprivileged node user cannot
        # traverse, so root's default cache lives in /var/cache instead.
        default_cache = "/var/cache/newsearch-es" if as_root else str(Path.home() / ".cache" / "newsearch-es")
        # 1 GB, as docker-compose gives production: Elasticsearch refuses (429) any
        # single document over a tenth of the heap in indexing pressure (~4x its
        # bytes), so at 512 MB a legal 9 MB post (under --max-bytes) could not be
        # indexed. A cluster's nodes: small heaps, since three share two cores with
        # the app, the readers and a developer's own single node; C1 only (no C2
        # compiles): a restarted node spends its start compiling, and the cluster
        # test times that start; measured on two loaded cores, a restart and rejoin
        # took 17-18 s with it against 26-27 s without. 2,000 posts need no C2.
        java_opts = "-Xms512m -Xmx512m -XX:TieredStopAtLevel=1" if cluster else "-Xms1g -Xmx1g"
        return cls(
            version=env.get("ES_VERSION") or DEFAULT_ES_VERSION,
            port=int(port_text),
            port_given=bool(env.get("ES_PORT")),
            port_range=_int(env, "ES_PORT_RANGE", 20, low=1),
            data_dir=Path(env["ES_DATA_DIR"]) if env.get("ES_DATA_DIR") else None,
            java_home=Path(env.get("ES_JAVA_HOME") or "/usr/lib/jvm/temurin-25-jdk-amd64"),
            java_opts=env.get("ES_JAVA_OPTS") or java_opts,
            start_timeout=_int(env, "ES_START_TIMEOUT", 180 if cluster else 120),
            stop_timeout=_int(env, "ES_STOP_TIMEOUT", 60),
            user=env.get("ES_USER") or "esnode",
            as_root=as_root,
            cache=Path(env.get("ES_HOME_CACHE") or default_cache),
            cluster_name=env.get("ES_CLUSTER_NAME") or "newsearch-cluster",
            cluster_port=_int(env, "ES_CLUSTER_PORT", 9250, low=1),
            cluster_transport_port=_int(env, "ES_CLUSTER_TRANSPORT_PORT", 9450, low=1),
            cluster_port_range=_int(env, "ES_CLUSTER_PORT_RANGE", 50, low=1),
        )

    @property
    def home(self) -> Path:
        """The unpacked distribution, shared by every node of this version."""
        return self.cache / f"elasticsearch-{self.version}"



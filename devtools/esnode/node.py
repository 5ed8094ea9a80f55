"""One node of ours, and whatever else may listen on a port: the node's folders and
files, its pid, its identity and health, all read as JSON over HTTP."""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import say

# -- talking to whatever listens on a port ----------------------------------------

# Never through a proxy: every node of ours is on 127.0.0.1.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, timeout: float) -> tuple[int, bytes] | None:
    """The status and body of a GET, or None when nothing answered in HTTP
    (refused, timed out, or a program that does not speak HTTP)."""
    try:
        with _OPENER.open(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        with err:
            try:
                return err.code, err.read()
            except (OSError, http.client.HTTPException):
                return err.code, b""
    except (OSError, http.client.HTTPException, ValueError):
        return None


def answers_ok(url: str, timeout: float) -> bool:
    """Does a GET of ``url`` answer 2xx?"""
    got = http_get(url, timeout)
    return got is not None and 200 <= got[0] < 300


def get_json(url: str, timeout: float) -> Any:
    """The JSON of a 2xx answer; None for anything else."""
    got = http_get(url, timeout)
    if got is None or not 200 <= got[0] < 300:
        return None
    try:
        return json.loads(got[1])
    except ValueError:
        return None


def port_in_use(port: int) -> bool:
    """Does anything listen on 127.0.0.1:port (HTTP or not)?"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class Identity:
    """What a node answering on a port says it is."""

    cluster: str
    pids: tuple[int, ...]


def identity(url: str) -> Identity | None:
    """The cluster name and process id the Elasticsearch at ``url`` reports."""
    body = get_json(f"{url}/_nodes/_local/process?filter_path=cluster_name,nodes.*.process.id", 3)
    if not isinstance(body, dict) or not isinstance(body.get("cluster_name"), str):
        return None
    nodes = body.get("nodes") if isinstance(body.get("nodes"), dict) else {}
    processes = [n.get("process") for n in nodes.values() if isinstance(n, dict)]
    pids = tuple(p["id"] for p in processes if isinstance(p, dict) and isinstance(p.get("id"), int))
    return Identity(body["cluster_name"], pids)


def describe_port(port: int) -> str:
    """Words for whatever holds ``port``, for messages."""
    url = f"http://127.0.0.1:{port}"
    ident = identity(url)
    if ident is not None:
        pid = f" (pid {ident.pids[0]})" if ident.pids else ""
        return f'an Elasticsearch node of cluster "{ident.cluster}"{pid}'
    # Any HTTP answer counts: the test zip lacks the rest-root module, so GET /
    # answers 405 even on a healthy node.
    if http_get(url + "/", 2) is not None:
        return "an HTTP server that is not Elasticsearch"
    return "a program that is not an HTTP server"


def pid_alive(pid: int) -> bool:
    """Is ``pid`` a running process we may signal? (A zombie has exited: it only
    waits for its parent to read its status.)"""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):  # gone, or another user's: never ours
        return False
    stat = read_file(Path(f"/proc/{pid}/stat")) or ""
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def read_file(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def read_port(path: Path) -> int | None:
    text = read_file(path)
    return int(text) if text and text.isdigit() else None


# -- one node ---------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """One Elasticsearch node of ours: where it answers, where it keeps its data,
    logs and pid file, and how messages name it."""

    name: str  # node.name
    cluster: str  # cluster.name
    data_dir: Path
    port: int | None  # HTTP; None for a cluster node whose ports were never chosen
    transport_port: int | None = None  # cluster nodes only
    title: str = "Elasticsearch"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port or 0}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "es.pid"

    @property
    def port_file(self) -> Path:
        return self.data_dir / "http.port"

    @property
    def transport_file(self) -> Path:
        return self.data_dir / "transport.port"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def console_log(self) -> Path:
        """What the launcher and the JVM print before logging is set up."""
        return self.log_dir / "console.log"

    def with_recorded_ports(self) -> Node:
        """This node with the ports its folder records (chosen at its first start:
        a restarted node keeps them)."""
        return replace(self, port=read_port(self.port_file), transport_port=read_port(self.transport_file))

    def record_ports(self) -> None:
        """Write its ports into its folder, for later commands and restarts."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(f"{self.port}\n", encoding="utf-8")
        if self.transport_port is not None:
            self.transport_file.write_text(f"{self.transport_port}\n", encoding="utf-8")

    def pid(self) -> int | None:
        """The pid in the pid file, if that process is alive and is Elasticsearch
        (a stale pid file may name a pid since reused by something else)."""
        text = read_file(self.pid_file)
        if not text or not text.isdigit() or not pid_alive(int(text)):
            return None
        try:
            cmdline = Path(f"/proc/{text}/cmdline").read_bytes()
        except OSError:
            return None
        return int(text) if b"org.elasticsearch" in cmdline else None

    def ours_answering(self) -> bool:
        """Is the node answering on our port the one in our pid file, in our cluster?"""
        pid = self.pid()
        ident = identity(self.url) if pid else None
        return ident is not None and ident.cluster == self.cluster and pid in ident.pids

    def healthy(self) -> bool:
        """Is its cluster at least yellow?"""
        return answers_ok(f"{self.url}/_cluster/health?wait_for_status=yellow&timeout=2s", 5)

    def joined(self) -> bool:
        """Has it an elected master (has it joined a formed cluster)?"""
        return answers_ok(f"{self.url}/_cluster/health?master_timeout=2s", 4)

    def version(self) -> str:
        body = get_json(f"{self.url}/_cat/nodes?h=version&format=json", 2)
        return body[0].get("version", "") if isinstance(body, list) and body else ""

    def rss_mib(self, pid: int) -> int:
        for line in (read_file(Path(f"/proc/{pid}/status")) or "").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
        return 0

    def print_failure(self, message: str) -> None:
        """``message`` and the last lines of the node's logs."""
        say(message)
        for log in (self.console_log, self.log_dir / f"{self.cluster}.log"):
            lines = (read_file(log) or "").splitlines()
            if lines:
                print(f"----- last lines of {log} -----", file=sys.stderr)
                print("\n".join(lines[-30:]), file=sys.stderr, flush=True)

    def settings(self, **more: str) -> dict[str, str]:
        """The settings every node of ours has, plus ``more``."""
        return {
            "cluster.name": self.cluster,
            "node.name": self.name,
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            **more,
            "path.data": str(self.data_dir / "data"),
            "path.logs": str(self.log_dir),
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            "action.destructive_requires_name": "false",
        }



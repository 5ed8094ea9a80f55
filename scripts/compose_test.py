#!/usr/bin/env python3
"""Run docker-compose.yml for real, as an operator would (issue 20); CI runs it
through scripts/compose-test.sh.

Every image is built here, without any registry: a Debian base (mmdebstrap, then
`docker import`), the app from the project's Dockerfile on that base (wheels and
htmx fetched on the host first: HTTPS from inside a build container fails here),
Elasticsearch from the Maven Central distribution plus the host's JDK
(deploy/images/elasticsearch) and nginx from Debian's nginx-light
(deploy/images/nginx). Then, each step timed:

  first up       empty volumes: every service healthy, the site says nothing is
                 indexed yet and how to index; Elasticsearch answers 401 without
                 credentials
  index          the documented indexer run on a generated corpus: hits through
                 nginx, no restart
  privileges     the app's user cannot delete, write or create an index; the
                 indexer's cannot touch other indices or security; no password in
                 `docker inspect`
  hardening      the app runs read-only, without capabilities, not as root
  restart        `restart` of each service: the same totals
  down/up        `down` and `up` without -v: the data is still there
  index on up    `down -v`, then `up` with POSTS_DIR: searchable once healthy
  cluster        the cluster profile: up where the host allows it, else shown
                 failing with Elasticsearch's own reason, then run with
                 deploy/compose.cluster-loopback.yml; a node (the master) stopped
                 and started while readers search through nginx

It cleans up what it made: the compose project's containers, networks and
volumes, the images (unless --keep-images), the Docker daemon if it started it,
and vm.max_map_count if it raised it. Docker, docker-compose and mmdebstrap come
from Debian's packages when missing (as root). Where Docker cannot run it says so
and exits 0 (77 with --require).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
LOOPBACK_FILE = ROOT / "deploy" / "compose.cluster-loopback.yml"
OFFLINE = ROOT / "deploy" / "offline"
ES_IMAGE_DIR = ROOT / "deploy" / "images" / "elasticsearch"
NGINX_IMAGE_DIR = ROOT / "deploy" / "images" / "nginx"
ES_ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch"
JDK = Path(os.environ.get("ES_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))
ROOTFS_MAX_AGE = 7 * 86400  # seconds a cached Debian root filesystem is reused
DEBIAN_PACKAGES = ["docker.io", "docker-compose", "mmdebstrap"]
SERVICES = ("elasticsearch", "app", "nginx")
ONE_SHOTS = ("es-setup", "index-on-up")
CLUSTER_NODES = ("es01", "es02", "es03")
QUERY_WORD = "经济"


class Skip(Exception):
    """Docker cannot run here: said, and the run ends without failing."""


class Failure(Exception):
    """A check failed: the message says which and what was seen."""


def say(message: str) -> None:
    print(f"compose-test: {message}", flush=True)


def check(condition: object, message: str) -> None:
    if not condition:
        raise Failure(message)


@dataclass
class Step:
    name: str
    seconds: float
    note: str = ""


@dataclass
class Run:
    args: argparse.Namespace
    work: Path
    steps: list[Step] = field(default_factory=list)
    docker: str = "docker"
    dockerd: subprocess.Popen | None = None
    dockerd_log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    built: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)
    max_map_count_was: int | None = None
    posts: Path | None = None
    expected: int = 0
    project_started: bool = False

    # -- processes --------------------------------------------------------------

    def sh(
        self,
        cmd: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        timeout: float = 600,
        check_rc: bool = True,
        quiet: bool = False,
        cwd: Path = ROOT,
    ) -> subprocess.CompletedProcess:
        """Run a command, print it (the commands CI ran are the documentation's),
        capture its output; on failure show the output's tail."""
        if not quiet:
            print("+ " + " ".join(_quote(c) for c in cmd), flush=True)
        try:
            done = subprocess.run(
                list(cmd), cwd=cwd, env=env or self.env or None, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Failure(f"timed out after {timeout:.0f} s: {' '.join(cmd)}") from exc
        if check_rc and done.returncode != 0:
            tail = (done.stdout + done.stderr)[-3000:]
            raise Failure(f"exit {done.returncode}: {' '.join(cmd)}\n{tail}")
        return done

    def compose(
        self,
        *args: str,
        files: Sequence[Path] = (COMPOSE_FILE,),
        extra_env: dict[str, str] | None = None,
        timeout: float = 600,
        check_rc: bool = True,
    ) -> subprocess.CompletedProcess:
        cmd = ["docker-compose", "-p", self.args.project]
        for f in files:
            cmd += ["-f", str(f.relative_to(ROOT))]
        env = {**self.env, **(extra_env or {})}
        prefix = [f"{k}={v}" for k, v in (extra_env or {}).items()]
        print("+ " + " ".join([*prefix, *(_quote(c) for c in cmd + list(args))]), flush=True)
        return self.sh(cmd + list(args), env=env, timeout=timeout, check_rc=check_rc, quiet=True)

    @contextmanager
    def step(self, name: str) -> Iterator[list[str]]:
        say(f"--- {name}")
        notes: list[str] = []
        start = time.monotonic()
        try:
            yield notes
        finally:
            seconds = time.monotonic() - start
            self.steps.append(Step(name, seconds, "; ".join(notes)))
            say(f"--- {name}: {seconds:.1f} s{' (' + '; '.join(notes) + ')' if notes else ''}")

    # -- Docker -------------------------------------------------------------------

    def docker_answers(self) -> bool:
        return self.sh([self.docker, "info"], check_rc=False, quiet=True, timeout=30).returncode == 0

    def ensure_docker(self, notes: list[str]) -> None:
        missing = [
            p
            for p, exe in zip(DEBIAN_PACKAGES, ("dockerd", "docker-compose", "mmdebstrap"), strict=True)
            if not shutil.which(exe)
        ]
        if missing:
            if os.geteuid() != 0 or not shutil.which("apt-get"):
                raise Skip(f"{', '.join(missing)} missing, and installing needs root and apt-get")
            say(f"installing {' '.join(missing)} from Debian")
            self.sh(["apt-get", "update", "-q"], timeout=600)
            self.sh(
                ["apt-get", "install", "-y", "-q", *DEBIAN_PACKAGES],
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                timeout=900,
            )
            notes.append(f"installed {' '.join(missing)}")
        # Debian's client (20.10) matches Debian's daemon; another docker earlier on
        # PATH (a newer client) may not, and this run needs none of its features.
        self.docker = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
        if self.docker_answers():
            notes.append("a Docker daemon was already running: used, left running")
            return
        if os.geteuid() != 0:
            raise Skip("no Docker daemon answers and starting one needs root")
        pidfile = Path("/var/run/docker.pid")
        if pidfile.exists() and not _alive(_read_int(pidfile)):
            pidfile.unlink()  # left by a daemon that died: dockerd would refuse to start
        self.dockerd_log = self.work / "dockerd.log"
        say(f"starting dockerd (log: {self.dockerd_log})")
        with open(self.dockerd_log, "wb") as log:
            self.dockerd = subprocess.Popen(["dockerd"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while not self.docker_answers():
            if self.dockerd.poll() is not None or time.monotonic() > deadline:
                tail = self.dockerd_log.read_text(errors="replace")[-2000:]
                self.dockerd = None if self.dockerd.poll() is not None else self.dockerd
                raise Skip(f"dockerd did not start (Docker cannot run here):\n{tail}")
            time.sleep(1)
        notes.append(f"started dockerd (pid {self.dockerd.pid})")

    def stop_dockerd(self) -> None:
        if self.dockerd is None:
            return
        say(f"stopping dockerd (pid {self.dockerd.pid})")
        self.dockerd.send_signal(signal.SIGTERM)
        try:
            self.dockerd.wait(60)
        except subprocess.TimeoutExpired:
            say("dockerd did not stop in 60 s: killing it")
            self.dockerd.kill()
            self.dockerd.wait(10)
        self.dockerd = None

    # -- images -------------------------------------------------------------------

    def build(self, tag: str, context: Path, build_args: dict[str, str] | None = None, timeout: float = 900) -> None:
        cmd = [self.docker, "build", "-q", "-t", tag]
        for k, v in (build_args or {}).items():
            cmd += ["--build-arg", f"{k}={v}"]
        self.sh([*cmd, str(context)], timeout=timeout)
        self.built.append(tag)

    def base_image(self, notes: list[str]) -> None:
        tag = self.images["base"]
        cache_dir = Path("/var/cache/newsearch-compose" if os.geteuid() == 0 else Path.home() / ".cache/newsearch-compose")
        tar = cache_dir / "bookworm-rootfs.tar"
        fresh = tar.is_file() and time.time() - tar.stat().st_mtime < ROOTFS_MAX_AGE and not self.args.fresh_base
        if fresh:
            notes.append(f"root filesystem from {tar} ({(time.time() - tar.stat().st_mtime) / 3600:.1f} h old)")
        else:
            cache_dir.mkdir(parents=True, exist_ok=True)
            if tar.is_dir():  # not ours to trust: made over by mmdebstrap below
                shutil.rmtree(tar)
            # mmdebstrap takes the format from the name: a .tar, written aside and renamed.
            part = tar.with_name("bookworm-rootfs.partial.tar")
            self.sh(
                [
                    "mmdebstrap",
                    "--format=tar",
                    "--mode=root",
                    "--variant=apt",
                    "--include=python3,python3-venv,ca-certificates,curl",
                    "bookworm",
                    str(part),
                ],
                timeout=900,
            )
            part.rename(tar)
            notes.append(f"mmdebstrap {tar.stat().st_size / 1e6:.0f} MB")
        self.sh(
            [self.docker, "import", "--change", 'CMD ["/bin/bash"]', "--change", "ENV LANG=C.UTF-8", str(tar), tag], timeout=600
        )
        self.built.append(tag)

    def prefetch(self, notes: list[str]) -> None:
        """What the app's build would download, into deploy/offline/ (emptied at the end)."""
        wheels = OFFLINE / "wheels"
        shutil.rmtree(wheels, ignore_errors=True)
        wheels.mkdir(parents=True)
        platforms = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "-d",
            str(wheels),
            ".[server]",
            "setuptools>=68",
            "--only-binary=:all:",
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--abi",
            "cp311",
        ]
        for p in platforms:
            cmd += ["--platform", p]
        self.sh(cmd, env=dict(os.environ), timeout=600)
        htmx = ROOT / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
        if not htmx.exists():
            self.sh(["npm", "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"], env=dict(os.environ), timeout=600)
        shutil.copy(htmx, OFFLINE / "htmx.min.js")
        notes.append(f"{len(list(wheels.glob('*.whl')))} wheels")

    def app_image(self) -> None:
        base = self.images["base"]
        self.build(self.images["app"], ROOT, {"PYTHON_IMAGE": base, "NODE_IMAGE": base})

    def es_image(self, notes: list[str]) -> None:
        version = self.args.es_version
        ctx = self.work / "es-context"
        shutil.rmtree(ctx, ignore_errors=True)
        ctx.mkdir()
        zip_dir = self.work / "es-zip"
        self.sh(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={ES_ARTIFACT}:{version}:zip", f"-DoutputDirectory={zip_dir}"],
            env=dict(os.environ),
            timeout=900,
        )
        _unzip(zip_dir / f"elasticsearch-{version}.zip", ctx)
        (ctx / f"elasticsearch-{version}").rename(ctx / "elasticsearch")
        check(JDK.joinpath("bin", "java").exists(), f"no JDK at {JDK} (set ES_JAVA_HOME)")
        _copy_tree(JDK, ctx / "jdk")
        for item in ES_IMAGE_DIR.iterdir():
            target = ctx / item.name
            shutil.copytree(item, target) if item.is_dir() else shutil.copy2(item, target)
        self.build(self.images["elasticsearch"], ctx, {"BASE_IMAGE": self.images["base"]})
        shutil.rmtree(ctx, ignore_errors=True)
        notes.append(f"Elasticsearch {version}, JDK {JDK.name}")

    def nginx_image(self) -> None:
        self.build(self.images["nginx"], NGINX_IMAGE_DIR, {"BASE_IMAGE": self.images["base"]})

    # -- the stack ------------------------------------------------------------------

    def containers(self, service: str) -> list[str]:
        out = self.sh(
            [
                self.docker,
                "ps",
                "-a",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={self.args.project}",
                "--filter",
                f"label=com.docker.compose.service={service}",
            ],
            quiet=True,
        ).stdout
        return out.split()

    def inspect(self, container: str) -> dict[str, Any]:
        return json.loads(self.sh([self.docker, "inspect", container], quiet=True).stdout)[0]

    def state(self, service: str) -> tuple[str, str, int]:
        """(status, health, exit code) of the service's newest container; ("missing", "", 0) if none."""
        ids = self.containers(service)
        if not ids:
            return "missing", "", 0
        info = max((self.inspect(i) for i in ids), key=lambda d: d["Created"])
        st = info["State"]
        return st["Status"], (st.get("Health") or {}).get("Status", ""), st.get("ExitCode", 0)

    def wait_ready(self, services: Sequence[str], one_shots: Sequence[str] = (), timeout: float = 420) -> float:
        """Until every service is running and healthy and every one-shot exited 0; seconds waited."""
        start = time.monotonic()
        while True:
            states = {s: self.state(s) for s in (*services, *one_shots)}
            bad = [s for s in one_shots if states[s][0] == "exited" and states[s][2] != 0]
            check(not bad, f"one-shot service(s) failed: {bad}: {self.logs(bad[0])}" if bad else "")
            ready = all(states[s][:2] == ("running", "healthy") for s in services) and all(
                states[s][0] == "exited" for s in one_shots
            )
            if ready:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise Failure(f"not ready after {timeout:.0f} s: {states}")
            time.sleep(2)

    def logs(self, service: str, tail: int = 30) -> str:
        ids = self.containers(service)
        if not ids:
            return "(no container)"
        done = self.sh([self.docker, "logs", "--tail", str(tail), ids[0]], check_rc=False, quiet=True)
        return (done.stdout + done.stderr).strip()

    def http(
        self,
        port: int,
        path: str,
        *,
        user: str | None = None,
        password: str | None = None,
        method: str = "GET",
        body: bytes | None = None,
        timeout: float = 15,
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
        if user is not None:
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def site_json(self, path: str, port: int | None = None) -> dict[str, Any]:
        status, body = self.http(port or self.ports["http"], path)
        check(status == 200, f"{path} through nginx answered {status}: {body[:300]!r}")
        return json.loads(body)

    def total(self, port: int | None = None) -> int:
        return int(self.site_json("/api/search", port)["total"])

    def es(self, path: str, *, user: str = "elastic", method: str = "GET", body: dict | None = None) -> tuple[int, Any]:
        password = {
            "elastic": self.secrets["elastic_password"],
            "newsearch_app": self.secrets["app_password"],
            "newsearch_indexer": self.secrets["indexer_password"],
        }[user]
        data = json.dumps(body).encode() if body is not None else None
        status, raw = self.http(self.ports["es"], path, user=user, password=password, method=method, body=data)
        try:
            return status, json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return status, raw.decode(errors="replace")

    # -- steps ------------------------------------------------------------------------

    def first_up(self, notes: list[str]) -> None:
        self.sh(["scripts/compose-secrets.sh", self.env["SECRETS_DIR"]])
        for name in ("elastic_password", "app_password", "indexer_password"):
            self.secrets[name] = (Path(self.env["SECRETS_DIR"]) / name).read_text().strip()
        self.project_started = True
        self.compose("up", "-d", "--no-build", timeout=900)
        waited = self.wait_ready(SERVICES, ONE_SHOTS)
        notes.append(f"healthy {waited:.0f} s after `up` returned")
        health = self.site_json("/healthz")
        check(health["status"] == "ok" and health["index"] == "missing" and health["documents"] == 0, f"/healthz: {health}")
        status, page = self.http(self.ports["http"], "/")
        text = page.decode()
        check(status == 200 and "还没有可搜索的文章" in text, f"the empty site's page ({status}) does not say nothing is indexed")
        check("docker compose --profile indexer run --rm indexer" in text, "the empty site's page does not say how to index")
        self.screenshot("compose-empty.png", "/")
        status, _ = self.http(self.ports["es"], "/_cluster/health")
        check(status == 401, f"Elasticsearch without credentials answered {status}, not 401")
        notes.append("site: nothing indexed yet + how to index; Elasticsearch 401 without credentials")

    def index(self, notes: list[str]) -> None:
        self.posts = self.work / "posts"
        self.sh(
            [sys.executable, "-m", "synthetic", "-n", str(self.args.posts), "--seed", "20", str(self.posts)],
            quiet=False,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        os.chmod(self.posts, 0o755)
        app_before = self.inspect(self.containers("app")[0])["State"]["StartedAt"]
        start = time.monotonic()
        done = self.compose(
            "--profile", "indexer", "run", "--rm", "indexer", extra_env={"POSTS_DIR": str(self.posts)}, timeout=900
        )
        indexed = time.monotonic() - start
        print(done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:], flush=True)
        status, count = self.es(f"/{self.args.index}/_count")
        check(status == 200, f"_count as elastic: {status} {count}")
        self.expected = int(count["count"])
        files = sum(1 for _ in self.posts.rglob("*.md"))
        check(self.expected == files, f"Elasticsearch holds {self.expected} documents, the corpus has {files} posts")
        check(self.total() == self.expected, f"the site finds {self.total()} of {self.expected}")
        health = self.site_json("/healthz")
        check(health["index"] == "ready" and health["documents"] == self.expected, f"/healthz after indexing: {health}")
        found = self.site_json("/api/search?" + urllib.parse.urlencode({"q": QUERY_WORD}))
        check(found["total"] > 0 and found["hits"], f"no hit for {QUERY_WORD} through nginx")
        check(self.inspect(self.containers("app")[0])["State"]["StartedAt"] == app_before, "the app was restarted")
        self.screenshot("compose-search.png", "/?" + urllib.parse.urlencode({"q": QUERY_WORD}))
        notes.append(f"{self.expected} posts indexed in {indexed:.0f} s; {found['total']} hits for {QUERY_WORD}; no restart")

    def privileges(self, notes: list[str]) -> None:
        alias = self.args.index
        status, aliases = self.es(f"/_alias/{alias}", user="newsearch_app")
        check(status == 200 and len(aliases) == 1, f"the app reading the alias: {status} {aliases}")
        physical = next(iter(aliases))
        app_checks = {
            "search": (self.es(f"/{alias}/_search?size=1", user="newsearch_app")[0], 200),
            f"delete {physical}": (self.es(f"/{physical}", user="newsearch_app", method="DELETE")[0], 403),
            f"delete {alias}": (self.es(f"/{alias}", user="newsearch_app", method="DELETE")[0], 403),
            "write a document": (self.es(f"/{alias}/_doc", user="newsearch_app", method="POST", body={"x": 1})[0], 403),
            f"create {alias}-x": (self.es(f"/{alias}-x", user="newsearch_app", method="PUT")[0], 403),
        }
        indexer_checks = {
            "create other-index": (self.es("/other-index", user="newsearch_indexer", method="PUT")[0], 403),
            "list users": (self.es("/_security/user", user="newsearch_indexer")[0], 403),
            "read .security": (self.es("/.security/_search", user="newsearch_indexer")[0], 403),
        }
        for who, checks in (("app", app_checks), ("indexer", indexer_checks)):
            for what, (got, want) in checks.items():
                check(got == want, f"{who}'s credentials, {what}: {got}, expected {want}")
        for user in ("newsearch_app", "newsearch_indexer"):
            _, me = self.es("/_security/_authenticate", user=user)
            check("superuser" not in me.get("roles", []), f"{user} has roles {me.get('roles')}")
        status, _ = self.es(f"/{physical}/_count")
        check(status == 200, "the index is gone")
        # No password in any container's configuration (docker inspect), where
        # environment variables would show it.
        values = [v for v in self.secrets.values() if v]
        leaks = []
        for service in (*SERVICES, *ONE_SHOTS):
            for cid in self.containers(service):
                raw = self.sh([self.docker, "inspect", cid], quiet=True).stdout
                leaks += [service for v in values if v in raw]
                env = self.inspect(cid)["Config"]["Env"]
                leaks += [f"{service}: {e.split('=')[0]}" for e in env if re.match(r"[A-Z_]*PASSWORD=", e)]
        check(not leaks, f"secrets visible in docker inspect: {leaks}")
        notes.append("app: search 200, delete/write/create 403; indexer: other index/security 403; no secret in docker inspect")

    def hardening(self, notes: list[str]) -> None:
        cid = self.containers("app")[0]
        info = self.inspect(cid)
        host = info["HostConfig"]
        check(host["ReadonlyRootfs"] is True, "the app's root filesystem is writable")
        check(
            host["CapDrop"] == ["ALL"] and not host.get("CapAdd"),
            f"capabilities: drop {host['CapDrop']} add {host.get('CapAdd')}",
        )
        check("no-new-privileges:true" in (host.get("SecurityOpt") or []), f"security_opt {host.get('SecurityOpt')}")
        uid = self.sh([self.docker, "exec", cid, "id", "-u"], quiet=True).stdout.strip()
        check(uid not in ("", "0"), f"the app runs as uid {uid!r}")
        status = self.sh([self.docker, "exec", cid, "cat", "/proc/1/status"], quiet=True).stdout
        caps = dict(re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", status, re.MULTILINE))
        check(caps and all(int(v, 16) == 0 for v in caps.values()), f"the app's process capabilities: {caps}")
        wrote = self.sh([self.docker, "exec", cid, "touch", "/app/written"], check_rc=False, quiet=True)
        check(wrote.returncode != 0 and "Read-only file system" in wrote.stderr, f"writing into /app: {wrote.stderr!r}")
        notes.append(f"app: uid {uid}, read-only root, no capabilities ({', '.join(caps)} all 0), no-new-privileges")

    def restarts(self, notes: list[str]) -> None:
        for service in SERVICES:
            start = time.monotonic()
            self.compose("restart", service, timeout=300)
            self.wait_ready(SERVICES)
            total = self.total()
            check(total == self.expected, f"after restarting {service}: {total} of {self.expected}")
            notes.append(f"{service} {time.monotonic() - start:.0f} s")

    def down_up(self, notes: list[str]) -> None:
        self.compose("down", timeout=300)
        start = time.monotonic()
        self.compose("up", "-d", "--no-build", timeout=900)
        self.wait_ready(SERVICES, ONE_SHOTS)
        total = self.total()
        check(total == self.expected, f"after down and up: {total} of {self.expected}")
        notes.append(f"up again {time.monotonic() - start:.0f} s; {total} documents kept")

    def index_on_up(self, notes: list[str]) -> None:
        self.compose("down", "-v", timeout=300)
        start = time.monotonic()
        self.compose("up", "-d", "--no-build", extra_env={"POSTS_DIR": str(self.posts)}, timeout=1200)
        self.wait_ready(SERVICES, ONE_SHOTS, timeout=900)
        total = self.total()
        check(total == self.expected, f"with POSTS_DIR on a fresh up: {total} of {self.expected} once healthy")
        notes.append(f"fresh volumes, POSTS_DIR set: {total} searchable once healthy, {time.monotonic() - start:.0f} s")

    # -- cluster ------------------------------------------------------------------------

    def cluster(self, notes: list[str]) -> None:
        self.compose("down", "-v", timeout=300)  # the single node's stack: its CPU and memory back
        count = _read_int(Path("/proc/sys/vm/max_map_count"))
        if count < 262144:
            if os.geteuid() == 0 and self.sh(["sysctl", "-w", "vm.max_map_count=262144"], check_rc=False).returncode == 0:
                self.max_map_count_was = count
                notes.append(f"vm.max_map_count raised from {count} to 262144 (restored at the end)")
                count = 262144
            else:
                notes.append(f"vm.max_map_count is {count} and cannot be raised here (needs root and a writable /proc/sys)")
        nofile = int(
            self.sh(
                [self.docker, "run", "--rm", "--entrypoint", "sh", self.images["elasticsearch"], "-c", "ulimit -Hn"], quiet=True
            ).stdout.strip()
        )
        allowed = count >= 262144 and nofile >= 65535
        files: tuple[Path, ...] = (COMPOSE_FILE,)
        if allowed:
            notes.append(f"host allows the profile as written (vm.max_map_count {count}, nofile {nofile})")
        else:
            why = []
            if count < 262144:
                why.append(f"vm.max_map_count {count} < 262144")
            if nofile < 65535:
                why.append(
                    f"containers' open-file hard limit {nofile} < 65535 (raising it needs CAP_SYS_RESOURCE, "
                    "which this machine withholds even from root)"
                )
            say("the cluster profile as written cannot start here: " + "; ".join(why))
            shown = self.cluster_refused()
            notes.append("as written: refused (" + "; ".join(why) + f"); Elasticsearch said: {shown}")
            files = (COMPOSE_FILE, LOOPBACK_FILE)
            notes.append(f"then run with {LOOPBACK_FILE.relative_to(ROOT)} (transport on loopback in one network namespace)")
        self.cluster_run(files, notes)

    def cluster_refused(self) -> str:
        """Start one node of the profile as written (after es-certs) and report the
        bootstrap check that stops it; every node would stop the same way."""
        node = CLUSTER_NODES[0]
        self.compose("--profile", "cluster", "up", "-d", "--no-build", node, timeout=600)
        deadline = time.monotonic() + 600
        found = ""
        while not found and time.monotonic() < deadline:
            found = next((ln for ln in self.logs(node, 300).splitlines() if "bootstrap check failure" in ln), "")
            if not found and self.state(node)[0] == "missing":
                break
            time.sleep(3)
        tail = "" if found else self.logs(node, 40)
        self.compose("--profile", "cluster", "rm", "-s", "-f", "-v", node, "es-certs", timeout=300)
        self.sh([self.docker, "volume", "rm", f"{self.args.project}_{node}-data"], check_rc=False)
        check(found, f"{node} did not say why it stopped:\n{tail}")
        say(f"{node}: {found.strip()[:400]}")
        return found.split(":", 1)[-1].split("; for more information")[0].strip()

    def cluster_run(self, files: tuple[Path, ...], notes: list[str]) -> None:
        start = time.monotonic()
        self.compose("--profile", "cluster", "up", "-d", "--no-build", "nginx-cluster", files=files, timeout=1200)
        self.wait_ready((*CLUSTER_NODES, "app-cluster", "nginx-cluster"), ("es-certs", "es-setup-cluster"), timeout=600)
        notes.append(f"3 nodes, app and nginx healthy in {time.monotonic() - start:.0f} s")
        start = time.monotonic()
        self.compose(
            "--profile",
            "cluster",
            "run",
            "--rm",
            "indexer-cluster",
            files=files,
            extra_env={"POSTS_DIR": str(self.posts)},
            timeout=900,
        )
        port = self.ports["cluster_http"]
        total = self.total(port)
        check(total == self.expected, f"the cluster's site finds {total} of {self.expected}")
        layout = self.cluster_es(files, "/_cat/shards/news*?h=prirep,state,node&format=json")
        nodes = {s["node"] for s in layout}
        check(len(layout) == 6 and all(s["state"] == "STARTED" for s in layout) and len(nodes) == 3, f"shards: {layout}")
        notes.append(f"indexed in {time.monotonic() - start:.0f} s: 3 primaries + 3 replicas on {len(nodes)} nodes")
        master = self.cluster_es(files, "/_cat/master?format=json")[0]["node"]
        readers = Readers(self, port, self.expected)
        readers.start()
        try:
            time.sleep(3)
            before = readers.count()
            t_stop = time.monotonic()
            self.compose("--profile", "cluster", "stop", master, files=files, timeout=120)
            down = time.monotonic()
            health = self.wait_cluster(files, "yellow", nodes=2, avoid=master)
            yellow = time.monotonic() - down
            time.sleep(5)
            during = readers.count() - before
            self.compose("--profile", "cluster", "start", master, files=files, timeout=120)
            self.wait_ready((master,), timeout=300)
            health = self.wait_cluster(files, "green", nodes=3, avoid=master)
            green = time.monotonic() - t_stop
            time.sleep(2)
        finally:
            readers.stop()
        check(readers.searches >= 10, f"only {readers.searches} searches ran")
        check(not readers.failures, f"{len(readers.failures)} of {readers.searches} searches failed: {readers.failures[:3]}")
        check(self.total(port) == self.expected, "the total changed after the node came back")
        notes.append(
            f"master {master} stopped: {health['number_of_nodes']} nodes green again {green:.0f} s after the stop "
            f"(2 nodes yellow after {yellow:.0f} s); {readers.searches} searches through nginx, {during} while it was out "
            f"(from its stop to 5 s after yellow), "
            f"0 failed"
        )

    def cluster_es(self, files: tuple[Path, ...], path: str, node: str = "", avoid: str = "") -> Any:
        """GET path as elastic from inside a running node (the cluster publishes no port)."""
        candidates = [node] if node else [n for n in CLUSTER_NODES if n != avoid]
        last = ""
        for n in candidates:
            port = {"es01": 9201, "es02": 9202, "es03": 9203}[n] if LOOPBACK_FILE in files else 9200
            script = (
                'printf \'user = "elastic:%s"\\n\' "$(cat /run/secrets/elastic_password)" | '
                f"curl -K - -fsS 'http://127.0.0.1:{port}{path}'"
            )
            done = self.sh(
                [
                    "docker-compose",
                    "-p",
                    self.args.project,
                    *sum((["-f", str(f)] for f in files), []),
                    "--profile",
                    "cluster",
                    "exec",
                    "-T",
                    n,
                    "sh",
                    "-c",
                    script,
                ],
                check_rc=False,
                quiet=True,
                timeout=60,
            )
            if done.returncode == 0:
                return json.loads(done.stdout)
            last = done.stderr[-300:]
        raise Failure(f"no node answered {path}: {last}")

    def wait_cluster(self, files: tuple[Path, ...], status: str, nodes: int, avoid: str, timeout: float = 300) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                health = self.cluster_es(files, f"/_cluster/health?wait_for_status={status}&timeout=5s", avoid=avoid)
                if health["number_of_nodes"] == nodes and health["status"] in ("green", status):
                    return health
            except Failure:
                pass
            if time.monotonic() > deadline:
                raise Failure(f"the cluster was not {status} with {nodes} nodes after {timeout:.0f} s")
            time.sleep(2)

    # -- screenshots, clean-up -------------------------------------------------------------

    def screenshot(self, name: str, path: str) -> None:
        if not self.args.screenshots:
            return
        from playwright.sync_api import sync_playwright

        out = Path(self.args.screenshots) / name
        out.parent.mkdir(parents=True, exist_ok=True)
        # Playwright gives every launch a fresh profile of its own.
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--lang=zh-CN",
                ],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"http://127.0.0.1:{self.ports['http']}{path}")
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out))
            browser.close()
        say(f"screenshot {out}")

    def cleanup(self, notes: list[str]) -> None:
        if self.project_started and self.docker_answers():
            for files in ((COMPOSE_FILE, LOOPBACK_FILE), (COMPOSE_FILE,)):
                down = ["--profile", "cluster", "--profile", "indexer", "down", "-v", "--remove-orphans"]
                if self.compose(*down, files=files, timeout=300, check_rc=False).returncode == 0:
                    break
            label = f"label=com.docker.compose.project={self.args.project}"
            left = {
                kind: len(self.sh([self.docker, *cmd, "--filter", label], quiet=True, check_rc=False).stdout.split())
                for kind, cmd in (
                    ("containers", ["ps", "-a", "-q"]),
                    ("volumes", ["volume", "ls", "-q"]),
                    ("networks", ["network", "ls", "-q"]),
                )
            }
            notes.append("left of the project: " + ", ".join(f"{n} {k}" for k, n in left.items()))
        if self.built and not self.args.keep_images and self.docker_answers():
            self.sh([self.docker, "image", "rm", "-f", *reversed(self.built)], check_rc=False)
            if self.dockerd is not None:  # our own daemon: its build leftovers are ours too
                self.sh([self.docker, "image", "prune", "-f"], check_rc=False)
        if self.dockerd is not None and self.docker_answers():
            self.sh([self.docker, "volume", "prune", "-f"], check_rc=False)
        self.stop_dockerd()
        if self.max_map_count_was is not None:
            self.sh(["sysctl", "-w", f"vm.max_map_count={self.max_map_count_was}"], check_rc=False)
        shutil.rmtree(OFFLINE / "wheels", ignore_errors=True)
        (OFFLINE / "htmx.min.js").unlink(missing_ok=True)


class Readers:
    """Searches through nginx in a thread, one after another, until stopped; a search
    fails when it is not 200, counts another total, or has a facet unavailable."""

    def __init__(self, run: Run, port: int, expected: int) -> None:
        self.run, self.port, self.expected = run, port, expected
        self.searches = 0
        self.failures: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.lock = threading.Lock()

    def loop(self) -> None:
        queries = ["", QUERY_WORD, "中国", "发展"]
        i = 0
        while not self.stopping.is_set():
            q = queries[i % len(queries)]
            i += 1
            try:
                status, body = self.run.http(self.port, "/api/search?" + urllib.parse.urlencode({"q": q}), timeout=40)
                data = json.loads(body) if status == 200 else {}
                bad = status != 200 or data.get("unavailable_facets") or (q == "" and data.get("total") != self.expected)
                detail = f"q={q!r}: {status} total={data.get('total')} unavailable={data.get('unavailable_facets')}"
            except Exception as exc:  # noqa: BLE001 - recorded, the run decides
                bad, detail = True, f"q={q!r}: {type(exc).__name__}: {exc}"
            with self.lock:
                self.searches += 1
                if bad:
                    self.failures.append(detail)
            time.sleep(0.2)

    def count(self) -> int:
        with self.lock:
            return self.searches

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(60)


def _quote(word: str) -> str:
    return word if re.fullmatch(r"[\w@%+=:,./-]+", word) else "'" + word.replace("'", "'\\''") + "'"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return pid > 0


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _unzip(archive: Path, dest: Path) -> None:
    """Extract with the files' modes (the distribution's scripts are executable)."""
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode)


def _copy_tree(src: Path, dst: Path) -> None:
    """Hard links where the file system allows (the JDK is 300 MB), copies elsewhere."""

    def link_or_copy(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy)


def free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise Failure("no free port")


def es_version() -> str:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    match = re.search(r"elasticsearch/elasticsearch:(\d+\.\d+\.\d+)", text)
    if not match:
        raise Failure("no Elasticsearch version in docker-compose.yml")
    return match.group(1)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("--project", default="newsearch-ci", help="compose project name [newsearch-ci]")
    p.add_argument("--posts", type=int, default=200, help="synthetic posts to index [200]")
    p.add_argument("--index", default="news", help="SEARCH_INDEX of docker-compose.yml [news]")
    p.add_argument("--es-version", default=None, help="Elasticsearch version [the one docker-compose.yml names]")
    p.add_argument("--no-cluster", action="store_true", help="skip the cluster step")
    p.add_argument("--keep-images", action="store_true", help="leave the built images (faster reruns)")
    p.add_argument("--reuse-images", action="store_true", help="build only the images that are missing (with --keep-images)")
    p.add_argument("--fresh-base", action="store_true", help="run mmdebstrap even when a cached root filesystem is recent")
    p.add_argument("--screenshots", metavar="DIR", help="save compose-empty.png and compose-search.png of the site there")
    p.add_argument("--require", action="store_true", help="exit 77 instead of 0 when Docker cannot run here")
    args = p.parse_args(argv)
    args.es_version = args.es_version or es_version()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="compose-test-"))
    run = Run(args, work)
    run.images = {
        "base": "newsearch-ci/base:bookworm",
        "app": "newsearch-ci/app:local",
        "elasticsearch": f"newsearch-ci/elasticsearch:{args.es_version}",
        "nginx": "newsearch-ci/nginx:local",
    }
    run.ports = {"http": free_port(8000), "es": free_port(9200), "cluster_http": free_port(8001)}
    run.env = {
        **os.environ,
        "DOCKER_BUILDKIT": "0",
        "COMPOSE_DOCKER_CLI_BUILD": "0",
        "SECRETS_DIR": str(work / "secrets"),
        "ES_IMAGE": run.images["elasticsearch"],
        "NGINX_IMAGE": run.images["nginx"],
        "APP_IMAGE": run.images["app"],
        "PYTHON_IMAGE": run.images["base"],
        "NODE_IMAGE": run.images["base"],
        "NEWSEARCH_HTTP_PORT": str(run.ports["http"]),
        "NEWSEARCH_ES_PORT": str(run.ports["es"]),
        "NEWSEARCH_CLUSTER_HTTP_PORT": str(run.ports["cluster_http"]),
    }
    run.env.pop("POSTS_DIR", None)

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    status = 0
    say(f"work folder {work}; images {', '.join(run.images.values())}; ports {run.ports}")
    say(
        "environment: "
        + " ".join(
            f"{k}={run.env[k]}"
            for k in (
                "DOCKER_BUILDKIT",
                "ES_IMAGE",
                "NGINX_IMAGE",
                "APP_IMAGE",
                "PYTHON_IMAGE",
                "NODE_IMAGE",
                "SECRETS_DIR",
                "NEWSEARCH_HTTP_PORT",
                "NEWSEARCH_ES_PORT",
                "NEWSEARCH_CLUSTER_HTTP_PORT",
            )
        )
    )
    try:
        with run.step("docker") as notes:
            run.ensure_docker(notes)
        have = set(run.sh([run.docker, "images", "--format", "{{.Repository}}:{{.Tag}}"], quiet=True).stdout.split())
        reuse = args.reuse_images and args.keep_images

        def build(name: str, action: Callable[[list[str]], None]) -> None:
            with run.step(f"{name} image") as notes:
                if reuse and run.images[name] in have:
                    notes.append("reused")
                    return
                action(notes)

        build("base", run.base_image)
        with run.step("prefetch") as notes:
            run.prefetch(notes)
        build("app", lambda notes: run.app_image())
        build("elasticsearch", run.es_image)
        build("nginx", lambda notes: run.nginx_image())
        for name, action in (
            ("first up", run.first_up),
            ("index", run.index),
            ("privileges", run.privileges),
            ("hardening", run.hardening),
            ("restart each service", run.restarts),
            ("down and up", run.down_up),
            ("index on up", run.index_on_up),
        ):
            with run.step(name) as notes:
                action(notes)
        if not args.no_cluster:
            with run.step("cluster") as notes:
                run.cluster(notes)
    except Skip as exc:
        say(f"SKIPPED: Docker cannot run here: {exc}")
        status = 77 if args.require else 0
    except (Failure, KeyboardInterrupt, Exception) as exc:
        if not isinstance(exc, Failure | KeyboardInterrupt):
            import traceback

            traceback.print_exc(file=sys.stdout)
        say(f"FAILED: {exc}")
        for service in (*SERVICES, *ONE_SHOTS):
            if run.project_started:
                say(f"last log lines of {service}:\n{run.logs(service, 15)}")
        status = 1
    finally:
        with run.step("clean up") as notes:
            try:
                run.cleanup(notes)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    say("step timings:")
    for s in run.steps:
        say(f"  {s.seconds:7.1f} s  {s.name}{'  - ' + s.note if s.note else ''}")
    verdict = "passed" if status == 0 and len(run.steps) > 2 else "skipped" if status in (0, 77) else "FAILED"
    say(f"{verdict} in {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Starting and stopping nodes: the node user, the distribution (fetched once), a
node launched in the background, stops in parallel, and the lock files."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .config import ARTIFACT, DEFAULT_ES_VERSION, PROG, Config, Failure, say
from .node import Node, pid_alive

# -- the distribution and the node's user ------------------------------------------


def as_node_user(cfg: Config, cmd: Sequence[str]) -> list[str]:
    """``cmd`` as the node's user: ourselves, or ES_USER when we are root."""
    return ["runuser", "-u", cfg.user, "--", *cmd] if cfg.as_root else list(cmd)


def _node_user_can(cfg: Config, test: str, path: Path) -> bool:
    return subprocess.run(as_node_user(cfg, ["test", test, str(path)])).returncode == 0


def _chown(cfg: Config, path: Path) -> None:
    subprocess.run(["chown", "-R", f"{cfg.user}:", str(path)], check=True)


def ensure_user(cfg: Config) -> None:
    if not cfg.as_root or subprocess.run(["id", "-u", cfg.user], capture_output=True).returncode == 0:
        return
    say(f"creating unprivileged user '{cfg.user}' (Elasticsearch refuses to run as root)")
    cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    if subprocess.run([*cmd, "--shell", "/usr/sbin/nologin", cfg.user]).returncode != 0:
        raise Failure(f"could not create user '{cfg.user}'; create it or set ES_USER to an existing unprivileged user")


def unpack(archive: Path, dest: Path) -> None:
    """Unzip keeping each file's mode (the launcher scripts must stay executable)."""
    with zipfile.ZipFile(archive) as z:
        modes = [(Path(z.extract(info, dest)), info.external_attr >> 16 & 0o7777) for info in z.infolist()]
    for path, mode in reversed(modes):  # files before their folders
        if mode:
            path.chmod(mode)


def ensure_distribution(cfg: Config) -> Path:
    """Fetch the distribution with Maven (cached in ~/.m2) and unpack it, once."""
    home = cfg.home
    if os.access(home / "bin" / "elasticsearch", os.X_OK):
        return home
    if not shutil.which("mvn"):
        raise Failure("mvn not found: install Maven (apt-get install maven)")
    artifact = f"{ARTIFACT}:{cfg.version}:zip"
    cfg.cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch.", dir=cfg.cache))
    try:
        say(f"fetching {artifact} with Maven")
        log = tmp / "mvn.log"
        with log.open("wb") as out:
            cmd = ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={tmp}"]
            fetched = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT).returncode == 0
        if not fetched:
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            cause = [line for line in lines if "Failed to execute goal" in line or "Could not" in line][:1]
            print("\n".join(cause or lines[-20:]), file=sys.stderr)
            raise Failure(
                f"Maven could not fetch {artifact}; check ES_VERSION (Maven Central serves only some 9.x versions "
                f"of the test zip, e.g. {DEFAULT_ES_VERSION})"
            )
        say(f"unpacking into {home}")
        unpack(tmp / f"elasticsearch-{cfg.version}.zip", tmp / "unpacked")
        top = tmp / "unpacked" / f"elasticsearch-{cfg.version}"
        if not os.access(top / "bin" / "elasticsearch", os.X_OK):
            name = f"elasticsearch-{cfg.version}"
            raise Failure(f"unexpected layout in {name}.zip (no {name}/bin/elasticsearch)")
        top.rename(home)  # atomic: a half-unpacked tree is never used
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return home


def prepare_home(cfg: Config) -> None:
    """Everything a node needs before it starts, done once: its user, the
    distribution, the user's access to it, and the keystore."""
    if not os.access(cfg.java_home / "bin" / "java", os.X_OK):
        raise Failure(
            f"no JDK at ES_JAVA_HOME={cfg.java_home}; the test distribution bundles none: set ES_JAVA_HOME to a "
            "JDK 21+ (e.g. /usr/lib/jvm/temurin-25-jdk-amd64)"
        )
    ensure_user(cfg)
    home = ensure_distribution(cfg)
    if cfg.as_root:
        cfg.cache.chmod(0o755)
        _chown(cfg, home)  # the node writes its keystore into config/
        if not _node_user_can(cfg, "-x", home / "bin" / "elasticsearch"):
            raise Failure(f"user '{cfg.user}' cannot reach {home}; set ES_HOME_CACHE to a folder outside root's home")
    # Nodes sharing one home race to create its keystore when it does not exist yet
    # (FileAlreadyExistsException on elasticsearch.keystore.tmp, seen on a fresh
    # install): create it once, before any node starts.
    if not (home / "config" / "elasticsearch.keystore").is_file():
        env = [f"ES_JAVA_HOME={cfg.java_home}", f"ES_PATH_CONF={home / 'config'}"]
        cmd = as_node_user(cfg, ["env", *env, str(home / "bin" / "elasticsearch-keystore"), "create"])
        if subprocess.run(cmd, stdout=sys.stderr).returncode != 0:
            raise Failure(f"could not create the keystore in {home / 'config'}")


def launch(cfg: Config, node: Node, settings: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start ``node`` in the background, in a session of its own (it outlives this
    command, a CI step or a terminal); returns the launcher."""
    for folder in (node.data_dir / "data", node.data_dir / "tmp", node.log_dir):
        folder.mkdir(parents=True, exist_ok=True)
    if cfg.as_root:
        _chown(cfg, node.data_dir)
        if not _node_user_can(cfg, "-w", node.data_dir):
            raise Failure(
                f"user '{cfg.user}' cannot write {node.data_dir}; set ES_DATA_DIR or ES_HOME_CACHE to a folder "
                "outside root's home"
            )
    # Only settings this distribution knows: the test zip ships few modules, and
    # Elasticsearch refuses unknown settings. Security off (a first start with it
    # on writes TLS settings later starts cannot read); no downloads (tests run offline).
    settings = dict(settings)
    if (cfg.home / "modules" / "x-pack-security").is_dir():
        settings["xpack.security.enabled"] = "false"
    if (cfg.home / "modules" / "ingest-geoip").is_dir():
        settings["ingest.geoip.downloader.enabled"] = "false"
    node.pid_file.unlink(missing_ok=True)
    env = [f"ES_JAVA_HOME={cfg.java_home}", f"ES_JAVA_OPTS={cfg.java_opts}", f"ES_PATH_CONF={cfg.home / 'config'}"]
    # Each node its own ES_TMPDIR: nodes sharing one home must not share a temp dir.
    env.append(f"ES_TMPDIR={node.data_dir / 'tmp'}")
    args = [arg for key, value in settings.items() for arg in ("-E", f"{key}={value}")]
    # -q: no console logging (the node logs to its log folder).
    cmd = as_node_user(cfg, ["env", *env, str(cfg.home / "bin" / "elasticsearch"), "-q", "-p", str(node.pid_file), *args])
    with node.console_log.open("wb") as console:
        return subprocess.Popen(
            cmd, cwd=node.log_dir, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, start_new_session=True
        )


# -- stopping, and the nodes a command launched -------------------------------------


def signal_stop(node: Node) -> int | None:
    """TERM to the node if its pid file names a live Elasticsearch; its pid.
    (wait_stopped waits: several nodes stop in parallel.)"""
    pid = node.pid()
    if pid is None:
        return None
    say(f"stopping {node.title}, pid {pid}")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    return pid


def wait_stopped(cfg: Config, pids: Sequence[int]) -> None:
    """Wait until every pid is gone; KILL what is left after ES_STOP_TIMEOUT."""
    deadline = time.monotonic() + cfg.stop_timeout
    while alive := [pid for pid in pids if pid_alive(pid)]:
        if time.monotonic() >= deadline:
            say(f"still running after {cfg.stop_timeout}s: {' '.join(map(str, alive))}; killing")
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
        time.sleep(0.5)


def stop(cfg: Config, nodes: Sequence[Node]) -> int:
    """Stop every node of ``nodes`` that runs, in parallel; how many did."""
    pids = [pid for pid in map(signal_stop, nodes) if pid is not None]
    wait_stopped(cfg, pids)
    for node in nodes:
        if node.pid() is None:
            node.pid_file.unlink(missing_ok=True)
    return len(pids)


@dataclass
class Launches:
    """The nodes one command launched, and their launchers: what a failed start
    must undo, and how it notices a node that died while starting."""

    cfg: Config
    launchers: dict[Node, subprocess.Popen[bytes] | None] = field(default_factory=dict)

    def start(self, node: Node, settings: Mapping[str, str]) -> None:
        self.launchers[node] = launch(self.cfg, node, settings)

    def adopt(self, node: Node) -> None:
        """A node of ours an earlier command launched and that is still starting:
        waited for, and stopped too if this start fails."""
        self.launchers[node] = None

    def check(self, node: Node) -> None:
        """Fail, with the node's logs, if its launcher has exited."""
        launcher = self.launchers.get(node)
        if launcher is not None and launcher.poll() is not None:
            node.print_failure(f"{node.title} exited during startup")
            self.abort()
            raise Failure(f"{node.title} did not start; see the log above ({node.log_dir})")

    def wait(self, pending: Callable[[], Sequence[Node]], late: str, give_up: str) -> None:
        """Poll every second until ``pending()`` names no node. When a launcher
        exits, or past ES_START_TIMEOUT, show the logs (of that node; of those still
        pending), stop what this command launched or adopted, and fail."""
        deadline = time.monotonic() + self.cfg.start_timeout
        while waiting := pending():
            for node in self.launchers:
                self.check(node)
            if time.monotonic() >= deadline:
                for node in waiting:
                    node.print_failure(f"{node.title} {late} after {self.cfg.start_timeout}s")
                self.abort()
                raise Failure(give_up)
            time.sleep(1)

    def abort(self) -> None:
        """Stop the nodes launched here and their launchers (a node may write its
        pid file while its launcher shuts down: stop once more after)."""
        pids = {pid for pid in map(signal_stop, self.launchers) if pid is not None}
        started = [launcher for launcher in self.launchers.values() if launcher is not None]
        for launcher in started:
            if launcher.poll() is None:
                launcher.terminate()
        for launcher in started:
            try:
                launcher.wait(self.cfg.stop_timeout)
            except subprocess.TimeoutExpired:
                launcher.kill()
                launcher.wait()
        for node in self.launchers:  # a pid file written while its launcher shut down
            if node.pid() not in pids and (pid := signal_stop(node)) is not None:
                pids.add(pid)
        wait_stopped(self.cfg, sorted(pids))


@contextmanager
def locked(path: Path, timeout: float, message: str) -> Iterator[None]:
    """Hold an exclusive flock on ``path`` (the same lock files, and so the same
    locks, as every earlier version of es-node.sh)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Failure(message) from None
                time.sleep(0.2)
        yield


def single_lock(cfg: Config) -> AbstractContextManager[None]:
    """One single-node start, stop or fetch at a time: two CI steps racing to start
    a node would otherwise launch it twice, or pick the same free port."""
    return locked(cfg.cache / ".lock", cfg.start_timeout + 60, f"timed out waiting for another {PROG}")



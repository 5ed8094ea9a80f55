"""Static checks of the container setup: docker-compose.yml, Dockerfile, .dockerignore.

No Docker engine runs here or in CI, so nothing is built or started. Instead the
tests check what the files promise: the compose file is valid (Debian's
`docker-compose config`, when installed), the app waits for a healthy
Elasticsearch, the app and the indexer share one configuration, ports stay on
127.0.0.1, and the image serves htmx copied from a node build stage instead of
downloading anything when it runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ES_NODE_SCRIPT = ROOT / "scripts" / "es-node.sh"

REQUIRED_APP_ENV = {"SEARCH_ENGINE", "ELASTICSEARCH_URL", "SEARCH_INDEX", "SEARCH_DATA_DIR"}
ES_IMAGE = re.compile(r"^docker\.elastic\.co/elasticsearch/elasticsearch:(9\.\d+\.\d+)$")
HTMX_SOURCE = "node_modules/htmx.org/dist/htmx.min.js"
HTMX_TARGET = "/app/searchapp/static/vendor/htmx.min.js"
# Mount options a short-syntax volume may end with (`src:target:ro`).
MOUNT_MODES = {"ro", "rw", "z", "Z", "cached", "delegated", "consistent", "nocopy"}


# ---------------------------------------------------------------------------
# docker-compose.yml helpers
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    source: str | None
    target: str
    read_only: bool

    @property
    def is_named_volume(self) -> bool:
        # Bind mounts start with a path or a variable; anonymous volumes have no source.
        return bool(self.source) and not self.source.startswith((".", "/", "~", "$"))


def parse_mount(spec: str | dict) -> Mount:
    """Read one `volumes:` entry, short (`src:target:ro`) or long syntax."""
    if isinstance(spec, dict):
        return Mount(spec.get("source"), spec["target"], bool(spec.get("read_only")))
    rest, mode = spec, ""
    head, sep, tail = spec.rpartition(":")
    if sep and set(tail.split(",")) <= MOUNT_MODES:
        rest, mode = head, tail
    # rpartition, because the source may itself hold colons: ${POSTS_DIR:-./posts}.
    source, sep, target = rest.rpartition(":")
    if not sep:
        return Mount(None, rest, "ro" in mode.split(","))
    return Mount(source, target, "ro" in mode.split(","))


def mounts(service: dict) -> list[Mount]:
    return [parse_mount(spec) for spec in service.get("volumes", [])]


def command_words(service: dict) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(w) for w in command]


def healthcheck_words(service: dict) -> list[str]:
    test = service.get("healthcheck", {}).get("test", [])
    return shlex.split(test) if isinstance(test, str) else [str(w) for w in test]


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.split("=", 1) for item in env)
    return env


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


# ---------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    env = {**os.environ, "POSTS_DIR": str(tmp_path)}
    base = ["docker-compose", "-f", str(COMPOSE_FILE), "--profile", "indexer", "config"]
    check = subprocess.run([*base, "-q"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    # The normalized file shows that POSTS_DIR reaches the indexer, read-only.
    rendered = subprocess.run(base, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    indexer = yaml.safe_load(rendered.stdout)["services"]["indexer"]
    posts = [m for m in mounts(indexer) if m.target == "/posts"]
    assert posts == [Mount(str(tmp_path), "/posts", True)]


def test_exactly_three_services(services: dict) -> None:
    assert set(services) == {"elasticsearch", "app", "indexer"}


def test_elasticsearch_image_is_9x_and_matches_the_test_node(services: dict) -> None:
    match = ES_IMAGE.match(services["elasticsearch"]["image"])
    assert match, f"not an official Elasticsearch 9.x image: {services['elasticsearch']['image']}"
    # Tests and CI run scripts/es-node.sh: production must run the same version.
    script = ES_NODE_SCRIPT.read_text(encoding="utf-8")
    default = re.search(r"^readonly DEFAULT_ES_VERSION=(\S+)$", script, re.MULTILINE)
    assert default, "DEFAULT_ES_VERSION not found in scripts/es-node.sh"
    assert match.group(1) == default.group(1)


def test_elasticsearch_is_a_small_single_node(services: dict) -> None:
    env = environment(services["elasticsearch"])
    assert env["discovery.type"] == "single-node"
    heap = env["ES_JAVA_OPTS"].split()
    assert "-Xms1g" in heap and "-Xmx1g" in heap
    # A string: a YAML boolean may reach Elasticsearch as "False", which it rejects.
    assert env["xpack.security.enabled"] in ("false", "true")


def test_security_choice_is_documented_next_to_the_setting() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    before = text[: text.index("xpack.security.enabled:")]
    comment = before[before.rindex("environment:") :]
    assert "local" in comment.lower() and "turn it on" in comment.lower()


def test_elasticsearch_healthcheck_waits_for_yellow(services: dict) -> None:
    words = " ".join(healthcheck_words(services["elasticsearch"]))
    assert "curl" in words
    assert "_cluster/health" in words and "wait_for_status=yellow" in words
    assert services["elasticsearch"]["healthcheck"].get("retries", 0) >= 3


@pytest.mark.parametrize("name", ["app", "indexer"])
def test_waits_for_a_healthy_elasticsearch(services: dict, name: str) -> None:
    depends = services[name]["depends_on"]
    assert isinstance(depends, dict), "the short list form cannot wait for health"
    assert depends["elasticsearch"]["condition"] == "service_healthy"


def test_app_healthcheck_hits_healthz_without_curl(services: dict) -> None:
    words = healthcheck_words(services["app"])
    assert words[0] in ("CMD", "CMD-SHELL")
    joined = " ".join(words)
    assert re.search(r"http://(127\.0\.0\.1|localhost):8000/healthz", joined)
    # The python:3.11-slim image has neither curl nor wget.
    assert "curl" not in joined and "wget" not in joined
    assert words[1].startswith("python")


def test_app_runs_gunicorn_on_port_8000(services: dict) -> None:
    app = services["app"]
    words = command_words(app)
    assert words[0] == "gunicorn"
    assert "searchapp:create_app()" in words
    assert "0.0.0.0:8000" in words
    assert app["ports"] == ["127.0.0.1:8000:8000"]
    assert app["restart"] == "unless-stopped"


def test_published_ports_stay_on_localhost(services: dict) -> None:
    published = [(name, port) for name, svc in services.items() for port in svc.get("ports", [])]
    assert published, "nothing is published"
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "127.0.0.1:9200:9200" in services["elasticsearch"]["ports"]


def test_app_and_indexer_share_one_configuration(services: dict) -> None:
    app_env, indexer_env = environment(services["app"]), environment(services["indexer"])
    assert app_env == indexer_env
    assert REQUIRED_APP_ENV <= set(app_env)
    assert app_env["SEARCH_ENGINE"] == "elasticsearch"
    # The URL names the compose service, so it resolves inside the compose network.
    assert urlparse(app_env["ELASTICSEARCH_URL"]).hostname == "elasticsearch"


def test_environment_is_declared_once_through_an_anchor() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(r"^x-app-env: &app-env$", text, re.MULTILINE)
    for key in REQUIRED_APP_ENV:
        assert len(re.findall(rf"^\s*{key}:", text, re.MULTILINE)) == 1, key
    assert text.count("environment: *app-env") == 2


def test_app_and_indexer_run_the_same_image(services: dict) -> None:
    app, indexer = services["app"], services["indexer"]
    assert app["build"] == indexer["build"] == "."
    assert app["image"] == indexer["image"]


def test_named_volumes_are_declared_and_used(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = {m.source for svc in services.values() for m in mounts(svc) if m.is_named_volume}
    assert declared == used
    es_targets = {m.target for m in mounts(services["elasticsearch"]) if m.is_named_volume}
    assert "/usr/share/elasticsearch/data" in es_targets


def test_app_and_indexer_share_the_data_volume(services: dict) -> None:
    data_dir = environment(services["app"])["SEARCH_DATA_DIR"]
    app_data = {m.source for m in mounts(services["app"]) if m.target == data_dir}
    indexer_data = {m.source for m in mounts(services["indexer"]) if m.target == data_dir}
    assert len(app_data) == 1 and app_data == indexer_data
    assert all(parse_mount(s).is_named_volume for s in services["app"]["volumes"])


def test_indexer_runs_only_on_demand(services: dict) -> None:
    indexer = services["indexer"]
    assert "indexer" in indexer["profiles"]
    # `docker compose up` must start the stack without the indexer.
    assert "profiles" not in services["app"] and "profiles" not in services["elasticsearch"]
    assert command_words(indexer) == ["indexer", "index", "/posts"]


def test_indexer_reads_posts_read_only_from_posts_dir(services: dict) -> None:
    posts = [m for m in mounts(services["indexer"]) if m.target == "/posts"]
    assert posts == [Mount("${POSTS_DIR:-./posts}", "/posts", True)]


# ---------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args_of(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of (INSTRUCTION, arguments), continuations joined."""
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or not line:
            continue  # comments and blank lines may sit inside a continuation too
        if line.endswith("\\"):
            buffer += line[:-1].rstrip() + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    if buffer:
        logical.append(buffer)

    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif keyword == "ARG" and not stages:
            continue
        else:
            assert stages, f"instruction before FROM: {line}"
            stages[-1].instructions.append((keyword, args))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def test_parse_dockerfile_joins_continuations() -> None:
    parsed = parse_dockerfile("FROM a AS b\nRUN x \\\n    # note\n    && y\nFROM c\nCOPY --from=b p q\n")
    assert [(s.base, s.name) for s in parsed] == [("a", "b"), ("c", None)]
    assert parsed[0].instructions == [("RUN", "x && y")]


def test_dockerfile_builds_assets_with_node_then_runs_python(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    node, final = stages[0], stages[-1]
    assert node.base.startswith("node:20") and node.name
    assert final.base == "python:3.11-slim"


def test_node_stage_installs_from_package_files(stages: list[Stage]) -> None:
    node = stages[0]
    copies = " ".join(node.args_of("COPY"))
    assert "package.json" in copies and "package-lock.json*" in copies
    runs = " ".join(node.args_of("RUN"))
    assert "npm ci" in runs or "npm install" in runs


def test_final_stage_copies_htmx_from_the_node_stage(stages: list[Stage]) -> None:
    node, final = stages[0], stages[-1]
    wanted = [
        args for args in final.args_of("COPY") if args.startswith(f"--from={node.name} ") and args.split()[-1] == HTMX_TARGET
    ]
    assert len(wanted) == 1, f"no COPY --from={node.name} ... {HTMX_TARGET}"
    assert wanted[0].split()[-2].endswith(HTMX_SOURCE)


def test_final_stage_downloads_nothing(stages: list[Stage]) -> None:
    final = stages[-1]
    for keyword, args in final.instructions:
        assert not re.search(r"\b(curl|wget)\b", args), f"{keyword} {args}"
        if keyword == "ADD":
            assert "://" not in args, f"ADD fetches a URL: {args}"
    for keyword in ("CMD", "ENTRYPOINT"):
        for args in final.args_of(keyword):
            assert not re.search(r"\b(npm|pip|curl|wget)\b", args), f"{keyword} {args}"


def test_final_stage_installs_the_project(stages: list[Stage]) -> None:
    final = stages[-1]
    copied = " ".join(final.args_of("COPY"))
    for path in ("pyproject.toml", "searchcore/", "searchapp/", "indexer/", "templates/"):
        assert path in copied, path
    # `.` or `".[server]"` (the extra that brings gunicorn).
    install = re.compile(r"""pip install --no-cache-dir (\.|"\.\[[a-z,]+\]")(\s|$)""")
    assert any(install.search(r) for r in final.args_of("RUN"))
    # searchapp finds templates/ beside its own folder: it must be imported from /app.
    assert any(re.search(r"\bPYTHONPATH=/app\b", e) for e in final.args_of("ENV"))


def test_final_stage_runs_gunicorn_unprivileged(stages: list[Stage]) -> None:
    final = stages[-1]
    users = final.args_of("USER")
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "8000" in " ".join(final.args_of("EXPOSE")).split()
    cmd = final.args_of("CMD")
    assert cmd and "gunicorn" in cmd[-1] and "searchapp:create_app()" in cmd[-1]


def test_dockerignore_keeps_local_state_out() -> None:
    entries = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", "data", "node_modules", ".venv"):
        assert required in entries, required
    assert any("__pycache__" in entry for entry in entries)

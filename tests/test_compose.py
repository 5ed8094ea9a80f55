"""Static checks of the container setup: docker-compose.yml, Dockerfile, .dockerignore,
and the serving files they share with scripts/serve.sh (deploy/).

No Docker engine runs here or in CI, so nothing is built or started. Instead the
tests check what the files promise: the compose file is valid (Debian's
`docker-compose config`, when installed) and refuses to start without a password,
Elasticsearch runs with security on and everyone authenticates, readers reach
nginx only and nginx renders the very template serve.sh renders, every service
is limited (memory, CPU, processes) and hardened (no capabilities, no privilege
gain, read-only root filesystems where possible), the app waits for a healthy
Elasticsearch, the app and the indexer share one configuration, ports stay on
127.0.0.1, and the image serves htmx copied from a node build stage instead of
downloading anything when it runs. (tests/test_serve.py runs the serving stack.)
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
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
SERVE_SCRIPT = ROOT / "scripts" / "serve.sh"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
ENV_EXAMPLE = ROOT / ".env.example"
GITIGNORE = ROOT / ".gitignore"
CONFIG_PY = ROOT / "searchcore" / "config.py"

REQUIRED_APP_ENV = {"SEARCH_ENGINE", "ELASTICSEARCH_URL", "SEARCH_INDEX", "SEARCH_DATA_DIR"}
# Settings only the web app reads (deploy/gunicorn.conf.py); everything else is shared.
SERVING_ENV = {"GUNICORN_BIND", "FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT"}
SERVICES = {"elasticsearch", "app", "nginx", "indexer"}
# Services whose root filesystem is read-only (Elasticsearch writes its keystore,
# logs and temp files into its own tree).
READ_ONLY = {"app", "nginx", "indexer"}
PASSWORD_REF = re.compile(r"^\$\{ELASTIC_PASSWORD:\?[^}]+\}$")
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


def compose_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ELASTIC_PASSWORD", "POSTS_DIR")}
    return {**env, **extra}


def compose_config(tmp_path: Path) -> list[str]:
    # An empty env file: a developer's own .env must not change what is tested.
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    return ["docker-compose", "-f", str(COMPOSE_FILE), "--env-file", str(empty), "--profile", "indexer", "config"]


needs_docker_compose = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")


@needs_docker_compose
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    env = compose_env(POSTS_DIR=str(tmp_path), ELASTIC_PASSWORD="0123456789abcdef")
    base = compose_config(tmp_path)
    check = subprocess.run([*base, "-q"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    # The normalized file shows that POSTS_DIR reaches the indexer, read-only.
    rendered = subprocess.run(base, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    indexer = yaml.safe_load(rendered.stdout)["services"]["indexer"]
    posts = [m for m in mounts(indexer) if m.target == "/posts"]
    assert posts == [Mount(str(tmp_path), "/posts", True)]
    # The password reaches Elasticsearch and both of its clients.
    normalized = yaml.safe_load(rendered.stdout)["services"]
    assert environment(normalized["elasticsearch"])["ELASTIC_PASSWORD"] == "0123456789abcdef"
    for name in ("app", "indexer"):
        assert environment(normalized[name])["ELASTICSEARCH_PASSWORD"] == "0123456789abcdef"


@needs_docker_compose
def test_docker_compose_refuses_to_start_without_a_password(tmp_path: Path) -> None:
    check = subprocess.run(
        [*compose_config(tmp_path), "-q"], env=compose_env(POSTS_DIR=str(tmp_path)), cwd=ROOT, capture_output=True, text=True
    )
    assert check.returncode != 0
    assert "ELASTIC_PASSWORD" in check.stderr and ".env" in check.stderr


def test_exactly_four_services(services: dict) -> None:
    assert set(services) == SERVICES


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


def test_elasticsearch_security_is_on_with_a_password_from_the_env_file(services: dict) -> None:
    env = environment(services["elasticsearch"])
    # Strings: a YAML boolean may reach Elasticsearch as "True", which it rejects.
    assert env["xpack.security.enabled"] == "true"
    # ${VAR:?message}: compose stops with the message instead of starting without one.
    assert PASSWORD_REF.match(env["ELASTIC_PASSWORD"]), env["ELASTIC_PASSWORD"]


def test_http_tls_choice_is_stated_next_to_the_setting(services: dict) -> None:
    env = environment(services["elasticsearch"])
    assert env["xpack.security.http.ssl.enabled"] in ("false", "true")
    if env["xpack.security.http.ssl.enabled"] == "false":
        text = COMPOSE_FILE.read_text(encoding="utf-8")
        before = text[: text.index("xpack.security.http.ssl.enabled:")]
        comment = before[before.rindex("ELASTIC_PASSWORD:") :].lower()
        assert "tls off" in comment and "private compose network" in comment and "127.0.0.1" in comment


@pytest.mark.parametrize("name", ["app", "indexer"])
def test_clients_authenticate_with_settings_the_app_reads(services: dict, name: str) -> None:
    env = environment(services[name])
    assert env["ELASTICSEARCH_USERNAME"] == "elastic"
    assert PASSWORD_REF.match(env["ELASTICSEARCH_PASSWORD"]), env["ELASTICSEARCH_PASSWORD"]
    config = CONFIG_PY.read_text(encoding="utf-8")
    for key in ("ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD"):
        assert f'env.get("{key}")' in config, f"searchcore/config.py does not read {key}"


def test_password_is_never_committed() -> None:
    ignored = {line.strip() for line in GITIGNORE.read_text(encoding="utf-8").splitlines()}
    assert ".env" in ignored
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    # A placeholder to fill in, not a password.
    assert re.search(r"^ELASTIC_PASSWORD=$", example, re.MULTILINE)
    assert "cp .env.example .env" in example
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    values = re.findall(r"^\s+(?:ELASTIC_PASSWORD|ELASTICSEARCH_PASSWORD):\s*(.*)$", text, re.MULTILINE)
    assert len(values) == 2 and all(PASSWORD_REF.match(v) for v in values), values
    if shutil.which("git") and (ROOT / ".git").exists():
        tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True, check=True)
        assert tracked.stdout.strip() == ""


def test_elasticsearch_healthcheck_authenticates_and_waits_for_yellow(services: dict) -> None:
    words = " ".join(healthcheck_words(services["elasticsearch"]))
    assert "curl" in words
    assert "_cluster/health" in words and "wait_for_status=yellow" in words
    assert services["elasticsearch"]["healthcheck"].get("retries", 0) >= 3
    # The container's own variable ($$: not interpolated by compose), given to
    # curl on stdin rather than on its command line.
    assert "$$ELASTIC_PASSWORD" in words and "curl -K -" in words
    assert services["elasticsearch"]["healthcheck"]["test"][0] == "CMD-SHELL"


# ids without brackets around an engine name: conftest counts "[elasticsearch" as engine tests.
def service_id(name: str) -> str:
    return f"service={name}"


@pytest.mark.parametrize("name", sorted(SERVICES), ids=service_id)
def test_every_service_is_limited(services: dict, name: str) -> None:
    svc = services[name]
    assert re.fullmatch(r"\d+[mg]", str(svc.get("mem_limit", ""))), f"{name}: no mem_limit"
    assert 0 < float(svc.get("cpus", 0)) <= 4, f"{name}: no cpus limit"
    assert 0 < int(svc.get("pids_limit", 0)) <= 4096, f"{name}: no pids_limit"


@pytest.mark.parametrize("name", sorted(SERVICES), ids=service_id)
def test_every_service_drops_capabilities_and_privilege_gain(services: dict, name: str) -> None:
    svc = services[name]
    assert svc.get("cap_drop") == ["ALL"], name
    assert "cap_add" not in svc, f"{name} adds capabilities back"
    assert "no-new-privileges:true" in svc.get("security_opt", []), name
    assert not svc.get("privileged"), name


@pytest.mark.parametrize("name", sorted(READ_ONLY), ids=service_id)
def test_read_only_root_filesystem_with_a_tmpfs(services: dict, name: str) -> None:
    svc = services[name]
    assert svc.get("read_only") is True, name
    assert any(str(t).split(":")[0] == "/tmp" for t in svc.get("tmpfs", [])), f"{name}: no tmpfs for /tmp"


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


def test_app_runs_the_images_gunicorn_and_is_not_published(services: dict) -> None:
    app = services["app"]
    # No command of its own: the image's CMD (gunicorn -c deploy/gunicorn.conf.py).
    assert "command" not in app
    # Reachable on the compose network only; readers go through nginx.
    assert "ports" not in app
    assert environment(app)["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert app["restart"] == "unless-stopped"


def test_nginx_is_the_only_door_for_readers(services: dict) -> None:
    nginx = services["nginx"]
    assert nginx["ports"] == ["127.0.0.1:8000:8080"]
    env = environment(nginx)
    assert env["NGINX_LISTEN"] == "8080"  # unprivileged: no NET_BIND_SERVICE
    assert env["NGINX_UPSTREAM"] == "app:" + environment(services["app"])["GUNICORN_BIND"].rsplit(":", 1)[1]
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    assert nginx["restart"] == "unless-stopped"
    user = str(nginx.get("user", "")).split(":")[0]
    assert user and user not in ("root", "0"), "nginx runs as root"
    assert re.match(r"^nginx:1\.\d+", nginx["image"])
    words = healthcheck_words(nginx)
    assert "http://127.0.0.1:8080/healthz" in words


def test_nginx_renders_the_template_serve_sh_renders(services: dict) -> None:
    nginx = services["nginx"]
    env = environment(nginx)
    template_mounts = [m for m in mounts(nginx) if m.target.startswith("/etc/nginx/templates/")]
    assert len(template_mounts) == 1
    mount = template_mounts[0]
    assert mount.read_only and mount.target.endswith(".template")
    assert (ROOT / mount.source).resolve() == NGINX_TEMPLATE.resolve()
    # serve.sh renders the same file.
    assert "deploy/nginx.conf.template" in SERVE_SCRIPT.read_text(encoding="utf-8")
    # The image renders <name>.template to $NGINX_ENVSUBST_OUTPUT_DIR/<name>, a
    # writable tmpfs, and nginx is started on that file.
    out_dir = env["NGINX_ENVSUBST_OUTPUT_DIR"]
    assert any(str(t).split(":")[0] == out_dir for t in nginx["tmpfs"])
    rendered = out_dir + "/" + Path(mount.target).name.removesuffix(".template")
    words = command_words(nginx)
    assert words[0] == "nginx" and words[words.index("-c") + 1] == rendered
    # Every variable of the template has a value, in compose as in serve.sh.
    used = set(re.findall(r"\$\{([A-Z_]+)\}", NGINX_TEMPLATE.read_text(encoding="utf-8")))
    assert used and used <= set(env), used - set(env)
    assert env["NGINX_RUN_DIR"] == out_dir
    serve = SERVE_SCRIPT.read_text(encoding="utf-8")
    for name in used:
        assert f"{name}=" in serve, f"serve.sh does not set {name}"


def test_template_variables_cannot_clash_with_nginx_variables() -> None:
    """envsubst replaces $NAME and ${NAME} for every variable set in the nginx
    container: ours are upper-case and braced, nginx's own are lower-case."""
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    for match in re.finditer(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)", code):
        braced, name = match.group(1), match.group(2)
        if not name.islower():
            assert braced and name.startswith("NGINX_"), f"${name}"
        else:
            assert not braced, f"${{{name}}}"


def test_nginx_template_buffers_and_bounds_clients() -> None:
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    conf = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].strip().rstrip(";").split(None, 1)
        if len(words) == 2:
            conf.setdefault(words[0], words[1])
    seconds = {k: int(conf[k].rstrip("s")) for k in ("client_header_timeout", "client_body_timeout", "send_timeout")}
    assert all(0 < v <= 30 for v in seconds.values()), seconds
    assert conf["proxy_request_buffering"] == "on" and conf["proxy_buffering"] == "on"
    assert conf["gzip"] == "on" and conf["gzip_proxied"] == "any" and conf["gzip_vary"] == "on"
    for mime in ("text/css", "application/javascript", "application/json"):
        assert mime in conf["gzip_types"].split()
    assert conf["absolute_redirect"] == "off" and conf["server_tokens"] == "off"
    assert int(conf["worker_connections"]) >= 1024
    assert conf["client_max_body_size"].endswith("k") and int(conf["client_max_body_size"][:-1]) <= 64
    for name in ("proxy_connect_timeout", "proxy_send_timeout", "proxy_read_timeout"):
        assert int(conf[name].rstrip("s")) <= 60, name
    assert "X-Forwarded-For" in text and "X-Forwarded-Proto" in text


def test_published_ports_stay_on_localhost(services: dict) -> None:
    published = [(name, port) for name, svc in services.items() for port in svc.get("ports", [])]
    assert published, "nothing is published"
    for name, port in published:
        assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "127.0.0.1:9200:9200" in services["elasticsearch"]["ports"]


def test_app_and_indexer_share_one_configuration(services: dict) -> None:
    app_env, indexer_env = environment(services["app"]), environment(services["indexer"])
    # The app has its serving settings on top; everything else is the same.
    assert set(app_env) - set(indexer_env) <= SERVING_ENV
    assert {k: v for k, v in app_env.items() if k not in SERVING_ENV} == indexer_env
    assert REQUIRED_APP_ENV <= set(app_env)
    assert app_env["SEARCH_ENGINE"] == "elasticsearch"
    # The URL names the compose service, so it resolves inside the compose network.
    assert urlparse(app_env["ELASTICSEARCH_URL"]).hostname == "elasticsearch"


def test_environment_is_declared_once_through_an_anchor() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(r"^x-app-env: &app-env$", text, re.MULTILINE)
    for key in REQUIRED_APP_ENV:
        assert len(re.findall(rf"^\s*{key}:", text, re.MULTILINE)) == 1, key
    # The indexer takes it whole, the app merges it under its serving settings.
    assert text.count("environment: *app-env") == 1
    assert len(re.findall(r"^\s+<<: \*app-env$", text, re.MULTILINE)) == 1


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
    assert all("profiles" not in services[name] for name in SERVICES - {"indexer"})
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
    # The same gunicorn settings as scripts/serve.sh, copied into the image.
    assert cmd and json.loads(cmd[-1]) == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    assert any(args.split()[-1] == "deploy/gunicorn.conf.py" for args in final.args_of("COPY"))
    assert "gunicorn -c" in SERVE_SCRIPT.read_text(encoding="utf-8") and "gunicorn.conf.py" in SERVE_SCRIPT.read_text(
        encoding="utf-8"
    )


def _gunicorn_settings(env: dict[str, str]) -> dict:
    """deploy/gunicorn.conf.py as gunicorn reads it, under the given environment."""
    pytest.importorskip("gunicorn")
    code = (
        "import json, sys; from gunicorn.config import Config; from gunicorn.app.base import Application\n"
        "class A(Application):\n"
        "    def init(self, *a): pass\n"
        "    def load(self): pass\n"
        "    def load_config(self):\n"
        "        self.cfg = Config(); self.load_config_from_file(sys.argv[1])\n"
        "c = A().cfg\n"
        "print(json.dumps({k: c.settings[k].get() for k in ('bind', 'workers', 'worker_class', 'timeout', "
        "'graceful_timeout', 'max_requests', 'max_requests_jitter', 'accesslog', 'forwarded_allow_ips', 'wsgi_app')}))\n"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "GUNICORN_BIND", "FORWARDED_ALLOW_IPS")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(GUNICORN_CONF)],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_gunicorn_conf_defaults_are_safe_behind_nginx() -> None:
    conf = _gunicorn_settings({})
    assert conf["wsgi_app"] == "searchapp:create_app()"
    assert conf["bind"] == ["127.0.0.1:8000"]  # never every interface by default
    assert conf["workers"] == 2 and conf["worker_class"] == "sync"
    assert 10 <= conf["timeout"] <= 60 and 0 < conf["graceful_timeout"] < 10  # under compose's 10 s stop grace
    assert conf["max_requests"] > 0 and 0 < conf["max_requests_jitter"] < conf["max_requests"]
    assert conf["accesslog"] == "-"
    assert conf["forwarded_allow_ips"] == ["127.0.0.1", "::1"]


def test_gunicorn_conf_reads_its_environment() -> None:
    conf = _gunicorn_settings({"WEB_CONCURRENCY": "5", "GUNICORN_BIND": "0.0.0.0:8000", "FORWARDED_ALLOW_IPS": "*"})
    assert conf["workers"] == 5 and conf["bind"] == ["0.0.0.0:8000"] and conf["forwarded_allow_ips"] == ["*"]


def test_dockerignore_keeps_local_state_out() -> None:
    entries = {
        line.strip().strip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for required in (".git", "data", "node_modules", ".venv"):
        assert required in entries, required
    assert any("__pycache__" in entry for entry in entries)

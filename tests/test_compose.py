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

The `cluster` profile (three Elasticsearch nodes, transport TLS, an app, nginx and
indexer pointed at all three) is checked the same way: it cannot be run here
either, so these tests are all it gets before someone runs it on a Docker host.
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

from devtools.esnode import DEFAULT_ES_VERSION

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SERVE_SCRIPT = ROOT / "scripts" / "serve.sh"
NGINX_TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
ENV_EXAMPLE = ROOT / ".env.example"
GITIGNORE = ROOT / ".gitignore"
CONFIG_PY = ROOT / "searchcore" / "config.py"

REQUIRED_APP_ENV = {"SEARCH_ENGINE", "ELASTICSEARCH_URL", "SEARCH_INDEX", "SEARCH_DATA_DIR"}
# Settings only the web app reads (deploy/gunicorn.conf.py); everything else is shared.
SERVING_ENV = {"GUNICORN_BIND", "FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT"}
# The stack without the cluster profile: these four, exactly as before it existed.
DEFAULT_SERVICES = {"elasticsearch", "app", "nginx", "indexer"}
CLUSTER_NODES = ("es01", "es02", "es03")
CLUSTER_SERVICES = {"es-certs", *CLUSTER_NODES, "app-cluster", "nginx-cluster", "indexer-cluster"}
SERVICES = DEFAULT_SERVICES | CLUSTER_SERVICES
# Services whose root filesystem is read-only (Elasticsearch writes its keystore,
# logs and temp files into its own tree).
READ_ONLY = {"app", "nginx", "indexer", "app-cluster", "nginx-cluster", "indexer-cluster"}
# What the cluster's clients set differently from the single node's.
CLUSTER_CLIENT_ENV = {"ELASTICSEARCH_URL", "SEARCH_SHARDS", "SEARCH_REPLICAS"}
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


def test_the_default_stack_and_the_cluster_profile(services: dict) -> None:
    assert set(services) == SERVICES
    # `docker compose up` without a profile starts the same three services as before
    # the cluster profile existed; everything of the cluster needs its profile.
    assert {name for name, svc in services.items() if "profiles" not in svc} == {"elasticsearch", "app", "nginx"}
    assert services["indexer"]["profiles"] == ["indexer"]
    for name in CLUSTER_SERVICES - {"indexer-cluster"}:
        assert services[name]["profiles"] == ["cluster"], name
    # Like the single node's indexer, the cluster's runs only when asked for by name.
    assert services["indexer-cluster"]["profiles"] == ["cluster-indexer"]


def test_elasticsearch_image_is_9x_and_matches_the_test_node(services: dict) -> None:
    match = ES_IMAGE.match(services["elasticsearch"]["image"])
    assert match, f"not an official Elasticsearch 9.x image: {services['elasticsearch']['image']}"
    # Tests and CI run scripts/es-node.sh (devtools/esnode): production must run the same version.
    assert match.group(1) == DEFAULT_ES_VERSION


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
    # The single node, its clients' shared settings, the cluster nodes' shared settings.
    assert len(values) == 3 and all(PASSWORD_REF.match(v) for v in values), values
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
    for key in REQUIRED_APP_ENV - {"ELASTICSEARCH_URL"}:
        assert len(re.findall(rf"^\s*{key}:", text, re.MULTILINE)) == 1, key
    # Twice: the single node's, and the cluster's override in x-cluster-env.
    assert len(re.findall(r"^\s*ELASTICSEARCH_URL:", text, re.MULTILINE)) == 2
    # The indexer takes it whole, the app merges it under its serving settings, and
    # the cluster's settings merge it under their overrides.
    assert text.count("environment: *app-env") == 1
    assert len(re.findall(r"^\s+<<: \*app-env$", text, re.MULTILINE)) == 2
    assert re.search(r"^x-cluster-env: &cluster-env\n  <<: \*app-env$", text, re.MULTILINE)
    # The cluster's indexer takes the cluster's settings whole, its app merges them.
    assert text.count("environment: *cluster-env") == 1
    assert len(re.findall(r"^\s+<<: \*cluster-env$", text, re.MULTILINE)) == 1


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
    assert all("profiles" not in services[name] for name in DEFAULT_SERVICES - {"indexer"})
    assert command_words(indexer) == ["indexer", "index", "/posts"]


def test_indexer_reads_posts_read_only_from_posts_dir(services: dict) -> None:
    posts = [m for m in mounts(services["indexer"]) if m.target == "/posts"]
    assert posts == [Mount("${POSTS_DIR:-./posts}", "/posts", True)]


# ---------------------------------------------------------------------------
# docker-compose.yml: the cluster profile
# ---------------------------------------------------------------------------


@needs_docker_compose
def test_docker_compose_accepts_the_cluster_profile(tmp_path: Path) -> None:
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    base = ["docker-compose", "-f", str(COMPOSE_FILE), "--env-file", str(empty), "--profile", "cluster", "config"]
    env = compose_env(POSTS_DIR=str(tmp_path), ELASTIC_PASSWORD="0123456789abcdef")
    rendered = subprocess.run(base, env=env, cwd=ROOT, capture_output=True, text=True)
    assert rendered.returncode == 0, rendered.stderr
    normalized = yaml.safe_load(rendered.stdout)["services"]
    # The password reaches every node (each may be the one that first sets it) and
    # both clients of the cluster.
    for node in CLUSTER_NODES:
        assert environment(normalized[node])["ELASTIC_PASSWORD"] == "0123456789abcdef"
    for name in ("app-cluster", "indexer-cluster"):
        assert environment(normalized[name])["ELASTICSEARCH_PASSWORD"] == "0123456789abcdef"
    # Without a password the profile refuses to start too.
    refused = subprocess.run([*base, "-q"], env=compose_env(POSTS_DIR=str(tmp_path)), cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode != 0 and "ELASTIC_PASSWORD" in refused.stderr


def test_cluster_nodes_form_one_cluster(services: dict) -> None:
    nodes = {name: environment(services[name]) for name in CLUSTER_NODES}
    assert len({env["cluster.name"] for env in nodes.values()}) == 1
    for name, env in nodes.items():
        assert env["node.name"] == name
        # Bootstrapped together: every node names the same three masters...
        assert env["cluster.initial_master_nodes"].split(",") == list(CLUSTER_NODES)
        # ...and finds the other two by their service names.
        assert set(env["discovery.seed_hosts"].split(",")) == set(CLUSTER_NODES) - {name}
        assert "discovery.type" not in env, f"{name} would form a cluster of its own"


def test_cluster_runs_the_single_nodes_image(services: dict) -> None:
    # Same version as the single node, so as the test node (checked above).
    image = services["elasticsearch"]["image"]
    for name in (*CLUSTER_NODES, "es-certs"):
        assert services[name]["image"] == image, name


@pytest.mark.parametrize("name", CLUSTER_NODES)
def test_cluster_node_is_health_checked_like_the_single_node(services: dict, name: str) -> None:
    # Healthy = its cluster has a master and is at least yellow; the single node's
    # check, authenticated the same way.
    assert services[name]["healthcheck"] == services["elasticsearch"]["healthcheck"]


@pytest.mark.parametrize("name", CLUSTER_NODES)
def test_cluster_node_has_security_and_transport_tls_on(services: dict, name: str) -> None:
    env = environment(services[name])
    assert env["xpack.security.enabled"] == "true"
    assert PASSWORD_REF.match(env["ELASTIC_PASSWORD"]), env["ELASTIC_PASSWORD"]
    # Node to node: encrypted, with this node's own certificate, checked against the CA.
    assert env["xpack.security.transport.ssl.enabled"] == "true"
    assert env["xpack.security.transport.ssl.verification_mode"] in ("certificate", "full")
    assert env["xpack.security.transport.ssl.keystore.path"] == f"certs/{name}.p12"
    assert env["xpack.security.transport.ssl.truststore.path"] == f"certs/{name}.p12"
    # HTTP TLS: the single node's stated choice (private network, 127.0.0.1).
    assert env["xpack.security.http.ssl.enabled"] == environment(services["elasticsearch"])["xpack.security.http.ssl.enabled"]


def test_certificates_come_from_a_one_shot_service_of_the_same_image(services: dict) -> None:
    certs = services["es-certs"]
    script = " ".join(command_words(certs))
    # The CA, then one keystore per node, named as the nodes' settings expect.
    assert "bin/elasticsearch-certutil ca" in script and "bin/elasticsearch-certutil cert" in script
    loop = re.search(r"for node in ([\w ]+); do", script)
    assert loop and tuple(loop.group(1).split()) == CLUSTER_NODES
    assert '--out "$$certs/$$node.p12"' in script and '--name "$$node"' in script
    # Keeps what exists: a second `up` must not give the nodes new certificates.
    assert '[ ! -f "$$certs/ca.p12" ]' in script and '[ ! -f "$$certs/$$node.p12" ]' in script
    assert "restart" not in certs or certs["restart"] == "no"
    (volume,) = [m for m in mounts(certs) if m.target == "/usr/share/elasticsearch/config/certs"]
    assert volume.is_named_volume and not volume.read_only
    for name in CLUSTER_NODES:
        node = services[name]
        # The same volume, read-only, where certs/<node>.p12 resolves (config/).
        assert Mount(volume.source, volume.target, True) in mounts(node), name
        # A node starts only once its certificates exist.
        assert node["depends_on"]["es-certs"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", CLUSTER_NODES)
def test_cluster_node_is_limited_like_the_single_node(services: dict, name: str) -> None:
    single, node = services["elasticsearch"], services[name]
    for key in ("mem_limit", "cpus", "pids_limit", "ulimits"):
        assert node[key] == single[key], key
    heap = environment(node)["ES_JAVA_OPTS"].split()
    assert heap == environment(single)["ES_JAVA_OPTS"].split()
    # Half the container's memory at most: Lucene's files need the page cache.
    xmx = next(int(w[4:-1]) for w in heap if w.startswith("-Xmx") and w.endswith("g"))
    assert 2 * xmx <= int(str(node["mem_limit"]).rstrip("g"))


def test_cluster_nodes_keep_their_data_apart(services: dict) -> None:
    data = {name: [m for m in mounts(services[name]) if m.target == "/usr/share/elasticsearch/data"] for name in CLUSTER_NODES}
    sources = [m.source for ms in data.values() for m in ms]
    assert all(len(ms) == 1 and ms[0].is_named_volume for ms in data.values())
    single = {m.source for m in mounts(services["elasticsearch"])}
    assert len(set(sources)) == 3 and not set(sources) & single


def test_host_ports_do_not_collide(services: dict) -> None:
    # Both stacks can run side by side: no host port is published twice.
    host_ports = [str(port).rsplit(":", 1)[0] for svc in services.values() for port in svc.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), host_ports


@pytest.mark.parametrize("name", ["app-cluster", "indexer-cluster"])
def test_cluster_clients_wait_for_and_list_all_three_nodes(services: dict, name: str) -> None:
    svc = services[name]
    for node in CLUSTER_NODES:
        assert svc["depends_on"][node]["condition"] == "service_healthy", node
    assert "elasticsearch" not in svc["depends_on"]
    env = environment(svc)
    urls = env["ELASTICSEARCH_URL"].split(",")
    assert [urlparse(u).hostname for u in urls] == list(CLUSTER_NODES)
    assert all(urlparse(u).port == 9200 and urlparse(u).scheme == "http" for u in urls)
    # The app reads the list and the layout as the compose file means them.
    from searchcore.config import load_settings

    settings = load_settings(env)
    assert settings.elasticsearch_hosts == urls
    assert settings.search_shards == 3
    # One replica: any single node can go without losing a shard.
    assert settings.elasticsearch_replicas == 1 < len(CLUSTER_NODES)


def test_cluster_clients_share_the_single_nodes_configuration(services: dict) -> None:
    app, indexer = environment(services["app-cluster"]), environment(services["indexer-cluster"])
    single_app = environment(services["app"])
    # Only the cluster settings differ from the single-node app's; the serving ones are the same.
    assert set(app) == set(single_app) | {"SEARCH_SHARDS", "SEARCH_REPLICAS"}
    assert {k: v for k, v in app.items() if k not in CLUSTER_CLIENT_ENV} == {
        k: v for k, v in single_app.items() if k not in CLUSTER_CLIENT_ENV
    }
    assert {k: v for k, v in app.items() if k not in SERVING_ENV} == indexer
    for key in ("build", "image", "command", "healthcheck", "mem_limit", "cpus", "pids_limit", "tmpfs"):
        assert services["app-cluster"].get(key) == services["app"].get(key), key
        assert services["indexer-cluster"].get(key) == services["indexer"].get(key), key


def test_cluster_clients_have_their_own_data_volume(services: dict) -> None:
    data_dir = environment(services["app-cluster"])["SEARCH_DATA_DIR"]
    app = {m.source for m in mounts(services["app-cluster"]) if m.target == data_dir}
    indexer = {m.source for m in mounts(services["indexer-cluster"]) if m.target == data_dir}
    assert len(app) == 1 and app == indexer
    # Not the single node's: its ledger describes an index in another Elasticsearch.
    assert not app & {m.source for m in mounts(services["app"])}
    posts = [m for m in mounts(services["indexer-cluster"]) if m.target == "/posts"]
    assert posts == [Mount("${POSTS_DIR:-./posts}", "/posts", True)]


def test_cluster_nginx_fronts_the_cluster_app(services: dict) -> None:
    nginx, single = services["nginx-cluster"], services["nginx"]
    env = environment(nginx)
    assert env["NGINX_UPSTREAM"] == "app-cluster:" + environment(services["app-cluster"])["GUNICORN_BIND"].rsplit(":", 1)[1]
    assert {k: v for k, v in env.items() if k != "NGINX_UPSTREAM"} == {
        k: v for k, v in environment(single).items() if k != "NGINX_UPSTREAM"
    }
    assert nginx["depends_on"] == {"app-cluster": {"condition": "service_healthy"}}
    assert nginx["ports"] == ["127.0.0.1:8001:8080"]
    assert "ports" not in services["app-cluster"]
    for key in ("image", "user", "command", "volumes", "healthcheck", "read_only", "tmpfs"):
        assert nginx[key] == single[key], key


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

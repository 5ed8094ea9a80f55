"""Static checks of the container setup: docker-compose.yml, Dockerfile, .dockerignore,
the local images for CI (deploy/images), and the serving files they share with
scripts/serve.sh (deploy/).

scripts/compose-test.sh runs the stack for real (CI does, on every submission):
these tests check, in seconds and without Docker, what the files promise: the
compose file is valid (Debian's `docker-compose config`, when installed);
Elasticsearch runs with security on and everyone authenticates with their own
user (the app read-only, the indexer writing, `elastic` for es-setup alone), with
passwords as Docker secrets rather than environment variables; the first `up`
needs no index; readers reach nginx only and nginx renders the very template
serve.sh renders; every service is limited (memory, CPU, processes) and hardened
(no capabilities, no privilege gain, read-only root filesystems where possible)
and asks for no open-file limit the host may not have; the app waits for a
healthy Elasticsearch; the app and the indexer share one configuration; ports stay
on 127.0.0.1; production keeps the official images while CI can name local ones;
and the image serves htmx copied from a node build stage instead of downloading
anything when it runs. (tests/test_serve.py runs the serving stack.)

The `cluster` profile (three Elasticsearch nodes, transport TLS, an app, nginx and
indexer pointed at all three) is checked the same way, and so is the override CI
runs it with where the host cannot meet Elasticsearch's bootstrap checks
(deploy/compose.cluster-loopback.yml): it may change the nodes' networking only.
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

LOOPBACK_FILE = ROOT / "deploy" / "compose.cluster-loopback.yml"
SECRETS_SCRIPT = ROOT / "scripts" / "compose-secrets.sh"
ES_SETUP = ROOT / "deploy" / "es_setup.py"
ES_LOCAL_IMAGE = ROOT / "deploy" / "images" / "elasticsearch"
NGINX_LOCAL_IMAGE = ROOT / "deploy" / "images" / "nginx"

REQUIRED_APP_ENV = {"SEARCH_ENGINE", "ELASTICSEARCH_URL", "SEARCH_INDEX", "SEARCH_DATA_DIR"}
# Settings only the web app reads (deploy/gunicorn.conf.py); everything else is shared.
SERVING_ENV = {"GUNICORN_BIND", "FORWARDED_ALLOW_IPS", "WEB_CONCURRENCY", "GUNICORN_TIMEOUT"}
# Each client's own login: a user and the file that holds its password.
LOGIN_ENV = {"ELASTICSEARCH_USERNAME", "ELASTICSEARCH_PASSWORD_FILE"}
# The stack without the cluster profile: `up` starts the first five (two of them
# one-shots), the indexer runs on demand.
DEFAULT_SERVICES = {"elasticsearch", "es-setup", "index-on-up", "app", "nginx", "indexer"}
ONE_SHOTS = {"es-setup", "index-on-up", "es-certs", "es-setup-cluster"}
CLUSTER_NODES = ("es01", "es02", "es03")
CLUSTER_SERVICES = {"es-certs", *CLUSTER_NODES, "es-setup-cluster", "app-cluster", "nginx-cluster", "indexer-cluster"}
SERVICES = DEFAULT_SERVICES | CLUSTER_SERVICES
# Services whose root filesystem is read-only (Elasticsearch writes its keystore,
# logs and temp files into its own tree).
READ_ONLY = {"es-setup", "index-on-up", "app", "nginx", "indexer", "es-setup-cluster", "app-cluster", "nginx-cluster",
             "indexer-cluster"}
# What the cluster's clients set differently from the single node's.
CLUSTER_CLIENT_ENV = {"ELASTICSEARCH_URL", "SEARCH_SHARDS", "SEARCH_REPLICAS"}
SECRET_NAMES = {"elastic_password", "app_password", "indexer_password"}
ES_IMAGE = re.compile(r"^\$\{ES_IMAGE:-docker\.elastic\.co/elasticsearch/elasticsearch:(9\.\d+\.\d+)\}$")
APP_IMAGE = "${APP_IMAGE:-newsearch:local}"
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


# ids without brackets around an engine name: conftest counts "[elasticsearch" as engine tests.
def service_id(name: str) -> str:
    return f"service={name}"


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
    # Variables a developer's shell may set must not change what is tested.
    drop = {"POSTS_DIR", "SECRETS_DIR", "ES_IMAGE", "NGINX_IMAGE", "APP_IMAGE", "PYTHON_IMAGE", "NODE_IMAGE",
            "NEWSEARCH_HTTP_PORT", "NEWSEARCH_ES_PORT", "NEWSEARCH_CLUSTER_HTTP_PORT", "COMPOSE_FILE", "COMPOSE_PROFILES"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **extra}

def compose_config(tmp_path: Path, *files: Path, profiles: tuple[str, ...] = ("indexer",)) -> list[str]:
    # An empty env file: a developer's own .env must not change what is tested.
    empty = tmp_path / "empty.env"
    empty.write_text("", encoding="utf-8")
    cmd = ["docker-compose"]
    for f in files or (COMPOSE_FILE,):
        cmd += ["-f", str(f)]
    cmd += ["--env-file", str(empty)]
    for profile in profiles:
        cmd += ["--profile", profile]
    return [*cmd, "config"]

needs_docker_compose = pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose is not installed")


@needs_docker_compose
def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    env = compose_env(POSTS_DIR=str(tmp_path), SECRETS_DIR=str(tmp_path / "secrets"))
    base = compose_config(tmp_path)
    check = subprocess.run([*base, "-q"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr

    # The normalized file shows that POSTS_DIR reaches the indexer and index-on-up,
    # read-only.
    rendered = subprocess.run(base, env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    normalized = yaml.safe_load(rendered.stdout)
    for name in ("indexer", "index-on-up"):
        posts = [m for m in mounts(normalized["services"][name]) if m.target == "/posts"]
        assert posts == [Mount(str(tmp_path), "/posts", True)], name
    # The secrets are files under SECRETS_DIR, mounted by name.
    files = {name: Path(s["file"]) for name, s in normalized["secrets"].items()}
    assert files == {name: tmp_path / "secrets" / name for name in SECRET_NAMES}
    # Production keeps the official images and the official Python base.
    services = normalized["services"]
    assert services["elasticsearch"]["image"].startswith("docker.elastic.co/elasticsearch/elasticsearch:9.")
    assert services["nginx"]["image"].startswith("nginx:1.")
    assert services["app"]["build"]["args"] == {"PYTHON_IMAGE": "python:3.11-slim", "NODE_IMAGE": "node:20-slim"}
    assert services["app"]["image"] == "newsearch:local"

@needs_docker_compose
def test_ci_names_local_images_and_ports_through_variables(tmp_path: Path) -> None:
    """What scripts/compose-test.sh sets where no registry can be reached."""
    env = compose_env(
        ES_IMAGE="ci/es:1",
        NGINX_IMAGE="ci/nginx:1",
        APP_IMAGE="ci/app:1",
        PYTHON_IMAGE="ci/base:1",
        NODE_IMAGE="ci/base:1",
        NEWSEARCH_HTTP_PORT="18000",
        NEWSEARCH_ES_PORT="19200",
        NEWSEARCH_CLUSTER_HTTP_PORT="18001",
    )
    rendered = subprocess.run(
        compose_config(tmp_path, profiles=("indexer", "cluster")), env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    services = yaml.safe_load(rendered.stdout)["services"]
    for name in ("elasticsearch", "es-certs", *CLUSTER_NODES):
        assert services[name]["image"] == "ci/es:1", name
    for name in ("nginx", "nginx-cluster"):
        assert services[name]["image"] == "ci/nginx:1", name
    for name in ("es-setup", "index-on-up", "app", "indexer", "es-setup-cluster", "app-cluster", "indexer-cluster"):
        assert services[name]["image"] == "ci/app:1", name
        assert services[name]["build"]["args"] == {"PYTHON_IMAGE": "ci/base:1", "NODE_IMAGE": "ci/base:1"}, name
    # docker-compose 1.29 writes `host_ip:published:target/tcp`; Compose v2 a mapping.
    published = {
        name: [p if isinstance(p, str) else f"{p['host_ip']}:{p['published']}:{p['target']}/tcp" for p in svc["ports"]]
        for name, svc in services.items()
        if svc.get("ports")
    }
    assert published == {
        "elasticsearch": ["127.0.0.1:19200:9200/tcp"],
        "nginx": ["127.0.0.1:18000:8080/tcp"],
        "nginx-cluster": ["127.0.0.1:18001:8080/tcp"],
    }

def test_the_default_stack_and_the_cluster_profile(services: dict) -> None:
    assert set(services) == SERVICES
    # `docker compose up` without a profile starts Elasticsearch, its security
    # setup, the optional first indexing, the app and nginx; everything of the
    # cluster needs its profile.
    assert {name for name, svc in services.items() if "profiles" not in svc} == DEFAULT_SERVICES - {"indexer"}
    assert services["indexer"]["profiles"] == ["indexer"]
    for name in CLUSTER_SERVICES - {"indexer-cluster"}:
        assert services[name]["profiles"] == ["cluster"], name
    # Like the single node's indexer, the cluster's runs only when asked for by name.
    assert services["indexer-cluster"]["profiles"] == ["cluster-indexer"]
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name

def test_elasticsearch_image_is_9x_and_matches_the_test_node(services: dict) -> None:
    match = ES_IMAGE.match(services["elasticsearch"]["image"])
    assert match, f"not the official Elasticsearch 9.x image by default: {services['elasticsearch']['image']}"
    # Tests and CI run scripts/es-node.sh (devtools/esnode): production must run the same version.
    assert match.group(1) == DEFAULT_ES_VERSION


def test_elasticsearch_is_a_small_single_node(services: dict) -> None:
    env = environment(services["elasticsearch"])
    assert env["discovery.type"] == "single-node"
    heap = env["ES_JAVA_OPTS"].split()
    assert "-Xms1g" in heap and "-Xmx1g" in heap


def test_elasticsearch_security_is_on_with_the_password_in_a_secret(services: dict) -> None:
    es = services["elasticsearch"]
    env = environment(es)
    # Strings: a YAML boolean may reach Elasticsearch as "True", which it rejects.
    assert env["xpack.security.enabled"] == "true"
    # The image reads the password from the file (both the official image and the
    # local one): never the password itself in the environment.
    assert env["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password"
    assert "ELASTIC_PASSWORD" not in env
    assert es["secrets"] == ["elastic_password"]

def test_http_tls_choice_is_stated_next_to_the_setting(services: dict) -> None:
    env = environment(services["elasticsearch"])
    assert env["xpack.security.http.ssl.enabled"] in ("false", "true")
    if env["xpack.security.http.ssl.enabled"] == "false":
        text = COMPOSE_FILE.read_text(encoding="utf-8")
        before = text[: text.index("xpack.security.http.ssl.enabled:")]
        comment = before[before.rindex("ELASTIC_PASSWORD_FILE:") :].lower()
        assert "tls off" in comment and "private compose network" in comment and "127.0.0.1" in comment

@pytest.mark.parametrize(
    "name, user, secret",
    [
        ("app", "newsearch_app", "app_password"),
        ("indexer", "newsearch_indexer", "indexer_password"),
        ("index-on-up", "newsearch_indexer", "indexer_password"),
        ("app-cluster", "newsearch_app", "app_password"),
        ("indexer-cluster", "newsearch_indexer", "indexer_password"),
    ],
)
def test_clients_log_in_as_their_own_user_with_a_secret_file(
    services: dict, tmp_path: Path, name: str, user: str, secret: str
) -> None:
    """Neither the app nor the indexer holds the superuser's password: each has its
    own user (es-setup creates it), its password in a secret mounted only into it."""
    svc = services[name]
    env = environment(svc)
    assert env["ELASTICSEARCH_USERNAME"] == user != "elastic"
    assert env["ELASTICSEARCH_PASSWORD_FILE"] == f"/run/secrets/{secret}"
    assert svc["secrets"] == [secret], "only its own secret is mounted"
    assert not {"ELASTICSEARCH_PASSWORD", "ELASTIC_PASSWORD", "ELASTIC_PASSWORD_FILE"} & set(env)
    # The app reads the file as the compose file means it.
    from searchcore.config import load_settings

    password = tmp_path / secret
    password.write_text("from-the-file\n", encoding="utf-8")
    settings = load_settings({**env, "ELASTICSEARCH_PASSWORD_FILE": str(password)})
    assert (settings.elasticsearch_username, settings.elasticsearch_password) == (user, "from-the-file")

def test_no_password_in_the_repository_or_the_environment(services: dict) -> None:
    ignored = {line.strip() for line in GITIGNORE.read_text(encoding="utf-8").splitlines()}
    assert ".env" in ignored and "/secrets/" in ignored
    docker_ignored = {line.strip().strip("/") for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert "secrets" in docker_ignored, "the secrets would be sent to the image builder"
    example = ENV_EXAMPLE.read_text(encoding="utf-8")
    assert "PASSWORD=" not in example and "scripts/compose-secrets.sh" in example
    # Nowhere a password in an environment: `docker inspect` shows the environment.
    for name, svc in services.items():
        for key, value in environment(svc).items():
            if "PASSWORD" in key:
                assert key.endswith("_FILE") and str(value).startswith("/run/secrets/"), (name, key)
    if shutil.which("git") and (ROOT / ".git").exists():
        tracked = subprocess.run(["git", "ls-files", ".env", "secrets"], cwd=ROOT, capture_output=True, text=True, check=True)
        assert tracked.stdout.strip() == ""


def test_secrets_are_files_given_only_to_the_services_that_read_them(compose: dict, services: dict) -> None:
    secrets = compose["secrets"]
    assert set(secrets) == SECRET_NAMES
    for name, secret in secrets.items():
        assert secret == {"file": f"${{SECRETS_DIR:-./secrets}}/{name}"}
    users = {name: set(svc.get("secrets", [])) for name, svc in services.items() if svc.get("secrets")}
    assert users == {
        "elasticsearch": {"elastic_password"},
        **{node: {"elastic_password"} for node in CLUSTER_NODES},
        "es-setup": SECRET_NAMES,
        "es-setup-cluster": SECRET_NAMES,
        "app": {"app_password"},
        "app-cluster": {"app_password"},
        "index-on-up": {"indexer_password"},
        "indexer": {"indexer_password"},
        "indexer-cluster": {"indexer_password"},
    }
    # The files are root's, group 0, mode 0440 (scripts/compose-secrets.sh): the
    # app's services read them in group 0; Elasticsearch's image runs in group 0.
    for name in users:
        if "user" in services[name]:
            assert services[name]["user"] == "10001:0", name


@pytest.mark.skipif(os.geteuid() != 0, reason="compose-secrets.sh gives the files to root and group 0: needs root")
def test_compose_secrets_creates_private_files_once(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    subprocess.run([str(SECRETS_SCRIPT), str(folder)], check=True, capture_output=True)
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    first = {}
    for name in SECRET_NAMES:
        st = (folder / name).stat()
        assert (st.st_uid, st.st_gid, oct(st.st_mode & 0o777)) == (0, 0, "0o440"), name
        first[name] = (folder / name).read_text()
        assert re.fullmatch(r"[0-9a-f]{48}\n", first[name]), name
    assert len(set(first.values())) == 3
    # Run again: kept (Elasticsearch keeps the `elastic` password it took first).
    subprocess.run([str(SECRETS_SCRIPT), str(folder)], check=True, capture_output=True)
    assert {name: (folder / name).read_text() for name in SECRET_NAMES} == first

def test_elasticsearch_healthcheck_authenticates_and_waits_for_yellow(services: dict) -> None:
    words = " ".join(healthcheck_words(services["elasticsearch"]))
    assert "curl" in words
    assert "_cluster/health" in words and "wait_for_status=yellow" in words
    assert services["elasticsearch"]["healthcheck"].get("retries", 0) >= 3
    # The password from the secret file ($$: run by the container's shell, not
    # interpolated by compose), given to curl on stdin rather than on its command line.
    assert "$$(cat /run/secrets/elastic_password)" in words and "curl -K -" in words
    assert services["elasticsearch"]["healthcheck"]["test"][0] == "CMD-SHELL"


@pytest.mark.parametrize("name", ["elasticsearch", "nginx", *CLUSTER_NODES, "nginx-cluster"], ids=service_id)
def test_no_open_file_limit_above_what_hosts_allow(services: dict, name: str) -> None:
    """`ulimits: nofile` above the host's hard limit stops a container from starting
    at all (\"error setting rlimit\"); this machine's is 20000. Elasticsearch keeps the
    daemon's limit; nginx asks for 16384 (its worker_rlimit_nofile)."""
    nofile = services[name].get("ulimits", {}).get("nofile")
    if name.startswith("nginx"):
        assert nofile == {"soft": 16384, "hard": 16384}
        assert "worker_rlimit_nofile 16384;" in NGINX_TEMPLATE.read_text(encoding="utf-8")
    else:
        assert nofile is None, f"{name} asks for nofile {nofile}"

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


def test_the_app_waits_for_elasticsearch_its_user_and_the_first_indexing(services: dict) -> None:
    depends = services["app"]["depends_on"]
    assert isinstance(depends, dict), "the short list form cannot wait for health"
    assert depends == {
        "elasticsearch": {"condition": "service_healthy"},
        "es-setup": {"condition": "service_completed_successfully"},
        "index-on-up": {"condition": "service_completed_successfully"},
    }
    # es-setup needs a healthy node; the indexers need their user.
    assert services["es-setup"]["depends_on"] == {"elasticsearch": {"condition": "service_healthy"}}
    for name in ("indexer", "index-on-up"):
        assert services[name]["depends_on"] == {"es-setup": {"condition": "service_completed_successfully"}}, name


def test_es_setup_creates_both_roles_and_users_as_the_superuser(services: dict) -> None:
    setup = services["es-setup"]
    assert command_words(setup) == ["python", "deploy/es_setup.py"]
    assert setup["image"] == services["app"]["image"] and setup["build"] == services["app"]["build"]
    env = environment(setup)
    assert env["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password"
    assert env["APP_PASSWORD_FILE"] == "/run/secrets/app_password"
    assert env["INDEXER_PASSWORD_FILE"] == "/run/secrets/indexer_password"
    assert env["ELASTICSEARCH_URL"] == environment(services["app"])["ELASTICSEARCH_URL"]
    assert env["SEARCH_INDEX"] == environment(services["app"])["SEARCH_INDEX"]
    # Copied into the image, which runs it.
    assert "COPY deploy/es_setup.py deploy/es_setup.py" in DOCKERFILE.read_text(encoding="utf-8")


def test_es_setup_roles_are_the_least_each_client_needs() -> None:
    """The reader can read the alias's indices and nothing else; the writer can build,
    swap and delete them and nothing else; both only on `<index>` and `<index>-*`.
    (scripts/compose-test.sh checks what Elasticsearch makes of them: 403s.)"""
    import importlib.util

    spec = importlib.util.spec_from_file_location("es_setup", ES_SETUP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    roles = module.roles("news")
    reader, writer = roles[module.READER_ROLE], roles[module.WRITER_ROLE]
    for role in (reader, writer):
        # `monitor`: cluster health, read-only. Nothing that manages the cluster or security.
        assert role["cluster"] == ["monitor"]
        assert [i["names"] for i in role["indices"]] == [["news", "news-*"]]
        assert set(role) == {"cluster", "indices"}
    assert set(reader["indices"][0]["privileges"]) == {"read", "view_index_metadata"}
    assert set(writer["indices"][0]["privileges"]) == {
        "create_index", "delete_index", "manage", "write", "read", "view_index_metadata"
    }
    assert module.roles("other")[module.READER_ROLE]["indices"][0]["names"] == ["other", "other-*"]


def test_index_on_up_indexes_posts_dir_only_when_set(compose: dict, services: dict) -> None:
    svc = services["index-on-up"]
    assert "profiles" not in svc, "it runs on every `up`"
    posts = [m for m in mounts(svc) if m.target == "/posts"]
    # Without POSTS_DIR: an always-empty named volume, so it exits at once.
    assert posts == [Mount("${POSTS_DIR:-no-posts}", "/posts", True)]
    assert "no-posts" in compose["volumes"]
    script = " ".join(command_words(svc))
    assert 'ls -A /posts' in script and "indexer index /posts" in script
    # Some posts rejected (exit 1) does not keep the app from starting.
    assert '"$$status" -eq 1' in script
    assert environment(svc) == environment(services["indexer"])
    assert {m.source for m in mounts(svc) if m.target == "/data"} == {"app-data"}

def test_app_healthcheck_hits_healthz_without_curl(services: dict) -> None:
    words = healthcheck_words(services["app"])
    assert words[0] in ("CMD", "CMD-SHELL")
    joined = " ".join(words)
    assert re.search(r"http://(127\.0\.0\.1|localhost):8000/healthz", joined)
    # The python:3.11-slim image has neither curl nor wget.
    assert "curl" not in joined and "wget" not in joined
    assert words[1].startswith("python")
    # /healthz is 200 without an index (tests/test_resilience.py): a fresh `up` is healthy.
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "with or\n      # without an index" in text

def test_app_runs_the_images_gunicorn_and_is_not_published(services: dict) -> None:
    app = services["app"]
    # No command of its own: the image's CMD (gunicorn -c deploy/gunicorn.conf.py).
    assert "command" not in app
    # Reachable on the compose network only; readers go through nginx.
    assert "ports" not in app
    assert environment(app)["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert app["restart"] == "unless-stopped"
    # Not root: the image's user, in group 0 for the secret file.
    assert app["user"] == "10001:0"

def test_nginx_is_the_only_door_for_readers(services: dict) -> None:
    nginx = services["nginx"]
    assert nginx["ports"] == ["127.0.0.1:${NEWSEARCH_HTTP_PORT:-8000}:8080"]
    env = environment(nginx)
    assert env["NGINX_LISTEN"] == "8080"  # unprivileged: no NET_BIND_SERVICE
    assert env["NGINX_UPSTREAM"] == "app:" + environment(services["app"])["GUNICORN_BIND"].rsplit(":", 1)[1]
    assert nginx["depends_on"]["app"]["condition"] == "service_healthy"
    assert nginx["restart"] == "unless-stopped"
    user = str(nginx.get("user", "")).split(":")[0]
    assert user and user not in ("root", "0"), "nginx runs as root"
    assert re.match(r"^\$\{NGINX_IMAGE:-nginx:1\.\d+", nginx["image"])
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
    assert services["elasticsearch"]["ports"] == ["127.0.0.1:${NEWSEARCH_ES_PORT:-9200}:9200"]
    # The cluster's nodes publish nothing: the operator reaches them with `exec`.
    assert all(not services[n].get("ports") for n in CLUSTER_NODES)

def test_app_and_indexer_share_one_configuration(services: dict) -> None:
    app_env, indexer_env = environment(services["app"]), environment(services["indexer"])
    # The app has its serving settings on top, each its own login; the rest is the same.
    assert set(app_env) - set(indexer_env) <= SERVING_ENV
    shared = lambda env: {k: v for k, v in env.items() if k not in SERVING_ENV | LOGIN_ENV}  # noqa: E731
    assert shared(app_env) == shared(indexer_env)
    assert set(shared(app_env)) == REQUIRED_APP_ENV
    assert app_env["SEARCH_ENGINE"] == "elasticsearch"
    # The URL names the compose service, so it resolves inside the compose network.
    assert urlparse(app_env["ELASTICSEARCH_URL"]).hostname == "elasticsearch"

def test_environment_is_declared_once_through_an_anchor() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert re.search(r"^x-app-env: &app-env$", text, re.MULTILINE)
    for key in REQUIRED_APP_ENV - {"ELASTICSEARCH_URL"}:
        # Once in x-app-env; SEARCH_INDEX again for es-setup and es-setup-cluster,
        # which share no login with the clients.
        expected = 3 if key == "SEARCH_INDEX" else 1
        assert len(re.findall(rf"^\s*{key}:", text, re.MULTILINE)) == expected, key
    # The logins, once each.
    assert re.search(r"^x-app-login: &app-login$", text, re.MULTILINE)
    assert re.search(r"^x-indexer-login: &indexer-login$", text, re.MULTILINE)
    # The app and index-on-up... merge x-app-env with their login; the cluster's
    # settings merge it under their overrides.
    assert len(re.findall(r"^\s+<<: \[\*app-env, \*indexer-login\]$", text, re.MULTILINE)) == 2
    assert len(re.findall(r"^\s+<<: \[\*app-env, \*app-login\]$", text, re.MULTILINE)) == 1
    assert re.search(r"^x-cluster-env: &cluster-env\n  <<: \*app-env$", text, re.MULTILINE)
    assert len(re.findall(r"^\s+<<: \[\*cluster-env, \*(app|indexer)-login\]$", text, re.MULTILINE)) == 2

def test_app_and_indexer_run_the_same_image(services: dict) -> None:
    for name in ("indexer", "es-setup", "index-on-up"):
        assert services[name]["build"] == services["app"]["build"], name
        assert services[name]["image"] == services["app"]["image"] == APP_IMAGE, name
    build = services["app"]["build"]
    assert build["context"] == "."
    # Production builds on the official images; CI passes its local base.
    assert build["args"] == {"PYTHON_IMAGE": "${PYTHON_IMAGE:-python:3.11-slim}", "NODE_IMAGE": "${NODE_IMAGE:-node:20-slim}"}

def test_named_volumes_are_declared_and_used(compose: dict, services: dict) -> None:
    declared = set(compose.get("volumes") or {})
    used = {m.source for svc in services.values() for m in mounts(svc) if m.is_named_volume}
    # no-posts is index-on-up's default source (${POSTS_DIR:-no-posts}).
    assert declared == used | {"no-posts"}
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
    env = compose_env(POSTS_DIR=str(tmp_path))
    rendered = subprocess.run(
        compose_config(tmp_path, profiles=("cluster",)), env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    normalized = yaml.safe_load(rendered.stdout)["services"]
    # Every node takes the password from the secret (each may be the one that first
    # sets it); the cluster's clients log in as their own users.
    for node in CLUSTER_NODES:
        assert environment(normalized[node])["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password"
        assert [s["source"] for s in normalized[node]["secrets"]] == ["elastic_password"]
    assert environment(normalized["app-cluster"])["ELASTICSEARCH_USERNAME"] == "newsearch_app"
    assert environment(normalized["indexer-cluster"])["ELASTICSEARCH_USERNAME"] == "newsearch_indexer"

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
    assert env["ELASTIC_PASSWORD_FILE"] == "/run/secrets/elastic_password" and "ELASTIC_PASSWORD" not in env
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
        assert node.get(key) == single.get(key), key
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


@pytest.mark.parametrize("name", ["app-cluster", "indexer-cluster", "es-setup-cluster"])
def test_cluster_clients_wait_for_and_list_all_three_nodes(services: dict, name: str) -> None:
    svc = services[name]
    # Directly, or through es-setup-cluster, which waits for all three.
    waits = svc["depends_on"]
    if name != "es-setup-cluster":
        assert waits["es-setup-cluster"] == {"condition": "service_completed_successfully"}
        waits = {**waits, **services["es-setup-cluster"]["depends_on"]}
    for node in CLUSTER_NODES:
        assert waits[node]["condition"] == "service_healthy", node
    assert "elasticsearch" not in waits and "es-setup" not in waits
    env = environment(svc)
    urls = env["ELASTICSEARCH_URL"].split(",")
    assert [urlparse(u).hostname for u in urls] == list(CLUSTER_NODES)
    assert all(urlparse(u).port == 9200 and urlparse(u).scheme == "http" for u in urls)
    if name == "es-setup-cluster":
        return
    # The app reads the list and the layout as the compose file means them.
    from searchcore.config import load_settings

    settings = load_settings({k: v for k, v in env.items() if k != "ELASTICSEARCH_PASSWORD_FILE"})
    assert settings.elasticsearch_hosts == urls
    assert settings.search_shards == 3
    # One replica: any single node can go without losing a shard.
    assert settings.elasticsearch_replicas == 1 < len(CLUSTER_NODES)

def test_cluster_clients_share_the_single_nodes_configuration(services: dict) -> None:
    app, indexer = environment(services["app-cluster"]), environment(services["indexer-cluster"])
    single_app, single_indexer = environment(services["app"]), environment(services["indexer"])
    # Only the cluster settings differ from the single node's clients; serving and logins are the same.
    assert set(app) == set(single_app) | {"SEARCH_SHARDS", "SEARCH_REPLICAS"}
    assert {k: v for k, v in app.items() if k not in CLUSTER_CLIENT_ENV} == {
        k: v for k, v in single_app.items() if k not in CLUSTER_CLIENT_ENV
    }
    assert {k: v for k, v in indexer.items() if k not in CLUSTER_CLIENT_ENV} == {
        k: v for k, v in single_indexer.items() if k not in CLUSTER_CLIENT_ENV
    }
    shared = lambda env: {k: v for k, v in env.items() if k not in SERVING_ENV | LOGIN_ENV}  # noqa: E731
    assert shared(app) == shared(indexer)
    for key in ("build", "image", "command", "healthcheck", "mem_limit", "cpus", "pids_limit", "tmpfs", "user", "secrets"):
        assert services["app-cluster"].get(key) == services["app"].get(key), key
        assert services["indexer-cluster"].get(key) == services["indexer"].get(key), key
    setup, single_setup = environment(services["es-setup-cluster"]), environment(services["es-setup"])
    assert {k: v for k, v in setup.items() if k != "ELASTICSEARCH_URL"} == {
        k: v for k, v in single_setup.items() if k != "ELASTICSEARCH_URL"
    }

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
    assert nginx["ports"] == ["127.0.0.1:${NEWSEARCH_CLUSTER_HTTP_PORT:-8001}:8080"]
    assert "ports" not in services["app-cluster"]
    for key in ("image", "user", "command", "volumes", "healthcheck", "read_only", "tmpfs"):
        assert nginx[key] == single[key], key


# ---------------------------------------------------------------------------
# deploy/compose.cluster-loopback.yml: the cluster profile where the host cannot
# meet the bootstrap checks (CI)
# ---------------------------------------------------------------------------

# What the override may set on a node: its networking, the health check on its own
# port, and the wait for the namespace's holder. Nothing about images, security,
# TLS, limits, data or the cluster's membership.
LOOPBACK_NODE_KEYS = {"network_mode", "environment", "healthcheck", "depends_on"}
LOOPBACK_NODE_ENV = {"transport.host", "transport.port", "http.port", "discovery.seed_hosts"}


@pytest.fixture(scope="module")
def loopback() -> dict:
    return yaml.safe_load(LOOPBACK_FILE.read_text(encoding="utf-8"))["services"]


def test_loopback_override_changes_only_the_nodes_networking(loopback: dict, services: dict) -> None:
    assert set(loopback) == {"es-pod", *CLUSTER_NODES, "es-setup-cluster", "app-cluster", "indexer-cluster"}
    ports = set()
    for i, name in enumerate(CLUSTER_NODES, start=1):
        node = loopback[name]
        assert set(node) <= LOOPBACK_NODE_KEYS, set(node) - LOOPBACK_NODE_KEYS
        assert node["network_mode"] == "service:es-pod"
        env = environment(node)
        assert set(env) == LOOPBACK_NODE_ENV, set(env)
        # Transport on loopback: Elasticsearch then skips its bootstrap checks.
        assert env["transport.host"] == "127.0.0.1"
        assert env["discovery.seed_hosts"] == "127.0.0.1:9301,127.0.0.1:9302,127.0.0.1:9303"
        assert (env["http.port"], env["transport.port"]) == (f"920{i}", f"930{i}")
        ports.add(env["http.port"])
        # The same health check, on its own port.
        single = " ".join(healthcheck_words(services["elasticsearch"]))
        assert " ".join(healthcheck_words(node)) == single.replace("127.0.0.1:9200", f"127.0.0.1:920{i}")
        assert node["depends_on"] == {"es-pod": {"condition": "service_started"}}
    urls = "http://es-pod:9201,http://es-pod:9202,http://es-pod:9203"
    for name in ("es-setup-cluster", "app-cluster", "indexer-cluster"):
        assert loopback[name] == {"environment": {"ELASTICSEARCH_URL": urls}}, name
    pod = loopback["es-pod"]
    assert pod["profiles"] == ["cluster"] and command_words(pod) == ["sleep", "infinity"]
    assert pod["image"] == services["elasticsearch"]["image"]
    assert pod["cap_drop"] == ["ALL"] and pod["read_only"] is True and "ports" not in pod


@needs_docker_compose
def test_docker_compose_merges_the_loopback_override(tmp_path: Path) -> None:
    rendered = subprocess.run(
        compose_config(tmp_path, COMPOSE_FILE, LOOPBACK_FILE, profiles=("cluster",)),
        env=compose_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    merged = yaml.safe_load(rendered.stdout)["services"]
    plain = yaml.safe_load(
        subprocess.run(
            compose_config(tmp_path, profiles=("cluster",)), env=compose_env(), cwd=ROOT, capture_output=True, text=True
        ).stdout
    )["services"]
    for name in CLUSTER_NODES:
        node, before = merged[name], plain[name]
        assert node["network_mode"] == "service:es-pod"
        # Security, TLS, certificates, image, limits, data: as written.
        same = {k: v for k, v in environment(before).items() if k not in LOOPBACK_NODE_ENV}
        assert {k: v for k, v in environment(node).items() if k in same} == same
        for key in ("image", "volumes", "secrets", "mem_limit", "cpus", "pids_limit", "cap_drop", "security_opt"):
            got, want = node.get(key), before.get(key)
            if isinstance(want, list):
                got, want = sorted(map(str, got or [])), sorted(map(str, want))
            assert got == want, (name, key)

# ---------------------------------------------------------------------------
# Dockerfile
# ---------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)
    # The FROM line as written (``${PYTHON_IMAGE}``), when ``base`` resolved an ARG.
    written: str = ""

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
    global_args: dict[str, str] = {}
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = args.split()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            # A base named by a global ARG is its default, as `docker build` resolves it.
            base = re.sub(r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            stages.append(Stage(base, name, written=words[0]))
        elif keyword == "ARG" and not stages:
            arg, _, default = args.partition("=")
            global_args[arg] = default
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
    # By default the official images (production); build arguments name others (CI's
    # local Debian base), the same ones docker-compose.yml passes.
    assert node.base.startswith("node:20") and node.name
    assert final.base == "python:3.11-slim"
    assert (node.written, final.written) == ("${NODE_IMAGE}", "${PYTHON_IMAGE}")


def test_parse_dockerfile_resolves_base_arguments() -> None:
    parsed = parse_dockerfile("ARG BASE=debian:12\nFROM ${BASE} AS x\nRUN true\n")
    assert (parsed[0].base, parsed[0].written, parsed[0].name) == ("debian:12", "${BASE}", "x")


def test_builds_take_prefetched_files_when_there_are_some(stages: list[Stage]) -> None:
    """Where HTTPS cannot be reached from a build container (CI), deploy/offline/
    holds the wheels and htmx: the build installs from there and nothing else."""
    node, final = stages[0], stages[-1]
    assert any(a.split()[0] == "deploy/offline/" for a in node.args_of("COPY"))
    assert "/offline/htmx.min.js" in " ".join(node.args_of("RUN"))
    install = " ".join(final.args_of("RUN"))
    assert "--no-index --find-links /tmp/offline/wheels" in install
    assert "rm -rf /tmp/offline" in install
    offline = {p.name for p in (ROOT / "deploy" / "offline").iterdir()} - {"wheels", "htmx.min.js"}
    assert offline == {"README.md"}, offline
    ignored = GITIGNORE.read_text(encoding="utf-8")
    assert "deploy/offline/*" in ignored and "!deploy/offline/README.md" in ignored


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

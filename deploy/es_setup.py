"""Create the Elasticsearch roles and users that the app and the indexer log in with.

Run once per `docker compose up` by the `es-setup` service (and again by every
indexer run, which depends on it); idempotent: each role and user is written with
PUT, which creates it or brings it back to what is declared here (privileges,
password from its secret file). Nobody but this script and the operator uses the
`elastic` superuser: the app reads with `newsearch_app` and the indexer writes with
`newsearch_indexer`.

- `newsearch_reader` (the app's role): read the alias and the versioned indices
  behind it (`news`, `news-*` for SEARCH_INDEX=news) and their mappings and
  aliases (`view_index_metadata`: the app checks which index the alias names and
  that its schema is current), plus the cluster's `monitor` (read-only: the
  health check asks for the cluster's health). Nothing that writes, deletes or
  creates.
- `newsearch_writer` (the indexer's role): everything on those names that a build
  or a reindex does: create an index, write documents, refresh and change its
  settings, move the alias (`manage` on the index and on the alias), delete the
  index the alias left; `monitor` to wait for green.

Secrets come from files (Docker secrets under /run/secrets): ELASTIC_PASSWORD_FILE
(the superuser, needed to manage security), APP_PASSWORD_FILE and
INDEXER_PASSWORD_FILE. They are never passed on a command line or in the
environment. Only the standard library: it runs in the app's image.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

READER_ROLE = "newsearch_reader"
WRITER_ROLE = "newsearch_writer"
APP_USER = "newsearch_app"
INDEXER_USER = "newsearch_indexer"


def roles(index: str) -> dict[str, dict[str, Any]]:
    """The two roles, for the alias `index` and its versioned indices `index-*`."""
    names = [index, f"{index}-*"]
    return {
        READER_ROLE: {
            "cluster": ["monitor"],
            "indices": [{"names": names, "privileges": ["read", "view_index_metadata"]}],
        },
        WRITER_ROLE: {
            "cluster": ["monitor"],
            "indices": [
                {
                    "names": names,
                    "privileges": ["create_index", "delete_index", "manage", "write", "read", "view_index_metadata"],
                }
            ],
        },
    }


def read_secret(variable: str) -> str:
    """The secret in the file that `variable` names; exits with the fix when it cannot."""
    path = os.environ.get(variable)
    if not path:
        sys.exit(f"es-setup: {variable} is not set (the file that holds the secret)")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        sys.exit(f"es-setup: cannot read {variable}={path}: {exc.strerror} (create the secrets: scripts/compose-secrets.sh)")
    if len(value) < 6:
        sys.exit(f"es-setup: {path} holds no usable password (Elasticsearch wants at least 6 characters)")
    return value


class Cluster:
    """Just enough HTTP for the security API, as `elastic`, over the nodes in
    ELASTICSEARCH_URL (the next one when one cannot be reached)."""

    def __init__(self, urls: list[str], password: str) -> None:
        self.urls = urls
        token = base64.b64encode(f"elastic:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        data = json.dumps(body).encode() if body is not None else None
        last: Exception | None = None
        for url in self.urls:
            request = urllib.request.Request(url.rstrip("/") + path, data=data, method=method, headers=self.headers)
            try:
                with urllib.request.urlopen(request, timeout=30) as resp:
                    return resp.status, json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                return exc.code, json.loads(exc.read() or b"{}")
            except (urllib.error.URLError, OSError) as exc:
                last = exc
        raise ConnectionError(f"no node of {', '.join(self.urls)} answered: {last}")

    def wait(self, timeout: float) -> None:
        """Until a node answers as `elastic` (compose starts this after the node is
        healthy; a plain `run` may not wait)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                status, body = self.call("GET", "/_security/_authenticate")
            except ConnectionError as exc:
                if time.monotonic() > deadline:
                    sys.exit(f"es-setup: {exc}")
                time.sleep(2)
                continue
            if status == 200:
                return
            if status == 401:
                sys.exit(
                    "es-setup: Elasticsearch refuses the `elastic` password in ELASTIC_PASSWORD_FILE. The node took "
                    "the password from that file on the first start of its data volume; if the file changed since, "
                    "put the old one back or reset it (bin/elasticsearch-reset-password -u elastic in the container)."
                )
            if time.monotonic() > deadline:
                sys.exit(f"es-setup: /_security/_authenticate answered {status}: {body}")
            time.sleep(2)


def put(cluster: Cluster, path: str, body: dict[str, Any], what: str) -> None:
    status, answer = cluster.call("PUT", path, body)
    if status != 200:
        sys.exit(f"es-setup: could not write {what}: {status} {answer}")
    created = answer.get("created", answer.get("role", {}).get("created"))
    print(f"es-setup: {what} {'created' if created else 'up to date'}", flush=True)


def main() -> int:
    urls = [u.strip() for u in os.environ.get("ELASTICSEARCH_URL", "http://elasticsearch:9200").split(",") if u.strip()]
    index = (os.environ.get("SEARCH_INDEX") or "news").strip()
    cluster = Cluster(urls, read_secret("ELASTIC_PASSWORD_FILE"))
    cluster.wait(float(os.environ.get("ES_SETUP_TIMEOUT", "180")))
    for name, body in roles(index).items():
        put(cluster, f"/_security/role/{name}", body, f"role {name} ({index}, {index}-*)")
    users = ((APP_USER, READER_ROLE, "APP_PASSWORD_FILE"), (INDEXER_USER, WRITER_ROLE, "INDEXER_PASSWORD_FILE"))
    for user, role, secret in users:
        body = {"password": read_secret(secret), "roles": [role], "full_name": f"newsearch ({role})"}
        put(cluster, f"/_security/user/{user}", body, f"user {user} with role {role}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

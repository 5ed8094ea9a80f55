"""Real Elasticsearch 9.x nodes for tests and CI: one single node, or a local
cluster of N nodes on 127.0.0.1 for the cluster test (tests/test_es_cluster.py,
scripts/cluster-test.sh). ``scripts/es-node.sh`` runs this package (``python3 -P
-m devtools.esnode``); ``--help`` there lists the commands and the environment
variables (``cli.USAGE``).

The node is the test distribution that Elastic publishes on Maven Central
(org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip). It
has no bundled JDK and only a handful of modules, so it is small and starts
quickly; it is meant for tests, never for production (docker-compose.yml runs an
image there). Elasticsearch refuses to run as root: as root, the node runs as an
unprivileged user (useradd, runuser).

It only ever uses, stops or reports a node it started itself: one whose pid file
in its own data folder names a live Elasticsearch that answers on the node's port
with that pid and the node's cluster name (``Node.ours_answering``). Another node
on the port (a developer's own cluster, someone else's test node) is never
adopted: without ES_PORT it starts its own on the next free port, with ES_PORT it
stops with an error. A cluster follows the same rules per node; its cluster name
is never the single node's, so the two can never join each other, and its folders
are apart from the single node's ($ES_HOME_CACHE/cluster-<name>-<version>/node-K).

Progress goes to stderr; ``start`` and ``url`` print only the URL(s) on stdout, so
``ES_URL=$(scripts/es-node.sh start)`` works. Exit status: 0, 1 an error (said on
stderr with what to do), 2 a usage error, 3 not running (status, url).

Standard library only: it runs with any python3 >= 3.11, before any venv exists.
"""

from .config import DEFAULT_ES_VERSION as DEFAULT_ES_VERSION

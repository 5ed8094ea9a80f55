#!/usr/bin/env bash
# Run every test on a fresh machine: install (scripts/setup.sh), start a real
# Elasticsearch node where Java and Maven exist (scripts/es-node.sh), lint, then
# pytest over both engines, the web app and a real browser. Extra arguments go to
# pytest, e.g. scripts/test.sh -k contract
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
. .venv/bin/activate

# The tests create and delete indices: they run against a node named explicitly
# (ELASTICSEARCH_URL) or one that scripts/es-node.sh started, never against
# whatever happens to answer on port 9200 (es-node.sh takes another port then).
started_es=""
es_port=""
cleanup() { if [ -n "$started_es" ]; then ES_PORT="$es_port" scripts/es-node.sh stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

if [ -z "${ELASTICSEARCH_URL:-}" ] && [ "${SKIP_ELASTICSEARCH:-0}" != "1" ]; then
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    # A node es-node.sh started earlier is reused and left running; only a node
    # started here is stopped at the end, and only that one may be restarted by
    # the fault tests (others may be using the earlier one).
    reused=""
    if scripts/es-node.sh status >/dev/null 2>&1; then reused=1; fi
    if url=$(scripts/es-node.sh start); then
      export ELASTICSEARCH_URL="$url"
      es_port="${url##*:}"
      es_port="${es_port%/}"
      if [ -z "$reused" ]; then
        started_es=1
        export ES_NODE_MANAGED=1 # tests may restart this node (fault tests)
      else
        echo "test: using the Elasticsearch node es-node.sh started earlier at $url (left running; fault tests skipped)" >&2
      fi
    elif [ "${CI:-}" = "true" ]; then
      echo "test: Elasticsearch did not start; CI requires it" >&2
      exit 1
    else
      echo "test: WARNING Elasticsearch did not start: the engine suite runs on tantivy alone" >&2
    fi
  else
    echo "test: WARNING no Java/Maven here: the engine suite runs on tantivy alone (install a JDK and Maven to test Elasticsearch)" >&2
  fi
fi

echo "test: ruff"
ruff check .
echo "test: pytest (ELASTICSEARCH_URL=${ELASTICSEARCH_URL:-none})"
python -m pytest -p no:cacheprovider "$@"

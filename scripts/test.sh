#!/usr/bin/env bash
# Run every test on a fresh machine: install (scripts/setup.sh), start a real
# Elasticsearch node where Java and Maven exist (scripts/es-node.sh), lint, then
# pytest over both engines, the web app and a real browser. Extra arguments go to
# pytest, e.g. scripts/test.sh -k contract
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
. .venv/bin/activate

started_es=""
cleanup() { if [ -n "$started_es" ]; then scripts/es-node.sh stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

if [ -z "${ELASTICSEARCH_URL:-}" ] && [ "${SKIP_ELASTICSEARCH:-0}" != "1" ]; then
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    if url=$(scripts/es-node.sh start); then
      export ELASTICSEARCH_URL="$url"
      export ES_NODE_MANAGED=1  # tests may restart this node (fault tests)
      started_es=1
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

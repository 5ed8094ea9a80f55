#!/usr/bin/env bash
# The cluster test (issue 15, item 2): start a local 3-node Elasticsearch cluster
# (scripts/es-node.sh start --nodes 3), run tests/test_es_cluster.py on it (nodes
# stopped and restarted while readers search, a reindex during a node stop), and
# always stop the cluster and delete its data at the end. .ci/run calls it after
# scripts/test.sh; a developer can run it as is:
#
#   scripts/cluster-test.sh            # extra arguments go to pytest, e.g. -k reindex
#
# The cluster is this run's own (ES_CLUSTER_NAME=newsearch-ci-<pid> unless set):
# the test stops nodes, so it never runs on a cluster someone else started. The
# test's log (searches during each stop, errors, time to green) goes to stdout
# and to $ES_CLUSTER_LOG. Bounded in time: the start by ES_START_TIMEOUT, pytest by
# CLUSTER_TEST_TIMEOUT seconds [900], the stop by es-node.sh's own timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

export ES_CLUSTER_NAME="${ES_CLUSTER_NAME:-newsearch-ci-$$}"
export ES_CLUSTER_LOG="${ES_CLUSTER_LOG:-${TMPDIR:-/tmp}/$ES_CLUSTER_NAME.log}"
CLUSTER_TEST_TIMEOUT="${CLUSTER_TEST_TIMEOUT:-900}"
NODES=3
started=$SECONDS

say() { printf 'cluster-test: %s\n' "$*" >&2; }

if [ ! -x .venv/bin/python ]; then
  say "no .venv here; installing (scripts/setup.sh)"
  scripts/setup.sh
fi

if scripts/es-node.sh url --cluster >/dev/null 2>&1; then
  say "cluster $ES_CLUSTER_NAME is already running: this test stops its nodes, so it only runs on a cluster of its own; stop that one (scripts/es-node.sh stop --cluster) or choose another ES_CLUSTER_NAME"
  exit 1
fi

own_cluster=""
cleanup() {
  if [ -n "$own_cluster" ]; then
    scripts/es-node.sh stop --cluster --purge >&2 || say "WARNING: could not stop cluster $ES_CLUSTER_NAME"
  fi
  say "wall time $((SECONDS - started)) s (log: $ES_CLUSTER_LOG)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

: >"$ES_CLUSTER_LOG"
own_cluster=1
say "starting a $NODES-node cluster $ES_CLUSTER_NAME"
urls=$(scripts/es-node.sh start --nodes "$NODES")
say "cluster up after $((SECONDS - started)) s: $urls"

export ES_CLUSTER_URL="$urls" ES_CLUSTER_MANAGED=1
# The test asks for its own nodes; a single node from the environment is not its.
unset ELASTICSEARCH_URL
out="${ES_CLUSTER_LOG%.log}.pytest.txt"
status=0
timeout --signal=TERM --kill-after=30 "$CLUSTER_TEST_TIMEOUT" \
  .venv/bin/python -m pytest -p no:cacheprovider -s -rs tests/test_es_cluster.py "$@" 2>&1 | tee "$out" || status=$?
if [ "$status" -eq 124 ]; then
  say "FAILED: pytest did not finish in ${CLUSTER_TEST_TIMEOUT}s (CLUSTER_TEST_TIMEOUT)"
elif [ "$status" -eq 0 ] && grep -q "skipped" "$out"; then
  say "FAILED: the cluster test skipped instead of running"
  status=1
fi
[ "$status" -eq 0 ] && say "passed" || say "FAILED (exit $status)"
exit "$status"

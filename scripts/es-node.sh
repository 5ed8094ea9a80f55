#!/usr/bin/env bash
# Manage a real single-node Elasticsearch 9.x for tests and CI, or (with
# `start --nodes N`) a local cluster of N nodes on 127.0.0.1 for the cluster test
# (tests/test_es_cluster.py, scripts/cluster-test.sh). `scripts/es-node.sh --help`
# lists the commands and the environment variables.
#
# The work is done by the Python package devtools/esnode (one Node object per
# node, the cluster a list of them, JSON read as JSON); this wrapper only finds
# a python3 and runs it. That package uses the standard library alone, so any
# python3 >= 3.11 will do, before the project's venv exists: CI calls this
# script on a clean machine. PYTHONPATH names this checkout and -P keeps the
# current folder off sys.path, so the package run is always this checkout's,
# wherever the script is called from.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=python3

if ! command -v "$python" >/dev/null 2>&1; then
    echo "es-node: error: $python not found: install Python 3.11 or later (apt-get install python3)" >&2
    exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "es-node: error: $("$python" -V 2>&1) is too old: devtools/esnode needs Python 3.11 or later" >&2
    exit 1
fi

PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -P -m devtools.esnode "$@"

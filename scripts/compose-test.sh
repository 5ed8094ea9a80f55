#!/usr/bin/env bash
# docker-compose for real (issue 20): build every image locally, bring the stack up
# on empty volumes, index, check least privilege and hardening, restart each
# service, down and up, index on up, and the cluster profile; each step timed;
# everything it made cleaned up (scripts/compose_test.py does the work; its --help
# lists the steps). .ci/run calls it after the test suite; a developer can run it
# as root on a machine with Debian's packages:
#
#   scripts/compose-test.sh                       # the whole run, as CI does it
#   scripts/compose-test.sh --keep-images         # leave the images for a rerun
#   scripts/compose-test.sh --keep-images --reuse-images --no-cluster
#
# It installs docker.io, docker-compose and mmdebstrap from Debian where they are
# missing and starts dockerd itself when none answers (stopping it at the end).
# Where Docker cannot run (not root, no apt-get, no daemon can start) it says so
# and exits 0; with --require (or COMPOSE_TEST_REQUIRED=1) it exits 77 instead.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    echo "compose-test: no .venv here; installing (scripts/setup.sh)" >&2
    scripts/setup.sh
fi
args=("$@")
if [ "${COMPOSE_TEST_REQUIRED:-0}" = 1 ]; then args+=(--require); fi
exec .venv/bin/python scripts/compose_test.py "${args[@]}"

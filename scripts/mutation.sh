#!/usr/bin/env bash
# Mutation testing: how many small bugs planted in searchcore/ and indexer/ the
# fast tests notice. Not run by CI (too slow); see docs/testing.md.
#
#   scripts/mutation.sh                      searchcore/search.py, facets.py, query.py and posts.py
#   scripts/mutation.sh searchcore/highlight.py indexer/manifest.py
#   scripts/mutation.sh --all                every module of searchcore/ and indexer/
#   scripts/mutation.sh --children 1 ...     mutants run at once (default 2: the machine has 2 cores)
#   scripts/mutation.sh --tests "tests/test_posts.py tests/test_analysis.py" ...
#
# Installs mutmut (3.x) into the project's venv if it is missing, copies the working
# tree (less .git, .venv, node_modules, data) into $MUTATION_DIR (default
# /tmp/newsearch-mutation) and runs there: the work tree is never touched. Tests run
# on tantivy alone (Elasticsearch variables unset, -k "not elasticsearch and not
# browser"; test_user_dictionary_adds_words is left out: mutmut runs every test in
# one process, and rjieba's dictionary is process-wide). Prints killed / total, then the surviving mutants; `cd $MUTATION_DIR &&
# mutmut show NAME` shows one as a diff.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=${MUTATION_DIR:-/tmp/newsearch-mutation}
CHILDREN=2
MODULES=()
ALL=0
FAST_TESTS="tests/test_analysis.py tests/test_posts.py tests/test_sanitize.py tests/test_engine_contract.py tests/test_web.py tests/test_edge_cases.py"
TESTS=$FAST_TESTS

while [ $# -gt 0 ]; do
    case "$1" in
        --all) ALL=1 ;;
        --children) CHILDREN=$2; shift ;;
        --tests) TESTS=$2; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) MODULES+=("$1") ;;
    esac
    shift
done
if [ $ALL = 1 ]; then
    MODULES=("searchcore/*" "indexer/*")
elif [ ${#MODULES[@]} = 0 ]; then
    MODULES=(searchcore/search.py searchcore/facets.py searchcore/query.py searchcore/posts.py)
fi

if ! "$PY" -c "import mutmut" 2>/dev/null; then
    echo "installing mutmut into $(dirname "$(dirname "$PY")")"
    "$PY" -m pip install -q "mutmut>=3.8,<4"
fi

echo "copying the work tree to $WORK"
rm -rf "$WORK"
mkdir -p "$WORK"
tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./node_modules --exclude=./data --exclude=./mutants \
    --exclude=__pycache__ --exclude=./.pytest_cache -cf - . | tar -C "$WORK" -xf -

{
    echo "[mutmut]"
    echo "source_paths="
    echo "    searchcore"
    echo "    indexer"
    echo "only_mutate="
    for m in "${MODULES[@]}"; do echo "    $m"; done
    echo "also_copy="
    for d in searchapp templates synthetic devtools; do [ -e "$WORK/$d" ] && echo "    $d"; done
    echo "pytest_add_cli_args="
    printf '    %s\n' -p no:cacheprovider -q -k "not elasticsearch and not browser and not user_dictionary"
    echo "pytest_add_cli_args_test_selection="
    for t in $TESTS; do echo "    $t"; done
} >"$WORK/setup.cfg"
# mutmut reads [tool.mutmut] from pyproject.toml first; the project has none.

echo "mutating: ${MODULES[*]}"
echo "tests: $TESTS (tantivy only)"
start=$(date +%s)
cd "$WORK"
env -u ELASTICSEARCH_URL -u CI -u REQUIRE_ELASTICSEARCH \
    "$PY" -m mutmut run --max-children "$CHILDREN" >"$WORK/mutmut-run.log" 2>&1 || {
    echo "mutmut run failed; see $WORK/mutmut-run.log" >&2
    tail -20 "$WORK/mutmut-run.log" >&2
    exit 1
}
"$PY" -m mutmut export-cicd-stats >/dev/null
"$PY" - "$(($(date +%s) - start))" <<'PY'
import json, sys
s = json.load(open("mutants/mutmut-cicd-stats.json"))
killed = s["killed"] + s["timeout"]  # a mutant that hangs the tests is caught too
total = s["total"] - s["skipped"]
print(f"mutation score: {killed} killed / {total} mutants = {100 * killed / max(total, 1):.1f} %  "
      f"(survived {s['survived']}, no tests {s['no_tests']}, timeout {s['timeout']}, "
      f"suspicious {s['suspicious']}, segfault {s['segfault']}) in {sys.argv[1]} s")
PY
echo "surviving mutants (mutmut show NAME, in $WORK):"
"$PY" -m mutmut results 2>/dev/null | grep -E "survived|no tests" || true

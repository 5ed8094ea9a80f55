#!/usr/bin/env bash
# The product on a fresh machine: install, generate a synthetic corpus, index it into
# the embedded engine (tantivy), and serve the app on 127.0.0.1.
#   scripts/demo.sh [--posts N] [--port P]
set -euo pipefail
cd "$(dirname "$0")/.."

posts=3000
port="${PORT:-8000}"
while [ $# -gt 0 ]; do
  case "$1" in
    --posts) posts="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

scripts/setup.sh --app
. .venv/bin/activate
export SEARCH_ENGINE=tantivy SEARCH_DATA_DIR="${SEARCH_DATA_DIR:-$PWD/data/demo}"
corpus="$SEARCH_DATA_DIR/posts"
if [ ! -d "$corpus" ] || [ "$(find "$corpus" -type f | wc -l)" -lt "$posts" ]; then
  echo "demo: generating $posts synthetic posts in $corpus"
  rm -rf "$corpus"
  python -m synthetic "$corpus" -n "$posts" --seed 7 --broken 0.01
fi
echo "demo: indexing (the few rejected files are the deliberately broken ones)"
rc=0
indexer index "$corpus" || rc=$?
if [ "$rc" -eq 3 ]; then  # e.g. an index left by an older version: rebuild it
  echo "demo: the index could not be updated; rebuilding it with indexer reindex"
  rc=0
  indexer reindex "$corpus" || rc=$?
fi
[ "$rc" -le 1 ] || exit "$rc"
echo
# The production stack (nginx before gunicorn, scripts/serve.sh) where nginx is
# installed (scripts/setup.sh installs it as root); else gunicorn alone, with the
# same settings, which a few slow clients can stall.
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
  exec scripts/serve.sh --port "$port"
fi
echo "demo: WARNING nginx is not installed: serving with gunicorn alone (apt-get install nginx for the production stack)" >&2
echo "demo: open http://127.0.0.1:$port/  (Ctrl-C to stop)"
GUNICORN_BIND="127.0.0.1:$port" exec gunicorn -c deploy/gunicorn.conf.py

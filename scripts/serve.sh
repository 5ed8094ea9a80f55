#!/usr/bin/env bash
# Serve the app the production way without Docker: nginx (a buffering front) before
# gunicorn sync workers, from the same two files docker-compose.yml uses:
# deploy/nginx.conf.template and deploy/gunicorn.conf.py. See docs/deployment.md.
#
#   scripts/serve.sh [--port N] [--host ADDR] [--workers N]
#
# Options:
#   --port N       port nginx listens on [$PORT or 8000]
#   --host ADDR    address nginx listens on [127.0.0.1]; 0.0.0.0 serves other hosts
#   --workers N    gunicorn worker processes [$WEB_CONCURRENCY or 2]
#   -h, --help     this text
#
# The app reads its settings from the environment as everywhere else
# (searchcore/config.py): SEARCH_ENGINE (tantivy, elasticsearch), SEARCH_DATA_DIR
# (the index and ledgers; relative paths are taken from the current folder;
# default: data/ in the repository), SEARCH_INDEX, ELASTICSEARCH_URL, ... To serve
# an index you built:  SEARCH_DATA_DIR=/srv/news-data scripts/serve.sh --port 8080
#
# gunicorn listens on a unix socket in a private run folder (mktemp, removed on
# exit), reachable by nginx only through that folder; nginx's pid and temp files
# go there too, so nothing is written elsewhere and it runs as root or not.
# It waits until /healthz answers through nginx, prints the URL, and stops both
# on Ctrl-C or SIGTERM (exit status 0), or when either of them dies (status 1).
# Environment: SERVE_START_TIMEOUT (seconds to wait for /healthz, 60),
# NGINX (the nginx binary), GUNICORN_TIMEOUT and FORWARDED_ALLOW_IPS (see
# deploy/gunicorn.conf.py).
set -euo pipefail

say() { printf 'serve: %s\n' "$*" >&2; }
die() {
  printf 'serve: error: %s\n' "$*" >&2
  exit 2
}
usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }

caller_dir=$PWD
root=$(cd "$(dirname "$0")/.." && pwd)

port="${PORT:-8000}"
host=127.0.0.1
workers="${WEB_CONCURRENCY:-2}"
while [ $# -gt 0 ]; do
  case "$1" in
    --port) [ $# -ge 2 ] || die "--port needs a number"; port="$2"; shift 2 ;;
    --port=*) port="${1#*=}"; shift ;;
    --host) [ $# -ge 2 ] || die "--host needs an address"; host="$2"; shift 2 ;;
    --host=*) host="${1#*=}"; shift ;;
    --workers) [ $# -ge 2 ] || die "--workers needs a number"; workers="$2"; shift 2 ;;
    --workers=*) workers="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done
[[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || die "--port must be a port number, not '$port'"
[[ $workers =~ ^[0-9]+$ ]] && ((workers >= 1)) || die "--workers must be a positive number, not '$workers'"
[[ $host =~ ^[0-9A-Za-z.:_-]+$ ]] || die "--host must be an address, not '$host'"

# The data folder, as the app would read it from the caller's folder.
data_dir="${SEARCH_DATA_DIR:-$root/data}"
[[ $data_dir == /* ]] || data_dir="$caller_dir/$data_dir"
export SEARCH_DATA_DIR="$data_dir"

cd "$root"
if [ -f .venv/bin/activate ]; then
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
command -v gunicorn >/dev/null 2>&1 || die "gunicorn not found: run scripts/setup.sh (it installs the 'server' extra)"
nginx_bin="${NGINX:-$(command -v nginx || true)}"
# Debian puts nginx in /usr/sbin, which an ordinary user's PATH may lack.
[ -n "$nginx_bin" ] || { [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx; }
[ -n "$nginx_bin" ] && [ -x "$nginx_bin" ] ||
  die "nginx not found: apt-get install nginx (scripts/setup.sh does it when run as root)"

template="$root/deploy/nginx.conf.template"
gunicorn_conf="$root/deploy/gunicorn.conf.py"
run_dir=""
gunicorn_pid=""
nginx_pid=""

stop() {
  trap - INT TERM EXIT
  local pid
  # nginx first, so nothing new reaches gunicorn; QUIT lets it finish answers in flight.
  [ -n "$nginx_pid" ] && kill -QUIT "$nginx_pid" 2>/dev/null || true
  # TERM: gunicorn finishes requests in flight (graceful_timeout), then exits.
  [ -n "$gunicorn_pid" ] && kill -TERM "$gunicorn_pid" 2>/dev/null || true
  for pid in $nginx_pid $gunicorn_pid; do
    for _ in $(seq 1 100); do # 10 s at most each
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ -n "$run_dir" ] && rm -rf "$run_dir"
}
trap 'rc=$?; stop; exit $rc' EXIT
trap 'say "stopping"; stop; exit 0' INT TERM

# A private folder for the socket, nginx's pid and temp files. Mode 755: started
# as root, nginx's workers run as its unprivileged default user and must reach
# the socket. /tmp, not the data folder: a unix socket path has ~100 bytes at most.
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/newsearch-serve.XXXXXX")
[ ${#run_dir} -le 80 ] || {
  rm -rf "$run_dir"
  run_dir=$(mktemp -d /tmp/newsearch-serve.XXXXXX)
}
chmod 755 "$run_dir"

# Render the template exactly as the nginx image's entrypoint does (envsubst of
# the variables given, ${NAME} only; nginx's own $variables pass through).
# Requests are logged to our stdout, which nginx opens by name: that needs write
# permission on what stdout is (not so for a file of another user), so stderr or
# a file in the run folder stand in.
access_log=/dev/stdout
[ -w /dev/stdout ] || access_log=/dev/stderr
[ -w "$access_log" ] || access_log="$run_dir/access.log"
listen="$host:$port"
[[ $host == *:* ]] && listen="[$host]:$port" # an IPv6 address
NGINX_LISTEN="$listen" NGINX_UPSTREAM="unix:$run_dir/gunicorn.sock" NGINX_RUN_DIR="$run_dir" \
  NGINX_ACCESS_LOG="$access_log" python3 - "$template" "$run_dir/nginx.conf" <<'PY'
import os, re, sys
names = ("NGINX_LISTEN", "NGINX_UPSTREAM", "NGINX_RUN_DIR", "NGINX_ACCESS_LOG")
text = open(sys.argv[1], encoding="utf-8").read()
for name in names:
    text = text.replace("${" + name + "}", os.environ[name])
left = sorted(set(re.findall(r"\$\{?[A-Z][A-Z0-9_]*\}?", text)))
if left:
    sys.exit(f"serve: error: {sys.argv[1]} uses variables serve.sh does not set: {', '.join(left)}")
open(sys.argv[2], "w", encoding="utf-8").write(text)
PY
"$nginx_bin" -t -q -e stderr -c "$run_dir/nginx.conf" || die "nginx rejected $run_dir/nginx.conf (rendered from $template)"

say "data: $SEARCH_DATA_DIR (engine ${SEARCH_ENGINE:-tantivy}, index ${SEARCH_INDEX:-news}); $workers gunicorn workers"
GUNICORN_BIND="unix:$run_dir/gunicorn.sock" WEB_CONCURRENCY="$workers" \
  gunicorn -c "$gunicorn_conf" &
gunicorn_pid=$!
# nginx once gunicorn listens, so it never logs a refused first connection.
for _ in $(seq 1 600); do
  [ -S "$run_dir/gunicorn.sock" ] && break
  kill -0 "$gunicorn_pid" 2>/dev/null || die "gunicorn exited during startup (see the messages above)"
  sleep 0.1
done
"$nginx_bin" -e stderr -c "$run_dir/nginx.conf" &
nginx_pid=$!

# Wait until /healthz answers 200 through nginx (the whole chain), or one of the
# two dies, or the time is up. An unhealthy answer (no index yet, engine down) is
# served anyway: the app says so to readers and recovers by itself.
probe_host=$host
[ "$host" = "0.0.0.0" ] && probe_host=127.0.0.1
[ "$host" = "::" ] && probe_host=::1
[[ $probe_host == *:* ]] && probe_host="[$probe_host]"
url="http://$probe_host:$port/"
set +e
python3 - "$url" "${SERVE_START_TIMEOUT:-60}" "$gunicorn_pid" "$nginx_pid" <<'PY'
import os, sys, time, urllib.error, urllib.request
url, timeout, pids = sys.argv[1], float(sys.argv[2]), [int(p) for p in sys.argv[3:]]
deadline, last = time.monotonic() + timeout, None
while time.monotonic() < deadline:
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(1)
    try:
        with urllib.request.urlopen(url + "healthz", timeout=5) as resp:
            sys.exit(0)
    except urllib.error.HTTPError as exc:
        last = f"{exc.code} {exc.read(300).decode('utf-8', 'replace').strip()}"
        if exc.code != 502:  # 502: gunicorn is not listening yet
            time.sleep(0.5)
    except OSError:
        pass
    time.sleep(0.1)
print(f"serve: /healthz answers {last}" if last else "serve: nothing answers", file=sys.stderr)
sys.exit(3 if last is None or last.startswith("502") else 2)
PY
rc=$?
set -e
case $rc in
  0) ;;
  2) say "WARNING: serving, but the app is not healthy yet (see above); is the index built? (indexer index <posts>)" ;;
  1) die "gunicorn or nginx exited during startup (see the messages above)" ;;
  *) die "no healthy answer at $url within ${SERVE_START_TIMEOUT:-60}s" ;;
esac
printf 'serve: open %s  (nginx pid %s, gunicorn pid %s; Ctrl-C to stop)\n' "$url" "$nginx_pid" "$gunicorn_pid" >&2
printf '%s\n' "$url"

# Until one of them exits (then stop the other and fail) or a signal arrives.
set +e
wait -n "$gunicorn_pid" "$nginx_pid"
set -e
say "$(kill -0 "$gunicorn_pid" 2>/dev/null && echo nginx || echo gunicorn) exited; stopping"
exit 1

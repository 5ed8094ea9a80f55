#!/usr/bin/env bash
# Manage a real single-node Elasticsearch 9.x for tests and CI.
#
# The node is the test distribution that Elastic publishes on Maven Central
# (org.elasticsearch.distribution.integ-test-zip:elasticsearch:<version>:zip).
# It has no bundled JDK and only a handful of modules, so it is small and
# starts quickly; it is meant for tests, never for production (docker-compose.yml
# runs the official image there).
#
# Progress goes to stderr; `start` and `url` print only the URL on stdout, so
# `ES_URL=$(scripts/es-node.sh start)` works.
#
# It only ever uses, stops or reports a node it started itself: one whose pid file
# in its own data folder names a live Elasticsearch that answers on the port with
# that pid and the cluster name newsearch-test. Another node on the port (a
# developer's own cluster, someone else's test node) is never adopted: without
# ES_PORT the script takes the next free port, with ES_PORT it stops with an error.
set -euo pipefail

readonly DEFAULT_ES_VERSION=9.5.3
readonly ARTIFACT_GROUP=org.elasticsearch.distribution.integ-test-zip
readonly ARTIFACT_ID=elasticsearch

ES_VERSION="${ES_VERSION:-$DEFAULT_ES_VERSION}"
# ES_PORT given: that port or nothing. Not given: the first of ES_PORT_RANGE ports
# from 9200 where our node runs, else the first one where nothing listens.
ES_PORT_GIVEN=${ES_PORT:+1}
ES_PORT="${ES_PORT:-9200}"
readonly ES_PORT_BASE=$ES_PORT # use_port changes ES_PORT; the candidates stay put
ES_PORT_RANGE="${ES_PORT_RANGE:-20}"
ES_DATA_DIR_GIVEN="${ES_DATA_DIR:-}"
ES_JAVA_HOME="${ES_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
# 1 GB, as docker-compose gives production: Elasticsearch refuses (429) any single
# document over a tenth of the heap in indexing pressure (~4× its bytes), so at 512 MB
# a legal 9 MB post (under --max-bytes) could not be indexed.
ES_JAVA_OPTS="${ES_JAVA_OPTS:--Xms1g -Xmx1g}"
ES_START_TIMEOUT="${ES_START_TIMEOUT:-120}"
ES_STOP_TIMEOUT="${ES_STOP_TIMEOUT:-60}"
# Elasticsearch refuses to run as root; as root we run it as this user.
ES_USER="${ES_USER:-esnode}"

if [[ $(id -u) -eq 0 ]]; then
    # Root's $HOME is usually mode 700, which the unprivileged node user cannot
    # traverse, so root's default cache lives in /var/cache instead.
    ES_HOME_CACHE="${ES_HOME_CACHE:-/var/cache/newsearch-es}"
    RUN_AS_ROOT=1
else
    ES_HOME_CACHE="${ES_HOME_CACHE:-$HOME/.cache/newsearch-es}"
    RUN_AS_ROOT=0
fi
ES_HOME="$ES_HOME_CACHE/elasticsearch-$ES_VERSION"
readonly CLUSTER_NAME=newsearch-test

# Point every per-node path at the node for port $1. One data folder per version
# and port: an index written by a newer version cannot be read by an older one,
# and two nodes must not share a data path.
use_port() {
    ES_PORT=$1
    URL="http://127.0.0.1:$ES_PORT"
    ES_DATA_DIR="${ES_DATA_DIR_GIVEN:-$ES_HOME_CACHE/node-$ES_VERSION-$ES_PORT}"
    PID_FILE="$ES_DATA_DIR/es.pid"
    PORT_FILE="$ES_DATA_DIR/http.port"
    LOG_DIR="$ES_DATA_DIR/logs"
    CONSOLE_LOG="$LOG_DIR/console.log"
}
use_port "$ES_PORT"

usage() {
    cat <<EOF
Usage: ${0##*/} start|stop|status|url|--help

Manage a single-node Elasticsearch $DEFAULT_ES_VERSION for tests and CI, on 127.0.0.1.

Commands:
  start    fetch (Maven, cached in ~/.m2), unpack (once), start the node and wait
           until the cluster is yellow; print its URL. If this script's node is
           already running, only print its URL. A node it did not start is never
           used: without ES_PORT it starts its own on the next free port.
  stop     stop the node started by 'start' (via its pid file) and wait until it is gone.
  status   say whether this script's node runs, its pid, RSS and health; exit 3 if
           it does not (also when some other node answers on the port).
  url      print the URL this script's node answers on; exit 3 if it is not running.

Environment (defaults in brackets):
  ES_VERSION        Elasticsearch version [$DEFAULT_ES_VERSION]
  ES_PORT           HTTP port; only this one when given [the first free from 9200]
  ES_PORT_RANGE     ports tried from 9200 when ES_PORT is not given [20]
  ES_JAVA_HOME      JDK to run it with (the test zip bundles none)
                    [/usr/lib/jvm/temurin-25-jdk-amd64]
  ES_JAVA_OPTS      JVM options [-Xms1g -Xmx1g]
  ES_HOME_CACHE     where the distribution is unpacked
                    [\$HOME/.cache/newsearch-es; /var/cache/newsearch-es as root]
  ES_DATA_DIR       data, logs and pid file [\$ES_HOME_CACHE/node-<version>-<port>]
  ES_START_TIMEOUT  seconds to wait for yellow health [120]
  ES_USER           unprivileged user that runs the node when started as root [esnode]

Example:
  ES_URL=\$(scripts/es-node.sh start) && pytest && scripts/es-node.sh stop
EOF
}

say() { printf 'es-node: %s\n' "$*" >&2; }
die() {
    printf 'es-node: error: %s\n' "$*" >&2
    exit 1
}

# Any HTTP answer counts. (Not `curl -f $URL/`: the test zip lacks the rest-root
# module, so `GET /` and `HEAD /` answer 405 even on a healthy node.)
answering() {
    local code
    code=$(curl -sS -m 2 -o /dev/null -w '%{http_code}' "$URL/" 2>/dev/null) || true
    [[ ${code:-000} != 000 ]]
}

healthy() {
    curl -fsS -m 5 -o /dev/null \
        "$URL/_cluster/health?wait_for_status=yellow&timeout=2s" 2>/dev/null
}

remote_version() {
    curl -fsS -m 2 "$URL/_cat/nodes?h=version" 2>/dev/null | head -n 1 || true
}

# Is anything listening on port $1 of 127.0.0.1 (HTTP or not)?
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# What answers on $URL: the cluster name and process id it reports, compacted,
# e.g. {"cluster_name":"newsearch-test","nodes":{"x":{"process":{"id":4475}}}}.
node_identity() {
    curl -fsS -m 3 "$URL/_nodes/_local/process?filter_path=cluster_name,nodes.*.process.id" 2>/dev/null |
        tr -d ' \n' || true
}

# True when the node answering on $URL is the one in our pid file, in our cluster.
ours_answering() {
    local pid identity
    pid=$(node_pid) || return 1
    identity=$(node_identity)
    [[ $identity == *"\"cluster_name\":\"$CLUSTER_NAME\""* && $identity == *"\"id\":$pid}"* ]]
}

# Words for whatever holds port $ES_PORT, for messages.
describe_port() {
    local identity cluster pid
    identity=$(node_identity)
    if [[ $identity =~ \"cluster_name\":\"([^\"]*)\" ]]; then
        cluster=${BASH_REMATCH[1]}
        pid=""
        [[ $identity =~ \"id\":([0-9]+) ]] && pid=" (pid ${BASH_REMATCH[1]})"
        printf 'an Elasticsearch node of cluster "%s"%s' "$cluster" "$pid"
    elif answering; then
        printf 'an HTTP server that is not Elasticsearch'
    else
        printf 'a program that is not an HTTP server'
    fi
}

candidate_ports() {
    if [[ -n $ES_PORT_GIVEN ]]; then
        printf '%s\n' "$ES_PORT_BASE"
    else
        seq "$ES_PORT_BASE" "$((ES_PORT_BASE + ES_PORT_RANGE - 1))"
    fi
}

# Select (use_port) the port of a node this script started and that is still
# alive (running or starting); false if there is none.
find_own() {
    local port
    for port in $(candidate_ports); do
        use_port "$port"
        node_pid >/dev/null || continue
        # With a given ES_DATA_DIR every port shares one pid file: the port file
        # says which port that node was started on. (Nodes started before there
        # was a port file have the port in their folder's name.)
        if [[ -r $PORT_FILE && $(<"$PORT_FILE") != "$port" ]]; then
            continue
        fi
        return 0
    done
    use_port "$ES_PORT_BASE"
    return 1
}

# Print the pid from the pid file if that process is alive and is Elasticsearch
# (a stale pid file may name a pid that was since reused by something else).
node_pid() {
    local pid cmdline
    [[ -r $PID_FILE ]] || return 1
    pid=$(<"$PID_FILE")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *org.elasticsearch* ]] || return 1
    printf '%s\n' "$pid"
}

# Run a command as the node's user: ourselves, or $ES_USER when we are root.
as_node_user() {
    if ((RUN_AS_ROOT)); then
        runuser -u "$ES_USER" -- "$@"
    else
        "$@"
    fi
}

ensure_user() {
    ((RUN_AS_ROOT)) || return 0
    if ! id -u "$ES_USER" >/dev/null 2>&1; then
        say "creating unprivileged user '$ES_USER' (Elasticsearch refuses to run as root)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$ES_USER" ||
            die "could not create user '$ES_USER'; create it or set ES_USER to an existing unprivileged user"
    fi
}

unpack_zip() {
    local zip=$1 dest=$2
    if command -v unzip >/dev/null 2>&1; then
        unzip -q "$zip" -d "$dest"
    else
        python3 -m zipfile -e "$zip" "$dest"
        # Python's zipfile drops the executable bits.
        chmod +x "$dest"/*/bin/*
    fi
}

# Fetch the distribution with Maven (cached in ~/.m2) and unpack it, once.
ensure_distribution() {
    [[ -x $ES_HOME/bin/elasticsearch ]] && return 0
    command -v mvn >/dev/null 2>&1 || die "mvn not found: install Maven (apt-get install maven)"
    local artifact="$ARTIFACT_GROUP:$ARTIFACT_ID:$ES_VERSION:zip" tmp
    mkdir -p "$ES_HOME_CACHE"
    tmp=$(mktemp -d "$ES_HOME_CACHE/.fetch.XXXXXX")
    say "fetching $artifact with Maven"
    if ! mvn -q -B dependency:copy -Dartifact="$artifact" -DoutputDirectory="$tmp" >"$tmp/mvn.log" 2>&1; then
        grep -m 1 -e 'Failed to execute goal' -e 'Could not' "$tmp/mvn.log" >&2 || tail -n 20 "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        die "Maven could not fetch $artifact; check ES_VERSION (Maven Central serves only some 9.x versions of the test zip, e.g. $DEFAULT_ES_VERSION)"
    fi
    say "unpacking into $ES_HOME"
    unpack_zip "$tmp/$ARTIFACT_ID-$ES_VERSION.zip" "$tmp/unpacked"
    [[ -x $tmp/unpacked/elasticsearch-$ES_VERSION/bin/elasticsearch ]] ||
        die "unexpected layout in $ARTIFACT_ID-$ES_VERSION.zip (no elasticsearch-$ES_VERSION/bin/elasticsearch)"
    # The rename makes the unpack atomic: a half-unpacked tree is never used.
    mv "$tmp/unpacked/elasticsearch-$ES_VERSION" "$ES_HOME"
    rm -rf "$tmp"
}

prepare_dirs() {
    mkdir -p "$ES_DATA_DIR/data" "$LOG_DIR"
    if ((RUN_AS_ROOT)); then
        chmod 755 "$ES_HOME_CACHE"
        # The node writes its keystore into config/, and data, logs and pid file.
        chown -R "$ES_USER:" "$ES_HOME" "$ES_DATA_DIR"
        as_node_user test -x "$ES_HOME/bin/elasticsearch" ||
            die "user '$ES_USER' cannot reach $ES_HOME; set ES_HOME_CACHE to a folder outside root's home"
        as_node_user test -w "$ES_DATA_DIR" ||
            die "user '$ES_USER' cannot write $ES_DATA_DIR; set ES_DATA_DIR to a folder outside root's home"
    fi
}

# Settings for this node. Only settings this distribution knows are passed:
# the test zip ships few modules, and Elasticsearch refuses unknown settings.
node_settings() {
    local settings=(
        "cluster.name=$CLUSTER_NAME"
        "node.name=es-node-$ES_PORT"
        "discovery.type=single-node"
        "network.host=127.0.0.1"
        "http.port=$ES_PORT"
        "path.data=$ES_DATA_DIR/data"
        "path.logs=$LOG_DIR"
        "cluster.routing.allocation.disk.threshold_enabled=false"
        "action.destructive_requires_name=false"
    )
    if [[ -d $ES_HOME/modules/x-pack-security ]]; then
        settings+=("xpack.security.enabled=false")
    fi
    if [[ -d $ES_HOME/modules/ingest-geoip ]]; then
        # No downloads from the node: tests run offline.
        settings+=("ingest.geoip.downloader.enabled=false")
    fi
    local s
    for s in "${settings[@]}"; do
        printf -- '-E\n%s\n' "$s"
    done
}

print_failure() {
    local log
    say "$1"
    for log in "$CONSOLE_LOG" "$LOG_DIR/$CLUSTER_NAME.log"; do
        if [[ -s $log ]]; then
            printf -- '----- last lines of %s -----\n' "$log" >&2
            tail -n 30 "$log" >&2
        fi
    done
}

# Undo a start that timed out: stop the node if it wrote its pid file, and the
# launcher too, which may still be starting the JVM.
abort_start() {
    local launcher=$1
    cmd_stop >/dev/null 2>&1 || true
    if [[ -n $launcher ]] && kill -0 "$launcher" 2>/dev/null; then
        kill -TERM "$launcher" 2>/dev/null || true
        wait "$launcher" 2>/dev/null || true
    fi
    # The node may have written its pid file while the launcher shut down.
    cmd_stop >/dev/null 2>&1 || true
}

# Select a port for a new node: the first candidate where nothing listens.
choose_port() {
    local port first="" first_holder=""
    for port in $(candidate_ports); do
        use_port "$port"
        if ! port_in_use "$port"; then
            [[ -n $first ]] && say "port $first is taken by $first_holder, not started by this script; using port $port"
            return 0
        fi
        if [[ -n $ES_PORT_GIVEN ]]; then
            die "port $port is taken by $(describe_port), which this script did not start (no live node in $PID_FILE); it will not use a node it does not own. Free the port, choose another ES_PORT, or leave ES_PORT unset to take the next free port (or set ELASTICSEARCH_URL to use that node deliberately)"
        fi
        if [[ -z $first ]]; then
            first=$port
            first_holder=$(describe_port)
        fi
    done
    die "ports $ES_PORT_BASE to $((ES_PORT_BASE + ES_PORT_RANGE - 1)) are all taken; set ES_PORT to a free port"
}

cmd_start() {
    local pid
    if find_own; then
        pid=$(node_pid)
        if ours_answering && healthy; then
            say "already running at $URL (Elasticsearch $(remote_version), pid $pid)"
            printf '%s\n' "$URL"
            return 0
        fi
        if port_in_use "$ES_PORT" && ! ours_answering; then
            die "this script's node (pid $pid, $ES_DATA_DIR) is alive, but port $ES_PORT is answered by $(describe_port); stop ours with ES_PORT=$ES_PORT ${0##*/} stop"
        fi
    else
        choose_port
    fi
    [[ -x $ES_JAVA_HOME/bin/java ]] ||
        die "no JDK at ES_JAVA_HOME=$ES_JAVA_HOME; the test distribution bundles none: set ES_JAVA_HOME to a JDK 21+ (e.g. /usr/lib/jvm/temurin-25-jdk-amd64)"
    command -v curl >/dev/null 2>&1 || die "curl not found: install curl"

    local started=$SECONDS launcher
    ensure_user
    ensure_distribution
    prepare_dirs

    if pid=$(node_pid); then
        say "node $pid is starting; waiting for it"
        launcher=""
    else
        local settings=()
        mapfile -t settings < <(node_settings)
        rm -f "$PID_FILE"
        printf '%s\n' "$ES_PORT" >"$PORT_FILE"
        say "starting Elasticsearch $ES_VERSION on $URL (heap: $ES_JAVA_OPTS; data: $ES_DATA_DIR)"
        local cmd=()
        if ((RUN_AS_ROOT)); then
            cmd=(runuser -u "$ES_USER" --)
        fi
        # -q: no console logging (the node logs to $LOG_DIR); the console file keeps
        # what the launcher and the JVM print before logging is set up.
        cmd+=(env "ES_JAVA_HOME=$ES_JAVA_HOME" "ES_JAVA_OPTS=$ES_JAVA_OPTS"
            "ES_PATH_CONF=$ES_HOME/config"
            "$ES_HOME/bin/elasticsearch" -q -p "$PID_FILE" "${settings[@]}")
        # nohup: the node outlives the shell that started it (a CI step, a terminal).
        # 9>&-: the node must not inherit the start lock.
        (cd "$LOG_DIR" && exec nohup "${cmd[@]}") >"$CONSOLE_LOG" 2>&1 </dev/null 9>&- &
        launcher=$!
    fi

    local deadline=$((SECONDS + ES_START_TIMEOUT))
    until healthy && ours_answering; do
        if [[ -n $launcher ]] && ! kill -0 "$launcher" 2>/dev/null; then
            print_failure "Elasticsearch exited during startup"
            die "Elasticsearch $ES_VERSION did not start; see the log above ($LOG_DIR)"
        fi
        if ((SECONDS >= deadline)); then
            print_failure "Elasticsearch was not yellow after ${ES_START_TIMEOUT}s"
            abort_start "$launcher"
            die "Elasticsearch $ES_VERSION did not become healthy in ${ES_START_TIMEOUT}s; raise ES_START_TIMEOUT or see $LOG_DIR"
        fi
        sleep 1
    done
    say "ready in $((SECONDS - started))s: Elasticsearch $(remote_version) at $URL (pid $(node_pid || echo '?'))"
    printf '%s\n' "$URL"
}

cmd_stop() {
    local pid
    if ! find_own || ! pid=$(node_pid); then
        if [[ -n $ES_PORT_GIVEN ]] && port_in_use "$ES_PORT"; then
            die "$(describe_port) answers on $URL but was not started by this script (no live pid in $PID_FILE); stop it yourself"
        fi
        say "not running"
        return 0
    fi
    say "stopping Elasticsearch (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + ES_STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "still running after ${ES_STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 10))
        fi
        sleep 0.5
    done
    rm -f "$PID_FILE"
    say "stopped"
}

cmd_status() {
    local pid rss
    if find_own && pid=$(node_pid); then
        rss=$(ps -o rss= -p "$pid" | tr -d ' ') || true
        rss=${rss:-0}
        if healthy; then
            say "running: Elasticsearch $(remote_version) at $URL, pid $pid, RSS $((rss / 1024)) MiB"
        else
            say "starting (not yet yellow): pid $pid at $URL, RSS $((rss / 1024)) MiB"
        fi
        return 0
    fi
    if port_in_use "$ES_PORT"; then
        say "not running; $(describe_port) answers at $URL but was not started by this script"
        return 3
    fi
    say "not running (port $ES_PORT)"
    return 3
}

main() {
    local command=${1:-}
    [[ $ES_PORT =~ ^[0-9]+$ ]] || die "ES_PORT must be a port number, not '$ES_PORT'"
    [[ $ES_PORT_RANGE =~ ^[0-9]+$ ]] && ((ES_PORT_RANGE >= 1)) || die "ES_PORT_RANGE must be a positive number"
    case $command in
    -h | --help | help)
        usage
        return 0
        ;;
    url)
        if find_own; then
            printf '%s\n' "$URL"
            return 0
        fi
        say "not running"
        return 3
        ;;
    status)
        cmd_status
        return
        ;;
    start | stop) ;;
    "")
        usage >&2
        return 2
        ;;
    *)
        say "unknown command: $command"
        usage >&2
        return 2
        ;;
    esac
    # One start or stop at a time: two CI steps racing to start a node would
    # otherwise launch it twice, or pick the same free port.
    mkdir -p "$ES_HOME_CACHE"
    exec 9>"$ES_HOME_CACHE/.lock"
    flock -w "$((ES_START_TIMEOUT + 60))" 9 || die "timed out waiting for another es-node.sh"
    "cmd_$command"
}

main "$@"

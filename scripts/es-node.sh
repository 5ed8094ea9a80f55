#!/usr/bin/env bash
# Manage a real single-node Elasticsearch 9.x for tests and CI, or (with
# `start --nodes N`) a local cluster of N nodes on 127.0.0.1 for the cluster test
# (tests/test_es_cluster.py, scripts/cluster-test.sh).
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
#
# A cluster follows the same rules per node (its pid file, its port, its cluster
# name, which is never newsearch-test: a cluster node and the single test node can
# never join each other). Its folders are apart from the single node's
# ($ES_HOME_CACHE/cluster-<name>-<version>/node-K), so `stop` without --cluster
# can never find, or stop, a cluster node.
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
ES_JAVA_OPTS_GIVEN=${ES_JAVA_OPTS:+1}
ES_JAVA_OPTS="${ES_JAVA_OPTS:--Xms1g -Xmx1g}"
ES_START_TIMEOUT_GIVEN=${ES_START_TIMEOUT:+1}
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
# Not readonly: cluster mode (use_cluster) names its own cluster.
CLUSTER_NAME=newsearch-test

# Cluster mode. Its own port ranges, away from the single node's (HTTP 9200-9219,
# transport 9300-9399 by Elasticsearch's default), so a restarting cluster node
# never finds its port taken by a single node that started meanwhile.
ES_CLUSTER_NAME="${ES_CLUSTER_NAME:-newsearch-cluster}"
ES_CLUSTER_PORT="${ES_CLUSTER_PORT:-9250}"
ES_CLUSTER_TRANSPORT_PORT="${ES_CLUSTER_TRANSPORT_PORT:-9450}"
ES_CLUSTER_PORT_RANGE="${ES_CLUSTER_PORT_RANGE:-50}"

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
       ${0##*/} start --nodes N
       ${0##*/} stop|status|url --cluster [--purge]
       ${0##*/} stop-node K|start-node K

Manage a single-node Elasticsearch $DEFAULT_ES_VERSION for tests and CI, on 127.0.0.1,
or a local cluster of N nodes (--nodes N, N >= 2) for the cluster test.

Commands (single node):
  start    fetch (Maven, cached in ~/.m2), unpack (once), start the node and wait
           until the cluster is yellow; print its URL. If this script's node is
           already running, only print its URL. A node it did not start is never
           used: without ES_PORT it starts its own on the next free port.
  stop     stop the node started by 'start' (via its pid file) and wait until it is gone.
  status   say whether this script's node runs, its pid, RSS and health; exit 3 if
           it does not (also when some other node answers on the port).
  url      print the URL this script's node answers on; exit 3 if it is not running.

Commands (cluster ES_CLUSTER_NAME; never the single node's newsearch-test):
  start --nodes N   start N nodes of one cluster in parallel, each with its own data
           folder, pid file, HTTP and transport port (the first free ones from
           ES_CLUSTER_PORT and ES_CLUSTER_TRANSPORT_PORT), all master-eligible;
           wait until all N have joined and the cluster is yellow; print the N
           URLs comma-separated on stdout (what ELASTICSEARCH_URL takes). When none
           of its nodes runs, the cluster starts afresh: its data folders are wiped
           and it bootstraps (cluster.initial_master_nodes). When some run, only
           the missing ones are started, with their data.
  stop --cluster    stop every node of the cluster (in parallel); with --purge,
           then delete the cluster's folder (data and logs).
  status --cluster  a line per node (pid, port, RSS, the elected master) and the
           cluster's health; exit 3 unless all its nodes run.
  url --cluster     print the N URLs comma-separated; exit 3 if no node runs.
  stop-node K       stop node K (1..N) and wait until it is gone; its data stays.
  start-node K      start node K again with its data and ports and wait until it
           has joined the cluster (not for green: that is the caller's to wait
           for, and to time); print its URL.
  --nodes N (N >= 2) selects the cluster for stop, status and url too; --nodes 1
  is the single node.

Environment (defaults in brackets):
  ES_VERSION        Elasticsearch version [$DEFAULT_ES_VERSION]
  ES_PORT           HTTP port; only this one when given [the first free from 9200]
  ES_PORT_RANGE     ports tried from 9200 when ES_PORT is not given [20]
  ES_JAVA_HOME      JDK to run it with (the test zip bundles none)
                    [/usr/lib/jvm/temurin-25-jdk-amd64]
  ES_JAVA_OPTS      JVM options [-Xms1g -Xmx1g; per cluster node
                    -Xms512m -Xmx512m -XX:TieredStopAtLevel=1]
  ES_HOME_CACHE     where the distribution is unpacked
                    [\$HOME/.cache/newsearch-es; /var/cache/newsearch-es as root]
  ES_DATA_DIR       data, logs and pid file [\$ES_HOME_CACHE/node-<version>-<port>]
  ES_START_TIMEOUT  seconds to wait for yellow health [120; 180 for a cluster]
  ES_USER           unprivileged user that runs the node when started as root [esnode]
  ES_CLUSTER_NAME   the cluster's name; its folder is
                    \$ES_HOME_CACHE/cluster-<name>-<version> [newsearch-cluster]
  ES_CLUSTER_PORT   first HTTP port tried for cluster nodes [9250]
  ES_CLUSTER_TRANSPORT_PORT  first transport port tried for cluster nodes [9450]
  ES_CLUSTER_PORT_RANGE      ports tried from each of those two [50]

Examples:
  ES_URL=\$(scripts/es-node.sh start) && pytest && scripts/es-node.sh stop
  ES_CLUSTER_URL=\$(scripts/es-node.sh start --nodes 3)
  scripts/es-node.sh stop-node 2 && scripts/es-node.sh start-node 2
  scripts/es-node.sh stop --cluster
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
    print_settings "${settings[@]}"
}

# Print each setting as -E and the setting on the next line (read by mapfile), with
# those every node of ours needs whatever the distribution holds: security off where
# its module exists, and no downloads from the node (tests run offline).
print_settings() {
    local settings=("$@") s
    if [[ -d $ES_HOME/modules/x-pack-security ]]; then
        settings+=("xpack.security.enabled=false")
    fi
    if [[ -d $ES_HOME/modules/ingest-geoip ]]; then
        settings+=("ingest.geoip.downloader.enabled=false")
    fi
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

# ---------------------------------------------------------------------------
# Cluster mode: N nodes of one cluster on 127.0.0.1 (start --nodes N, --cluster,
# stop-node K, start-node K). The helpers above work per node: use_node points
# URL, PID_FILE, LOG_DIR and the rest at node K, and CLUSTER_NAME is the cluster's.

# Point the cluster globals at ES_CLUSTER_NAME.
use_cluster() {
    [[ $ES_CLUSTER_NAME =~ ^[A-Za-z0-9][A-Za-z0-9_-]*$ ]] ||
        die "ES_CLUSTER_NAME must be letters, digits, '-' and '_', not '$ES_CLUSTER_NAME'"
    [[ $ES_CLUSTER_NAME != newsearch-test ]] ||
        die "ES_CLUSTER_NAME must not be newsearch-test, the single test node's cluster: the two would join"
    CLUSTER_NAME=$ES_CLUSTER_NAME
    CLUSTER_DIR="$ES_HOME_CACHE/cluster-$CLUSTER_NAME-$ES_VERSION"
    NODES_FILE="$CLUSTER_DIR/nodes"
    # Small heaps: three nodes share two cores and must leave room for the app,
    # the readers and a developer's own single node. C1 only (no C2 compiles):
    # a restarted node spends its start compiling, and the cluster test times
    # that start; measured on two loaded cores, a node's restart and rejoin took
    # 17-18 s with it against 26-27 s without. Searching 2,000 posts needs no C2.
    ((${ES_JAVA_OPTS_GIVEN:-0})) || ES_JAVA_OPTS="-Xms512m -Xmx512m -XX:TieredStopAtLevel=1"
    ((${ES_START_TIMEOUT_GIVEN:-0})) || ES_START_TIMEOUT=180
}

# Point every per-node path at node $1 of the cluster (its ports, once chosen,
# are in its folder: a restarted node keeps them, so its URL and the other
# nodes' seed list stay right).
use_node() {
    NODE=$1
    NODE_NAME="$CLUSTER_NAME-$NODE"
    ES_DATA_DIR="$CLUSTER_DIR/node-$NODE"
    PID_FILE="$ES_DATA_DIR/es.pid"
    PORT_FILE="$ES_DATA_DIR/http.port"
    TRANSPORT_FILE="$ES_DATA_DIR/transport.port"
    LOG_DIR="$ES_DATA_DIR/logs"
    CONSOLE_LOG="$LOG_DIR/console.log"
    ES_PORT=""
    TRANSPORT_PORT=""
    [[ -r $PORT_FILE ]] && ES_PORT=$(<"$PORT_FILE")
    [[ -r $TRANSPORT_FILE ]] && TRANSPORT_PORT=$(<"$TRANSPORT_FILE")
    URL="http://127.0.0.1:${ES_PORT:-0}"
}

# The cluster's size as recorded by its last fresh start; false if none.
cluster_size() {
    local n
    [[ -r $NODES_FILE ]] || return 1
    n=$(<"$NODES_FILE")
    [[ $n =~ ^[0-9]+$ ]] && ((n >= 2)) || return 1
    printf '%s\n' "$n"
}

# The N URLs, comma-separated, in node order.
cluster_urls() {
    local n=$1 k urls=()
    for ((k = 1; k <= n; k++)); do
        use_node "$k"
        urls+=("$URL")
    done
    (IFS=,; printf '%s\n' "${urls[*]}")
}

# The transport addresses of all nodes, for discovery.seed_hosts.
seed_hosts() {
    local n=$1 k hosts=()
    for ((k = 1; k <= n; k++)); do
        hosts+=("127.0.0.1:$(<"$CLUSTER_DIR/node-$k/transport.port")")
    done
    (IFS=,; printf '%s\n' "${hosts[*]}")
}

# Print $1 free ports from $2 on (at most ES_CLUSTER_PORT_RANGE tried), none of
# them in the words of $3 (ports already chosen).
free_ports() {
    local want=$1 base=$2 taken=" ${3:-} " port got=0
    for ((port = base; port < base + ES_CLUSTER_PORT_RANGE && got < want; port++)); do
        [[ $taken == *" $port "* ]] && continue
        port_in_use "$port" && continue
        printf '%s\n' "$port"
        got=$((got + 1))
    done
    ((got == want)) || die "fewer than $want free ports in $base-$((base + ES_CLUSTER_PORT_RANGE - 1)); set ES_CLUSTER_PORT / ES_CLUSTER_TRANSPORT_PORT"
}

# Does node $NODE have an elected master (has it joined a formed cluster)?
joined() {
    curl -fsS -m 4 -o /dev/null "$URL/_cluster/health?master_timeout=2s" 2>/dev/null
}

# Settings for node $NODE of a cluster of $1 nodes; bootstrap ($2 = 1) only on a
# fresh cluster's first start: cluster.initial_master_nodes must not outlive it.
cluster_node_settings() {
    local n=$1 bootstrap=$2 k names=()
    local settings=(
        "cluster.name=$CLUSTER_NAME"
        "node.name=$NODE_NAME"
        "network.host=127.0.0.1"
        "http.port=$ES_PORT"
        "transport.port=$TRANSPORT_PORT"
        "discovery.seed_hosts=$(seed_hosts "$n")"
        "path.data=$ES_DATA_DIR/data"
        "path.logs=$LOG_DIR"
        "cluster.routing.allocation.disk.threshold_enabled=false"
        "action.destructive_requires_name=false"
    )
    if ((bootstrap)); then
        for ((k = 1; k <= n; k++)); do names+=("$CLUSTER_NAME-$k"); done
        settings+=("cluster.initial_master_nodes=$(IFS=,; printf '%s' "${names[*]}")")
    fi
    print_settings "${settings[@]}"
}

# Launch node $NODE in the background (it outlives this script); its launcher's
# pid goes into LAUNCHERS[$NODE].
declare -A LAUNCHERS=()
launch_node() {
    local n=$1 bootstrap=$2 settings=() cmd=()
    mkdir -p "$ES_DATA_DIR/data" "$ES_DATA_DIR/tmp" "$LOG_DIR"
    if ((RUN_AS_ROOT)); then
        chown -R "$ES_USER:" "$ES_DATA_DIR"
        as_node_user test -w "$ES_DATA_DIR" ||
            die "user '$ES_USER' cannot write $ES_DATA_DIR; set ES_HOME_CACHE to a folder outside root's home"
        cmd=(runuser -u "$ES_USER" --)
    fi
    mapfile -t settings < <(cluster_node_settings "$n" "$bootstrap")
    rm -f "$PID_FILE"
    say "starting node $NODE ($NODE_NAME) on $URL, transport $TRANSPORT_PORT (heap: $ES_JAVA_OPTS)"
    # Each node its own ES_TMPDIR: nodes sharing one home must not share a temp dir.
    cmd+=(env "ES_JAVA_HOME=$ES_JAVA_HOME" "ES_JAVA_OPTS=$ES_JAVA_OPTS"
        "ES_PATH_CONF=$ES_HOME/config" "ES_TMPDIR=$ES_DATA_DIR/tmp"
        "$ES_HOME/bin/elasticsearch" -q -p "$PID_FILE" "${settings[@]}")
    # 8>&- 9>&-: the node must not inherit a lock.
    (cd "$LOG_DIR" && exec nohup "${cmd[@]}") >"$CONSOLE_LOG" 2>&1 </dev/null 8>&- 9>&- &
    LAUNCHERS[$NODE]=$!
}

# Stop node $NODE if its pid file names a live Elasticsearch; send TERM only
# (wait_stopped waits), so several nodes stop in parallel.
signal_node() {
    local pid
    pid=$(node_pid) || return 1
    say "stopping node $NODE ($NODE_NAME, pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    printf '%s\n' "$pid"
}

# Wait until every pid in $@ is gone (KILL after ES_STOP_TIMEOUT).
wait_stopped() {
    local deadline=$((SECONDS + ES_STOP_TIMEOUT)) killed=0 pid alive
    while :; do
        alive=()
        for pid in "$@"; do
            kill -0 "$pid" 2>/dev/null && alive+=("$pid")
        done
        ((${#alive[@]} == 0)) && return 0
        if ((SECONDS >= deadline && !killed)); then
            say "still running after ${ES_STOP_TIMEOUT}s: ${alive[*]}; killing"
            kill -KILL "${alive[@]}" 2>/dev/null || true
            killed=1
        fi
        sleep 0.5
    done
}

# Undo a cluster start that failed: stop the nodes launched by this call.
abort_cluster_start() {
    local k pids=() pid
    for k in "${!LAUNCHERS[@]}"; do
        use_node "$k"
        pid=$(signal_node 2>/dev/null) && pids+=("$pid")
        kill -TERM "${LAUNCHERS[$k]}" 2>/dev/null || true
    done
    ((${#pids[@]})) && wait_stopped "${pids[@]}"
    for k in "${!LAUNCHERS[@]}"; do
        wait "${LAUNCHERS[$k]}" 2>/dev/null || true
    done
}

# Wait until the nodes in $2.. (launched or starting) answer as ours and have
# joined, and the cluster holds $1 nodes and is yellow.
wait_cluster() {
    local n=$1 k pending
    shift
    local deadline=$((SECONDS + ES_START_TIMEOUT))
    while :; do
        pending=()
        for k in "$@"; do
            use_node "$k"
            if [[ -n ${LAUNCHERS[$k]:-} ]] && ! kill -0 "${LAUNCHERS[$k]}" 2>/dev/null; then
                print_failure "node $k exited during startup"
                abort_cluster_start
                die "node $k of $CLUSTER_NAME did not start; see the log above ($LOG_DIR)"
            fi
            ours_answering && joined || pending+=("$k")
        done
        if ((${#pending[@]} == 0)); then
            use_node "$1"
            curl -fsS -m 5 -o /dev/null \
                "$URL/_cluster/health?wait_for_nodes=$n&wait_for_status=yellow&timeout=2s" 2>/dev/null && return 0
        fi
        if ((SECONDS >= deadline)); then
            for k in "${pending[@]:-$1}"; do
                use_node "$k"
                print_failure "node $k was not ready after ${ES_START_TIMEOUT}s"
            done
            abort_cluster_start
            die "cluster $CLUSTER_NAME did not form (all $n nodes, yellow) in ${ES_START_TIMEOUT}s; raise ES_START_TIMEOUT or see $CLUSTER_DIR/node-*/logs"
        fi
        sleep 1
    done
}

check_launch_prerequisites() {
    [[ -x $ES_JAVA_HOME/bin/java ]] ||
        die "no JDK at ES_JAVA_HOME=$ES_JAVA_HOME; the test distribution bundles none: set ES_JAVA_HOME to a JDK 21+ (e.g. /usr/lib/jvm/temurin-25-jdk-amd64)"
    command -v curl >/dev/null 2>&1 || die "curl not found: install curl"
    ensure_user
    ensure_distribution
    if ((RUN_AS_ROOT)); then
        chmod 755 "$ES_HOME_CACHE"
        chown -R "$ES_USER:" "$ES_HOME"
        as_node_user test -x "$ES_HOME/bin/elasticsearch" ||
            die "user '$ES_USER' cannot reach $ES_HOME; set ES_HOME_CACHE to a folder outside root's home"
    fi
    mkdir -p "$CLUSTER_DIR"
    # Nodes sharing one home race to create its keystore when it does not exist yet
    # (FileAlreadyExistsException on elasticsearch.keystore.tmp, seen on a fresh
    # install): create it once, before any node starts.
    if [[ ! -f $ES_HOME/config/elasticsearch.keystore ]]; then
        as_node_user env "ES_JAVA_HOME=$ES_JAVA_HOME" "ES_PATH_CONF=$ES_HOME/config" \
            "$ES_HOME/bin/elasticsearch-keystore" create >&2 || die "could not create the keystore in $ES_HOME/config"
    fi
}

# start --nodes N: a fresh cluster when none of its nodes runs, else the missing
# nodes of the running one.
cluster_start() {
    local n=$1 k running=() missing=() started=$SECONDS recorded
    if recorded=$(cluster_size); then
        for ((k = 1; k <= recorded; k++)); do
            use_node "$k"
            if node_pid >/dev/null; then running+=("$k"); else missing+=("$k"); fi
        done
        if ((${#running[@]})) && ((recorded != n)); then
            die "cluster $CLUSTER_NAME runs with $recorded nodes, not $n; stop it first (${0##*/} stop --cluster)"
        fi
    fi
    check_launch_prerequisites
    if ((${#running[@]} == 0)); then
        # Fresh: wipe the old folders, choose ports, bootstrap all N.
        rm -rf "${CLUSTER_DIR:?}"/node-*
        local http_ports=() transport_ports=()
        mapfile -t http_ports < <(free_ports "$n" "$ES_CLUSTER_PORT")
        mapfile -t transport_ports < <(free_ports "$n" "$ES_CLUSTER_TRANSPORT_PORT" "${http_ports[*]}")
        ((${#http_ports[@]} == n && ${#transport_ports[@]} == n)) || die "could not choose $n free ports"
        for ((k = 1; k <= n; k++)); do
            mkdir -p "$CLUSTER_DIR/node-$k"
            printf '%s\n' "${http_ports[k - 1]}" >"$CLUSTER_DIR/node-$k/http.port"
            printf '%s\n' "${transport_ports[k - 1]}" >"$CLUSTER_DIR/node-$k/transport.port"
        done
        printf '%s\n' "$n" >"$NODES_FILE"
        say "starting a fresh cluster $CLUSTER_NAME of $n nodes (data: $CLUSTER_DIR)"
        for ((k = 1; k <= n; k++)); do
            use_node "$k"
            launch_node "$n" 1
        done
        wait_cluster "$n" $(seq 1 "$n")
    else
        if ((${#missing[@]})); then
            say "cluster $CLUSTER_NAME: nodes ${running[*]} run; starting ${missing[*]} with their data"
            for k in "${missing[@]}"; do
                use_node "$k"
                port_in_use "$ES_PORT" && die "node $k's port $ES_PORT is taken by $(describe_port)"
                launch_node "$n" 0
            done
        fi
        wait_cluster "$n" $(seq 1 "$n")
    fi
    say "ready in $((SECONDS - started))s: cluster $CLUSTER_NAME, $n nodes, Elasticsearch $(remote_version)"
    cluster_urls "$n"
}

# The cluster's size, or die saying there is none.
require_cluster() {
    cluster_size || die "no cluster $CLUSTER_NAME was started by this script ($NODES_FILE missing); start one with ${0##*/} start --nodes N"
}

require_node_number() {
    local n=$1 k=$2
    [[ $k =~ ^[0-9]+$ ]] && ((k >= 1 && k <= n)) || die "node number must be 1 to $n, not '$k'"
}

cluster_stop() {
    local purge=$1 n k pids=() pid
    if ! n=$(cluster_size); then
        say "not running (no cluster $CLUSTER_NAME)"
        ((purge)) && rm -rf "${CLUSTER_DIR:?}"
        return 0
    fi
    for ((k = 1; k <= n; k++)); do
        use_node "$k"
        pid=$(signal_node) && pids+=("$pid")
    done
    if ((${#pids[@]})); then
        wait_stopped "${pids[@]}"
        for ((k = 1; k <= n; k++)); do
            use_node "$k"
            node_pid >/dev/null || rm -f "$PID_FILE"
        done
        say "stopped cluster $CLUSTER_NAME (${#pids[@]} nodes)"
    else
        say "not running (cluster $CLUSTER_NAME)"
    fi
    if ((purge)); then
        rm -rf "${CLUSTER_DIR:?}"
        say "deleted $CLUSTER_DIR"
    fi
}

cluster_stop_node() {
    local k=$1 n pid
    n=$(require_cluster)
    require_node_number "$n" "$k"
    use_node "$k"
    if ! pid=$(signal_node); then
        say "node $k ($NODE_NAME) is not running"
        return 0
    fi
    wait_stopped "$pid"
    rm -f "$PID_FILE"
    say "node $k stopped"
}

cluster_start_node() {
    local k=$1 n started=$SECONDS
    n=$(require_cluster)
    require_node_number "$n" "$k"
    use_node "$k"
    if node_pid >/dev/null; then
        say "node $k ($NODE_NAME) is already running"
    else
        [[ -d $ES_DATA_DIR/data ]] || die "node $k has no data folder ($ES_DATA_DIR): start the cluster with ${0##*/} start --nodes $n"
        port_in_use "$ES_PORT" && die "node $k's port $ES_PORT is taken by $(describe_port)"
        check_launch_prerequisites
        launch_node "$n" 0
    fi
    wait_node_joined "$k"
    say "node $k joined in $((SECONDS - started))s at $URL"
    printf '%s\n' "$URL"
}

# Wait until node $1 answers as ours and has joined (not for the cluster's colour).
wait_node_joined() {
    local k=$1 deadline=$((SECONDS + ES_START_TIMEOUT))
    use_node "$k"
    until ours_answering && joined; do
        if [[ -n ${LAUNCHERS[$k]:-} ]] && ! kill -0 "${LAUNCHERS[$k]}" 2>/dev/null; then
            print_failure "node $k exited during startup"
            die "node $k of $CLUSTER_NAME did not start; see the log above ($LOG_DIR)"
        fi
        if ((SECONDS >= deadline)); then
            print_failure "node $k had not joined after ${ES_START_TIMEOUT}s"
            abort_cluster_start
            die "node $k of $CLUSTER_NAME did not join in ${ES_START_TIMEOUT}s; see $LOG_DIR"
        fi
        sleep 1
    done
}

cluster_status() {
    local n k pid rss master="" up=0 health=""
    if ! n=$(cluster_size); then
        say "not running (no cluster $CLUSTER_NAME)"
        return 3
    fi
    for ((k = 1; k <= n; k++)); do
        use_node "$k"
        if ours_answering; then
            [[ -z $master ]] && master=$(curl -fsS -m 3 "$URL/_cat/master?h=node&master_timeout=2s" 2>/dev/null | tr -d ' \n' || true)
            [[ -z $health ]] && health=$(curl -fsS -m 3 "$URL/_cat/health?h=status,node.total,shards,unassign&master_timeout=2s" 2>/dev/null | tr -s ' ' | sed 's/ $//' || true)
        fi
    done
    for ((k = 1; k <= n; k++)); do
        use_node "$k"
        if pid=$(node_pid); then
            rss=$(ps -o rss= -p "$pid" | tr -d ' ') || true
            rss=${rss:-0}
            local role=""
            [[ $master == "$NODE_NAME" ]] && role=", elected master"
            say "node $k ($NODE_NAME): running at $URL, pid $pid, RSS $((rss / 1024)) MiB$role"
            up=$((up + 1))
        else
            say "node $k ($NODE_NAME): not running (port ${ES_PORT:-?})"
        fi
    done
    if ((up)); then
        say "cluster $CLUSTER_NAME: $up of $n nodes running; health (status nodes shards unassigned): ${health:-no master}"
    else
        say "cluster $CLUSTER_NAME: not running"
    fi
    ((up == n)) || return 3
}

cluster_url() {
    local n k
    if n=$(cluster_size); then
        for ((k = 1; k <= n; k++)); do
            use_node "$k"
            if node_pid >/dev/null; then
                cluster_urls "$n"
                return 0
            fi
        done
    fi
    say "not running (cluster $CLUSTER_NAME)"
    return 3
}

# Cluster commands hold their own lock (one per script home), not the single
# node's: a 3-node start must not make a developer's single-node start wait.
# Their port ranges do not overlap, so the two never race for a port.
cluster_main() {
    local command=$1 nodes=$2 node=$3 purge=$4
    use_cluster
    mkdir -p "$ES_HOME_CACHE"
    exec 8>"$ES_HOME_CACHE/.lock-cluster"
    case $command in
    status | url) ;; # read-only: no lock
    *) flock -w "$((ES_START_TIMEOUT + 120))" 8 || die "timed out waiting for another es-node.sh cluster command" ;;
    esac
    case $command in
    start)
        # The distribution is fetched under the single node's lock: one download.
        exec 9>"$ES_HOME_CACHE/.lock"
        flock -w "$((ES_START_TIMEOUT + 60))" 9 || die "timed out waiting for another es-node.sh"
        ensure_distribution
        flock -u 9
        exec 9>&-
        cluster_start "$nodes"
        ;;
    stop) cluster_stop "$purge" ;;
    status) cluster_status ;;
    url) cluster_url ;;
    stop-node) cluster_stop_node "$node" ;;
    start-node) cluster_start_node "$node" ;;
    esac
}

main() {
    local command=${1:-}
    [[ $# -gt 0 ]] && shift
    [[ $ES_PORT =~ ^[0-9]+$ ]] || die "ES_PORT must be a port number, not '$ES_PORT'"
    [[ $ES_PORT_RANGE =~ ^[0-9]+$ ]] && ((ES_PORT_RANGE >= 1)) || die "ES_PORT_RANGE must be a positive number"
    # Options: --nodes N (N >= 2: the cluster), --cluster, --purge; stop-node and
    # start-node take the node's number.
    local nodes=1 cluster=0 purge=0 node=""
    while (($#)); do
        case $1 in
        --nodes)
            (($# >= 2)) || die "--nodes needs a number"
            nodes=$2
            shift 2
            ;;
        --nodes=*)
            nodes=${1#--nodes=}
            shift
            ;;
        --cluster)
            cluster=1
            shift
            ;;
        --purge)
            purge=1
            shift
            ;;
        *)
            if [[ ($command == stop-node || $command == start-node) && -z $node ]]; then
                node=$1
                shift
            else
                say "unknown argument: $1"
                usage >&2
                return 2
            fi
            ;;
        esac
    done
    [[ $nodes =~ ^[0-9]+$ ]] && ((nodes >= 1 && nodes <= 9)) || die "--nodes must be 1 to 9, not '$nodes'"
    ((nodes >= 2)) && cluster=1
    case $command in
    stop-node | start-node)
        [[ -n $node ]] || die "$command needs a node number (1..N)"
        cluster_main "$command" "$nodes" "$node" "$purge"
        return
        ;;
    start | stop | status | url)
        if ((cluster)); then
            if [[ $command == start ]] && ((nodes < 2)); then
                die "start --cluster needs --nodes N (N >= 2)"
            fi
            cluster_main "$command" "$nodes" "" "$purge"
            return
        fi
        ((purge)) && die "--purge is for stop --cluster"
        ;;
    esac
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

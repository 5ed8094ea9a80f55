#!/bin/bash
# Entrypoint of the local Elasticsearch image (see this folder's Dockerfile): what
# the official image's entrypoint does that docker-compose.yml relies on, and no
# more.
#
# - `eswrapper` or `elasticsearch` (the default command) starts the node; any
#   other command runs as given (e.g. bash -c '... bin/elasticsearch-certutil ...').
# - ELASTIC_PASSWORD_FILE is read by the distribution's own
#   bin/elasticsearch-env-from-file (which also refuses a file that others can
#   read), then ELASTIC_PASSWORD becomes the keystore's bootstrap.password: the
#   `elastic` user's password until one is set through the API.
# - Every environment variable whose name looks like a setting (lower case, with
#   a dot: discovery.type, xpack.security.enabled) is passed as -E name=value.
set -euo pipefail
cd /usr/share/elasticsearch

if [[ $# -gt 0 && $1 != eswrapper && $(basename "$1") != elasticsearch ]]; then
    exec "$@"
fi
[[ $# -gt 0 ]] && shift

# The distribution's script is not written for `set -u`.
set +u
# shellcheck source=/dev/null
source bin/elasticsearch-env-from-file
set -u

# Each keystore command starts a JVM: as few as the state needs.
if [[ -n ${ELASTIC_PASSWORD:-} ]]; then
    if [[ ! -f config/elasticsearch.keystore ]]; then
        bin/elasticsearch-keystore create >/dev/null
        add=1
    elif ! bin/elasticsearch-keystore list | grep -qx 'bootstrap.password'; then
        add=1
    fi
    if [[ -n ${add:-} ]]; then
        printf '%s' "$ELASTIC_PASSWORD" | bin/elasticsearch-keystore add -x bootstrap.password
    fi
fi
unset ELASTIC_PASSWORD

settings=()
while IFS= read -r -d '' entry; do
    name=${entry%%=*}
    if [[ $name =~ ^[a-z0-9_]+\.[a-z0-9_]+ ]]; then
        settings+=("-E$name=${entry#*=}")
    fi
done < <(env -0)

exec bin/elasticsearch "${settings[@]}" "$@"

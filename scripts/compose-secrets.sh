#!/usr/bin/env bash
# Create the secrets docker-compose.yml reads, once: a random password per file in
# ./secrets (or the folder given, or $SECRETS_DIR), never committed (.gitignore).
#
#   sudo scripts/compose-secrets.sh [DIR]
#
#   elastic_password   Elasticsearch's `elastic` superuser: the node takes it on the
#                      first start of its data volume; only es-setup logs in with it
#   app_password       the app's user (newsearch_app, read-only role)
#   indexer_password   the indexer's user (newsearch_indexer, writing role)
#
# A file that exists is kept as it is: Elasticsearch keeps the `elastic` password it
# took first, and es-setup resets the two users' passwords to the files on every
# `up`, so to change one of those, edit its file and `docker compose up -d` again.
#
# The files are root's, group 0, mode 0440, in a folder only root can enter (0700):
# compose bind-mounts each file at /run/secrets/<name> with these owners and modes,
# Elasticsearch reads its file as uid 1000 in group 0 and refuses a file that others
# can read, and the app's services run as uid 10001 in group 0 (user: "10001:0").
# Hence root (sudo): only root can give a file to group 0.
set -euo pipefail

case "${1:-}" in
-h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac

dir="${1:-${SECRETS_DIR:-$(dirname "$0")/../secrets}}"
if [ "$(id -u)" -ne 0 ]; then
    echo "compose-secrets: run as root (sudo): the files must belong to root and group 0 (see --help)" >&2
    exit 1
fi

random_password() {
    # Letters and digits only: the healthcheck hands it to curl in a quoted config line.
    if command -v openssl >/dev/null 2>&1; then
        openssl rand -hex 24
    else
        python3 -c 'import secrets; print(secrets.token_hex(24))'
    fi
}

mkdir -p "$dir"
chown 0:0 "$dir"
chmod 0700 "$dir"
for name in elastic_password app_password indexer_password; do
    file="$dir/$name"
    if [ -s "$file" ]; then
        echo "compose-secrets: $file exists: kept" >&2
    else
        (umask 0337 && random_password >"$file")
        echo "compose-secrets: $file created" >&2
    fi
    chown 0:0 "$file"
    chmod 0440 "$file"
done
echo "compose-secrets: done; read one with: sudo cat $dir/elastic_password" >&2

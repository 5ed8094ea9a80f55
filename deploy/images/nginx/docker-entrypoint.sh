#!/bin/sh
# Entrypoint of the local nginx image (see this folder's Dockerfile). When the
# command is nginx, render every *.template under NGINX_ENVSUBST_TEMPLATE_DIR
# (/etc/nginx/templates) into NGINX_ENVSUBST_OUTPUT_DIR (/etc/nginx/conf.d),
# substituting only the environment variables that are set, as the official
# image does; then run the command.
set -eu

if [ "${1:-}" = nginx ]; then
    template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
    output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
    # ${NAME} for every variable in the environment: envsubst leaves the rest alone.
    defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
    if [ -d "$template_dir" ]; then
        find "$template_dir" -follow -type f -name '*.template' | while read -r template; do
            relative=${template#"$template_dir"/}
            output="$output_dir/${relative%.template}"
            mkdir -p "$(dirname "$output")"
            envsubst "$defined" <"$template" >"$output"
            echo "docker-entrypoint: rendered $template into $output" >&2
        done
    fi
fi
exec "$@"

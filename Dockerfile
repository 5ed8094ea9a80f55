# Two stages: npm fetches the front-end assets (htmx) at build time, and the
# final image only copies the one file it serves. Nothing is downloaded when a
# container starts.
#
# The base images are build arguments. Production keeps the official ones (the
# defaults). Where no image registry can be reached, pass a local Debian base
# (bookworm, with python3 and python3-venv), as scripts/compose-test.sh does in CI:
#
#   docker build --build-arg PYTHON_IMAGE=newsearch-base:bookworm \
#                --build-arg NODE_IMAGE=newsearch-base:bookworm -t newsearch:local .
#
# and put what the build would otherwise download into deploy/offline/ first (the
# wheels of every dependency, htmx.min.js; see deploy/offline/README.md): the
# build then installs from there and reaches no package index.
ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim

# ---- Stage 1: front-end assets -------------------------------------------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /build
# package-lock.json* : build with the lock file when there is one, without it otherwise.
COPY package.json package-lock.json* ./
COPY deploy/offline/ /offline/
# A prefetched htmx.min.js (deploy/offline/) wins: the local base has no npm.
# --ignore-scripts: we only need files from the packages, never their install hooks.
RUN if [ -s /offline/htmx.min.js ]; then \
        mkdir -p node_modules/htmx.org/dist && cp /offline/htmx.min.js node_modules/htmx.org/dist/; \
    elif [ -f package-lock.json ]; then \
        npm ci --omit=dev --ignore-scripts --no-audit --no-fund; \
    else \
        npm install --omit=dev --ignore-scripts --no-audit --no-fund; \
    fi \
    && test -s node_modules/htmx.org/dist/htmx.min.js

# ---- Stage 2: the Python application ------------------------------------------
FROM ${PYTHON_IMAGE}

# PYTHONPATH=/app: import the packages from /app, whichever entry point
# (gunicorn, indexer) starts Python. searchapp finds the top-level templates/
# next to its own folder, which holds in /app but not in site-packages.
# `pip install .` below brings the dependencies and the console scripts, into a
# virtual environment: the same path whatever the base (Debian's own python3
# refuses a system-wide pip install, PEP 668), first on PATH, so `python`,
# `gunicorn` and `indexer` are the environment's.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    SEARCH_DATA_DIR=/data \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app

# README*/LICENSE*: pyproject.toml may name them (readme = ...); the globs let the
# build go on when they are absent.
COPY pyproject.toml README* LICENSE* ./
COPY searchcore/ searchcore/
COPY searchapp/ searchapp/
COPY indexer/ indexer/
COPY templates/ templates/
# gunicorn's settings (bind, workers, timeouts), shared with scripts/serve.sh, and
# the one-shot that creates the Elasticsearch roles and users (compose's es-setup).
COPY deploy/gunicorn.conf.py deploy/gunicorn.conf.py
COPY deploy/es_setup.py deploy/es_setup.py
# The app serves htmx itself from static/vendor (no CDN). Copied before the
# install so that a wheel that ships searchapp/static carries it too.
COPY --from=assets /build/node_modules/htmx.org/dist/htmx.min.js /app/searchapp/static/vendor/htmx.min.js

# The `server` extra brings gunicorn, the production server. From the prefetched
# wheels when deploy/offline/wheels/ has them (all of them: --no-index), from the
# package index otherwise.
COPY deploy/offline/ /tmp/offline/
RUN python3 -m venv /opt/venv \
    && if ls /tmp/offline/wheels/*.whl >/dev/null 2>&1; then \
        pip install --no-cache-dir ".[server]" --no-index --find-links /tmp/offline/wheels; \
    else \
        pip install --no-cache-dir ".[server]"; \
    fi \
    && rm -rf /tmp/offline

# An unprivileged user; /data (index, ledgers) belongs to it, so a fresh named
# volume mounted there is writable.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /data \
    && chown app:app /data
USER app

VOLUME ["/data"]
EXPOSE 8000

# gunicorn's sync workers must not face readers directly: a few clients that send
# half a request and wait hold every worker. The image is meant to run behind the
# nginx service of docker-compose.yml (deploy/nginx.conf.template), which reads
# whole requests first. deploy/gunicorn.conf.py binds 127.0.0.1:8000 unless
# GUNICORN_BIND says otherwise (compose: 0.0.0.0:8000 on its private network).
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]

"""gunicorn settings for every production-like run: scripts/serve.sh and the Docker image.

gunicorn runs sync workers behind nginx (deploy/nginx.conf.template), never facing
readers directly: a sync worker is given to one connection while it reads the
request, so slow clients would hold every worker. nginx reads whole requests and
hands over only complete ones, which a sync worker answers in milliseconds.

Settings come from the environment, so the same file serves both runs:

    GUNICORN_BIND        where to listen [127.0.0.1:8000]; serve.sh passes a unix
                         socket, compose 0.0.0.0:8000 (reachable only on the compose
                         network: the app's port is not published)
    WEB_CONCURRENCY      worker processes [2]
    GUNICORN_TIMEOUT     seconds a worker may be silent before it is killed [30]
    FORWARDED_ALLOW_IPS  proxies whose X-Forwarded-* headers are trusted
                         [127.0.0.1,::1]; compose sets "*" (only nginx reaches the app)

The search settings (SEARCH_ENGINE, SEARCH_DATA_DIR, ...) are read by the app
itself, see searchcore/config.py.
"""

from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _writable_dir(path: str) -> str | None:
    return path if os.path.isdir(path) and os.access(path, os.W_OK) else None


wsgi_app = "searchapp:create_app()"
bind = [os.environ.get("GUNICORN_BIND") or "127.0.0.1:8000"]
workers = _int("WEB_CONCURRENCY", 2)
worker_class = "sync"

# A worker silent this long is killed and replaced (a stuck search); nginx's
# proxy_read_timeout is a little longer so the reader sees gunicorn's 502 first.
timeout = _int("GUNICORN_TIMEOUT", 30)
# On SIGTERM (Ctrl-C in serve.sh, `docker compose stop`), finish requests in
# flight for up to this long; compose's default stop grace period is 10 s.
graceful_timeout = 8
# Recycle each worker now and then, so a slow leak (caches, fragmentation) cannot
# grow for ever; the jitter keeps the workers from restarting at the same time.
max_requests = 2000
max_requests_jitter = 200

# Behind nginx: trust its X-Forwarded-For / X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

# Access log to stdout (nginx logs the same requests with the client address and
# timings; this one shows what reached the app), errors to stderr.
accesslog = "-"
errorlog = "-"
access_log_format = '%({x-forwarded-for}i)s "%(r)s" %(s)s %(b)s %(M)sms'

# The heartbeat file each worker touches: on a memory filesystem where there is
# one (Docker's /tmp may sit on a slow overlay; compose makes / read-only).
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or _writable_dir("/dev/shm")

# gunicorn >= 25.1 opens a control socket at $HOME/.gunicorn/gunicorn.ctl by
# default: one path shared by every gunicorn of a user (two stacks would take it
# from each other) and unwritable on a read-only root filesystem. Nothing here uses
# it. (Older gunicorns ignore the unknown name.)
control_socket_disable = True

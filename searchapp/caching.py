"""Cache-Control for every response, and cache-busting URLs for static files.

Search results change at each index commit, so search pages, suggestions and
their JSON are cached briefly (a minute); an article changes only when its post
is edited, so its page is cached longer (five minutes). Nothing is per reader
(no cookies, no sessions), so all of it may be cached by shared caches
(``public``). Errors, 503s and the health check are never stored: a cache
must not keep serving an outage or a 404 after the article has been indexed.

Static files: every ``url_for('static', ...)`` carries ``v=<hash of the file's
content>``, and a request carrying the current hash is cacheable for a year
(``immutable``): a changed file gets a new URL. A request without it (or with a
stale one) is answered ``no-cache`` (revalidated with its ETag each time).

Search pages differ for htmx (a partial) and for a full load or htmx's history
restore (the whole page), by request headers: ``Vary`` names both headers, so no
cache serves one in place of the other.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, request

SEARCH = "public, max-age=60"
ARTICLE = "public, max-age=300"
STATIC_VERSIONED = "public, max-age=31536000, immutable"
STATIC_UNVERSIONED = "no-cache"
NO_STORE = "no-store"

POLICY = {
    "views.search": SEARCH,
    "views.api_search": SEARCH,
    "views.suggest": SEARCH,
    "views.api_suggest": SEARCH,
    "views.article": ARTICLE,
    "views.api_article": ARTICLE,
    "favicon": "public, max-age=86400",  # not versioned: a day, then revalidated
}
# The request headers that choose between htmx's partial and the whole page.
HTMX_VARY = ("HX-Request", "HX-History-Restore-Request")

_versions: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def static_version(filename: str) -> str | None:
    """A short hash of a static file's content (None if there is no such file),
    recomputed only when the file's size or modification time changes."""
    folder = current_app.static_folder
    if not folder:
        return None
    path = Path(folder) / filename
    try:
        st = os.stat(path)
    except OSError:
        return None
    key = (str(path), st.st_mtime_ns, st.st_size)
    with _lock:
        found = _versions.get(key)
    if found is None:
        found = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        with _lock:
            _versions[key] = found
    return found


def cache_control(resp: Response) -> str:
    """The policy for this response (see the module docstring)."""
    # A 304 refreshes a stored response: it carries that response's policy.
    if (resp.status_code >= 300 and resp.status_code != 304) or request.method not in ("GET", "HEAD"):
        return NO_STORE
    if request.endpoint == "static":
        filename = (request.view_args or {}).get("filename", "")
        v = request.args.get("v")
        return STATIC_VERSIONED if v and v == static_version(filename) else STATIC_UNVERSIONED
    return POLICY.get(request.endpoint or "", NO_STORE)


def init_app(app: Flask) -> None:
    @app.url_defaults
    def version_static_urls(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            v = static_version(values["filename"])
            if v:
                values["v"] = v

    @app.after_request
    def set_cache_control(resp: Response) -> Response:
        resp.headers["Cache-Control"] = cache_control(resp)
        if resp.headers["Cache-Control"] == NO_STORE:
            resp.headers.pop("Expires", None)
        return resp

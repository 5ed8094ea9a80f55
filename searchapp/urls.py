"""Every link is built from a SearchRequest: the URL is the whole state."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from flask import g, request, url_for

from searchcore.search import SearchRequest

MAX_BACK_CHARS = 2048  # a search's URL: the query (256), twenty values per facet, dates, sort, page


def endpoint_path(endpoint: str) -> str:
    """``url_for(endpoint)`` once per request: a page builds forty links or more
    (each facet value, page and chip), and Werkzeug's URL building was a tenth of
    the page's time."""
    paths: dict[str, str] = g.setdefault("_endpoint_paths", {})
    path = paths.get(endpoint)
    if path is None:
        path = paths[endpoint] = url_for(endpoint)
    return path


_STATIC_TTL_S = 2.0
_static_urls: dict[tuple[str, str], tuple[float, str]] = {}


def link(endpoint: str, **values) -> str:
    """The templates' ``url_for``: plain endpoints (the search form, the brand
    link: eight a page) from the per-request cache, and static files' versioned
    URLs (five a page, each a stat and a Werkzeug build: 50 µs) from a cache
    that a changed file leaves within seconds."""
    if not values:
        return endpoint_path(endpoint)
    if endpoint == "static" and len(values) == 1 and "filename" in values:
        key = (request.script_root, values["filename"])
        now = time.monotonic()
        cached = _static_urls.get(key)
        if cached is None or now - cached[0] > _STATIC_TTL_S:
            cached = _static_urls[key] = (now, url_for(endpoint, **values))
        return cached[1]
    return url_for(endpoint, **values)


def article_link(back: str | None) -> Callable[[str], str]:
    """Article URLs for one page of hits, all carrying the same ``back``: its
    encoding (a whole search URL, quoted again) is done once, not once a hit."""
    query = ""
    if back:
        query = url_for("views.article", doc_id="-", back=back).partition("?")[2]
    return lambda doc_id: url_for("views.article", doc_id=doc_id) + ("?" + query if query else "")


def search_url(req: SearchRequest, endpoint: str = "views.search", **changes) -> str:
    if changes:
        req = req.with_(**changes)
    base = endpoint_path(endpoint)
    params = req.to_params()
    return base + ("?" + urlencode(params) if params else "")


def page_url(req: SearchRequest, page: int, endpoint: str = "views.search") -> str:
    return search_url(req.with_(page=page), endpoint)


def back_link(req: SearchRequest) -> str | None:
    """The ``back`` parameter an article link carries for this search (None when its
    URL is longer than MAX_BACK_CHARS: encoded once more inside the article's URL, a
    longer one could pass the server's query-string limit and turn the link into an
    error; the article then returns to the plain search page)."""
    url = search_url(req)
    return url if len(url) <= MAX_BACK_CHARS else None


def safe_back(value: str | None) -> str | None:
    """The search an article was opened from (the ``back`` parameter), if it is one
    of ours: the search page's own path, bare or with a query string, no longer
    than MAX_BACK_CHARS. Anything else (another site, ``//host``, a scheme, a
    backslash, a control character) is ignored: the link it feeds must never lead
    a reader off the site."""
    if not value or len(value) > MAX_BACK_CHARS:
        return None
    base = endpoint_path("views.search")
    if not (value == base or value.startswith(base + "?")):
        return None
    if "//" in value or "\\" in value or not value.isprintable() or any(c.isspace() for c in value):
        return None
    return value

"""Every link is built from a SearchRequest: the URL is the whole state."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import url_for

from searchcore.search import SearchRequest

MAX_BACK_CHARS = 2048  # a search's URL: the query (256), twenty values per facet, dates, sort, page


def search_url(req: SearchRequest, endpoint: str = "views.search", **changes) -> str:
    if changes:
        req = req.with_(**changes)
    base = url_for(endpoint)
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
    base = url_for("views.search")
    if not (value == base or value.startswith(base + "?")):
        return None
    if "//" in value or "\\" in value or not value.isprintable() or any(c.isspace() for c in value):
        return None
    return value

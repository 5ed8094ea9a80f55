"""Every link is built from a SearchRequest: the URL is the whole state."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import url_for

from searchcore.search import SearchRequest


def search_url(req: SearchRequest, endpoint: str = "views.search", **changes) -> str:
    if changes:
        req = req.with_(**changes)
    base = url_for(endpoint)
    params = req.to_params()
    return base + ("?" + urlencode(params) if params else "")


def page_url(req: SearchRequest, page: int, endpoint: str = "views.search") -> str:
    return search_url(req.with_(page=page), endpoint)

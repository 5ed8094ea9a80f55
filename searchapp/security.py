"""Security headers and input bounds applied to every response.

The CSP allows scripts only from our origin (htmx is served from /static), no
inline script or style, and no framing. htmx is configured (see base.html) not to
inject inline styles or evaluate code, so it runs under this policy.

Images load only from our origin (and ``data:``): a remote image in a post would
be fetched by every reader's browser as the page opens, telling its host who
reads what (a planted image is a tracker). The sanitizer turns images into links
the reader may follow; images stored by older indexes are simply blocked.

Referrer: ``no-referrer``. The app never reads a Referer (no same-origin checks),
so sending none costs us nothing, and a reader who follows a link out of an
article or a result tells the other site nothing about where they came from, not
even our host name (``strict-origin-when-cross-origin`` would send the origin).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, Response, abort, request
from werkzeug.exceptions import MethodNotAllowed

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
ALLOWED_METHODS = ("GET", "HEAD", "OPTIONS")


def same_site_location(location: str) -> str:
    """A Location that cannot leave this site: path, query and fragment only.

    Nothing here should redirect, but a redirect built from the Host header (as
    Werkzeug's slash-merging redirect was) would send readers to whatever host an
    attacker names; a path starting with ``//`` or ``/\\`` would too (browsers read
    both as another host), so leading slashes and backslashes collapse to one.
    """
    parts = urlsplit(location)
    path = "/" + parts.path.lstrip("/\\")
    return path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def init_app(app: Flask) -> None:
    # Werkzeug answers "//x" or "/article//x" with a redirect to the merged path,
    # built as an absolute URL from the request's Host header: a forged Host made
    # it an open redirect. No slash redirects at all: such paths are 404s.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False

    @app.before_request
    def bound_request() -> None:
        if len(request.query_string) > app.config["MAX_QUERY_STRING"]:
            abort(414)
        if request.method not in ALLOWED_METHODS:
            raise MethodNotAllowed(valid_methods=list(ALLOWED_METHODS))

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        # Browsers may resolve the host names of links on a page before any click:
        # a link planted in a post would tell its DNS server that the page was read.
        resp.headers["X-DNS-Prefetch-Control"] = "off"
        if "Location" in resp.headers:
            resp.headers["Location"] = same_site_location(resp.headers["Location"])
        return resp

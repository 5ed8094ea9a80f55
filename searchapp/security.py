"""Security headers and input bounds applied to every response.

The CSP allows scripts only from our origin (htmx is served from /static), no
inline script or style, and no framing. htmx is configured (see base.html) not to
inject inline styles or evaluate code, so it runs under this policy.
"""

from __future__ import annotations

from flask import Flask, Response, abort, request

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: http: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def init_app(app: Flask) -> None:
    @app.before_request
    def bound_request() -> None:
        if len(request.query_string) > app.config["MAX_QUERY_STRING"]:
            abort(414)
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            abort(405)

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        return resp

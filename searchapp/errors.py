"""Error pages and JSON errors: friendly words for readers, never a stack trace."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from searchcore.engines import EngineError, EngineUnavailable

log = logging.getLogger(__name__)

MESSAGES = {
    400: "请求有误",
    404: "没有找到这个页面",
    405: "不支持这种请求方式",
    413: "请求太大",
    414: "网址太长，请缩短搜索条件",
    500: "服务器出错了",
    503: "搜索服务暂时不可用，请稍后再试",
}


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(
    status: int, message: str | None = None, param: str | None = None, headers: dict[str, str] | None = None
) -> tuple[Response, int, dict[str, str]]:
    """An error in words, as HTML or JSON; ``headers`` are added (an exception's own,
    such as a 405's Allow)."""
    message = message or MESSAGES.get(status, "出错了")
    if wants_json():
        body = {"error": message, "status": status}
        if param:
            body["param"] = param
        resp = jsonify(body)
    else:
        resp = make_response(render_template("error.html", status=status, message=message))
    out = dict(headers or {})
    if status == 503:
        out["Retry-After"] = "5"
    return resp, status, out


def init_app(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        # Keep what the exception says in headers (Allow on a 405, WWW-Authenticate,
        # Retry-After...), but not its Content-Type: the body is ours.
        kept = {k: v for k, v in exc.get_headers() if k.lower() not in ("content-type", "content-length")}
        return error_response(exc.code or 500, headers=kept)

    @app.errorhandler(EngineUnavailable)
    def engine_down(exc: EngineUnavailable):
        log.warning("engine unavailable: %s", exc)
        return error_response(503)

    @app.errorhandler(EngineError)
    def engine_error(exc: EngineError):
        log.error("engine error: %s", exc)
        return error_response(503)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response(500)

"""Error pages and JSON errors: friendly words for readers, never a stack trace."""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Flask, Response, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException, NotFound

from searchcore.engines import EngineError, EngineUnavailable
from searchcore.search import SearchRequest

from .urls import search_url

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


class ArticleNotFound(NotFound):
    """No article by this id: its page offers a search for the id's words (an id is
    the post's file name, so a moved or renamed article is usually found by them)."""

    def __init__(self, doc_id: str) -> None:
        super().__init__()
        self.doc_id = doc_id


_ID_SPLIT = re.compile(r"[\W_]+")


def id_words(doc_id: str) -> str:
    """The words of an article id, without its date: 2022-01-03-tianjin-vocational
    → "tianjin vocational"; empty when nothing but digits and punctuation remains."""
    words = [w for w in _ID_SPLIT.split(doc_id) if w and not w.isdigit()]
    return " ".join(words[:8])[:100].strip()


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def error_response(
    status: int,
    message: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
    search: str = "",
) -> tuple[Response, int, dict[str, str]]:
    """An error in words, as HTML or JSON; ``headers`` are added (an exception's own,
    such as a 405's Allow). ``search``: words to offer a search for (the page fills
    the search box with them and links to their results), so a 404 is no dead end."""
    message = message or MESSAGES.get(status, "出错了")
    found = SearchRequest(q=search) if search else None
    if wants_json():
        body: dict[str, Any] = {"error": message, "status": status}
        if param:
            body["param"] = param
        if found:
            body["search_url"] = search_url(found)
        resp = jsonify(body)
    else:
        context: dict[str, Any] = {"status": status, "message": message}
        if found:
            context.update(req=found, search_words=search, search_href=search_url(found))
        resp = make_response(render_template("error.html", **context))
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
        search = id_words(exc.doc_id) if isinstance(exc, ArticleNotFound) else ""
        return error_response(exc.code or 500, headers=kept, search=search)

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

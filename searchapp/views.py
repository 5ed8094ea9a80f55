"""Reader-facing routes: the search page (full or htmx partial), the article page,
their JSON twins, and the health check."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, jsonify, make_response, redirect, render_template, request, url_for
from markupsafe import Markup

from searchcore.engines import IndexMissing
from searchcore.fields import SHOWN_IN_HITS, SHOWN_ON_PAGE, Field
from searchcore.model import StoredDoc
from searchcore.search import SORTS, Hit, RequestError, SearchRequest, SearchResult, parse_positive_int

from .caching import HTMX_VARY
from .errors import ArticleNotFound, error_response
from .labels import FACET_UNAVAILABLE, SORT_LABELS, ValueView, badges, facet_links, present
from .parts import Part, parts_of
from .state import get_searcher
from .urls import article_link, back_link, page_url, safe_back, search_url

bp = Blueprint("views", __name__)

# What the search page says while the engine answers but holds no index yet; the
# page adds how to index (templates/_main.html).
NO_INDEX_NOTICE = "还没有可搜索的文章：索引尚未建立。"


def _parse() -> SearchRequest:
    return SearchRequest.from_args(request.args, max_page=current_app.config["SETTINGS"].max_page)


def _empty_result(req: SearchRequest) -> SearchResult:
    return SearchResult.empty(req, current_app.config["SETTINGS"].page_size)


@bp.get("/")
def search():
    """The search page. A bad parameter costs only itself: the rest is searched and
    shown with the error beside it (400); a range given backwards is searched the
    right way round, at its canonical URL."""
    req, errors = SearchRequest.parse(request.args, max_page=current_app.config["SETTINGS"].max_page)
    if not errors and SearchRequest.reordered(request.args):
        return redirect(search_url(req))
    try:
        result = get_searcher().search(req)
        notice = None
    except IndexMissing:
        # The engine answers but nothing is indexed: say so, and how to index (the
        # first page a fresh deployment shows, e.g. right after `docker compose up`).
        result, notice = _empty_result(req), NO_INDEX_NOTICE
    if errors:
        return _render_search(req, result, error=str(errors[0]), notice=notice, status=400, errors=errors)
    return _render_search(req, result, notice=notice)


def _render_search(
    req: SearchRequest,
    result: SearchResult | None,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
    errors: list[RequestError] | None = None,
):
    partial = bool(request.htmx) and not request.htmx.history_restore_request
    template = "_main.html" if partial else "search.html"
    html = render_template(
        template,
        req=req,
        result=present(result) if result is not None else None,
        error=error,
        # each bad parameter's message by its name, for the control it belongs to
        field_errors={e.param or "": str(e) for e in reversed(errors or [])},
        notice=notice,
        index_missing=notice == NO_INDEX_NOTICE,
        sorts=SORTS,
        sort_labels=SORT_LABELS,
        facet_unavailable=FACET_UNAVAILABLE,
        search_url=search_url,
        page_url=page_url,
        back_link=back_link,
        article_link=article_link,
        badges=badges,
        partial=partial,
    )
    resp = make_response(html, status)
    resp.headers["Vary"] = ", ".join(HTMX_VARY)  # a partial and a page never stand in for each other
    api = search_url(req, "views.api_search")
    resp.headers["Link"] = f'<{api}>; rel="alternate"; type="application/json"'
    return resp


def shown(record: Any, fields: tuple[Field, ...]) -> dict[str, Any]:
    """The fields readers see, as their rows in searchcore.fields write them for JSON."""
    return {f.name: f.show.json(getattr(record, f.name)) for f in fields if f.show}


def hit_json(hit: Hit) -> dict[str, Any]:
    out = shown(hit, SHOWN_IN_HITS)
    out["snippet_html"] = str(hit.snippet_html)
    out["url"] = url_for("views.article", doc_id=hit.id)
    return out


def value_json(v: ValueView) -> dict[str, Any]:
    out: dict[str, Any] = {"value": v.value, "label": v.label, "count": v.count, "selected": v.selected}
    if v.days is not None:  # a date bucket: the range a click selects
        out["from"], out["to"] = (d.isoformat() for d in v.days)
    return out


def result_json(found: SearchResult) -> dict[str, Any]:
    """The JSON twin of a search page: the same data, in the same words."""
    result = present(found)
    req = result.request
    return {
        "query": req.q,
        "total": result.total,
        "page": req.page,
        "pages": result.pages,
        "page_size": result.page_size,
        "sort": req.effective_sort,
        # each facet that drills down, at the level of its values: date_level (year, month or day)
        **{f"{name}_level": f.level for name, f in result.facets.items() if f.level},
        "took_ms": round(result.took_ms, 2),
        "hits": [hit_json(h) for h in result.hits],
        "facets": {name: [value_json(v) for v in f.values] for name, f in result.facets.items()},
        "unavailable_facets": [name for name, f in result.facets.items() if f.failed],
        "filters": [
            {"facet": c.facet, "value": c.value, "label": c.label, "remove_url": search_url(c.request, "views.api_search")}
            for c in result.chips
        ],
        "relaxations": [
            {"label": r.label, "total": r.total, "url": search_url(r.request, "views.api_search")} for r in result.relaxations
        ],
    }


@bp.get("/api/search")
def api_search():
    try:
        req = _parse()
    except RequestError as exc:
        return error_response(400, str(exc), exc.param)
    try:
        result = get_searcher().search(req)
    except IndexMissing:
        result = _empty_result(req)
    resp = jsonify(result_json(result))
    resp.headers["Link"] = f'<{search_url(req)}>; rel="alternate"; type="text/html"'
    return resp


def _article_or_404(doc_id: str) -> StoredDoc:
    if len(doc_id) > 300 or "\x00" in doc_id:
        abort(404)
    try:
        doc = get_searcher().article(doc_id)
    except IndexMissing:
        doc = None
    if doc is None:
        raise ArticleNotFound(doc_id)  # its page offers a search for the id's words
    return doc


def _part(doc: StoredDoc) -> tuple[list[Part], int]:
    """The article's parts (one, unless it is very long) and the one asked for
    with ``?part=N`` (1 when absent); a RequestError in words for anything else."""
    parts = parts_of(doc.id, doc.content_hash, doc.display_html)
    raw = request.args.get("part", "")
    if raw == "":
        return parts, 1
    n = len(parts)
    return parts, parse_positive_int(raw, "part", "部分编号", n, f"这篇文章只有 {n} 部分" if n > 1 else "这篇文章不分部分")


def _part_url(doc_id: str, n: int, endpoint: str = "views.article", back: str | None = None) -> str:
    return url_for(endpoint, doc_id=doc_id, part=n if n > 1 else None, back=back)


@bp.get("/article/<path:doc_id>")
def article(doc_id: str):
    doc = _article_or_404(doc_id)
    try:
        parts, n = _part(doc)
    except RequestError as exc:
        return error_response(400, str(exc), exc.param)
    related = get_searcher().related(doc)
    src = doc.source_url
    safe_src = src if src.startswith(("http://", "https://")) else ""
    # The reader's search (query, filters, page), carried from the hit's link and on
    # to parts and related articles, so 返回搜索 returns to it.
    back = safe_back(request.args.get("back"))
    return render_template(
        "article.html",
        doc=doc,
        # sanitized at index time; each part well-formed; without the outlet's boilerplate,
        # whose lines the page offers folded (原文附加内容)
        body=Markup(parts[n - 1].render(doc.display_html)),
        hidden_lines=doc.hidden_lines if n == len(parts) else [],
        part=n,
        parts=len(parts),
        part_url=lambda i: _part_url(doc.id, i, back=back),
        related=related,
        article_url=lambda doc_id: url_for("views.article", doc_id=doc_id, back=back),
        back_url=back or url_for("views.search"),
        source_url=safe_src,
        facet_links=facet_links(doc),
        req=SearchRequest(),
        search_url=search_url,
    )


@bp.get("/api/article/<path:doc_id>")
def api_article(doc_id: str):
    doc = _article_or_404(doc_id)
    try:
        parts, n = _part(doc)
    except RequestError as exc:
        return error_response(400, str(exc), exc.param)
    count = len(parts)
    body = shown(doc, SHOWN_ON_PAGE)
    body["local_date"] = doc.local_date.isoformat()  # as the source wrote it, in its own offset
    body["body_html"] = parts[n - 1].render(doc.display_html)
    body["boilerplate_lines"] = doc.hidden_lines  # left out of body_html: the outlet's, not the article's
    body["part"] = n
    body["parts"] = count
    body["url"] = url_for("views.article", doc_id=doc.id)
    if count > 1:
        api = "views.api_article"
        body["note"] = f"正文很长，分为 {count} 部分；body_html 是第 {n} 部分，其余部分见 parts_urls。"
        body["parts_urls"] = [_part_url(doc.id, i, api) for i in range(1, count + 1)]
        body["prev_url"] = _part_url(doc.id, n - 1, api) if n > 1 else None
        body["next_url"] = _part_url(doc.id, n + 1, api) if n < count else None
    return jsonify(body)


def _suggestions() -> tuple[str, list[str]]:
    q = request.args.get("q", "")[:40].replace("\x00", "")
    try:
        return q, get_searcher().suggest(q)
    except IndexMissing:
        return q, []


@bp.get("/suggest")
def suggest():
    """Options for the search box's datalist (htmx swaps them in while typing)."""
    return render_template("_suggestions.html", items=_suggestions()[1])


@bp.get("/api/suggest")
def api_suggest():
    q, items = _suggestions()
    return jsonify({"query": q, "suggestions": items})


@bp.get("/healthz")
def healthz():
    """200 when the app can serve: the engine answers. 503 only when it cannot be
    reached (or cannot search). An engine that answers with nothing indexed yet can
    serve (its pages say so and how to index), so that is 200 too, told apart by
    ``"index": "missing"``: a container orchestrator waiting for a healthy app
    must not wait for data that only the indexer, run later, brings."""
    try:
        health = get_searcher().engine.health()
    except Exception as exc:  # noqa: BLE001 - health never raises
        health = {"ok": False, "error": f"{type(exc).__name__}"}
    missing = bool(health.get("index_missing"))
    serving = bool(health.get("ok")) or missing
    body = {
        "status": "ok" if serving else "unavailable",
        "engine": health.get("engine"),
        "index": "ready" if health.get("ok") else "missing" if missing else "unknown",
        "documents": 0 if missing else health.get("documents"),
    }
    if missing:
        body["message"] = "nothing is indexed yet: run the indexer (indexer index PATH)"
    return jsonify(body), 200 if serving else 503

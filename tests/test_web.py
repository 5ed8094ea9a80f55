"""The web app through Flask's test client, on every engine: what a reader gets,
the JSON twin, htmx partials, escaping, bounds and security headers."""

from __future__ import annotations

import pytest
from bs4 import BeautifulSoup


def soup(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def test_search_page_shows_results_with_highlights(client):
    resp = client.get("/?q=长江经济带")
    assert resp.status_code == 200
    page = soup(resp)
    titles = [a.get_text() for a in page.select(".hit h2 a")]
    assert "长江经济带生态保护取得新进展" in titles
    assert page.select(".hit mark")
    assert page.select_one("#q")["value"] == "长江经济带"
    assert "共" in page.select_one(".count").get_text()
    assert 'rel="alternate"' in resp.headers["Link"] and "/api/search?q=" in resp.headers["Link"]


def test_empty_query_lists_newest_with_facets(client):
    page = soup(client.get("/"))
    assert page.select_one("#results-heading").get_text(strip=True).startswith("最新文章")
    assert page.select("#facet-category ~ ul a.facet-value")
    assert page.select("section.facet.date a.facet-value")


def test_facet_links_toggle_and_keep_other_state(client):
    page = soup(client.get("/?q=经济&sort=newest"))
    link = page.select_one("section.facet a.facet-value[aria-checked=false]")
    href = link["href"]
    assert "q=%E7%BB%8F%E6%B5%8E" in href and "sort=newest" in href
    selected = soup(client.get(href))
    on = selected.select("a.facet-value[aria-checked=true]")
    assert len(on) == 1
    off_href = on[0]["href"]
    assert soup(client.get(off_href)).select("a.facet-value[aria-checked=true]") == []


def test_htmx_gets_the_partial_and_history_restore_gets_the_page(client):
    partial = client.get("/?q=春运", headers={"HX-Request": "true"})
    body = partial.get_data(as_text=True)
    assert "<html" not in body and 'id="main"' in body and 'hx-swap-oob="true"' in body
    # caches keep the partial and the page apart, and htmx's history restore apart too
    assert {v.strip() for v in partial.headers["Vary"].split(",")} >= {"HX-Request", "HX-History-Restore-Request"}
    full = client.get("/?q=春运", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in full.get_data(as_text=True)


def test_no_results_offers_relaxations_with_counts(client):
    page = soup(client.get("/?q=春运+鲁班工坊&tag=旅游"))
    assert "没有找到" in page.get_text()
    links = page.select(".relax a")
    assert links
    for a in links:
        follow = soup(client.get(a["href"]))
        assert follow.select(".hit"), a.get_text()


def test_article_page_and_its_json_twin(client):
    page = soup(client.get("/article/2022-01-03-tianjin-vocational"))
    assert page.select_one("article h1").get_text() == "天津职业教育产教融合再上新台阶"
    src = page.select_one(".source a")
    assert src["href"] == "http://news.example/2022/01/03/tianjin.html" and "nofollow" in src["rel"]
    data = client.get("/api/article/2022-01-03-tianjin-vocational").get_json()
    assert data["title"] == "天津职业教育产教融合再上新台阶" and data["date"] == "2022-01-03T09:45:21+08:00"
    assert client.get("/article/does-not-exist").status_code == 404
    assert client.get("/api/article/does-not-exist").get_json()["status"] == 404


def test_file_names_with_spaces_make_working_links(client):
    data = client.get("/api/search?q=英国议会").get_json()
    hit = next(h for h in data["hits"] if h["title"] == "英国议会讨论气候变化议题")
    assert client.get(hit["url"]).status_code == 200


def test_api_shape(client):
    data = client.get("/api/search?q=经济&tag=经济&page=1").get_json()
    assert set(data) >= {"total", "page", "hits", "facets"}
    assert set(data["facets"]) == {"category", "tag", "site", "date"}
    hit = data["hits"][0]
    assert set(hit) >= {"id", "title", "date", "categories", "tags", "snippet_html", "url", "source_url"}
    assert {"value", "count", "selected"} <= set(data["facets"]["tag"][0])
    assert any(v["value"] == "经济" and v["selected"] for v in data["facets"]["tag"])
    assert {"value", "count", "selected", "from", "to"} <= set(data["facets"]["date"][0])


XSS = "<script>alert(1)</script>"


@pytest.mark.parametrize("param", ["q", "tag", "category"])
def test_everything_echoed_is_escaped(client, param):
    resp = client.get("/", query_string={param: XSS + '"><img src=x onerror=alert(1)>'})
    body = resp.get_data(as_text=True)
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert resp.status_code == 200


def test_stored_xss_title_is_escaped_in_results_and_article(client):
    body = client.get("/?q=安全测试").get_data(as_text=True)
    assert "<script>alert('title')" not in body and "&lt;script&gt;" in body
    article = client.get("/article/2020-05-05-xss-attempt").get_data(as_text=True)
    assert "<script>alert" not in article and "onerror" not in article and "javascript:" not in article


@pytest.mark.parametrize(
    "query, status",
    [
        ("q=" + "长" * 300, 400),
        ("page=0", 400),
        ("page=-1", 400),
        ("page=99999", 400),
        ("page=abc", 400),
        ("from=2020-13-01", 400),
        ("from=2021-01-02&to=2021-01-01", 400),
        ("sort=random", 400),
        ("q=a%00b", 400),
        ("tag=" + "&tag=".join(str(i) for i in range(30)), 400),
        ("q=" + "x" * 5000, 414),
    ],
)
def test_bad_requests_get_clean_errors(client, query, status):
    html = client.get("/?" + query)
    api = client.get("/api/search?" + query)
    assert html.status_code == status and api.status_code == status
    assert api.is_json and "error" in api.get_json()
    assert "Traceback" not in html.get_data(as_text=True)


def test_invalid_utf8_in_url_is_handled(client):
    resp = client.get("/api/search?q=%ff%fe")
    assert resp.status_code in (200, 400)


def test_security_headers_and_methods(client):
    resp = client.get("/")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"]
    assert client.post("/api/search").status_code == 405


def test_healthz(client):
    data = client.get("/healthz")
    assert data.status_code == 200 and data.get_json()["status"] == "ok"


def test_suggestions_offer_tags_and_titles(client):
    data = client.get("/api/suggest?q=鲁班").get_json()
    assert "鲁班工坊" in data["suggestions"]
    assert "鲁班工坊走向世界 中国职业教育品牌受欢迎" in data["suggestions"]
    options = soup(client.get("/suggest?q=春运")).select("option")
    assert "春运返程客流高峰到来" in [o["value"] for o in options]
    assert client.get("/api/suggest?q=").get_json()["suggestions"] == []
    assert "<script>" not in client.get("/suggest?q=<script>").get_data(as_text=True)


def test_expanded_facet_has_a_filter_box(client):
    page = soup(client.get("/?more=tag"))
    box = page.select_one("input[data-filter-list=facet-list-tag]")
    assert box is not None and page.select_one("#facet-list-tag")
    assert page.select_one("a.more").get_text() == "收起"


def test_no_operator_actions_are_routed_to_readers(app):
    rules = {r.rule for r in app.url_map.iter_rules()}
    assert rules == {
        "/",
        "/api/search",
        "/article/<path:doc_id>",
        "/api/article/<path:doc_id>",
        "/suggest",
        "/api/suggest",
        "/healthz",
        "/static/<path:filename>",
    }
    assert all(r.methods <= {"GET", "HEAD", "OPTIONS"} for r in app.url_map.iter_rules())


@pytest.mark.parametrize("param", ["q", "tag", "category", "from", "to", "sort", "page", "more", "unknown"])
@pytest.mark.parametrize("path", ["/", "/api/search", "/suggest", "/api/suggest", "/article/x", "/api/article/x"])
def test_script_in_every_parameter_is_never_echoed_raw(client, path, param):
    payload = '"><script>alert(1)</script><img src=x onerror=alert(1)>'
    resp = client.get(path, query_string={param: payload})
    body = resp.get_data(as_text=True)
    assert resp.status_code in (200, 400, 404)
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert "Traceback" not in body


def test_thousands_of_facet_parameters_are_refused_quickly(client):
    resp = client.get("/api/search?" + "&".join(f"tag=t{i}" for i in range(300)))
    assert resp.status_code in (400, 414)


def test_a_facet_that_cannot_be_counted_leaves_the_page_answering(app, client):
    """The real engine, asked to count the tag facet by a field it cannot count:
    the page and its JSON twin still answer with every hit, and say which facet
    is missing instead of showing it empty."""
    from dataclasses import replace

    from searchapp.state import get_searcher

    with app.app_context():
        searcher = get_searcher()
        engine = searcher.engine

        class RefusingTagCounts:
            def __getattr__(self, name):
                return getattr(engine, name)

            def search(self, q):
                counts = tuple(replace(c, field="title_words") if c.name == "tag" else c for c in q.counts)
                return engine.search(replace(q, counts=counts))

        whole = client.get("/api/search?q=经济").get_json()
        searcher.engine = RefusingTagCounts()
        try:
            page = client.get("/?q=经济")
            data = client.get("/api/search?q=经济").get_json()
        finally:
            searcher.engine = engine
    assert page.status_code == 200
    assert "tag" in data["unavailable_facets"] and data["facets"]["tag"] == []
    assert data["total"] == whole["total"] > 0 and [h["id"] for h in data["hits"]] == [h["id"] for h in whole["hits"]]
    tag_section = soup(page).select_one("section[aria-labelledby=facet-tag]")
    assert "暂时无法统计" in tag_section.get_text()
    assert len(soup(page).select(".hit")) == len(whole["hits"])


def test_site_filter_in_the_url_the_page_and_the_api(client):
    """?site= selects outlets by their links' host (any of several); the page marks
    them, labels the chip by facet, and the JSON twin says the same."""
    from searchcore.model import site_of

    sites = {"rfi.example", "dw.example"}
    data = client.get("/api/search?site=rfi.example&site=dw.example").get_json()
    assert data["total"] > 0 and {h["source_url"] and site_of(h["source_url"]) for h in data["hits"]} <= sites
    assert {(f["facet"], f["value"], f["label"]) for f in data["filters"]} == {("site", s, f"来源：{s}") for s in sites}
    assert {v["value"] for v in data["facets"]["site"] if v["selected"]} == sites
    page = soup(client.get("/?site=rfi.example"))
    checked = page.select("section[aria-labelledby=facet-site] a.facet-value[aria-checked=true] .label")
    assert [a.get_text() for a in checked] == ["rfi.example"]
    assert [c.get_text(" ", strip=True) for c in page.select(".chips li a:not(.clear)")] == ["来源：rfi.example ×"]

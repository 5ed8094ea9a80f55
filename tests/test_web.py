"""The web app through Flask's test client, on every engine: what a reader gets,
the JSON twin, htmx partials, escaping, bounds and security headers."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from bs4 import BeautifulSoup


def soup(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def form_url(form, flip: str) -> str:
    """The URL a facet's GET form submits (its hidden fields, then its ticked boxes)
    once the box whose value is ``flip`` is flipped: what a browser sends on 应用."""
    pairs = [(i["name"], i["value"]) for i in form.select("input[type=hidden]")]
    for box in form.select("input[type=checkbox]"):
        if box.has_attr("checked") != (box["value"] == flip):
            pairs.append((box["name"], box["value"]))
    return form["action"] + "?" + urlencode(pairs)


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
    assert page.select("#facet-category ~ form .facet-value input[type=checkbox]")
    assert page.select("section.facet.date a.facet-value")


def test_facet_links_toggle_and_keep_other_state(client):
    page = soup(client.get("/?q=经济&sort=newest"))
    box = page.select_one("section.facet form.facet-form input[type=checkbox]:not([checked])")
    href = form_url(box.find_parent("form"), box["value"])
    assert "q=%E7%BB%8F%E6%B5%8E" in href and "sort=newest" in href
    selected = soup(client.get(href))
    on = selected.select(".facet-value input[type=checkbox][checked]")
    assert len(on) == 1
    off_href = form_url(on[0].find_parent("form"), on[0]["value"])
    assert soup(client.get(off_href)).select(".facet-value input[type=checkbox][checked]") == []


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
        "/favicon.ico",
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
    checked = page.select("section[aria-labelledby=facet-site] .facet-value:has(input[checked]) .label")
    assert [a.get_text() for a in checked] == ["rfi.example"]
    assert [c.get_text(" ", strip=True) for c in page.select(".chips li a:not(.clear)")] == ["来源：rfi.example ×"]


# -- Chinese readers on every device: one clock, no dead ends, suggestions ------------
# The BBC fixture post is dated 2020-07-30T17:09:49Z (its own offset: UTC): in Beijing
# that is 2020-07-31 01:09, the day its date facet bucket and from/to use.
BBC_ID = "2020-07-30-BBC 英国 新闻"


def test_times_are_shown_in_beijing_time_on_their_facet_day(client):
    data = client.get("/api/search?q=英国议会").get_json()
    hit = next(h for h in data["hits"] if h["id"] == BBC_ID)
    assert hit["date"] == "2020-07-31T01:09:49+08:00"
    shown = next(li for li in soup(client.get("/?q=英国议会")).select(".hit") if "英国议会讨论" in li.get_text())
    assert shown.select_one("time").get_text() == "2020-07-31 01:09"
    assert shown.select_one("time")["datetime"] == "2020-07-31T01:09:49+08:00"
    # the shown day is the facet's day, and from/to of that day find it
    month = client.get("/api/search?q=英国议会&from=2020-07-01&to=2020-07-31").get_json()
    assert [v["value"] for v in month["facets"]["date"]] == ["20200731"]
    assert BBC_ID in [h["id"] for h in client.get("/api/search?q=英国议会&from=2020-07-31&to=2020-07-31").get_json()["hits"]]
    assert client.get("/api/search?q=英国议会&from=2020-07-30&to=2020-07-30").get_json()["total"] == 0
    # the article page: Beijing time, and the source's own time since its offset differs
    page = soup(client.get(f"/article/{BBC_ID}"))
    meta = page.select_one("article .meta")
    assert meta.select_one("time")["datetime"] == "2020-07-31T01:09:49+08:00"
    text = " ".join(meta.get_text(" ", strip=True).split()).replace(" （", "（").replace(" ·", "·")
    assert "2020-07-31 01:09（北京时间）· 当地时间 2020-07-30 17:09 +00:00" in text
    for t in page.select(".related time"):
        assert t["datetime"].endswith("+08:00"), t
    art = client.get(f"/api/article/{BBC_ID}").get_json()
    assert (art["date"], art["local_date"]) == ("2020-07-31T01:09:49+08:00", "2020-07-30T17:09:49+00:00")
    # an article written in Beijing time shows no second clock
    tianjin = soup(client.get("/article/2022-01-03-tianjin-vocational")).select_one("article .meta")
    assert "2022-01-03 09:45（北京时间）" in tianjin.get_text(strip=True) and "当地时间" not in tianjin.get_text()


def test_a_reversed_date_range_is_swapped_at_its_canonical_url(client):
    forward = client.get("/api/search?q=经济&from=2022-01-01&to=2024-12-31").get_json()
    assert forward["total"] > 0
    for headers in ({}, {"HX-Request": "true"}):
        resp = client.get("/?q=经济&from=2024-12-31&to=2022-01-01", headers=headers)
        assert resp.status_code == 302
        assert resp.headers["Location"] == "/?q=%E7%BB%8F%E6%B5%8E&from=2022-01-01&to=2024-12-31"
    page = client.get("/?q=经济&from=2024-12-31&to=2022-01-01", follow_redirects=True)
    assert page.status_code == 200 and not soup(page).select(".error")
    assert soup(page).select_one(".count").get_text() == f"共 {forward['total']} 篇"
    backwards = client.get("/api/search?q=经济&from=2024-12-31&to=2022-01-01")
    assert backwards.status_code == 200
    assert [h["id"] for h in backwards.get_json()["hits"]] == [h["id"] for h in forward["hits"]]


@pytest.mark.parametrize(
    "bad, words",
    [("sort=random", "排序方式"), ("page=abc", "页码"), ("page=99999", "最多只能翻到"), ("from=2020-13-01", "开始日期")],
)
def test_a_bad_parameter_keeps_the_query_filters_and_results(client, bad, words):
    good = soup(client.get("/?q=经济&tag=经济"))
    resp = client.get(f"/?q=经济&tag=经济&{bad}")
    assert resp.status_code == 400
    page = soup(resp)
    assert words in page.select_one(".error").get_text()
    assert page.select_one("#q")["value"] == "经济"
    chips = [c.get_text(" ", strip=True) for c in page.select(".chips li a:not(.clear)")]
    assert chips == [c.get_text(" ", strip=True) for c in good.select(".chips li a:not(.clear)")] and "经济" in chips[0]
    titles = [a.get_text() for a in page.select(".hit h2 a")]
    assert titles and titles == [a.get_text() for a in good.select(".hit h2 a")]


def test_a_page_past_the_end_says_how_many_pages_and_links_to_the_last(client):
    pages = client.get("/api/search").get_json()["pages"]
    assert 2 <= pages < 48
    page = soup(client.get(f"/?page={pages + 2}"))
    empty = page.select_one(".empty")
    assert f"共 {pages} 页" in empty.get_text()
    links = {a.get_text(): a["href"] for a in empty.select("a")}
    assert links == {"第一页": "/", f"最后一页（第 {pages} 页）": f"/?page={pages}"}
    assert soup(client.get(links[f"最后一页（第 {pages} 页）"])).select(".hit")


def test_back_to_the_search_from_an_article(client):
    search = "/?q=%E7%BB%8F%E6%B5%8E&tag=%E7%BB%8F%E6%B5%8E&page=2"
    results = soup(client.get(search + "&page_size=ignored"))
    first = results.select_one(".hit h2 a")["href"]
    article = soup(client.get(first))
    assert article.select_one("a.back")["href"] == search
    for a in article.select(".related a"):  # related articles keep the way back
        assert soup(client.get(a["href"])).select_one("a.back")["href"] == search
    again = soup(client.get(search))
    assert [h.get_text() for h in again.select(".hit h2 a")] == [h.get_text() for h in results.select(".hit h2 a")]
    # only our own search page is a way back; anything else is the plain search page
    for hostile in ["//evil.example/", "https://evil.example/?q=1", "/\\evil.example", "/article/x", "javascript:alert(1)",
                    "/?q=1//evil", "/?" + "q" * 3000, "/?q=a b"]:
        back = soup(client.get(f"/article/{BBC_ID}", query_string={"back": hostile})).select_one("a.back")["href"]
        assert back == "/", hostile
    quoted = client.get(f"/article/{BBC_ID}", query_string={"back": '/?q="><script>alert(1)</script>'})
    assert "<script>alert(1)" not in quoted.get_data(as_text=True)


def test_an_unknown_article_offers_a_search_for_its_words(client):
    resp = client.get("/article/2020-07-31-BBC 英国 新闻")
    assert resp.status_code == 404
    page = soup(resp)
    offer = page.select_one(".search-instead a")
    assert offer.get_text() == "BBC 英国 新闻" and page.select_one("#q")["value"] == "BBC 英国 新闻"
    assert offer["href"] == "/?q=BBC+%E8%8B%B1%E5%9B%BD+%E6%96%B0%E9%97%BB"
    # no article has all three words: that search offers its ways out, 只搜索“英国” among them
    found = soup(client.get(offer["href"]))
    assert "只搜索“英国”" in [a.get_text() for a in found.select(".relax a")]
    api = client.get("/api/article/2020-07-31-BBC 英国 新闻")
    assert api.status_code == 404 and api.get_json()["search_url"] == offer["href"]
    # an id of digits alone has no words to offer: a plain 404
    assert soup(client.get("/article/2020-07-31")).select_one(".search-instead") is None


def test_the_source_link_is_the_site_and_an_arrow(client):
    link = soup(client.get("/article/2022-01-03-tianjin-vocational")).select_one(".source a")
    assert link.get_text() == "news.example ↗"
    assert link["href"] == link["title"] == "http://news.example/2022/01/03/tianjin.html"


SUGGEST_POSTS = {
    "s-title": ("臺灣經濟數據公佈", "臺灣 两岸", "出口连续成长。"),
    "s-simplified": ("台湾夜市小吃", "美食", "夜市很热闹。"),
    "s-body-only": ("两岸经贸往来频繁", "两岸", "台湾企业在大陆投资，臺灣商人很多。"),
    "s-near": ("湾区建设提速", "湾区", "台风过后，湾区恢复正常。"),
}


@pytest.fixture(scope="module", params=["tantivy", "elasticsearch"])
def suggest_searcher(request, tmp_path_factory):
    """A small index on each engine where 台湾 is in titles, tags and a body only."""
    from indexer.pipeline import Options, run
    from searchcore.engines import open_engine
    from searchcore.search import Searcher
    from tests.conftest import drop_es_indices, make_settings, require_engine

    require_engine(request.param)
    folder = tmp_path_factory.mktemp("suggest") / "posts"
    folder.mkdir(parents=True)
    for stem, (title, tags, body) in SUGGEST_POSTS.items():
        (folder / f"{stem}.md").write_text(
            f'---\ntitle: "{title}"\ndate: 2021-06-01 10:00:00 +0800\ncategories: news\ntags: {tags}\n---\n<p>{body}</p>\n',
            encoding="utf-8",
        )
    s = make_settings(request.param, tmp_path_factory.mktemp("suggest-idx") / "data")
    assert run(s, folder, opts=Options(workers=1)).indexed == len(SUGGEST_POSTS)
    engine = open_engine(s)
    yield Searcher(engine, s)
    engine.close()
    drop_es_indices(s)


@pytest.mark.parametrize("typed", ["臺灣", "台湾", " 台灣 "])
def test_suggestions_contain_the_typed_text_in_either_script(suggest_searcher, typed):
    from searchcore.analysis import normalize

    got = suggest_searcher.suggest(typed)
    assert got == ["臺灣", "臺灣經濟數據公佈", "台湾夜市小吃"] or got == ["臺灣", "台湾夜市小吃", "臺灣經濟數據公佈"], got
    assert all("台湾" in normalize(s) for s in got)
    assert suggest_searcher.suggest("台湾 -夜市") == ["臺灣", "臺灣經濟數據公佈"]


def test_suggestions_never_lack_the_typed_text(client):
    from searchcore.analysis import normalize

    for typed in ["经济", "臺灣", "台湾", "职业教育", "春运"]:
        got = client.get("/api/suggest", query_string={"q": typed}).get_json()["suggestions"]
        assert got, typed
        assert all(normalize(typed) in normalize(s) for s in got), (typed, got)


def test_a_long_search_still_opens_its_articles(client):
    """A search whose URL is near the limits: its hits' links must not pass the
    server's query-string limit by carrying it (they then go back to the plain page)."""
    q = "经济 -" + "股" * 250
    resp = client.get("/", query_string={"q": q, "tag": ["经济", "债" * 60]})
    assert resp.status_code == 200
    links = [a["href"] for a in soup(resp).select(".hit h2 a")]
    assert links
    article = client.get(links[0])
    assert article.status_code == 200, len(links[0])
    assert soup(article).select_one("a.back")["href"] == "/"
    short = soup(client.get("/?q=经济")).select_one(".hit h2 a")["href"]
    assert soup(client.get(short)).select_one("a.back")["href"] == "/?q=%E7%BB%8F%E6%B5%8E"


def test_a_spent_relaxation_budget_still_offers_a_way_out(client, monkeypatch):
    """On a loaded site the first counts (each finding nothing) can outlast the time
    budget: counting goes on, still bounded, until one way out is found."""
    from searchcore.search import Searcher

    monkeypatch.setattr(Searcher, "RELAX_BUDGET_S", -1.0)  # spent before the first count
    links = soup(client.get("/?q=春运+鲁班工坊&tag=旅游")).select(".relax a")
    assert len(links) == 1
    assert soup(client.get(links[0]["href"])).select(".hit")

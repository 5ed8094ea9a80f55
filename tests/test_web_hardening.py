"""What an attacker tried against the web app, on every engine: a 9 MB post
(bounded snippets, an article page in parts), numbers the parser choked on
(Unicode digits, huge numbers), redirects built from a forged Host, 405s without
Allow, remote images in the CSP, and Cache-Control on every kind of response.

Nothing here is timed: the cost of a big post is measured by bench/bench_bigpost.py;
these tests check the behaviour that keeps it bounded.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from bs4 import BeautifulSoup

from tests.conftest import ENGINE_NAMES, POSTS, app_overrides, drop_es_indices, make_settings, require_engine

ROOT = Path(__file__).resolve().parent.parent
BIG_ID = "2024-06-01-big-post"
OLD_IMG_ID = "2019-01-01-old-image"
BIG_BYTES = 9_000_000
EARLY = "开篇生态保护"  # in the first paragraph of the big post
LATE = "深海探测器"  # only in its last paragraph, far past the highlighter's window
PARAGRAPH = "<p>" + "长篇报道的正文段落，记录各地的发展变化与群众的生活。" * 8 + "</p>\n"
TRACKER = "http://203.0.113.7/pixel.gif"


def soup(resp) -> BeautifulSoup:
    return BeautifulSoup(resp.get_data(as_text=True), "html.parser")


def _article(doc_id: str, title: str, body_html: str, body_text: str, day: int):
    from searchcore.model import Article

    return Article(
        id=doc_id,
        title=title,
        date=datetime(2024, 6, day, 8, tzinfo=UTC),
        categories=["long"],
        tags=["长文"],
        body_html=body_html,
        body_text=body_text,
        source_url="",
        path=f"{doc_id}.md",
        content_hash=hashlib.blake2b(body_html.encode(), digest_size=16).hexdigest(),
    )


def big_post():
    """A 9 MB post, written straight to the engine. Its token streams come from its
    first and last paragraphs only: the full streams of 9 MB are over a small
    Elasticsearch node's indexing-pressure limit, and what is under test is what
    the app reads back, not indexing."""
    from searchcore.indexing import index_article

    head_text, tail_text = f"{EARLY}是第一段。", f"结尾才说到{LATE}。"
    filler = PARAGRAPH * ((BIG_BYTES - 200) // len(PARAGRAPH.encode()))
    body_html = f"<p>{head_text}</p>\n{filler}<p>{tail_text}</p>"
    body_text = "\n".join([head_text, unescape(re.sub(r"<[^>]+>", "", filler)).strip(), tail_text])
    title = "长篇调查报告"
    short = _article(BIG_ID, title, f"<p>{head_text}</p><p>{tail_text}</p>", f"{head_text}\n{tail_text}", 1)
    return replace(index_article(short), article=_article(BIG_ID, title, body_html, body_text, 1))


def old_image_post():
    """A post as an index built before images became links stored it: a remote <img>."""
    from searchcore.indexing import index_article

    html = f'<p>旧索引里的图片说明文字。</p><p><img src="{TRACKER}" alt="像素"></p>'
    return index_article(_article(OLD_IMG_ID, "旧索引图片测试", html, "旧索引里的图片说明文字。", 2))


def add_big_posts(engine) -> None:
    """Write the 9 MB post and the old <img> post straight to an engine's index (as an
    older indexer stored them: no body bound, images as <img>), then commit."""
    writer = engine.writer()
    try:
        assert writer.upsert([big_post(), old_image_post()]) == []
        writer.commit()
    finally:
        writer.close()


@pytest.fixture(scope="module", params=ENGINE_NAMES)
def big(request, tmp_path_factory):
    """(app, engine) over the fixture posts plus the 9 MB post and an old <img> post."""
    require_engine(request.param)
    from indexer.pipeline import run
    from searchapp import create_app
    from searchcore.engines import open_engine

    s = make_settings(request.param, tmp_path_factory.mktemp("big") / "data")
    assert run(s, POSTS).indexed >= 9
    engine = open_engine(s)
    add_big_posts(engine)
    app = create_app({"TESTING": True, "SETTINGS_OVERRIDES": app_overrides(s)})
    yield app, engine
    engine.close()
    drop_es_indices(s)


@pytest.fixture
def big_client(big):
    return big[0].test_client()


# -- 1. a 9 MB post ----------------------------------------------------------------------


def test_search_listing_a_huge_post_reads_a_bounded_window(big, big_client, monkeypatch):
    """The highlighter normalizes and scans at most WINDOW_CHARS characters of any
    body, and the page stays small; a word only found at the end is not marked."""
    import searchcore.highlight as hl

    seen: list[int] = []
    real = hl.normalize
    monkeypatch.setattr(hl, "normalize", lambda text: seen.append(len(text)) or real(text))
    hl._normalized.cache_clear()
    for q in (EARLY, LATE):
        resp = big_client.get("/?" + f"q={quote(q)}")
        assert resp.status_code == 200
        assert len(resp.get_data()) < 64 * 1024
        hit = next(h for h in soup(resp).select(".hit") if BIG_ID in h.select_one("h2 a")["href"])
        snippet = hit.select_one(".snippet")
        assert len(snippet.get_text()) <= 125 and snippet.get_text().endswith("…")
        marked = [m.get_text() for m in snippet.select("mark")]
        assert marked == ([EARLY] if q == EARLY else []), marked
    assert seen and max(seen) <= hl.WINDOW_CHARS, max(seen)
    data = big_client.get(f"/api/search?q={quote(LATE)}").get_json()
    assert data["total"] == 1 and len(data["hits"][0]["snippet_html"]) < 1000


def test_engine_hits_carry_a_bounded_text_and_no_html(big):
    """Engines give a hit no HTML body and at most WINDOW_CHARS of text, whatever
    the post's size (the article page reads the whole post with get())."""
    from searchcore.analysis import parse_query
    from searchcore.engines.base import EngineQuery
    from searchcore.highlight import WINDOW_CHARS
    from searchcore.query import text_query

    _, engine = big
    res = engine.search(EngineQuery(match=text_query(parse_query(LATE), 3.0), limit=5))
    doc = next(h.doc for h in res.hits if h.doc.id == BIG_ID)
    assert doc.body_html == "" and 0 < len(doc.body_text) <= WINDOW_CHARS
    full = engine.get(BIG_ID)
    assert len(full.body_html.encode()) > BIG_BYTES - 1000
    assert len(full.body_text) <= WINDOW_CHARS  # stored bounded (fields.FIELDS, body_text)


def test_hits_from_an_older_index_are_bounded_when_read():
    """An index built before the stored text was bounded holds it whole: the
    engines cut it when they read a hit."""
    from searchcore.engines.elasticsearch_engine import ElasticsearchEngine
    from searchcore.engines.tantivy_engine import TantivyEngine
    from searchcore.highlight import WINDOW_CHARS

    text = "长" * (3 * WINDOW_CHARS)
    stored = {"id": ["x"], "title": [b"t"], "body_html": [b"<p>x</p>"], "body_text": [text.encode()], "date": [datetime.now(UTC)]}
    doc = TantivyEngine._from_document(stored, hit=True)
    assert doc.body_text == text[:WINDOW_CHARS] and doc.body_html == ""
    assert TantivyEngine._from_document(stored).body_text == text
    source = {"id": "x", "title": "t", "body_text": text, "date": "2024-01-01T00:00:00Z"}
    assert ElasticsearchEngine._stored(source, hit=True).body_text == text[:WINDOW_CHARS]


def _label(page: BeautifulSoup) -> tuple[int, int]:
    m = re.fullmatch(r"第 (\d+)/(\d+) 部分", page.select_one("nav.parts .part-label").get_text(strip=True))
    assert m, page.select_one("nav.parts")
    return int(m.group(1)), int(m.group(2))


def test_huge_article_page_comes_in_parts_with_working_links(big_client):
    first = big_client.get(f"/article/{BIG_ID}")
    assert first.status_code == 200 and len(first.get_data()) < 400_000
    page = soup(first)
    part, parts = _label(page)
    assert part == 1 and parts >= 30, parts
    assert f"（第 1/{parts} 部分）" in page.title.get_text()
    assert EARLY in page.select_one("article .body").get_text() and LATE not in first.get_data(as_text=True)
    assert not page.select("nav.parts a[rel=prev]")
    nxt = page.select_one("nav.parts a[rel=next]")["href"]
    assert nxt == f"/article/{BIG_ID}?part=2"
    second = soup(big_client.get(nxt))
    assert _label(second) == (2, parts)
    assert second.select_one("nav.parts a[rel=prev]")["href"] == f"/article/{BIG_ID}"
    last_href = next(a["href"] for a in second.select("nav.parts a") if a.get_text() == "最后一部分")
    last = big_client.get(last_href)
    assert last.status_code == 200 and len(last.get_data()) < 400_000
    last_page = soup(last)
    assert _label(last_page) == (parts, parts) and not last_page.select("nav.parts a[rel=next]")
    assert LATE in last_page.select_one("article .body").get_text()
    for bad in ("0", str(parts + 1), "²", "１", "99999999999999999999", "abc", "-1"):
        resp = big_client.get(f"/article/{BIG_ID}?part={quote(bad)}")
        assert resp.status_code == 400, bad
        assert "部分" in soup(resp).select_one("main h1").get_text(), bad


def test_huge_article_json_offers_the_same_parts(big_client):
    data = big_client.get(f"/api/article/{BIG_ID}").get_json()
    parts = data["parts"]
    assert data["part"] == 1 and parts >= 30 and "note" in data
    assert len(data["body_html"]) < 150_000 and len(data["parts_urls"]) == parts
    assert data["prev_url"] is None and data["next_url"] == f"/api/article/{BIG_ID}?part=2"
    last = big_client.get(data["parts_urls"][-1]).get_json()
    assert last["part"] == parts and last["next_url"] is None and LATE in last["body_html"]
    bad = big_client.get(f"/api/article/{BIG_ID}?part={parts + 1}")
    assert bad.status_code == 400 and bad.get_json()["param"] == "part" and str(parts) in bad.get_json()["error"]
    small = big_client.get("/api/article/2022-01-03-tianjin-vocational").get_json()
    assert small["parts"] == 1 and small["part"] == 1 and "note" not in small
    assert big_client.get("/api/article/2022-01-03-tianjin-vocational?part=2").status_code == 400


def test_related_articles_of_a_huge_post_come_from_its_title(big, monkeypatch):
    """related() builds its query from the title alone (bounded), never the body."""
    app, engine = big
    from searchapp.state import get_searcher

    with app.app_context():
        searcher = get_searcher()
        asked = []
        real = searcher.engine.search
        monkeypatch.setattr(searcher.engine, "search", lambda q: asked.append(q) or real(q))
        doc = searcher.article(BIG_ID)
        searcher.related(doc)
    from searchcore.query import Bool, Tokens

    def tokens(clause):
        if isinstance(clause, Tokens):
            yield clause
        elif isinstance(clause, Bool):
            for part in (*clause.must, *clause.should, *clause.must_not, *clause.filter):
                yield from tokens(part)

    assert len(asked) == 1
    match = asked[0].match
    assert isinstance(match, Bool) and 0 < len(match.should) <= 12  # one clause per title word, at most 12
    looked_up = list(tokens(match))
    # bodies by whole words only (no substring phrase over every body), words of the title
    assert {t.field for t in looked_up} == {"title_pairs", "title_words", "body_words"}
    assert all(t.tokens[0] in doc.title for t in looked_up if t.field.endswith("_words"))


# -- 2. the parts themselves ----------------------------------------------------------------


def _text(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


def _balanced(html: str) -> bool:
    from searchcore.htmlparts import _TOKEN, _VOID

    stack: list[str] = []
    for m in _TOKEN.finditer(html):
        name = (m.group(2) or "").lower()
        if not name or name in _VOID:
            continue
        if m.group(1):
            if not stack or stack[-1] != name:
                return False
            stack.pop()
        else:
            stack.append(name)
    return not stack


@pytest.mark.parametrize(
    "html",
    [
        "<p>段落一</p>\n" * 3000,  # many top-level elements
        '<div class="x">' + "<p><strong>粗</strong>正文&amp;更多</p>" * 3000 + "</div>",  # one huge element
        "<blockquote><p>" + "长长的一段文字&lt;不是标签&gt;，" * 20000 + "</p></blockquote>",  # one huge text
        '<p><a href="http://e.example/?a=1&amp;b=2" title="x>y">链接</a></p>' * 3000,  # quoted ">"
    ],
)
def test_parts_are_whole_html_and_lose_nothing(html):
    from searchcore.htmlparts import split

    parts = split(html, size=5000)
    assert len(parts) > 3
    assert "".join(html[p.start : p.end] for p in parts) == html
    rendered = [p.render(html) for p in parts]
    assert all(_balanced(r) for r in rendered)
    assert "".join(_text(r) for r in rendered) == _text(html)  # reopened tags add no text
    assert all(len(r) < 5000 * 2 for r in rendered)
    assert not any(re.search(r"&[#a-zA-Z0-9]*$", html[p.start : p.end]) for p in parts[:-1])  # no entity cut


def test_short_articles_are_one_part_and_never_scanned():
    from searchapp.parts import PART_CHARS, parts_of

    html = "<p>x</p>" * (PART_CHARS // 8)
    assert [(p.start, p.end, p.reopen, p.close) for p in parts_of("a", "h", html)] == [(0, len(html), "", "")]


# -- 3. numbers in the URL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "query, param, words",
    [
        ("page=%C2%B2", "page", "页码"),  # ² passes isdigit(), int() refuses it: was a 500
        ("page=%EF%BC%91", "page", "半角数字"),  # fullwidth １
        ("page=%D9%A3", "page", "页码"),  # Arabic-Indic ٣
        ("page=99999999999999999999", "page", "最多只能翻到第"),
        ("page=1e3", "page", "页码"),
        ("page=0", "page", "页码"),
        ("from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%90-01-01", "from", "开始日期"),
        ("to=%D9%A2%D9%A0%D9%A2%D9%A0-01-01", "to", "结束日期"),
        ("from=2020-02-30", "from", "开始日期不存在"),
        ("to=99999-01-01", "to", "结束日期"),
        ("from=1800-01-01", "from", "超出范围"),
    ],
)
def test_unusual_numbers_are_a_400_in_words(client, query, param, words):
    api = client.get("/api/search?" + query)
    assert api.status_code == 400
    assert api.get_json()["param"] == param and words in api.get_json()["error"]
    html = client.get("/?" + query)
    assert html.status_code == 400
    assert words in soup(html).select_one(".error").get_text()


def test_plain_numbers_still_work(client):
    assert client.get("/api/search?page=2&from=2020-01-01&to=2024-12-31").status_code == 200
    assert client.get("/api/search?page=002").get_json()["page"] == 2


# -- 4. redirects, methods, headers --------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "//evil.example/x",
        "/article//x",
        "//article/2022-01-03-tianjin-vocational",
        "//",
        "///evil.example/",
        "/api//search?q=x",
        "/static//app.css",
        "/\\evil.example",
        "/article/2022-01-03-tianjin-vocational/",
    ],
)
def test_no_response_redirects_to_another_host(client, path):
    resp = client.get(path, headers={"Host": "evil.example"})
    assert not 300 <= resp.status_code < 400, (resp.status_code, resp.headers.get("Location"))
    loc = resp.headers.get("Location")
    assert loc is None or (not urlsplit(loc).netloc and not re.match(r"[/\\]{2}", loc))


def test_any_location_stays_on_this_site():
    from searchapp.security import same_site_location

    assert same_site_location("http://evil.example/a?b=1#c") == "/a?b=1#c"
    assert same_site_location("//evil.example/x") == "/x"
    assert same_site_location("/\\evil.example/x") == "/evil.example/x"
    assert same_site_location("/article/x?part=2") == "/article/x?part=2"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/", "/api/search", "/article/x", "/no-such-page"])
def test_405_says_what_is_allowed(client, method, path):
    resp = client.open(path, method=method)
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["Allow"].split(",")} == {"GET", "HEAD", "OPTIONS"}
    assert resp.headers["Cache-Control"] == "no-store"


def test_csp_never_lets_a_page_fetch_a_remote_image(client):
    for path in ("/", "/article/2022-01-03-tianjin-vocational", "/no-such-page"):
        csp = client.get(path).headers["Content-Security-Policy"]
        img = next(d for d in csp.split(";") if d.strip().startswith("img-src")).split()[1:]
        assert img == ["'self'", "data:"], csp
        assert "http:" not in csp and "https:" not in csp
    resp = client.get("/")
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-DNS-Prefetch-Control"] == "off"


def test_images_stored_by_an_older_index_are_blocked(big_client):
    resp = big_client.get(f"/article/{OLD_IMG_ID}")
    assert resp.status_code == 200 and TRACKER in resp.get_data(as_text=True)  # stored as it was
    assert "img-src 'self' data:;" in resp.headers["Content-Security-Policy"]  # so the browser never fetches it


# -- 5. Cache-Control ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, policy",
    [
        ("/?q=经济", "public, max-age=60"),
        ("/api/search?q=经济", "public, max-age=60"),
        ("/suggest?q=春运", "public, max-age=60"),
        ("/api/suggest?q=春运", "public, max-age=60"),
        ("/article/2022-01-03-tianjin-vocational", "public, max-age=300"),
        ("/api/article/2022-01-03-tianjin-vocational", "public, max-age=300"),
        ("/article/no-such-article", "no-store"),
        ("/api/article/no-such-article", "no-store"),
        ("/?page=%C2%B2", "no-store"),
        ("/api/search?page=0", "no-store"),
        ("/no-such-page", "no-store"),
        ("/healthz", "no-store"),
    ],
)
def test_cache_control_on_every_kind_of_response(client, path, policy):
    assert client.get(path).headers["Cache-Control"] == policy


def test_partials_and_pages_are_kept_apart_by_caches(client):
    for headers in ({}, {"HX-Request": "true"}, {"HX-Request": "true", "HX-History-Restore-Request": "true"}):
        vary = {v.strip() for v in client.get("/?q=经济", headers=headers).headers["Vary"].split(",")}
        assert {"HX-Request", "HX-History-Restore-Request"} <= vary


def test_static_urls_carry_a_content_version_and_are_immutable(client):
    page = soup(client.get("/"))
    hrefs = [page.select_one("link[rel=stylesheet]")["href"]] + [s["src"] for s in page.select("script[src]")]
    assert hrefs
    for href in hrefs:
        parts = urlsplit(href)
        filename = parts.path.removeprefix("/static/")
        want = hashlib.sha256((ROOT / "searchapp" / "static" / filename).read_bytes()).hexdigest()[:12]
        assert parts.query == f"v={want}", href
        resp = client.get(href)
        assert resp.status_code == 200 and resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = resp.headers.get("ETag")
        if etag:
            again = client.get(href, headers={"If-None-Match": etag})
            assert again.status_code == 304 and again.headers["Cache-Control"] == resp.headers["Cache-Control"]
    assert client.get("/static/app.css").headers["Cache-Control"] == "no-cache"
    assert client.get("/static/app.css?v=stale").headers["Cache-Control"] == "no-cache"
    assert client.get("/static/no-such-file.css").headers["Cache-Control"] == "no-store"


def test_an_unreachable_engine_is_a_503_never_stored(tmp_path):
    from searchapp import create_app

    overrides = {"engine": "elasticsearch", "elasticsearch_url": "http://127.0.0.1:9", "data_dir": tmp_path, "index": "gone"}
    app = create_app({"TESTING": True, "SETTINGS_OVERRIDES": overrides})
    c = app.test_client()
    for path in ("/?q=经济", "/api/search?q=经济", "/healthz"):
        resp = c.get(path)
        assert resp.status_code == 503, path
        assert resp.headers["Cache-Control"] == "no-store"
    assert c.get("/api/search").headers["Retry-After"] == "5"

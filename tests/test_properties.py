"""Property-based tests (hypothesis): request parsing round-trips and never
crashes, post parsing turns any bytes into an Article or a Rejected, and no
script survives the sanitizer whatever HTML it is fed."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from searchcore.analysis import normalize, parse_query
from searchcore.highlight import build_matcher, mark
from searchcore.posts import Rejected, parse_post
from searchcore.sanitize import sanitize_html
from searchcore.search import FACETS, TERMS_FACETS, Days, RequestError, SearchRequest

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
values = st.lists(text.map(str.strip).filter(bool), max_size=4, unique=True)


@st.composite
def requests(draw) -> SearchRequest:
    req = SearchRequest(
        q=draw(text).strip(),
        sort=draw(st.sampled_from(["", "relevance", "newest", "oldest"])),
        page=draw(st.integers(1, 50)),
    )
    for f in TERMS_FACETS:
        req = req.select(f.name, tuple(draw(values)))
    d1 = draw(st.one_of(st.none(), st.dates(date(1990, 1, 1), date(2090, 1, 1))))
    d2 = draw(st.one_of(st.none(), st.dates(d1 or date(1990, 1, 1), date(2090, 12, 31))))
    return req.select("date", Days(d1, d2)).with_(page=req.page)


class Args(dict):
    """A MultiDict stand-in built from (key, value) pairs, as the URL gives them."""

    def __init__(self, pairs):
        super().__init__()
        for k, v in pairs:
            self.setdefault(k, []).append(v)

    def getlist(self, key):
        return list(self.get(key, []))


@given(requests())
def test_request_round_trips_through_the_url(req):
    assert SearchRequest.from_args(Args(req.to_params())) == req


@given(requests(), st.sampled_from(["q", *(f.name for f in FACETS)]))
def test_a_forms_hidden_halves_keep_the_canonical_order(req, owner):
    """A facet's form puts its own controls between params_around's two halves: what
    it submits, with the reader's choice in the middle, is the URL a link would be."""
    from searchcore.facets import FACET_BY_NAME

    before, after = req.params_around(owner)
    own = [("q", req.q)] if owner == "q" and req.q else [] if owner == "q" else FACET_BY_NAME[owner].params(req.selection(owner))
    assert before + own + after == [p for p in req.to_params() if p[0] != "page"]


@given(
    st.lists(st.tuples(st.sampled_from(["q", "tag", "category", "from", "to", "sort", "page", "more", "x"]), text), max_size=30)
)
def test_any_query_string_parses_or_is_refused_cleanly(pairs):
    try:
        req = SearchRequest.from_args(Args(pairs))
    except RequestError as exc:
        assert str(exc)
        return
    assert 1 <= req.page <= 50 and len(req.q) <= 256
    assert len(req.terms) <= 16


@given(st.text(max_size=200))
def test_query_terms_are_never_syntax(q):
    for t in parse_query(q):
        assert t.chars and all(c.isalnum() for c in t.chars)


@given(st.text(max_size=300), st.text(max_size=20))
def test_highlight_escapes_everything_and_keeps_the_text(body, q):
    out = str(mark(body, build_matcher(parse_query(q))))
    assert "<" not in out.replace("<mark>", "").replace("</mark>", "")
    assert len(normalize(body)) == len(body)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.sampled_from(["2022-01-03-x.md", "x.html", "noname.markdown"]))
def test_any_bytes_become_an_article_or_a_reason(raw, name):
    try:
        parse_post(raw, name)
    except Rejected as exc:
        assert exc.kind and exc.reason


front = st.sampled_from(["---\ntitle: t\ndate: 2020-01-01\n---\n", "---\ntitle: [x\n---\n", "---\n---\n", ""])


@settings(max_examples=200)
@given(front, st.text(max_size=300))
def test_any_text_post_parses_or_is_rejected(fm, body):
    try:
        a = parse_post((fm + body).encode("utf-8", "surrogatepass"), "2021-01-01-x.md")
    except (Rejected, UnicodeEncodeError):
        return
    assert a.title and a.body_text


DANGER = [
    "<script>alert(1)</script>",
    "<script",
    "<img src=x onerror=alert(1)>",
    "<a href='javascript:alert(1)'>",
    '<a href="jav&#x09;ascript:alert(1)">',
    "<svg/onload=alert(1)>",
    "<iframe src=//e>",
    "<style>",
    "</style>",
    "<p style='x:expression(alert(1))'>",
    "<math>",
    "<object data=x>",
    "<body onload=alert(1)>",
    "<!--",
    "-->",
    "<scr",
    "ipt>",
    "<<script>",
    "\"'>",
    "<a href=data:text/html,x>",
    "<div onclick=alert(1)>",
    "</div>",
    "<p>",
    "</p>",
    "正文",
    "text",
    "&lt;script&gt;",
    "<SCRIPT>",
    "<ScRiPt src=//e>",
    '<img src="x" onerror="alert(1)"/>',
]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(DANGER), max_size=25).map("".join))
def test_fuzzed_html_never_keeps_anything_executable(html):
    out = sanitize_html(html).lower()
    for bad in (
        "<script",
        "onerror=",
        "onload=",
        "onclick=",
        "javascript:",
        "<iframe",
        "<svg",
        "<style",
        "<object",
        "<math",
        "data:text",
        "style=",
    ):
        assert bad not in out, (html, out)


@pytest.mark.parametrize("facet", [f.name for f in TERMS_FACETS])
def test_every_facet_parameter_is_bounded(facet):
    """Each declared facet's parameter (category, tag, site, any added later) refuses
    an over-long value, too many values and a NUL, in words naming it; the page's
    lenient reading keeps the rest of the request."""
    for bad in ("x" * 101, [f"v{i}" for i in range(21)], "a\x00b"):
        with pytest.raises(RequestError) as caught:
            SearchRequest.from_args({facet: bad})
        assert caught.value.param == facet
    req, errors = SearchRequest.parse({"q": "经济", facet: "x" * 5000})
    assert req.q == "经济" and [e.param for e in errors] == [facet]

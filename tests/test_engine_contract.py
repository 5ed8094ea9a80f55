"""One behaviour contract, run with identical expectations on every engine.

Expectations come from the corpus files (tests/groundtruth.py) or from the
hand-written edge cases in tests/fixtures/posts, never from an engine.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from searchapp.labels import step_label
from searchcore.analysis import normalize
from searchcore.search import Searcher, SearchRequest

from .groundtruth import Truth


@pytest.fixture(scope="module")
def truth(mixed_corpus) -> Truth:
    return Truth.load(mixed_corpus)


@pytest.fixture(scope="module")
def searcher(indexed) -> Searcher:
    s, engine = indexed
    return Searcher(engine, s.with_(page_size=50))


def ids(searcher: Searcher, **args) -> set[str]:
    req = SearchRequest.from_args(args)
    first = searcher.search(req)
    found = {h.id for h in first.hits}
    page = 1
    while len(found) < first.total and page < 50:
        page += 1
        found |= {h.id for h in searcher.search(req.with_(page=page)).hits}
    assert len(found) == first.total
    return found


def test_document_count_matches_corpus(indexed, truth):
    _, engine = indexed
    assert engine.count() == len(truth.articles)


@pytest.mark.parametrize("text", ["津", "职教", "国国", "经济", "长江经济带", "江经济带", "旅游", "iphone"])
def test_any_substring_finds_exactly_the_articles_containing_it(searcher, truth, text):
    expected = truth.containing(text)
    assert expected, f"corpus should contain {text}"
    assert ids(searcher, q=text) == expected


def test_traditional_and_simplified_find_each_other(searcher):
    assert "2021-06-01-taiwan-economy" in ids(searcher, q="台湾经济")
    assert "2021-06-01-taiwan-economy" in ids(searcher, q="臺灣經濟")
    assert "2019-12-31-yangtze-river" in ids(searcher, q="長江經濟帶")


def test_mixed_chinese_latin_and_numbers(searcher):
    for q in ("5G", "GDP增长6.5%", "COVID-19", "covid-19", "ｉＰｈｏｎｅ"):
        assert "2023-03-15-5g-network" in ids(searcher, q=q), q


def test_quoted_phrase_is_exact_and_minus_excludes(searcher, truth):
    assert "2019-12-31-yangtze-river" in ids(searcher, q='"长江经济带"')
    assert ids(searcher, q='"带经济长江"') == truth.containing("带经济长江")
    spring = ids(searcher, q="春")
    assert {"2024-02-10-spring-festival", "2024-02-11-spring-travel"} <= spring
    without = ids(searcher, q="春 -旅游")
    assert "2024-02-11-spring-travel" in without
    assert "2024-02-10-spring-festival" not in without
    assert without == spring - truth.containing("旅游")


@pytest.mark.parametrize("q", ["鲁班工坊", "产教融合", "春运"])
def test_title_matches_rank_above_body_only_matches(searcher, truth, q):
    n = normalize(q)
    in_title = {a.id for a in truth.articles if n in normalize(a.title)}
    assert in_title
    hits = searcher.search(SearchRequest(q=q)).hits
    assert {h.id for h in hits[: len(in_title)]} == in_title


def test_all_terms_must_match(searcher, truth):
    got = ids(searcher, q="天津 旅游")
    assert got == truth.containing("天津") & truth.containing("旅游")


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"category": ["education"]},
        {"tag": ["经济"]},
        {"tag": ["经济", "新闻联播"]},
        {"category": ["xinwenlianbo"], "tag": ["旅游"]},
    ],
)
def test_facet_counts_are_disjunctive_and_match_the_corpus(searcher, truth, filters):
    req = SearchRequest.from_args(filters)
    res = searcher.search(req.with_(more=("category", "tag")))
    cats, tags = filters.get("category", ()), filters.get("tag", ())
    assert res.total == len(truth.filtered(cats, tags))
    # A facet's counts ignore its own selection and respect the others.
    want_cat = Truth.counts(truth.filtered((), tags), "categories")
    want_tag = Truth.counts(truth.filtered(cats, ()), "tags")
    got_cat = {v.value: v.count for v in res.facets["category"].values}
    got_tag = {v.value: v.count for v in res.facets["tag"].values}
    for value, count in got_cat.items():
        assert want_cat[value] == count, value
    for value, count in got_tag.items():
        assert want_tag[value] == count, value
    top = [v for v, _ in want_tag.most_common()]
    assert set(got_tag) >= {v for v in top[:5] if want_tag[v] > want_tag[top[min(len(top) - 1, 60)]]}
    for v in tags:  # selected values stay visible and marked
        assert any(fv.value == v and fv.selected for fv in res.facets["tag"].values)


@pytest.mark.parametrize("sites", [(), ("rfi.example",), ("rfi.example", "dw.example")])
def test_site_facet_counts_outlets_by_their_links_host(searcher, truth, sites):
    """The 来源 facet: the host of each article's source link without ``www.``,
    multi-select (any of the sites) and disjunctive like the other terms facets."""
    req = SearchRequest.from_args({"category": ["world"], "site": list(sites)})
    res = searcher.search(req)
    assert res.total == len(truth.filtered(["world"], sites=sites)) > 0
    got_site = {v.value: v.count for v in res.facets["site"].values}
    assert got_site == dict(Truth.counts(truth.filtered(["world"]), "site").most_common(10))  # its own selection ignored
    # www. dropped, any other subdomain kept: cn.reuters.example stays itself
    assert {"rfi.example", "dw.example", "cn.reuters.example"} <= set(got_site)
    assert not any(v.startswith("www.") or not v for v in got_site)
    got_cat = {v.value: v.count for v in res.facets["category"].values}
    want_cat = Truth.counts(truth.filtered(sites=sites), "categories")
    assert got_cat == {v: want_cat[v] for v in got_cat} and got_cat["world"] == res.total
    for v in sites:
        assert any(fv.value == v and fv.selected for fv in res.facets["site"].values)


def test_selected_value_stays_visible_at_zero(searcher):
    res = searcher.search(SearchRequest.from_args({"q": "春运", "tag": ["鲁班工坊"]}))
    assert res.total == 0
    assert [(v.value, v.count, v.selected) for v in res.facets["tag"].values if v.value == "鲁班工坊"] == [("鲁班工坊", 0, True)]


def test_date_facet_drills_down_year_month_day(searcher, truth):
    res = searcher.search(SearchRequest())
    assert res.facets["date"].level == "year"
    want = Counter(truth.day(a).year for a in truth.articles)
    assert {int(v.value): v.count for v in res.facets["date"].values} == dict(want)

    res = searcher.search(SearchRequest.from_args({"from": "2024-01-01", "to": "2024-12-31"}))
    assert res.facets["date"].level == "month"
    want = Counter(truth.day(a).month for a in truth.articles if truth.day(a).year == 2024)
    assert {int(v.value) % 100: v.count for v in res.facets["date"].values} == dict(want)

    res = searcher.search(SearchRequest.from_args({"from": "2024-02-01", "to": "2024-02-29"}))
    assert res.facets["date"].level == "day"
    want = Counter(truth.day(a).day for a in truth.articles if truth.day(a).strftime("%Y-%m") == "2024-02")
    assert {int(v.value) % 100: v.count for v in res.facets["date"].values} == dict(want)
    # The core says which steps; the web app words them.
    assert [step_label(step) for step in res.facets["date"].trail] == ["全部日期", "2024年", "2月"]


def test_date_range_is_inclusive_in_shanghai_days(searcher, truth):
    got = ids(searcher, **{"from": "2024-02-10", "to": "2024-02-10"})
    want = {a.id for a in truth.filtered(start=date(2024, 2, 10), end=date(2024, 2, 10))}
    assert "2024-02-10-spring-festival" in got
    assert got == want
    # 2021-06-01T02:30Z is 10:30 in Shanghai on the same day
    assert "2021-06-01-taiwan-economy" in ids(searcher, **{"from": "2021-06-01", "to": "2021-06-01"})


def test_sorting_and_paging(searcher, truth):
    newest = searcher.search(SearchRequest(sort="newest"))
    dates = [h.date for h in newest.hits]
    assert dates == sorted(dates, reverse=True)
    assert newest.hits[0].date == max(a.date for a in truth.articles)
    oldest = searcher.search(SearchRequest(sort="oldest"))
    assert [h.date for h in oldest.hits] == sorted(h.date for h in oldest.hits)
    page2 = searcher.search(SearchRequest(sort="oldest", page=2))
    assert not {h.id for h in oldest.hits} & {h.id for h in page2.hits}
    assert page2.hits[0].date >= oldest.hits[-1].date
    rel = searcher.search(SearchRequest(q="经济"))
    scores = [h.score for h in rel.hits]
    assert scores == sorted(scores, reverse=True)


def test_stored_article_is_sanitized(searcher):
    doc = searcher.article("2020-05-05-xss-attempt")
    html = doc.body_html.lower()
    for bad in ("<script", "onerror", "onclick", "javascript:", "<iframe", "<style", "alert('body')"):
        assert bad not in html
    assert 'rel="noopener nofollow"' in doc.body_html
    assert "safe.example" in doc.body_html


def test_article_fields_and_source_url(searcher):
    doc = searcher.article("2022-01-03-tianjin-vocational")
    assert doc.title == "天津职业教育产教融合再上新台阶"
    assert doc.categories == ["education"]
    assert doc.tags == ["职业教育", "产教融合", "天津"]
    assert doc.source_url == "http://news.example/2022/01/03/tianjin.html"
    assert doc.local_date.isoformat() == "2022-01-03T09:45:21+08:00"
    assert "返回" not in doc.body_text and "文章来源" not in doc.body_text
    assert searcher.article("no-such-article") is None


def test_elasticsearch_keeps_in_source_only_what_the_table_stores(indexed, searcher):
    """The stored _source holds the stored fields, as tantivy's document store does:
    the token streams (three copies of the text) are indexed and searchable but not
    kept (docs/scaling-bytes.md), and the article page and hits lose nothing."""
    from searchcore.fields import STORED, STREAMS

    s, engine = indexed
    if s.engine != "elasticsearch":
        pytest.skip("Elasticsearch's stored _source")
    doc_id = "2022-01-03-tianjin-vocational"
    raw = engine.es.get(index=s.index, id=doc_id)["_source"]  # no source filter: all it keeps
    assert set(raw) <= {f.name for f in STORED} and not set(raw) & set(STREAMS)
    assert raw["title"] == "天津职业教育产教融合再上新台阶" and raw["body_html"]
    assert doc_id in ids(searcher, q="职教")  # the streams still answer: chars/pairs of the body


def test_highlights_mark_exactly_the_matched_text(searcher):
    hits = searcher.search(SearchRequest(q="職教")).hits
    hit = next(h for h in hits if h.id == "2022-01-03-tianjin-vocational")
    assert "<mark>职教</mark>改革" in str(hit.snippet_html)
    for h in hits:  # traditional originals are marked as written, whole characters only
        assert "<mark>职教</mark>" in str(h.title_html) + str(h.snippet_html) or "<mark>職教</mark>" in str(h.title_html) + str(
            h.snippet_html
        )
    hit = next(h for h in searcher.search(SearchRequest(q="长江经济带")).hits if h.id == "2019-12-31-yangtze-river")
    assert str(hit.title_html) == "<mark>长江经济带</mark>生态保护取得新进展"


def test_related_articles_share_words(searcher):
    doc = searcher.article("2022-01-05-luban-workshop")
    related = searcher.related(doc)
    assert related and doc.id not in {h.id for h in related}
    assert "2022-01-03-tianjin-vocational" in {h.id for h in searcher.related(doc, limit=20)}


@pytest.mark.parametrize("args", [{"from": "2022-01-01"}, {"to": "2021-12-31"}])
def test_open_ended_date_ranges(searcher, truth, args):
    start = date.fromisoformat(args["from"]) if "from" in args else None
    end = date.fromisoformat(args["to"]) if "to" in args else None
    assert searcher.search(SearchRequest.from_args(args)).total == len(truth.filtered(start=start, end=end))


@pytest.mark.parametrize("threads", [2, 3])
def test_sliced_search_answers_exactly_like_the_whole_index(indexed, truth, threads):
    """At scale tantivy cuts a large query into date slices searched on parallel
    threads; the pages, scores, totals and facet counts must not change."""
    s, engine = indexed
    if s.engine != "tantivy":
        pytest.skip("date slices are how the embedded engine uses more than one core")
    from searchcore.engines.tantivy_engine import SlicePolicy, TantivyEngine

    whole = TantivyEngine(s.with_(search_threads=1, facet_cache=0))
    # Slice even this small index, however busy the machine running the tests is.
    always = SlicePolicy(min_docs=0, min_visits=0, idle_cores=lambda: threads)
    sliced = TantivyEngine(s.with_(search_threads=threads, facet_cache=0), slicing=always)
    small = s.with_(page_size=7)
    year = truth.day(truth.articles[len(truth.articles) // 2]).year
    cases = [
        {"q": "经济"},
        {"q": "经济发展"},
        {"q": "经济 发展", "sort": "newest"},
        {"q": "经济", "sort": "oldest"},
        {"q": "经济 -旅游"},
        {"q": "经济", "tag": [truth.counts(truth.articles, "tags").most_common(1)[0][0]]},
        {"q": "发展", "from": f"{year}-01-01", "to": f"{year}-12-31"},
        {"q": "发展", "from": f"{year}-03-01"},
    ]
    for args in cases:
        pages = []
        for page in (1, 2, 3):
            req = SearchRequest.from_args({**args, "page": str(page)})
            a, b = Searcher(whole, small).search(req), Searcher(sliced, small).search(req)
            assert (b.total, [h.id for h in b.hits]) == (a.total, [h.id for h in a.hits]), args
            assert [h.score for h in b.hits] == pytest.approx([h.score for h in a.hits]), args
            assert {f: [(v.value, v.count) for v in b.facets[f].values] for f in b.facets} == {
                f: [(v.value, v.count) for v in a.facets[f].values] for f in a.facets
            }, args
            pages.append(a)
        assert pages[0].total > 14 or args.get("from"), f"{args}: too few matches for paging to be tested"
    for doc_id in ("2019-12-31-yangtze-river", "2021-06-01-taiwan-economy"):  # related articles OR title words
        doc = whole.get(doc_id)
        a, b = Searcher(whole, small).related(doc), Searcher(sliced, small).related(doc)
        assert [h.id for h in b] == [h.id for h in a] and a
    assert sliced.sliced >= 3 * len(cases)
    whole.close()
    sliced.close()


def test_relaxations_count_each_request_once_and_find_what_they_promise(indexed):
    s, engine = indexed
    asked: list[tuple] = []

    class Counting:  # the real engine, with its searches recorded
        def __getattr__(self, name):
            return getattr(engine, name)

        def search(self, q):
            asked.append((q.match, q.filters))
            return engine.search(q)

    searcher = Searcher(Counting(), s)
    searcher.RELAX_BUDGET_S = 60.0  # count every option, however slow the machine
    res = searcher.search(SearchRequest.from_args({"q": "春运 屿屿屿"}))  # the second word is in no article
    assert res.total == 0
    # 去掉“屿屿屿” and 只搜索“春运” are one request: counted once, offered once
    assert len(asked) == len(set(asked)) == 3  # the search, then 屿屿屿 alone, then 春运 alone
    assert [r.request.q for r in res.relaxations] == ["春运"]
    assert res.relaxations[0].total == Searcher(engine, s).search(res.relaxations[0].request).total > 0


def test_sliced_search_breaks_ties_as_the_whole_index_does(tmp_path):
    """Equal scores in an index whose order is not date order (an old article
    re-indexed last): a page found in slices is the page found whole."""
    from indexer.pipeline import run
    from searchcore.engines.tantivy_engine import SlicePolicy, TantivyEngine

    from .conftest import make_settings

    s = make_settings("tantivy", tmp_path / "data").with_(recency_weight=0.0, facet_cache=0)
    folder = tmp_path / "posts"
    folder.mkdir()
    for i in range(12):  # file order (index order) runs against date order
        (folder / f"{i:02d}-same.md").write_text(
            f"---\ntitle: 同题{chr(0x4E00 + i)}\ndate: {2023 - i}-06-01 10:00:00 +0800\n---\n<p>同样的经济新闻正文。</p>\n",
            encoding="utf-8",
        )
    run(s, folder)
    whole = TantivyEngine(s.with_(search_threads=1))
    sliced = TantivyEngine(s.with_(search_threads=3), slicing=SlicePolicy(min_docs=0, min_visits=0, idle_cores=lambda: 2))
    small = s.with_(page_size=5)
    req = SearchRequest.from_args({"q": "经济新闻"})
    scores = {h.score for h in Searcher(whole, small).search(req).hits}
    assert len(scores) == 1, "the articles must tie for this test to mean anything"
    seen = []
    for page in (1, 2, 3):
        a = Searcher(whole, small).search(req.with_(page=page))
        b = Searcher(sliced, small).search(req.with_(page=page))
        assert [h.id for h in b.hits] == [h.id for h in a.hits], page
        seen += [h.id for h in b.hits]
    assert len(seen) == len(set(seen)) == 12
    assert sliced.sliced == 3
    whole.close()
    sliced.close()


def test_no_engine_module_imports_another():
    # Shared helpers live in engines/base.py and engines/common.py; an engine
    # module never reaches into another engine's module (issue 12).
    import ast
    from pathlib import Path

    import searchcore.engines as pkg

    folder = Path(pkg.__file__).parent
    engines = {p.stem for p in folder.glob("*_engine.py")}
    assert engines >= {"tantivy_engine", "elasticsearch_engine"}
    for stem in sorted(engines):
        tree = ast.parse((folder / f"{stem}.py").read_text(encoding="utf-8"))
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {a.name.rsplit(".", 1)[-1] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").rsplit(".", 1)[-1])
                if node.module in (None, "searchcore.engines") or (node.level == 1 and not node.module):
                    imported |= {a.name for a in node.names}
        assert not (imported & (engines - {stem})), f"{stem} imports {sorted(imported & engines)}"


def test_shared_engine_helpers():
    from datetime import UTC, datetime

    from searchcore.engines.common import outdated, physical_name
    from searchcore.fields import FIELDS, freshness, is_current_schema

    assert physical_name("news", datetime(2024, 3, 14, 1, 2, 3, 4, tzinfo=UTC)) == "news-20240314010203000004"
    assert physical_name("news").startswith("news-")
    full = {f.name: f.positions for f in FIELDS}
    assert is_current_schema(full) and is_current_schema({**full, "retired": False})
    assert is_current_schema(dict.fromkeys(full, True))  # positions a query does not read: harmless
    assert not any(is_current_schema({k: v for k, v in full.items() if k != name}) for name in full)  # a field missing
    positioned = [f.name for f in FIELDS if f.positions]
    assert "body_words" in positioned  # the word tier and the window read them
    assert not any(is_current_schema({**full, name: False}) for name in positioned)  # positions now read: rebuild
    assert outdated("news-1") == "the index news-1 was built by an older version; run `indexer reindex PATH` to rebuild it"
    assert freshness(datetime(2000, 1, 1, tzinfo=UTC)) == 0.0
    assert freshness(datetime(2050, 1, 1, tzinfo=UTC)) == 1.0


def test_a_count_the_engine_refuses_costs_its_facets_not_the_search(indexed):
    """Counting by a field the engine cannot count (a token stream has no column
    of values) fails on both engines: the hits and the total stand, and the
    result names the counts that are missing instead of raising."""
    from dataclasses import replace

    from searchcore.engines.base import Count

    s, engine = indexed
    q = Searcher(engine, s).engine_query(SearchRequest(q="经济"))
    good = engine.search(q)
    broken = replace(q, counts=(*q.counts, Count("broken", "title_words", 10)))
    res = engine.search(broken)
    assert good.failed == () and "broken" in res.failed
    assert set(res.failed) <= {c.name for c in broken.counts}
    assert res.total == good.total > 0
    assert [h.doc.id for h in res.hits] == [h.doc.id for h in good.hits]
    assert engine.search(q).facets == good.facets  # nothing of the failure was cached


# -- exact before scattered (issue 14) ----------------------------------------------

# (id, title, date, body): eight articles with 新冠疫苗 as typed, two whose headline
# has its words (新冠 … 疫苗), and three with both words only far apart in the body.
_EXACT = [
    (f"exact-{i}", f"卫生部门通报第{i}批新冠疫苗接种进展", f"2023-0{i + 1}-10", "新冠疫苗接种工作有序推进。") for i in range(8)
]
_TITLE_WORDS = [
    ("title-words-0", "新冠变异株出现 疫苗研发加速", "2024-05-01", "研究人员说，新的变异株传播更快。"),
    ("title-words-1", "疫苗专家：新冠后遗症需要关注", "2024-06-01", "专家建议加强随访。"),
]
_FILLER = "交通运行平稳。" * 40 + "宠物疫苗门诊开放预约。"  # 疫苗 far from 新冠
_SCATTERED = [
    (f"scattered-{i}", f"城市交通周报第{i}期", f"2024-07-0{i + 1}", "本周地铁客流回升，新冠相关防控措施已经调整。" + _FILLER)
    for i in range(3)
]


# A one-line notice titled with a topic, and an article about it (issue 14).
_NOTICE_AND_ARTICLE = [
    ("notice-0", "碳中和", "2024-08-01", "本报明日刊发碳中和评论员文章，敬请留意。"),
    ("article-0", "我市发布碳中和行动方案 明确五年减排目标", "2023-08-01", "碳中和行动方案提出，" + "各领域逐步减排。" * 20),
]

# 疫苗接种 as typed (the _EXACT articles say 新冠疫苗接种), its words near each other
# (in order with a word between; reversed with one between, and in a long article
# whose title has them too: it would win but for the tier), and far apart.
_NEAR = [
    ("exact-short", "社区简讯", "2023-04-05", "疫苗接种点周末开放。"),  # as typed, and little else
    ("near-0", "九价疫苗预约恢复", "2023-01-05", "医生建议女性尽早完成HPV疫苗三剂接种。" + "门诊恢复正常。" * 30),
    (
        "near-1",
        "宠物接种疫苗需求旺 医院生意红火",
        "2023-02-05",
        "兽医提醒幼犬应按时接种狂犬疫苗。" + "养宠人数增加，接种疫苗前先体检。" * 15,
    ),
    ("far-0", "社区卫生服务周报", "2023-03-05", "流感疫苗到货。" + "门诊秩序良好。" * 30 + "老人体检和接种证明办理照常。"),
]

# 台海 on word boundaries (台海 局势) and across words (台 | 海军, 舞台 | 海报). The
# articles across words are built to win on everything else: the term in their
# titles and bodies, often, and long bodies; those on boundaries, short and once.
_BOUNDARY = [
    ("whole-0", "渔业简讯", "2022-06-15", "台海渔船陆续出海。"),
    ("whole-1", "局势简讯", "2022-08-05", "台海局势骤然升温。"),
    ("across-0", "台海军新一代护卫舰下水", "2023-01-12", "台海军官兵列队，台海军舰队司令出席。" * 4 + "新舰性能先进。" * 30),
    ("across-1", "舞台海报设计大赛揭晓", "2023-06-18", "舞台海报设计大赛揭晓，舞台海报展同期开幕。" * 4 + "作品风格多样。" * 30),
    # 华人 (overseas Chinese) as a word, and inside 中华人民共和国 (中华 | 人民 | 共和国),
    # where the segmenter's search mode also emits it as a sub-word
    ("whole-2", "侨界简讯", "2023-01-22", "海外华人社团举办联欢。"),
    ("across-2", "中华人民共和国民法典施行", "2021-01-01", "中华人民共和国民法典今起施行。" * 4 + "条文涉及多个领域。" * 30),
]

# 香港 国安法 typed with a space: side by side in one article; in another, both in the
# title and often, but about a British law (香港 … 英国拟订国安法).
_PROXIMITY = [
    ("nsl-0", "实施一周年 社会秩序恢复稳定", "2021-06-30", "香港国安法实施一周年。"),
    (
        "nsl-uk",
        "香港商界关注英国拟订国安法",
        "2023-02-14",
        "香港商界人士关注英国政府的新草案。" + "香港企业正在评估影响。" * 10 + "英国议会拟订的国安法草案下月辩论。",
    ),
]

_PRECISION = _EXACT + _TITLE_WORDS + _SCATTERED + _NOTICE_AND_ARTICLE + _NEAR + _BOUNDARY + _PROXIMITY


@pytest.fixture(scope="module")
def precision():
    """A small index of the articles above, per engine, built on first use."""
    from .conftest import drop_es_indices

    results: dict = {}
    yield results  # filled lazily per engine by _precision_searcher
    for s, engine in results.values():
        engine.close()
        drop_es_indices(s)


def _precision_searcher(precision, engine_name, tmp_path_factory):
    from indexer.pipeline import run
    from searchcore.engines import open_engine

    from .conftest import make_settings, require_engine

    require_engine(engine_name)
    if engine_name not in precision:
        folder = tmp_path_factory.mktemp("precision") / "posts"
        folder.mkdir()
        for doc_id, title, day, body in _PRECISION:
            (folder / f"{doc_id}.md").write_text(
                f"---\ntitle: \"{title}\"\ndate: {day} 10:00:00 +0800\ncategories: health\n---\n<p>{body}</p>\n", encoding="utf-8"
            )
        s = make_settings(engine_name, tmp_path_factory.mktemp("precision-idx") / "data").with_(page_size=4)
        assert run(s, folder).indexed == len(_PRECISION)
        precision[engine_name] = (s, open_engine(s))
    s, engine = precision[engine_name]
    return Searcher(engine, s)


@pytest.mark.parametrize("engine_name", ["tantivy", "elasticsearch"])
def test_an_unspaced_query_finds_the_string_and_headlines_not_scattered_words(precision, engine_name, tmp_path_factory):
    """新冠疫苗 typed without spaces: the articles containing it as typed, then those
    whose headline has its words; never an article that only has 新冠 in one
    paragraph and 疫苗 in another. Exact matches come first on every page of the
    relevance order, and the total and the facet counts say the same thing."""
    searcher = _precision_searcher(precision, engine_name, tmp_path_factory)
    exact = {a[0] for a in _EXACT}
    title_words = {a[0] for a in _TITLE_WORDS}
    pages = [searcher.search(SearchRequest(q="新冠疫苗", page=p)) for p in (1, 2, 3)]
    assert {r.total for r in pages} == {len(exact) + len(title_words)}
    ranked = [h.id for r in pages for h in r.hits]
    assert ranked[: len(exact)] and set(ranked[: len(exact)]) == exact  # exact first, across pages
    assert set(ranked[len(exact) :]) == title_words
    assert not any(i.startswith("scattered") for i in ranked)
    counts = {v.value: v.count for v in pages[0].facets["category"].values}
    assert counts == {"health": len(exact) + len(title_words)}
    # spaced, the words are two terms: each anywhere, as typed; the scattered articles match
    assert searcher.search(SearchRequest(q="新冠 疫苗")).total == len(exact) + len(title_words) + len(_SCATTERED)


@pytest.mark.parametrize("engine_name", ["tantivy", "elasticsearch"])
def test_an_article_about_a_topic_outranks_a_notice_that_only_names_it(precision, engine_name, tmp_path_factory):
    """碳中和: the one-line notice titled with the word alone has the shortest title
    (the strongest title match); the article about it has something to say. The
    substance prior (fields.substance) puts the article first, on both engines."""
    searcher = _precision_searcher(precision, engine_name, tmp_path_factory)
    ranked = [h.id for h in searcher.search(SearchRequest(q="碳中和")).hits]
    assert ranked == ["article-0", "notice-0"]


@pytest.mark.parametrize("engine_name", ["tantivy", "elasticsearch"])
def test_words_near_each_other_are_accepted_after_the_string_as_typed(precision, engine_name, tmp_path_factory):
    """疫苗接种: the articles saying it as typed (a two-line one among them), then
    those with its words near each other (HPV疫苗三剂接种; 接种狂犬疫苗, reversed, in a
    long article with them in its title too), on every page; an article with 疫苗 in
    its first line and 接种 in its last is no match."""
    searcher = _precision_searcher(precision, engine_name, tmp_path_factory)
    exact = {a[0] for a in _EXACT} | {"exact-short"}
    pages = [searcher.search(SearchRequest(q="疫苗接种", page=p)) for p in (1, 2, 3)]
    ranked = [h.id for r in pages for h in r.hits]
    assert {r.total for r in pages} == {len(exact) + 2}
    assert set(ranked[: len(exact)]) == exact and set(ranked[len(exact) :]) == {"near-0", "near-1"}
    assert searcher.search(SearchRequest(q="疫苗 接种")).total == len(exact) + 3  # spaced: anywhere


@pytest.mark.parametrize("engine_name", ["tantivy", "elasticsearch"])
def test_a_word_ranks_above_the_same_characters_across_words(precision, engine_name, tmp_path_factory):
    """台海: the short articles where it is a word come before those where its
    characters straddle two words (台海军, 舞台海报), though those have it in the
    title, more often, with more to say; all four are found, on every page. The
    same for 华人 inside 中华人民共和国, a sub-word the segmenter's search mode emits
    though it straddles the long word's own split."""
    searcher = _precision_searcher(precision, engine_name, tmp_path_factory)
    pages = [searcher.search(SearchRequest(q="台海", page=p)) for p in (1, 2)]
    ranked = [h.id for r in pages for h in r.hits]
    assert pages[0].total == 4
    assert set(ranked[:2]) == {"whole-0", "whole-1"} and set(ranked[2:]) == {"across-0", "across-1"}
    assert [h.id for h in searcher.search(SearchRequest(q="华人")).hits] == ["whole-2", "across-2"]


@pytest.mark.parametrize("engine_name", ["tantivy", "elasticsearch"])
def test_spaced_terms_side_by_side_rank_first(precision, engine_name, tmp_path_factory):
    """香港 国安法: the article saying 香港国安法 ranks above one with both words in its
    title and 香港 all over its body, about a British law; both are found."""
    searcher = _precision_searcher(precision, engine_name, tmp_path_factory)
    ranked = [h.id for h in searcher.search(SearchRequest(q="香港 国安法")).hits]
    assert ranked == ["nsl-0", "nsl-uk"]


@pytest.mark.parametrize("engine_name", ["tantivy", "elasticsearch"])
def test_an_index_whose_word_streams_lack_positions_must_be_rebuilt(engine_name, tmp_path):
    """The word tier and the windows read the word streams' positions: an index built
    before they were recorded is refused as built by an older version (readers and
    ``indexer index``; on Elasticsearch a reader learns it from the node's refusal),
    and a reindex makes a current one. Built for real, then its
    record of body_words made what an older version wrote."""
    import copy
    import json

    from indexer.pipeline import run
    from searchcore.engines import open_engine
    from searchcore.engines.base import EngineError, IndexMissing

    from .conftest import drop_es_indices, make_settings, require_engine

    require_engine(engine_name)
    folder = tmp_path / "posts"
    folder.mkdir()
    doc_id, title, day, body = _NEAR[1]
    post = f'---\ntitle: "{title}"\ndate: {day} 10:00:00 +0800\n---\n<p>{body}</p>\n'
    (folder / f"{doc_id}.md").write_text(post, encoding="utf-8")
    s = make_settings(engine_name, tmp_path / "data")
    try:
        assert run(s, folder).indexed == 1
        engine = open_engine(s)
        name = engine.physical_index()
        if engine_name == "tantivy":
            meta_path = engine.root / name / "meta.json"
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            for f in meta["schema"]:
                if f["name"] == "body_words":
                    f["options"]["indexing"]["record"] = "freq"
            meta_path.write_text(json.dumps(meta), encoding="utf-8")
            engine.close()
            engine = open_engine(s)
        else:
            from searchcore.engines.elasticsearch_engine import MAPPINGS

            old = copy.deepcopy(MAPPINGS)
            old["properties"]["body_words"]["index_options"] = "freqs"
            engine.es.indices.create(index=f"{s.index}-old", mappings=old)
            engine.es.indices.update_aliases(
                actions=[{"remove": {"index": name, "alias": s.index}}, {"add": {"index": f"{s.index}-old", "alias": s.index}}]
            )
        with pytest.raises(IndexMissing, match="older version"):  # readers: "no index yet", and why
            Searcher(engine, s).search(SearchRequest(q="疫苗接种"))
        with pytest.raises(EngineError, match="older version"):
            engine.writer()
        engine.close()
        assert run(s, folder, rebuild=True).indexed == 1
        engine = open_engine(s)
        try:
            assert [h.id for h in Searcher(engine, s).search(SearchRequest(q="疫苗接种")).hits] == [doc_id]
        finally:
            engine.close()
    finally:
        drop_es_indices(s)

"""Edges of searching, the search page and the index run, on every engine: a
substring across a word boundary found in a title alone, relaxations whose label
names exactly what their link drops, date buckets that are exactly their calendar
ranges, a failed commit that leaves no file recorded as indexed, suggestions for two
words, page 0 refused by the parser, and an article's own UTC offset beside hits
shown on Beijing time.

Each test kills a mutation the rest of the suite let through (the safety net of
issue 12, step 6): each was checked by applying its mutation to the product by hand
and watching the test fail (docs/testing.md lists each test with the mutation it
kills). They run on both engines through the conftest helpers, over post files
written here (no synthetic generator, no engine-made truth): the expected answers
come from the posts as written below.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from werkzeug.datastructures import MultiDict

from indexer.manifest import Manifest, manifest_path
from indexer.pipeline import Options, run
from searchcore.analysis import normalize
from searchcore.engines import open_engine
from searchcore.search import RequestError, Searcher, SearchRequest

from .conftest import ENGINE_NAMES, app_overrides, drop_es_indices, make_settings, require_engine

# (file stem, title, date line, Asia/Shanghai day, categories, tags, body)
POSTS = [
    # A title whose substring 国国债 crosses a word boundary (中国|国债); the body
    # has 中国 and 国债, never side by side.
    (
        "sn-guozhai",
        "中国国债收益率走低",
        "2020-02-29 10:00:00 +0800",
        date(2020, 2, 29),
        "finance",
        "债券 市场",
        "市场人士说，中国的债券市场运行平稳，国债发行顺利。",
    ),
    (
        "sn-feb-first",
        "二月第一天的早间新闻",
        "2020-02-01 08:00:00 +0800",
        date(2020, 2, 1),
        "news",
        "早间",
        "一个普通的早晨，天气晴朗。",
    ),
    (
        "sn-feb-2021",
        "平年二月的最后一天",
        "2021-02-28 23:59:00 +0800",
        date(2021, 2, 28),
        "news",
        "月末",
        "这一年的二月只有二十八天。",
    ),
    (
        "sn-eve-2019",
        "跨年夜的城市灯光",
        "2019-12-31 23:30:00 +0800",
        date(2019, 12, 31),
        "news",
        "节日",
        "人们在广场上等待新年钟声。",
    ),
    ("sn-new-2020", "新年第一天的祝福", "2020-01-01 00:10:00 +0800", date(2020, 1, 1), "news", "节日", "新年伊始，万象更新。"),
    # 16:30 UTC on 31 March is already 1 April in Shanghai.
    (
        "sn-utc-april",
        "四月第一天的凌晨消息",
        "2020-03-31T16:30:00.000Z",
        date(2020, 4, 1),
        "news",
        "早间",
        "凌晨时分发布的一条消息。",
    ),
    ("sn-march-1", "闰年三月的第一天", "2020-03-01 09:00:00 +0800", date(2020, 3, 1), "news", "月初", "春天来了，万物复苏。"),
    ("sn-april-30", "四月的最后一天", "2020-04-30 22:00:00 +0800", date(2020, 4, 30), "news", "月末", "小月只有三十天。"),
    ("sn-may-1", "五一假期第一天", "2020-05-01 00:00:00 +0800", date(2020, 5, 1), "news", "节日", "假期出游的人很多。"),
    ("sn-jan-31", "一月的最后一天", "2020-01-31 18:00:00 +0800", date(2020, 1, 31), "news", "月末", "大月有三十一天。"),
    ("sn-dec-1", "十二月第一天", "2020-12-01 00:00:00 +0800", date(2020, 12, 1), "news", "月初", "冬天到了，气温下降。"),
    ("sn-dec-31", "十二月的最后一天", "2020-12-31 21:00:00 +0800", date(2020, 12, 31), "news", "月末", "一年就要结束了。"),
    ("sn-leap-2024", "又一个闰日", "2024-02-29 09:00:00 +0800", date(2024, 2, 29), "news", "月末", "四年才有一次的日子。"),
    # Written in Tokyo's offset: the article page shows it in +09:00.
    ("sn-tokyo", "东京时间上午的消息", "2021-06-01 10:00:00 +0900", date(2021, 6, 1), "news", "早间", "发布于东京时间上午十点。"),
    # Words for the relaxations and the suggestions: 春运, 返程, 高铁.
    (
        "sn-chunyun-fancheng",
        "春运返程客流高峰到来",
        "2024-02-17 08:00:00 +0800",
        date(2024, 2, 17),
        "traffic",
        "交通 春运",
        "各地车站迎来返程客流，铁路部门加开列车。",
    ),
    (
        "sn-chunyun-gaotie",
        "春运高铁加开夜间列车",
        "2024-02-18 08:00:00 +0800",
        date(2024, 2, 18),
        "traffic",
        "交通 高铁",
        "为满足春运出行需求，多条线路加开夜间列车。",
    ),
    (
        "sn-gaotie",
        "高铁新线开通运营",
        "2023-12-26 10:00:00 +0800",
        date(2023, 12, 26),
        "traffic",
        "交通 高铁",
        "新线开通后，两地之间的旅行时间大大缩短。",
    ),
    ("sn-chunyun", "春运首日客流平稳", "2024-01-26 08:00:00 +0800", date(2024, 1, 26), "traffic", "春运", "各地车站秩序井然。"),
]
DAYS = {p[0]: p[3] for p in POSTS}


def write_posts(folder: Path, posts=POSTS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, title, when, _day, cats, tags, body in posts:
        (folder / f"{stem}.md").write_text(
            f'---\nlayout: post\ntitle: "{title}"\ndate: {when}\ncategories: {cats}\ntags: {tags}\n---\n<p>{body}</p>\n',
            encoding="utf-8",
        )


def containing(text: str) -> set[str]:
    """Ground truth from the posts as written: which contain ``text`` (title or body)."""
    n = normalize(text)
    return {p[0] for p in POSTS if n in normalize(p[1]) or n in normalize(p[6])}


@pytest.fixture(scope="module", params=ENGINE_NAMES)
def safety(request, tmp_path_factory):
    """(settings, engine) with the posts above indexed, on each engine."""
    require_engine(request.param)
    folder = tmp_path_factory.mktemp("safety") / "posts"
    write_posts(folder)
    s = make_settings(request.param, tmp_path_factory.mktemp("safety-idx") / "data")
    report = run(s, folder, opts=Options(workers=1))
    assert (report.indexed, report.rejected) == (len(POSTS), 0), report.summary()
    engine = open_engine(s)
    yield s, engine
    engine.close()
    drop_es_indices(s)


@pytest.fixture(scope="module")
def searcher(safety) -> Searcher:
    s, engine = safety
    return Searcher(engine, s.with_(page_size=50))


@pytest.fixture(scope="module")
def client(safety):
    from searchapp import create_app

    s, _ = safety
    return create_app({"TESTING": True, "SETTINGS_OVERRIDES": app_overrides(s)}).test_client()


def found(searcher: Searcher, **args) -> set[str]:
    res = searcher.search(SearchRequest.from_args(args))
    assert res.total <= 50
    return {h.id for h in res.hits}


# -- 1. a substring across a word boundary, in a title only ---------------------------
# Kills: searchcore/indexing.py index_article ``title_pairs=pair_stream(title_chars)``
# -> ``title_pairs=""``.


def test_substring_across_words_found_in_a_title_alone(searcher):
    assert "国国债" in normalize(POSTS[0][1]) and "国国" not in normalize(POSTS[0][6])
    assert containing("国国债") == {"sn-guozhai"}
    assert found(searcher, q="国国债") == {"sn-guozhai"}
    assert found(searcher, q="国国") == {"sn-guozhai"}
    assert found(searcher, q="债收益") == {"sn-guozhai"}  # 国债|收益率, also across words


# -- 2. relaxations: the label and the link agree -------------------------------------
# Kills: searchcore/search.py Searcher.relaxations, 去掉“X” searching X alone
# (``rest = t.text``), or any option whose label and request part ways. Checked
# through the JSON API (label, total, url), as a reader's client sees them.


def _terms(req: SearchRequest) -> list[tuple[str, bool, bool]]:
    return [(t.text, t.exact, t.negate) for t in req.terms]


def _request_of(url: str) -> SearchRequest:
    return SearchRequest.from_args(MultiDict(parse_qsl(urlsplit(url).query, keep_blank_values=True)))


@pytest.mark.parametrize(
    ("args", "offered"),
    [
        ({"q": "春运 返程 屿屿屿"}, ["去掉“屿屿屿”"]),
        ({"q": "春运 -高铁 屿屿屿", "tag": "交通", "from": "2024-01-01", "to": "2024-12-31"}, ["去掉“屿屿屿”"]),
        ({"q": '"春运" 屿屿屿', "category": "traffic"}, ["去掉“屿屿屿”"]),
        ({"q": "春运", "from": "2020-01-01", "to": "2020-12-31"}, ["去掉日期：2020年", "去掉搜索词，只用筛选条件"]),
        ({"q": "春运", "tag": "早间"}, ["去掉标签：早间", "去掉搜索词，只用筛选条件"]),
    ],
)
def test_each_relaxation_drops_exactly_what_its_label_names(client, args, offered):
    req = SearchRequest.from_args(args)
    data = client.get("/api/search", query_string=args).get_json()
    assert data["total"] == 0 and data["relaxations"]
    terms = _terms(req)
    facet_labels = {"分类": "category", "标签": "tag", "日期": "date"}
    days = req.selection("date")  # a whole year in every case here, worded as its chip is
    words = {"category": list(req.selection("category")), "tag": list(req.selection("tag"))}
    words["date"] = [f"{days.first.year}年"] if days else []
    for r in data["relaxations"]:
        label, got = r["label"], _request_of(r["url"])
        assert got.page == 1 and got.sort == req.sort, label
        if label.startswith("去掉“"):
            dropped = label[len("去掉“") : -1]
            assert [t for t in terms if t[0] == dropped], label
            assert _terms(got) == [t for t in terms if t[0] != dropped], label
            assert got.selections == req.selections, label
        elif label.startswith("只搜索“"):
            kept = label[len("只搜索“") : -1]
            assert _terms(got) == [t for t in terms if t[0] == kept and not t[2]], label
            assert not got.has_filters, label
        elif label == "去掉搜索词，只用筛选条件":
            assert (got.q, got.selections) == ("", req.selections), label
        elif label == "去掉全部筛选条件":
            assert (got.q, got.selections) == (req.q, ()), label
        else:
            shown, values = label[len("去掉") :].split("：", 1)
            name = facet_labels[shown]
            assert values.split("、") == words[name] != [], label
            assert got.selections == tuple((n, s) for n, s in req.selections if n != name), label
            assert got.q == req.q, label
        # What the link promises is what following it gives.
        assert r["total"] == client.get(r["url"]).get_json()["total"] > 0, label
    # The ways out that bring something are offered (they are among the first
    # counts, which run whatever the time budget).
    assert set(offered) <= {r["label"] for r in data["relaxations"]}


# -- 3. date buckets: exact calendar bounds at every level -----------------------------
# Kills: searchcore/search.py bucket_range, a month that loses its last day
# (``- timedelta(days=2)``), a day bucket one day too long (``day + timedelta(days=1)``),
# a year ending on 30 December. Checked through the JSON API's date facet (value,
# count, from, to), drilling year -> month -> day as the links do.


def _bounds(level: str, key: str) -> tuple[date, date]:
    if level == "year":
        return date(int(key), 1, 1), date(int(key), 12, 31)
    if level == "month":
        y, m = int(key[:4]), int(key[4:])
        return date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1])
    d = date(int(key[:4]), int(key[4:6]), int(key[6:]))
    return d, d


def _check_buckets(client, args: dict, level: str) -> list[dict]:
    data = client.get("/api/search", query_string=args).get_json()
    assert data["date_level"] == level
    values = data["facets"]["date"]
    lo = date.fromisoformat(args["from"]) if "from" in args else date.min
    hi = date.fromisoformat(args["to"]) if "to" in args else date.max
    keys = {"year": "%Y", "month": "%Y%m", "day": "%Y%m%d"}[level]
    assert {v["value"] for v in values} == {d.strftime(keys) for d in DAYS.values() if lo <= d <= hi}
    for v in values:
        first, last = _bounds(level, v["value"])
        assert (v["from"], v["to"]) == (first.isoformat(), last.isoformat()), (level, v["value"])
        truth = sum(1 for d in DAYS.values() if first <= d <= last)
        assert v["count"] == truth, (level, v["value"])
        following = client.get("/api/search", query_string={"from": v["from"], "to": v["to"]}).get_json()
        assert following["total"] == truth, (level, v["value"])
    return values


def test_every_date_bucket_is_exactly_its_calendar_range(client):
    checked = {"year": 0, "month": 0, "day": 0}
    for year in _check_buckets(client, {}, "year"):
        checked["year"] += 1
        for month in _check_buckets(client, {"from": year["from"], "to": year["to"]}, "month"):
            checked["month"] += 1
            checked["day"] += len(_check_buckets(client, {"from": month["from"], "to": month["to"]}, "day"))
    # Leap and common Februaries, 30- and 31-day months, Decembers: all walked.
    days = set(DAYS.values())
    assert checked == {"year": len({d.year for d in days}), "month": len({(d.year, d.month) for d in days}), "day": len(days)}


# -- 4. the manifest says "indexed" only after the commit -----------------------------
# Kills: indexer/pipeline.py recording the batch's entries as "indexed" before
# ``writer.commit()`` (or writing them ahead as "indexed" instead of "pending").


class CommitFails(RuntimeError):
    pass


class FailingCommitEngine:
    """A real engine whose writer's ``fail_at``-th commit raises (once)."""

    def __init__(self, engine, fail_at: int) -> None:
        self._engine = engine
        self.fail_at = fail_at
        self.commits = 0
        self.written: list[str] = []
        self.committed: set[str] = set()

    def __getattr__(self, name):
        return getattr(self._engine, name)

    def writer(self, rebuild: bool = False):
        outer, real = self, self._engine.writer(rebuild=rebuild)

        class Writer:
            def __getattr__(self, name):
                return getattr(real, name)

            def upsert(self, docs):
                docs = list(docs)
                outer.written.extend(d.article.id for d in docs)
                return real.upsert(docs)

            def commit(self):
                outer.commits += 1
                if outer.commits == outer.fail_at:
                    raise CommitFails("the commit failed")
                real.commit()
                outer.committed.update(outer.written)

        return Writer()


def _entries(settings, engine_name: str, paths: list[str]) -> dict:
    m = Manifest(manifest_path(settings.data_dir, engine_name, settings.index))
    try:
        return m.lookup(paths)
    finally:
        m.close()


def test_a_failed_commit_leaves_no_indexed_entry_and_the_next_run_indexes_all_once(settings, tmp_path):
    folder = tmp_path / "posts"
    write_posts(folder, POSTS[:8])
    paths = sorted(p.name for p in folder.iterdir())
    engine = open_engine(settings)
    try:
        failing = FailingCommitEngine(engine, fail_at=2)
        opts = Options(workers=1, batch_size=2, commit_docs=2, commit_seconds=3600)
        with pytest.raises(CommitFails):
            run(settings, folder, opts=opts, engine=failing)
        uncommitted = set(failing.written) - failing.committed
        assert failing.committed and uncommitted  # one commit held, the next did not
        entries = _entries(settings, engine.name, paths)
        indexed = {e.id for e in entries.values() if e.status == "indexed"}
        assert indexed <= failing.committed
        assert not indexed & uncommitted, "ids marked indexed before their commit"
        assert all(entries[f"{i}.md"].status == "pending" for i in uncommitted)

        again = run(settings, folder, opts=Options(workers=1))
        assert again.indexed + again.unchanged == 8 and again.rejected == 0
        assert again.indexed >= len(uncommitted)
        assert engine.count() == 8
        ids = [h.id for h in Searcher(engine, settings.with_(page_size=50)).search(SearchRequest()).hits]
        assert sorted(ids) == sorted(p[0] for p in POSTS[:8])  # each exactly once
        entries = _entries(settings, engine.name, paths)
        assert {e.status for e in entries.values()} == {"indexed"}
        third = run(settings, folder, opts=Options(workers=1))
        assert (third.indexed, third.unchanged) == (0, 8)
    finally:
        engine.close()


# -- 5. suggestions for two words ----------------------------------------------------
# The intended behaviour, from Searcher.suggest and the README ("frequent tags and
# categories, then titles"): several words are all required, as in a search. A tag
# or category is offered when it contains the typed text; a title when its article
# matches every word. Nothing that matches one word only is offered.
# Kills: suggesting from the first word only (``parse_query(prefix)[:1]``), OR-ing
# the words (``any_terms=True``), matching tags word by word.


def test_suggestions_for_two_words_need_both(searcher):
    both = {p[1] for p in POSTS if p[0] in containing("春运") & containing("高铁")}
    one = {p[1] for p in POSTS if p[0] in containing("春运") ^ containing("高铁")}
    assert both and one
    got = searcher.suggest("春运 高铁")
    assert both <= set(got)
    assert not set(got) & one
    assert not {"春运", "高铁", "交通"} & set(got)  # tags matching one word, or none
    # One word alone offers its tag and its titles, the ones the two words left out.
    single = searcher.suggest("春运")
    assert "春运" in single and {p[1] for p in POSTS if p[0] in containing("春运")} <= set(single)
    # The words in the other order, or typed with extra spaces, are the same request.
    assert set(searcher.suggest("高铁 春运")) == set(got)
    assert set(searcher.suggest("  春运   高铁 ")) == set(got)
    # Nothing searchable typed (punctuation alone): no suggestions at all.
    assert searcher.suggest("！？") == [] and searcher.suggest("   ") == []


def test_api_suggest_for_two_words_answers_as_the_searcher(client, searcher):
    data = client.get("/api/suggest", query_string={"q": "春运 高铁"}).get_json()
    assert data["query"] == "春运 高铁"
    assert data["suggestions"] == searcher.suggest("春运 高铁")
    assert "春运高铁加开夜间列车" in data["suggestions"]
    assert "春运返程客流高峰到来" not in data["suggestions"]


# -- 6. page 0 is refused by the parser itself -----------------------------------------
# Kills: searchcore/search.py parse_positive_int accepting zero (``value.lstrip("0") or
# "0"`` without the check), leaving it to a view.


@pytest.mark.parametrize("raw", ["0", "00", "000000000000"])
def test_page_zero_is_a_request_error_from_the_parser(raw):
    with pytest.raises(RequestError) as caught:
        SearchRequest.from_args({"page": raw})
    assert caught.value.param == "page"
    assert "页码" in str(caught.value)  # the message is what the reader is shown
    assert SearchRequest.from_args({"page": "01"}).page == 1


# -- 7. an article keeps its own offset; pages show Beijing time (a survivor of scripts/mutation.sh)
# Kills: searchcore/fields.py StoredDoc.local_date ``minutes=self.offset`` ->
# ``minutes=480`` (the source's own time lost); and a hit shown in the post's own
# offset, which sat under another day than its date facet bucket.


def test_article_keeps_the_posts_own_offset_and_hits_show_beijing_time(searcher):
    doc = searcher.article("sn-tokyo")
    assert doc.local_date.utcoffset() == timedelta(hours=9) and doc.offset == 540
    assert (doc.local_date.hour, doc.local_date.minute) == (10, 0)
    assert doc.shanghai_date.utcoffset() == timedelta(hours=8) and (doc.shanghai_date.hour, doc.shanghai_date.minute) == (9, 0)
    assert doc.local_differs and doc.offset_text == "+09:00"
    hit = next(h for h in searcher.search(SearchRequest(q="东京时间")).hits if h.id == "sn-tokyo")
    assert hit.shanghai_date.utcoffset() == timedelta(hours=8) and hit.shanghai_date.hour == 9 and hit.offset == 540
    assert searcher.article("sn-guozhai").local_date.utcoffset() == timedelta(hours=8)
    assert not searcher.article("sn-guozhai").local_differs
    # 16:30 UTC on 31 March: shown on 1 April, the day its facet bucket counts it
    april = next(h for h in searcher.search(SearchRequest(q="凌晨消息")).hits if h.id == "sn-utc-april")
    day = april.shanghai_date
    assert (day.date(), day.hour, day.minute) == (DAYS["sn-utc-april"], 0, 30)

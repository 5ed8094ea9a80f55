"""Boilerplate learned per outlet (``searchcore.boilerplate``), end to end.

A hand-written outlet, 示例台: 20 posts whose titles end in "– 示例电视台 - EXS",
whose bodies start with the headline as a link and end with a feed footer and a
related-links block ("相关报道" and links to other posts, different in every post).
Another outlet, 丙台, has three posts (too few to learn from); one of them carries
示例台's footer and related-links lines, and is the only article about pandas.

The learner must find exactly 示例台's items and nothing for 丙台; the index, the
snippets, the related articles and the article page must leave 示例台's items out
and keep 丙台's lines. Real files, the real indexer and engines, no mocks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from indexer.cli import main
from indexer.pipeline import model_path, run
from searchcore import boilerplate as bp
from searchcore.engines import open_engine
from searchcore.htmlparts import without_spans
from searchcore.posts import parse_post
from searchcore.search import Searcher, SearchRequest

from .conftest import app_overrides, drop_es_indices, make_settings, require_engine

OUTLET = "示例台"
SMALL = "丙台"
SUFFIX = " – 示例电视台 - EXS"
FOOTER = "获取更多资讯：example.net"
HEADLINES = [
    "地震救援", "选举结果", "股市大涨", "足球比赛", "疫苗接种", "台风登陆", "航天发射", "油价飙升", "铁路开通", "教育改革",
    "医院扩建", "汽车召回", "芯片短缺", "粮食丰收", "森林火灾", "港口拥堵", "电影首映", "音乐盛典", "科学发现", "法院判决",
]  # fmt: skip


def _post(title: str, category: str, body: str, day: int) -> str:
    return f'---\ntitle: "{title}"\ndate: 2024-03-{day:02d} 10:00:00 +0800\ncategories: [ {category} ]\n---\n{body}\n'


def write_outlets(folder: Path) -> Path:
    """The two outlets described in the module docstring."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, head in enumerate(HEADLINES):
        title = head + SUFFIX
        others = [HEADLINES[(i + 1) % 20], HEADLINES[(i + 2) % 20]]
        body = "\n\n".join(
            [
                f"[{title}](https://ex.example/{i})",
                f"本台记者从现场发回第{i}号稿件，{head}的进展请看全文。",
                FOOTER,
                "相关报道",
                *(f"[{o}](https://ex.example/r{i}-{j})" for j, o in enumerate(others)),
                f"[熊猫宝宝出生{i}](https://ex.example/panda{i})",
            ]
        )
        (folder / f"2024-03-{i + 1:02d}-ex{i}.md").write_text(_post(title, OUTLET, body, i + 1), encoding="utf-8")
    small = [
        ("熊猫馆开放", "动物园的熊猫馆今天开放，游客排队观看熊猫。\n\n" + FOOTER + "\n\n相关报道\n\n[地震救援](https://c.example/1)"),
        ("丙台新闻甲", "丙台今日报道城市建设。\n\n丙台版权所有"),
        ("丙台新闻乙", "丙台今日报道乡村振兴。\n\n丙台版权所有"),
    ]
    for j, (title, body) in enumerate(small):
        (folder / f"2024-03-2{j + 1}-c{j}.md").write_text(_post(title, SMALL, body, 21 + j), encoding="utf-8")
    return folder


def articles(folder: Path) -> list:
    return [parse_post(p.read_bytes(), p.name) for p in sorted(folder.iterdir())]


@pytest.fixture(scope="module")
def outlets(tmp_path_factory) -> Path:
    return write_outlets(tmp_path_factory.mktemp("outlets") / "posts")


# -- the learner, pure --------------------------------------------------------------


def test_the_learner_finds_exactly_the_outlets_items(outlets):
    model = bp.learn(articles(outlets))
    o = model.outlets[OUTLET]
    assert o.posts == 20
    assert set(o.lines) == {bp.norm(FOOTER)}
    assert set(o.tails) == {"相关报道"}  # its links differ from post to post: the heading starts the block
    assert set(o.suffixes) == {"exs", "示例电视台"}
    assert o.prefixes == {}
    assert o.headline == 20


def test_nothing_is_learned_from_an_outlet_with_too_few_posts(outlets):
    model = bp.learn(articles(outlets))
    assert model.outlets[SMALL].posts == 3
    assert model.outlets[SMALL].empty  # 丙台版权所有 is in all three, but three posts prove nothing


def test_the_model_cleans_title_text_and_display_of_its_outlet_only(outlets):
    arts = {a.id: a for a in articles(outlets)}
    model = bp.learn(arts.values())
    ex = arts["2024-03-01-ex0"]
    assert model.clean_title(ex.title, OUTLET) == "地震救援"
    assert model.clean_title("COVID-19 疫情 – 示例电视台 - EXS", OUTLET) == "COVID-19 疫情"
    assert model.clean_title(ex.title, SMALL) == ex.title  # per outlet
    c = model.apply(ex)
    assert c.text == "本台记者从现场发回第0号稿件，地震救援的进展请看全文。"  # no headline, footer, related links
    assert c.hidden_lines == [ex.title, FOOTER, "相关报道", "选举结果", "股市大涨", "熊猫宝宝出生0"]
    shown = without_spans(ex.body_html, c.hidden)
    assert "稿件" in shown and "example.net" not in shown and "熊猫" not in shown and "<a" not in shown
    panda = model.apply(arts["2024-03-21-c0"])  # another outlet keeps the same lines
    assert FOOTER in panda.text and "相关报道" in panda.text and panda.hidden == []


def test_the_model_is_versioned_json_and_hashed(outlets):
    model = bp.learn(articles(outlets))
    again = bp.Model.from_json(model.to_json())
    assert again.hash == model.hash and again.outlets[OUTLET].suffixes == model.outlets[OUTLET].suffixes
    with pytest.raises(ValueError):
        bp.Model.from_json(model.to_json().replace('"version": 1', '"version": 99'))


def test_a_snippet_never_starts_with_the_headline_even_when_nothing_is_learned(outlets):
    ex = articles(outlets)[0]
    assert bp.EMPTY_MODEL.apply(ex).text.startswith("本台记者")


def test_image_labels_are_not_lines():
    html = '<p><a class="image-link" href="https://x.example/a.jpg" rel="noopener">[图片]</a></p><p>正文</p>'
    assert [b.text for b in bp.blocks(html)] == ["正文"]


# -- indexed, on every engine ---------------------------------------------------------


@pytest.fixture(scope="module", params=["tantivy", "elasticsearch"])
def indexed_outlets(request, tmp_path_factory, outlets):
    require_engine(request.param)
    s = make_settings(request.param, tmp_path_factory.mktemp("bpidx") / "data")
    report = run(s, outlets, rebuild=True)
    assert report.indexed == 23 and report.learned_from == 23, report.summary()
    engine = open_engine(s)
    yield s, engine
    engine.close()
    drop_es_indices(s)


def _search(s, engine, q: str):
    return Searcher(engine, s).search(SearchRequest.from_args({"q": q}))


def test_the_model_is_stored_next_to_the_manifest(indexed_outlets):
    s, engine = indexed_outlets
    model = bp.Model.from_json(model_path(s.data_dir, engine.name, s.index).read_text(encoding="utf-8"))
    assert set(model.outlets[OUTLET].lines) == {bp.norm(FOOTER)}


def test_boilerplate_is_not_searched_and_another_outlet_keeps_it(indexed_outlets):
    s, engine = indexed_outlets
    panda = _search(s, engine, "熊猫")  # in every 示例台 post's related links; about pandas only in 丙台's
    assert [h.id for h in panda.hits] == ["2024-03-21-c0"]
    footer = _search(s, engine, "获取更多资讯")
    assert [h.id for h in footer.hits] == ["2024-03-21-c0"]
    copyright_ = _search(s, engine, "丙台版权所有")  # nothing learned from 丙台: its own footer stays
    assert len(copyright_.hits) == 2


def test_snippets_leave_out_the_headline_and_the_boilerplate(indexed_outlets):
    s, engine = indexed_outlets
    res = _search(s, engine, "稿件")
    assert res.total == 20
    for h in res.hits:
        text = re.sub("<[^>]+>", "", str(h.snippet_html))
        assert text.startswith("本台记者"), text
        assert "示例电视台" not in text and "example.net" not in text and "相关报道" not in text


def test_related_articles_ignore_the_title_suffix_and_related_links(indexed_outlets):
    s, engine = indexed_outlets
    searcher = Searcher(engine, s)
    doc = searcher.article("2024-03-01-ex0")  # 地震救援: linked from two other posts' related links
    assert doc.clean_title == "地震救援"
    related = searcher.related(doc)
    assert all(OUTLET not in h.categories for h in related), [h.title for h in related]
    # 丙台's post links to 地震救援 in a block nothing taught us to drop: it stays related
    assert [h.id for h in related] == ["2024-03-21-c0"]


def test_the_article_page_folds_the_boilerplate(indexed_outlets):
    from searchapp import create_app

    s, _ = indexed_outlets
    client = create_app({"TESTING": True, "SETTINGS_OVERRIDES": app_overrides(s)}).test_client()
    page = client.get("/article/2024-03-01-ex0").get_data(as_text=True)
    body = page.split('<div class="body">', 1)[1].split("</div>", 1)[0]
    assert "稿件" in body
    assert "example.net" not in body and "相关报道" not in body and "熊猫" not in body and "示例电视台" not in body
    details = page.split('<details class="boilerplate">', 1)[1].split("</details>", 1)[0]
    assert "原文附加内容" in details and "获取更多资讯" in details and "熊猫宝宝出生0" in details
    other = client.get("/article/2024-03-21-c0").get_data(as_text=True)
    assert "获取更多资讯" in other.split('<div class="body">', 1)[1] and '<details class="boilerplate">' not in other
    api = client.get("/api/article/2024-03-01-ex0").get_json()
    assert "example.net" not in api["body_html"] and FOOTER in api["boilerplate_lines"]


def test_status_shows_what_was_learned(indexed_outlets):
    s, _ = indexed_outlets
    args = ["--engine", s.engine, "--data-dir", str(s.data_dir), "--index", s.index, "status"]
    out = CliRunner().invoke(main, args, env={"ELASTICSEARCH_URL": s.elasticsearch_url}, catch_exceptions=False).output
    assert "(the index uses it)" in out
    assert f"{OUTLET}: 20 posts sampled, 4 items learned, headline as first line in 20" in out
    learned = ["title suffix: exs", "title suffix: 示例电视台", f"line: {bp.norm(FOOTER)}"]
    learned.append("starts a related-links block: 相关报道")
    for line in learned:
        assert line in out, out
    assert f"{SMALL}: 3 posts sampled, 0 items learned" in out


def test_an_update_applies_the_stored_model_and_a_new_model_needs_a_reindex(tmp_path, outlets):
    s = make_settings("tantivy", tmp_path / "data")
    first = run(s, outlets)  # the first run into an empty index learns
    assert first.learned_from == 23 and first.boilerplate
    extra = outlets.parent / "more"
    extra.mkdir()
    (extra / "2024-03-30-ex99.md").write_text(
        _post("新闻九九" + SUFFIX, OUTLET, f"正文九九。\n\n{FOOTER}", 30), encoding="utf-8"
    )
    # the same posts plus one: applied with the stored model, not learned again
    folder = tmp_path / "posts"
    folder.mkdir()
    for p in [*outlets.iterdir(), *extra.iterdir()]:
        (folder / p.name).write_bytes(p.read_bytes())
    second = run(s, folder)
    assert second.learned_from == 0 and second.boilerplate == first.boilerplate
    engine = open_engine(s)
    try:
        assert [h.id for h in _search(s, engine, "获取更多资讯").hits] == ["2024-03-21-c0"]
    finally:
        engine.close()
    model_file = model_path(s.data_dir, "tantivy", s.index)
    model_file.write_text(bp.Model().to_json(), encoding="utf-8")  # as if another model had been learned
    out = CliRunner().invoke(main, ["--data-dir", str(s.data_dir), "--index", s.index, "status"]).output
    assert "REINDEX NEEDED" in out


def test_a_headline_repeated_twice_or_followed_by_a_date_leaves_the_snippet():
    body = "[巴黎书店](https://b.example/1)\n\n## 巴黎书店\n\n巴黎书店 2020年12月4日\n\n正文。"
    post = _post("巴黎书店", "乙台", body, 1)
    assert bp.EMPTY_MODEL.apply(parse_post(post.encode(), "2024-03-01-b.md")).text == "2020年12月4日\n正文。"


def test_a_related_links_block_ends_where_the_article_goes_on(outlets):
    model = bp.learn(articles(outlets))
    body = "正文开始。\n\n相关报道\n\n[某个链接](https://ex.example/z)\n\n正文继续，这不是链接。"
    c = model.apply(parse_post(_post("新闻" + SUFFIX, OUTLET, body, 2).encode(), "2024-03-02-z.md"))
    assert c.text == "正文开始。\n正文继续，这不是链接。" and c.hidden_lines == ["相关报道", "某个链接"]

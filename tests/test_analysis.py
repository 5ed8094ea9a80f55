"""Analysis: normalization keeps offsets, tokens cover words and characters,
queries parse into terms, and highlighting marks whole characters only."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from searchcore.analysis import (
    analyse,
    char_stream,
    char_tokens,
    joined,
    load_user_dict,
    normalize,
    pair,
    pair_stream,
    parse_query,
    word_stream,
    word_tokens,
)
from searchcore.highlight import build_matcher, mark, snippet


def test_normalize_is_length_preserving_and_folds_variants():
    for text in ("臺灣經濟與ＧＤＰ增長６.５％", "㍿ and ﬁ ligatures", "乾隆皇帝", "Ⅻ世紀"):
        assert len(normalize(text)) == len(text)
    assert normalize("臺灣經濟") == "台湾经济"
    assert normalize("ＧＤＰ　COVID") == "gdp covid"


@given(st.text(min_size=0, max_size=300))
def test_long_and_short_texts_normalize_alike(text):
    """The code-point array path (long texts) and translate (short ones) are one
    mapping: a word must normalize the same in a query, a title and a body."""
    from searchcore.analysis import _TABLE, to_simplified

    reference = to_simplified(text.translate(_TABLE))
    assert normalize(text) == reference
    padded = "經濟ＡＢｃ…" * 20 + text  # past the array threshold whatever text is
    assert normalize(padded) == to_simplified(padded.translate(_TABLE))


def test_normalize_of_a_body_keeps_phrase_level_conversion_and_rare_planes():
    body = "本报讯：他没有回覆置評請求。" * 10 + "𠀀𪚥😀ＧＤＰ增長６．５％"
    norm = normalize(body)
    assert len(norm) == len(body)
    assert "回复置评请求" in norm  # OpenCC's phrase table still runs on long texts
    assert norm.endswith("𠀀𪚥😀gdp增长6.5%")


def test_word_and_char_tokens_with_offsets():
    text = normalize("中华人民共和国国债5G")
    words = word_tokens(text)
    assert ("中华人民共和国", 0, 7) in words and ("国债", 7, 9) in words
    assert all(text[s:e] == w for w, s, e in words)
    chars = char_tokens(text)
    assert [c for c, _, _ in chars] == list("中华人民共和国国债") + ["5g"]


def test_query_syntax():
    terms = parse_query('产教融合 "长江 经济带" -股市 COVID-19 ! ""')
    assert [(t.text, t.exact, t.negate) for t in terms] == [
        ("产教融合", False, False),
        ("长江 经济带", True, False),
        ("股市", False, True),
        ("covid-19", False, False),
    ]
    assert terms[1].chars == tuple("长江经济带")
    assert terms[3].chars == ("covid", "19")


def test_hostile_query_syntax_is_just_text():
    terms = parse_query("title:(a OR b) AND body:/.*/ * ? \\ ~2 ^3 {!}")
    assert all(all(c.isalnum() for c in t.chars) for t in terms)


def test_highlight_marks_whole_matches_and_escapes_everything_else():
    m = build_matcher(parse_query("職教 <b>"))
    out = str(mark("<b>高职教育</b>", m))
    assert out == "&lt;<mark>b</mark>&gt;高<mark>职教</mark>育&lt;/<mark>b</mark>&gt;"


def test_snippet_windows_around_matches():
    text = "无关内容。" * 100 + "长江经济带发展" + "其他内容。" * 100
    out = str(snippet(text, build_matcher(parse_query("长江")), width=60))
    assert "<mark>长江</mark>" in out and out.startswith("…") and out.endswith("…")
    assert len(out) < 120


def test_user_dictionary_adds_words(tmp_path):
    word = "鲲鹏锻造坊"
    assert (word, 0, 5) not in analyse(word).words
    d = tmp_path / "user.dict"
    d.write_text(f"# operators' words\n{word} 100 n\n", encoding="utf-8")
    assert load_user_dict(d) == 1
    assert (word, 0, 5) in analyse(word).words
    assert load_user_dict(tmp_path / "missing.dict") == 0


def test_pairs_join_adjacent_chars_tokens_without_ambiguity():
    chars = char_stream(normalize("中国经济 GDP增长6.5%"))
    assert pair_stream(chars).split() == ["中国", "国经", "经济", "济gdp", "gdp_增", "增长", "长6", "65"]
    # a Latin or digit run is followed by "_", so "ab c" and "a bc" are different pairs
    assert pair_stream("ab c") != pair_stream("a bc")
    assert pair_stream("1 23") != pair_stream("12 3")
    assert pair_stream(" ".join("长江经济带")) == "长江 江经 经济 济带"
    assert pair_stream("经") == "" and pair_stream("") == ""


def test_a_query_term_is_the_pairs_its_text_indexes_as():
    for text in ("长江经济带", "GDP增长", "covid-19", "经济"):
        term = parse_query(text)[0]
        assert " ".join(term.pairs) == pair_stream(char_stream(normalize(text)))
    assert parse_query("津")[0].pairs == ()


_TOKEN = st.one_of(
    st.sampled_from(["中", "国", "经", "济", "𠀀", "a", "1"]),
    st.text(alphabet="ab12", min_size=2, max_size=4),
)


@given(st.lists(_TOKEN, max_size=12))
def test_pair_stream_is_pair_over_each_two_neighbours(tokens):
    """The fast, strided pair_stream makes exactly the tokens of the plain definition."""
    chars = " ".join(tokens)
    assert pair_stream(chars) == " ".join(pair(a, b) for a, b in zip(tokens, tokens[1:], strict=False))


def test_sub_words_that_straddle_their_word_are_not_words():
    """Search mode emits a long word's dictionary sub-words, 华人 inside
    中华人民共和国 among them, though the word splits 中华 | 人民 | 共和国: an article
    about the state is not one about 华人 (overseas Chinese). Sub-words that are
    parts of the split stay (人民, 共和国, 共和 inside 共和国), the characters still
    match as a substring, and the stream and the offset tokens agree."""
    for text, straddling, parts in [
        ("中华人民共和国民法典施行", {"华人"}, {"中华", "人民", "共和", "共和国", "中华人民共和国", "民法典"}),
        ("全国人民代表大会常务委员会", {"国人"}, {"全国", "人民", "代表", "大会", "委员会"}),
        ("上海市长江大桥", {"海市"}, {"上海", "上海市", "长江", "大桥", "长江大桥"}),
    ]:
        norm = normalize(text)
        words = [w for w, _, _ in word_tokens(norm)]
        assert not straddling & set(words) and parts <= set(words), (text, words)
        assert word_stream(norm) == joined(word_tokens(norm))
    # a 华人 of its own, before and after the long word, stays
    assert word_stream(normalize("华人 中华人民共和国 华人")).split().count("华人") == 2


def test_the_highlighters_normalized_windows_are_bounded_by_characters(monkeypatch):
    """Many long bodies cannot grow a worker's memory past the cache's budget, and
    a cached window is the one normalize gives."""
    from searchcore import highlight as hl

    monkeypatch.setattr(hl._NormalizedCache, "MAX_CHARS", 10_000)
    cache = hl._NormalizedCache()
    bodies = [f"第{i}篇：臺灣經濟ＧＤＰ增長" * 100 for i in range(40)]  # 1,100+ characters each
    for body in bodies + bodies[-3:]:
        assert cache(body) == normalize(body)
        assert cache._chars <= 10_000
    assert 0 < len(cache._data) <= 9 and bodies[-1] in cache._data and bodies[0] not in cache._data

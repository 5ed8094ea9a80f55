"""Synthetic corpus of Chinese news posts in the Jekyll format used by the target site.

Every post looks like this::

    ---
    layout: post
    title: "【领航中国】长江沿线生态环境保护焕发新活力"
    date: 2022-09-24 19:00:37 +0800
    categories: xinwenlianbo
    tags: 新闻联播 领航中国
    ---
    <p><strong>央视网消息</strong>（新闻联播）：...</p>
     <p>...</p><p class="em_media">（文章来源：央视网）</p>

    <http://news.example/2022/09/24/3f9a0c1d.html>

    [返回新闻联播新闻](//news.example/xinwenlianbo.html)｜[返回首页](//news.example/)

All vocabulary (``vocabulary.yaml``) was written for this package; nothing is copied from
real articles.

Public API
----------
* :class:`SyntheticPost` -- one generated post (``text`` is the full file text).
* :func:`make_posts` -- deterministic, streaming generator of posts.
* :func:`write_corpus` -- writes a corpus folder, optionally with broken and awkward
  files mixed in, and returns a summary of what an indexer should accept/reject.
* CLI: ``python -m synthetic OUT_DIR -n 3000 --seed 1 --broken 0.01``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml

CST = timezone(timedelta(hours=8))

#: Above this many posts, :func:`write_corpus` shards files into ``YYYY/`` subfolders.
SHARD_THRESHOLD = 20_000

#: Broken kinds: files an indexer must reject (listed in ``expected_rejected``).
REJECTED_KINDS: tuple[str, ...] = (
    "undecodable",  # invalid UTF-8 that is not valid GB18030 either
    "bad_yaml",  # front matter is not parseable YAML
    "missing_title",  # front matter without a title
    "no_date",  # no date in front matter, file name without a date
    "empty_body",  # front matter only, body is whitespace
    "binary",  # random bytes with NULs and a .md extension
    "html_bomb",  # 100k nested <div>, no visible text
    "oversized",  # valid post padded to 2 MB (50 MB with big_files=True)
)

#: Valid-but-awkward kinds: files an indexer must accept.
ACCEPTED_KINDS: tuple[str, ...] = (
    "gb18030",  # whole file encoded in GB18030
    "bom",  # UTF-8 with a byte order mark
    "duplicate",  # extra copy of a post under a different file name
    "yaml_lists",  # categories/tags as YAML lists
    "utc_date",  # date: 2020-07-30T17:09:49.000Z
    "spaces_in_name",  # file name with spaces
)

# Interleaved so that every kind shows up as early as possible.
_ALL_KINDS: tuple[str, ...] = tuple(
    k
    for pair in zip(
        REJECTED_KINDS,
        ACCEPTED_KINDS + ("",) * (len(REJECTED_KINDS) - len(ACCEPTED_KINDS)),
        strict=True,
    )
    for k in pair
    if k
)

SMALL_OVERSIZE = 2 * 1024 * 1024
BIG_OVERSIZE = 50 * 1024 * 1024
HTML_BOMB_DEPTH = 100_000


@dataclass(frozen=True)
class SyntheticPost:
    filename: str
    title: str
    date: datetime  # timezone-aware (+08:00)
    categories: list[str]
    tags: list[str]
    body_html: str
    source_url: str
    text: str  # full file text: front matter + body + source line + nav line


# ---------------------------------------------------------------------------
# Vocabulary: data in vocabulary.yaml beside this module, read once at import
# ---------------------------------------------------------------------------


def _load_vocabulary() -> dict[str, Any]:
    text = Path(__file__).with_name("vocabulary.yaml").read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


_VOCAB = _load_vocabulary()
PLACES: list[str] = _VOCAB["places"]
FOREIGN_PLACES: list[str] = _VOCAB["foreign_places"]
TIME_PHRASES: list[str] = _VOCAB["time_phrases"]
TITLE_PHRASES: list[str] = _VOCAB["title_phrases"]
SURNAMES: list[str] = list(_VOCAB["surnames"])
GIVEN_NAMES: list[str] = _VOCAB["given_names"]
NUMBER_PATTERNS: list[tuple[str, int, int]] = [(pat, lo, hi) for pat, lo, hi in _VOCAB["number_patterns"]]
NASTY_SNIPPETS: list[str] = _VOCAB["nasty_snippets"]
SOURCES: list[str] = _VOCAB["sources"]
TAGS: list[str] = _VOCAB["tags"]  # by popularity: sampled with Zipf-like weights
# Programme tags only come from the xinwenlianbo category's home tags.
_PROGRAMME_TAGS = set(_VOCAB["programme_tags"])
_ZIPF_TAGS = [t for t in TAGS if t not in _PROGRAMME_TAGS]
_TAG_CUM: list[float] = []
_acc = 0.0
for _rank in range(len(_ZIPF_TAGS)):
    _acc += 1.0 / (_rank + 1) ** 1.1
    _TAG_CUM.append(_acc)
del _acc, _rank

_SENTENCE_SPECS: list[str] = _VOCAB["sentence_specs"]
_TITLE_SPECS: list[str] = _VOCAB["title_specs"]

# name -> display name, weight, home tags, slot lists (columns, subjects, verbs,
# objects, results, mixed-content title fragments, roles), ASCII slug words, lead,
# and `foreign` where foreign places join the domestic ones
CATEGORY_DATA: dict[str, dict[str, Any]] = _VOCAB["categories"]

CATEGORIES: tuple[str, ...] = tuple(CATEGORY_DATA)
_CAT_CUM: list[float] = []
_acc = 0.0
for _c in CATEGORIES:
    _acc += CATEGORY_DATA[_c]["weight"]
    _CAT_CUM.append(_acc)
del _acc, _c

_SLUG_LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------
# Generation helpers
# ---------------------------------------------------------------------------

Slot = str | list[str] | Callable[[Callable[[], float]], str]


def _pick(lst: list[str], r: Callable[[], float]) -> str:
    return lst[int(r() * len(lst))]


def _number(r: Callable[[], float]) -> str:
    pat, lo, hi = NUMBER_PATTERNS[int(r() * len(NUMBER_PATTERNS))]
    a = lo + int(r() * (hi - lo + 1))
    if pat.count("{}") == 2:
        return pat.format(a, int(r() * 10))
    return pat.format(a)


def _person(roles: list[str]) -> Callable[[Callable[[], float]], str]:
    def person(r: Callable[[], float]) -> str:
        return _pick(roles, r) + _pick(SURNAMES, r) + _pick(GIVEN_NAMES, r)

    return person


def _compile(spec: str, slots: dict[str, Slot]) -> tuple[Slot, ...]:
    """Turn 'A，P S V O' style specs into a tuple of literals and slots.

    Uppercase letters listed in ``slots`` are slots; '|' separates tokens.
    """
    out: list[Slot] = []
    for tok in spec.split("|"):
        out.append(slots.get(tok, tok))
    return tuple(out)


class _Cat:
    """Pre-compiled generation tables for one category."""

    __slots__ = (
        "data",
        "display",
        "home_tags",
        "hosts",
        "lead",
        "name",
        "objects",
        "sentences",
        "slug_words",
        "titles",
    )

    def __init__(self, name: str) -> None:
        d = CATEGORY_DATA[name]
        self.name = name
        self.data = d
        self.display: str = d["display"]
        self.hosts: list[str] = d.get("hosts") or ["news.example"]  # the outlets publishing it
        self.lead: str = d["lead"]
        self.home_tags: list[str] = d["home_tags"]
        self.slug_words: list[str] = d["slug_words"]
        self.objects: list[str] = d["objects"]
        places = PLACES + FOREIGN_PLACES * 2 if d.get("foreign") else PLACES
        slots: dict[str, Slot] = {
            "A": TIME_PHRASES,
            "P": places,
            "S": d["subjects"],
            "V": d["verbs"],
            "O": d["objects"],
            "R": d["results"],
            "T": TITLE_PHRASES,
            "C": d["columns"],
            "M": d["mixed"],
            "N": _number,
            "Q": _person(d["roles"]),
        }
        self.sentences = [_compile(s, slots) for s in _SENTENCE_SPECS]
        self.titles = [_compile(s, slots) for s in _TITLE_SPECS]


_CATS: dict[str, _Cat] = {}


def _cat(name: str) -> _Cat:
    c = _CATS.get(name)
    if c is None:
        c = _CATS[name] = _Cat(name)
    return c


def _fill(tpl: tuple[Slot, ...], r: Callable[[], float]) -> str:
    parts = []
    for it in tpl:
        if type(it) is str:
            parts.append(it)
        elif type(it) is list:
            parts.append(it[int(r() * len(it))])
        else:
            parts.append(it(r))  # type: ignore[operator]
    return "".join(parts)


_S2T: Any = None


def _to_traditional(s: str) -> str:
    global _S2T
    if _S2T is None:
        import opencc

        _S2T = opencc.OpenCC("s2t")
    return _S2T.convert(s)


def _slug_id(i: int) -> str:
    """Bijective base-26 letters: 0->a, 25->z, 26->aa ... (no digits, unique per i)."""
    out = []
    i += 1
    while i > 0:
        i, rem = divmod(i - 1, 26)
        out.append(_SLUG_LETTERS[rem])
    return "".join(reversed(out))


def _yaml_dq(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fmt_date(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M:%S %z")


def _front_matter(title: str | None, date_line: str | None, categories: str, tags: str) -> str:
    lines = ["---", "layout: post"]
    if title is not None:
        lines.append(f"title: {title}")
    if date_line is not None:
        lines.append(f"date: {date_line}")
    lines.append(f"categories: {categories}")
    lines.append(f"tags: {tags}")
    lines.append("---")
    return "\n".join(lines) + "\n"


def _make_title(cat: _Cat, r: Callable[[], float]) -> str:
    titles = cat.titles
    for _ in range(20):
        t = _fill(titles[int(r() * len(titles))], r)
        if 8 <= len(t) <= 30:
            return t
    return (t + "取得积极进展")[:30]


def _soup(sentences: list[str], r: Callable[[], float]) -> str:
    inner = "".join(
        f'<span style="font-family:宋体;font-size:14px"><span class="s{int(r() * 9)}">{s}</span></span>' for s in sentences
    )
    return f'<p style="text-indent:2em;margin:0 0 10px" class="MsoNormal">{inner}&nbsp;</p>'


# Visible body text stays within 200..2000 chars (source line and snippets included).
_MAX_SENTENCE_CHARS = 1920


def _make_body(cat: _Cat, rng: random.Random) -> str:
    r = rng.random
    n_par = 3 + int(r() * 10)  # 3..12
    lo = max(200, 45 * n_par)
    target = lo + int(r() * (_MAX_SENTENCE_CHARS - 100 - lo))
    per_par = target / n_par
    sentences = cat.sentences
    nasty = r() < 0.15
    soup = r() < 0.12
    total = 0
    paras: list[str] = []
    for p in range(n_par):
        sents: list[str] = []
        plen = 0
        if p == 0:
            lead = cat.lead
            total += len(lead) - 17  # count visible chars of the lead only
        while True:
            s = _fill(sentences[int(r() * len(sentences))], r)
            if total + len(s) > _MAX_SENTENCE_CHARS and sents:
                break
            sents.append(s)
            plen += len(s)
            total += len(s)
            if plen >= per_par:
                break
        if p == 0:
            paras.append(f"<p>{cat.lead}{''.join(sents)}</p>")
        elif soup and r() < 0.5:
            paras.append(_soup(sents, r))
        elif r() < 0.08:
            # a bit of inline markup inside a normal paragraph
            mid = len(sents) // 2
            paras.append(
                "<p>"
                + "".join(sents[:mid])
                + "<strong>"
                + "".join(sents[mid : mid + 1])
                + "</strong>"
                + "".join(sents[mid + 1 :])
                + "</p>"
            )
        else:
            paras.append("<p>" + "".join(sents) + "</p>")
    if nasty:
        for _ in range(1 + int(r() * 3)):
            pos = 1 + int(r() * len(paras))
            paras.insert(pos, NASTY_SNIPPETS[int(r() * len(NASTY_SNIPPETS))])
    source = SOURCES[int(r() * len(SOURCES))]
    sep = "\n " if r() < 0.7 else "\n"
    return sep.join(paras) + f'<p class="em_media">（文章来源：{source}）</p>'


def _make_tags(cat: _Cat, rng: random.Random) -> list[str]:
    r = rng.random
    k = 1 + int(r() * r() * 4)  # 1..4, skewed to fewer tags
    tags: list[str] = []
    if r() < 0.75:
        tags.append(cat.home_tags[int(r() * r() * len(cat.home_tags))])
    while len(tags) < k:
        t = _ZIPF_TAGS[bisect.bisect(_TAG_CUM, r() * _TAG_CUM[-1])]
        if t not in tags:
            tags.append(t)
    return tags


def _make_slug(cat: _Cat, i: int, r: Callable[[], float]) -> str:
    sid = _slug_id(i)
    if r() < 0.15:
        words = [cat.objects[int(r() * len(cat.objects))].replace("“", "").replace("”", "")]
    else:
        w = cat.slug_words
        words = list(dict.fromkeys(w[int(r() * len(w))] for _ in range(1 + int(r() * 3))))
    return "-".join(words + [sid])


def make_posts(
    n: int,
    seed: int = 0,
    start: date = date(2019, 1, 1),
    end: date = date(2024, 12, 31),
) -> Iterator[SyntheticPost]:
    """Yield ``n`` synthetic posts, deterministic for ``(n, seed, start, end)``.

    Streaming: nothing but the current post is kept. Dates are spread evenly over
    ``[start, end]`` (non-decreasing with the post index) with random times of day at
    +08:00. File names ``YYYY-MM-DD-<slug>.md`` are unique within one call.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if end < start:
        raise ValueError("end must not be before start")
    rng = random.Random(seed)
    r = rng.random
    days = (end - start).days + 1
    start_dt = datetime(start.year, start.month, start.day, tzinfo=CST)
    cats = [_cat(c) for c in CATEGORIES]
    for i in range(n):
        cat = cats[bisect.bisect(_CAT_CUM, r() * _CAT_CUM[-1])]
        day = int((i + r()) * days / n) if n else 0
        day = min(day, days - 1)
        if cat.name == "xinwenlianbo" and r() < 0.7:
            secs = 19 * 3600 + int(r() * 3600)
        else:
            secs = 6 * 3600 + int(r() * 17 * 3600)
        dt = start_dt + timedelta(days=day, seconds=secs)
        title = _make_title(cat, r)
        body = _make_body(cat, rng)
        tags = _make_tags(cat, rng)
        categories = [cat.name]
        if r() < 0.08:
            other = CATEGORIES[int(r() * len(CATEGORIES))]
            if other != cat.name:
                categories.append(other)
        nav_label = f"返回{cat.display}新闻"
        if r() < 0.25:
            title = _to_traditional(title)
            body = _to_traditional(body)
            tags = [_to_traditional(t) for t in tags]
            nav_label = _to_traditional(nav_label)
        slug = _make_slug(cat, i, r)
        ymd = dt.strftime("%Y-%m-%d")
        filename = f"{ymd}-{slug}.md"
        host = cat.hosts[i % len(cat.hosts)]  # by index, not by the rng: the rest of the corpus stays as it was
        source_url = f"http://{host}/{ymd.replace('-', '/')}/{int(r() * 0xFFFFFFFF):08x}.html"
        fm = _front_matter(_yaml_dq(title), _fmt_date(dt), " ".join(categories), " ".join(tags))
        tail = f"\n\n<{source_url}>\n\n[{nav_label}](//news.example/{cat.name}.html)｜[返回首页](//news.example/)\n"
        yield SyntheticPost(
            filename=filename,
            title=title,
            date=dt,
            categories=categories,
            tags=tags,
            body_html=body,
            source_url=source_url,
            text=fm + body + tail,
        )


# ---------------------------------------------------------------------------
# Broken / awkward variants
# ---------------------------------------------------------------------------


def _split_post(post: SyntheticPost) -> tuple[str, str]:
    """Return (front matter incl. closing '---\\n', tail after body)."""
    fm_end = post.text.index("\n---\n", 3) + 5
    tail = post.text[fm_end + len(post.body_html) :]
    return post.text[:fm_end], tail


@dataclass(frozen=True)
class _Pieces:
    """A post taken apart, for the variants to put back together differently."""

    post: SyntheticPost
    fm: str  # front matter, closing '---\n' included
    tail: str  # after the body: source line and nav line
    cats: str  # categories as a Jekyll string
    tags: str  # tags as a Jekyll string
    title: str  # YAML double-quoted
    dline: str  # the date line's value
    stem: str  # file name without '.md'


def _pieces(post: SyntheticPost) -> _Pieces:
    fm, tail = _split_post(post)
    return _Pieces(
        post=post,
        fm=fm,
        tail=tail,
        cats=" ".join(post.categories),
        tags=" ".join(post.tags),
        title=_yaml_dq(post.title),
        dline=_fmt_date(post.date),
        stem=post.filename[:-3],
    )


# Each variant: (pieces, count, rng, big_files) -> (file name, file bytes), where
# ``count`` is how many of its kind were made before (it rotates sub-variants).
_Variant = Callable[[_Pieces, int, random.Random, bool], tuple[str, bytes]]


def _undecodable(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    data = p.post.text.encode("utf-8")
    data = data.replace(b'title: "', b'title: "\xff', 1)
    data = data.replace(b"</p>", b"\xff\xfe</p>", 2)
    return p.post.filename, data


def _bad_yaml(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    post = p.post
    v = count % 4
    if v == 0:  # plain scalar containing ': '
        bad = _front_matter(post.title.replace('"', "") + ": 详情", p.dline, p.cats, p.tags)
    elif v == 1:  # unterminated double quote
        bad = _front_matter('"' + post.title, p.dline, p.cats, p.tags)
    elif v == 2:  # unterminated flow sequence
        bad = _front_matter(p.title, p.dline, p.cats, "[" + ", ".join(post.tags))
    else:  # tab indentation
        bad = _front_matter(p.title, p.dline, "\n\t- " + post.categories[0], p.tags)
    return post.filename, (bad + post.body_html + p.tail).encode("utf-8")


def _missing_title(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    return p.post.filename, (_front_matter(None, p.dline, p.cats, p.tags) + p.post.body_html + p.tail).encode()


def _no_date(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    slug = p.stem[11:]
    tail = p.tail.replace(p.post.source_url, f"http://news.example/special/{slug}.html")
    return f"{slug}.md", (_front_matter(p.title, None, p.cats, p.tags) + p.post.body_html + tail).encode()


def _empty_body(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    return p.post.filename, (p.fm + ("\n", "", "\n\n   \n", "\t\n")[count % 4]).encode()


def _binary(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    size = 2048 + int(rng.random() * 14336)
    data = bytearray(rng.randbytes(size))
    for _ in range(16):
        data[int(rng.random() * size)] = 0
    data[:4] = b"\x00\xff\x00\x89"
    return p.post.filename, bytes(data)


def _html_bomb(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    bomb = "<div>" * HTML_BOMB_DEPTH + "</div>" * HTML_BOMB_DEPTH + "\n"
    return p.post.filename, (p.fm + bomb).encode()


def _oversized(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    target = BIG_OVERSIZE if big_files else SMALL_OVERSIZE
    unit = (p.post.body_html + "\n").encode()
    reps = target // len(unit) + 1
    return p.post.filename, p.fm.encode() + unit * reps + p.tail.encode()


def _gb18030(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    return p.post.filename, p.post.text.encode("gb18030")


def _bom(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    return p.post.filename, b"\xef\xbb\xbf" + p.post.text.encode("utf-8")


def _duplicate(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    return f"{p.stem}-copy.md", p.post.text.encode("utf-8")


def _yaml_lists(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    post = p.post
    if count % 2 == 0:
        c = "[" + ", ".join(post.categories) + "]"
        t = "[" + ", ".join(post.tags) + "]"
    else:
        c = "".join(f"\n  - {x}" for x in post.categories)
        t = "".join(f"\n  - {x}" for x in post.tags)
    return post.filename, (_front_matter(p.title, p.dline, c, t) + post.body_html + p.tail).encode()


def _utc_date(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    utc = p.post.date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return p.post.filename, (_front_matter(p.title, utc, p.cats, p.tags) + p.post.body_html + p.tail).encode()


def _spaces_in_name(p: _Pieces, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    return p.stem[:11] + p.stem[11:].replace("-", " ") + ".md", p.post.text.encode("utf-8")


_VARIANTS: dict[str, _Variant] = {
    "undecodable": _undecodable,
    "bad_yaml": _bad_yaml,
    "missing_title": _missing_title,
    "no_date": _no_date,
    "empty_body": _empty_body,
    "binary": _binary,
    "html_bomb": _html_bomb,
    "oversized": _oversized,
    "gb18030": _gb18030,
    "bom": _bom,
    "duplicate": _duplicate,
    "yaml_lists": _yaml_lists,
    "utc_date": _utc_date,
    "spaces_in_name": _spaces_in_name,
}
assert set(_VARIANTS) == set(REJECTED_KINDS + ACCEPTED_KINDS)


def _variant(kind: str, post: SyntheticPost, count: int, rng: random.Random, big_files: bool) -> tuple[str, bytes]:
    """Return (file name, file bytes) of a special file derived from ``post``.

    ``count`` is how many of this kind were made before (used to rotate sub-variants).
    """
    make = _VARIANTS.get(kind)
    if make is None:
        raise ValueError(f"unknown kind {kind!r}")
    return make(_pieces(post), count, rng, big_files)


def _count_files(root: Path) -> int:
    total = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for e in it:
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                else:
                    total += 1
    return total


def write_corpus(
    out_dir: Path,
    n: int,
    seed: int = 0,
    broken: float = 0.0,
    *,
    big_files: bool = False,
    shard: bool | None = None,
    allow_existing: bool = False,
    **kw: Any,
) -> dict[str, Any]:
    """Write ``n`` posts (plus duplicates) into ``out_dir`` and return a summary.

    * ``broken``: fraction of the ``n`` posts replaced by special files, spread evenly
      over the corpus; when > 0 every kind of :data:`REJECTED_KINDS` and
      :data:`ACCEPTED_KINDS` appears at least once (if ``n`` allows). ``duplicate``
      adds an extra file next to the original instead of replacing it.
    * ``big_files``: make the ``oversized`` file 50 MB instead of 2 MB.
    * ``shard``: put files into ``YYYY/`` subfolders (``misc/`` for files without a
      date); default: only when ``n > SHARD_THRESHOLD``.
    * ``allow_existing``: by default ``out_dir`` must be empty or missing, so that the
      summary matches the folder contents.
    * other keyword arguments (``start``, ``end``) go to :func:`make_posts`.

    Only post files are written (no manifest). Summary keys:
    ``written`` files written, ``files`` files found in ``out_dir`` afterwards,
    ``broken`` {kind: count} over all special kinds, ``expected_rejected``
    {relative path: kind}, ``expected_ok`` (= written - rejected),
    ``awkward`` {relative path: kind} for accepted special files,
    ``duplicates`` {copy path: original path}, ``oversized_bytes``, ``bytes``,
    ``seconds``, ``n``, ``seed``, ``sharded``.
    """
    out_dir = Path(out_dir)
    if not 0.0 <= broken <= 1.0:
        raise ValueError("broken must be within [0, 1]")
    if out_dir.exists() and not allow_existing and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty (pass allow_existing=True)")
    out_dir.mkdir(parents=True, exist_ok=True)
    sharded = n > SHARD_THRESHOLD if shard is None else shard

    special: dict[int, str] = {}
    if broken > 0 and n > 0:
        m = min(n, max(len(_ALL_KINDS), round(broken * n)))
        for j in range(m):
            special[int((j + 0.5) * n / m)] = _ALL_KINDS[j % len(_ALL_KINDS)]

    vrng = random.Random(f"broken-{seed}")
    counts: dict[str, int] = {}
    expected_rejected: dict[str, str] = {}
    awkward: dict[str, str] = {}
    duplicates: dict[str, str] = {}
    made_dirs: set[str] = set()
    written = 0
    nbytes = 0
    t0 = time.perf_counter()

    def put(rel_dir: str, name: str, data: bytes) -> str:
        nonlocal written, nbytes
        if rel_dir not in made_dirs:
            (out_dir / rel_dir).mkdir(parents=True, exist_ok=True)
            made_dirs.add(rel_dir)
        rel = f"{rel_dir}/{name}" if rel_dir else name
        with open(out_dir / rel, "xb") as fh:
            fh.write(data)
        written += 1
        nbytes += len(data)
        return rel

    for i, post in enumerate(make_posts(n, seed, **kw)):
        rel_dir = post.filename[:4] if sharded else ""
        kind = special.get(i)
        if kind is None:
            put(rel_dir, post.filename, post.text.encode("utf-8"))
            continue
        name, data = _variant(kind, post, counts.get(kind, 0), vrng, big_files)
        counts[kind] = counts.get(kind, 0) + 1
        if kind == "no_date" and sharded:
            rel_dir = "misc"
        if kind == "duplicate":
            orig = put(rel_dir, post.filename, post.text.encode("utf-8"))
            rel = put(rel_dir, name, data)
            duplicates[rel] = orig
            awkward[rel] = kind
        else:
            rel = put(rel_dir, name, data)
            if kind in ACCEPTED_KINDS:
                awkward[rel] = kind
            else:
                expected_rejected[rel] = kind

    return {
        "n": n,
        "seed": seed,
        "written": written,
        "files": _count_files(out_dir),
        "broken": counts,
        "expected_rejected": expected_rejected,
        "expected_ok": written - len(expected_rejected),
        "awkward": awkward,
        "duplicates": duplicates,
        "oversized_bytes": BIG_OVERSIZE if big_files else SMALL_OVERSIZE,
        "sharded": sharded,
        "bytes": nbytes,
        "seconds": round(time.perf_counter() - t0, 3),
    }


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m synthetic",
        description="Write a synthetic corpus of Chinese news posts (Jekyll format).",
    )
    ap.add_argument("out_dir", type=Path, help="output folder (must be empty or missing)")
    ap.add_argument("-n", type=int, default=1000, help="number of posts (default 1000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ap.add_argument("--broken", type=float, default=0.0, help="fraction of posts replaced by broken/awkward files (default 0)")
    ap.add_argument("--big-files", action="store_true", help="make the oversized file 50 MB instead of 2 MB")
    ap.add_argument(
        "--start", type=date.fromisoformat, default=date(2019, 1, 1), help="first date, YYYY-MM-DD (default 2019-01-01)"
    )
    ap.add_argument(
        "--end", type=date.fromisoformat, default=date(2024, 12, 31), help="last date, YYYY-MM-DD (default 2024-12-31)"
    )
    shard = ap.add_mutually_exclusive_group()
    shard.add_argument("--shard", dest="shard", action="store_true", default=None, help="force YYYY/ subfolders")
    shard.add_argument("--no-shard", dest="shard", action="store_false", help="force a flat folder")
    args = ap.parse_args(argv)
    try:
        summary = write_corpus(
            args.out_dir,
            args.n,
            seed=args.seed,
            broken=args.broken,
            big_files=args.big_files,
            shard=args.shard,
            start=args.start,
            end=args.end,
        )
    except (FileExistsError, ValueError) as exc:
        ap.error(str(exc))
    json.dump(summary, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")
    return 0

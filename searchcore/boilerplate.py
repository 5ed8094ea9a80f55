"""Boilerplate learned from the data, per outlet (category).

Outlets wrap every article in the same things: a feed footer (获取更多RSS：feedx.net),
a title suffix (– 法国国际广播电台 - RFI), the headline repeated as the body's
first link, a related-links block at the end. A hand-written list would be out of
date with the next outlet, so the indexer learns them: what recurs in a large share
of one outlet's posts is the outlet's, not the article's. Learned items are left out
of snippets, related-article matching and the displayed body; the stored
``body_html`` stays whole (the article page offers the hidden lines in a
``<details>``).

Everything here is pure: ``learn`` takes parsed articles and returns a ``Model``
(JSON-serializable, versioned, hashed); ``Model.apply`` takes one article and
returns its ``Cleaned`` form. The indexer (``indexer.pipeline``) decides when to
learn and where the model is kept.

A *block* is the text between two block-level boundaries of the sanitized HTML
(``<p>``, ``<div>``, ``<li>``, ``<br>``, headings ...): one line as a reader sees it.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .model import Article
from .sanitize import IMAGE_LINK_CLASS

VERSION = 1
SHARE = 0.1  # a line is boilerplate when at least this share of an outlet's posts has it (feedx footers: 17-22%) ...
MIN_POSTS = 5  # ... and at least this many posts
MIN_OUTLET_POSTS = 20  # an outlet with fewer sampled posts teaches nothing: 4 of 12 is chance
SAMPLE_PER_OUTLET = 2_000  # posts per outlet a model is learned from (bounded work)
TAIL_SHARE = 0.8  # a recurring line followed by links only, this often, starts a related-links block
MIN_LINE_CHARS = 2  # shorter lines ("|", "-") carry nothing to learn
MAX_LINE_CHARS = 300  # longer blocks are paragraphs of an article, not boilerplate

# Separators between a headline and an outlet's name; spaces around ASCII ones are
# required so that hyphenated words (COVID-19) are never split.
_TITLE_SEP = re.compile(r"\s+[-–—|]\s+|\s*[｜]\s*")
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr li "
    "main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)
_TOKEN = re.compile(r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>|<!--.*?-->""", re.DOTALL)


def norm(text: str) -> str:
    """The key a line is counted under: NFKC (full-width to half-width), spaces
    collapsed, case folded; so the same footer typed twice is one line."""
    return " ".join(unicodedata.normalize("NFKC", text).split()).casefold()


@dataclass
class Block:
    """One line of a body: its text, where its text and images sit in the HTML
    (to hide it without unbalancing tags), and whether all its text is link text."""

    text: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    links_only: bool = True

    @property
    def key(self) -> str:
        return norm(self.text)


def blocks(body_html: str) -> list[Block]:
    """The non-empty lines of sanitized HTML, in order (see the module docstring)."""
    out: list[Block] = []
    cur = Block("")
    in_link = 0
    in_image = False  # an image's "[图片]" label is not text (as in ``sanitize.html_to_text``)
    pos = 0

    def text_run(start: int, end: int) -> None:
        raw = body_html[start:end]
        if raw.strip():
            cur.spans.append((start, end))
            if in_image:
                return
            cur.text += html.unescape(raw)
            if not in_link:
                cur.links_only = False

    def flush() -> None:
        nonlocal cur
        if cur.text.strip():
            cur.text = " ".join(cur.text.split())
            out.append(cur)
        cur = Block("")

    for m in _TOKEN.finditer(body_html):
        text_run(pos, m.start())
        pos = m.end()
        name = (m.group(2) or "").lower()
        if name == "a":
            in_link = max(0, in_link + (-1 if m.group(1) else 1))
            in_image = not m.group(1) and f'class="{IMAGE_LINK_CLASS}"' in (m.group(3) or "")
        elif name == "img":
            cur.spans.append((m.start(), m.end()))  # an image in a hidden line is hidden with it
        elif name in _BLOCK_TAGS:
            flush()
    text_run(pos, len(body_html))
    flush()
    return out


def title_affixes(title: str) -> tuple[str, str]:
    """(prefix, suffix) of a title cut at its separators: the first and the last
    part, each "" when the title has no separator."""
    parts = _TITLE_SEP.split(title.strip())
    if len(parts) < 2:
        return "", ""
    return norm(parts[0]), norm(parts[-1])


@dataclass
class Outlet:
    """What was learned about one outlet, with the counts that justify it."""

    posts: int = 0  # posts sampled
    lines: dict[str, int] = field(default_factory=dict)  # normalized line -> posts having it
    tails: dict[str, int] = field(default_factory=dict)  # lines that start a related-links block
    prefixes: dict[str, int] = field(default_factory=dict)
    suffixes: dict[str, int] = field(default_factory=dict)
    headline: int = 0  # posts whose first line is their headline (0: not learned)

    def to_dict(self) -> dict[str, Any]:
        return {
            "posts": self.posts,
            "lines": self.lines,
            "tails": self.tails,
            "prefixes": self.prefixes,
            "suffixes": self.suffixes,
            "headline": self.headline,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outlet:
        return cls(
            posts=int(d.get("posts", 0)),
            lines={str(k): int(v) for k, v in (d.get("lines") or {}).items()},
            tails={str(k): int(v) for k, v in (d.get("tails") or {}).items()},
            prefixes={str(k): int(v) for k, v in (d.get("prefixes") or {}).items()},
            suffixes={str(k): int(v) for k, v in (d.get("suffixes") or {}).items()},
            headline=int(d.get("headline", 0)),
        )

    @property
    def empty(self) -> bool:
        return not (self.lines or self.tails or self.prefixes or self.suffixes or self.headline)


@dataclass
class Cleaned:
    """One article with its outlet's boilerplate left out.

    ``text`` feeds snippets and the body's token streams (so related matching and
    search skip it), without the headline when the body starts with it;
    ``title`` is the headline without the outlet's affixes (what related
    articles are matched on); ``hidden`` are the HTML spans the article page hides
    and ``hidden_lines`` their text, shown in the page's "原文附加内容".
    """

    title: str
    text: str
    hidden: list[tuple[int, int]] = field(default_factory=list)
    hidden_lines: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        """What the index stores (``fields.FIELDS`` ``boilerplate``)."""
        if not self.hidden and not self.hidden_lines:
            return json.dumps({"title": self.title}, ensure_ascii=False)
        return json.dumps(
            {"title": self.title, "hidden": self.hidden, "lines": self.hidden_lines}, ensure_ascii=False, separators=(",", ":")
        )


def outlet_of(article: Article) -> str:
    """The outlet an article is learned under: its first category ("" for none)."""
    return article.categories[0] if article.categories else ""


@dataclass
class Model:
    """Learned boilerplate of every outlet; see ``learn`` and ``apply``."""

    outlets: dict[str, Outlet] = field(default_factory=dict)
    share: float = SHARE
    min_posts: int = MIN_POSTS
    version: int = VERSION

    def to_json(self) -> str:
        data = {
            "version": self.version,
            "share": self.share,
            "min_posts": self.min_posts,
            "outlets": {k: v.to_dict() for k, v in sorted(self.outlets.items())},
        }
        return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Model:
        """A stored model; one of another version is refused (the caller relearns)."""
        d = json.loads(text)
        if d.get("version") != VERSION:
            raise ValueError(f"boilerplate model version {d.get('version')!r}, expected {VERSION}")
        outlets = {str(k): Outlet.from_dict(v) for k, v in (d.get("outlets") or {}).items()}
        return cls(outlets, float(d.get("share", SHARE)), int(d.get("min_posts", MIN_POSTS)))

    @property
    def hash(self) -> str:
        """Identifies what the model removes: an index built with another hash shows
        other text, so ``indexer status`` asks for a reindex."""
        return hashlib.blake2b(self.to_json().encode("utf-8"), digest_size=8).hexdigest()

    def clean_title(self, title: str, outlet: str) -> str:
        """The title without its outlet's learned prefix and suffix."""
        o = self.outlets.get(outlet)
        parts = _TITLE_SEP.split(title.strip())
        if o is None or len(parts) < 2:
            return title
        start, end = 0, len(parts)
        if norm(parts[-1]) in o.suffixes:
            end -= 1
            if end - start >= 2 and norm(parts[end - 1]) in o.suffixes:  # "– 法国国际广播电台 - RFI": two parts
                end -= 1
        if end - start >= 2 and norm(parts[0]) in o.prefixes:
            start += 1
        if start == 0 and end == len(parts):
            return title
        # cut the original text (keeping its own separators) between the kept parts
        seps = list(_TITLE_SEP.finditer(title.strip()))
        text = title.strip()
        begin = seps[start - 1].end() if start else 0
        finish = seps[end - 1].start() if end < len(parts) else len(text)
        return text[begin:finish].strip() or title

    def hidden_blocks(self, bs: list[Block], title: str, outlet: str) -> list[bool]:
        """Which of an article's lines are its outlet's boilerplate."""
        o = self.outlets.get(outlet)
        hide = [False] * len(bs)
        if o is None:
            return hide
        heads = {norm(title), norm(self.clean_title(title, outlet))}
        in_block = False  # inside a related-links block: its links are hidden too
        for i, b in enumerate(bs):
            key = b.key
            # A block ends at the first line that is neither a link nor learned: an
            # article that goes on after the marker keeps its text.
            in_block = key in o.tails or (in_block and (b.links_only or key in o.lines))
            if in_block or key in o.lines or (i == 0 and o.headline and key in heads):
                hide[i] = True
        return hide

    def apply(self, article: Article) -> Cleaned:
        """The article's clean title, text and hidden spans (see ``Cleaned``)."""
        outlet = outlet_of(article)
        title = self.clean_title(article.title, outlet)
        bs = blocks(article.body_html)
        hide = self.hidden_blocks(bs, article.title, outlet)
        kept = [b.text for b, h in zip(bs, hide, strict=True) if not h]
        # Snippets never repeat the headline, learned or not: the hit shows it above.
        # Some outlets repeat it twice (a link, then a heading) or run a date on
        # after it in the same line (BBC: "标题 2020年12月4日").
        heads = {norm(article.title), norm(title)}
        headline = False
        while kept and norm(kept[0]) in heads:
            kept, headline = kept[1:], True
        for head in (article.title, title):
            if kept and len(kept[0]) > len(head) and kept[0].startswith(head):
                kept[0], headline = kept[0][len(head) :].strip(), True
        hidden = [s for b, h in zip(bs, hide, strict=True) if h for s in b.spans]
        lines = [b.text for b, h in zip(bs, hide, strict=True) if h]
        # Nothing left out: the parser's text as it is (its line breaks, nothing lost).
        text = "\n".join(kept) if (lines or headline) else article.body_text
        return Cleaned(title=title, text=text, hidden=hidden, hidden_lines=lines)


@dataclass(frozen=True)
class Sample:
    """What learning keeps of one article: its outlet, title and line keys (not its
    HTML), so a sample of thousands of posts stays small."""

    outlet: str
    title: str
    keys: tuple[str, ...]  # normalized lines, in order
    before_links: frozenset[str]  # lines followed by nothing but link lines

    @classmethod
    def of(cls, article: Article) -> Sample:
        bs = blocks(article.body_html)
        before: set[str] = set()
        links_after = True  # every line after this one is a link line
        for b in reversed(bs):
            if links_after and b is not bs[-1]:
                before.add(b.key)
            links_after = links_after and b.links_only
        return cls(outlet_of(article), article.title, tuple(b.key for b in bs), frozenset(before))


def _learn_outlet(samples: list[Sample], share: float, min_posts: int) -> Outlet:
    """Count, for one outlet's sample, the posts having each line and affix; keep
    those over the bounds."""
    n = len(samples)
    o = Outlet(posts=n)
    if n < max(MIN_OUTLET_POSTS, min_posts):
        return o
    need = max(min_posts, share * n)
    line_posts: Counter[str] = Counter()
    tail_posts: Counter[str] = Counter()
    prefixes: Counter[str] = Counter()
    suffixes: Counter[str] = Counter()
    headline = 0
    for a in samples:
        lines = {k for k in a.keys if MIN_LINE_CHARS <= len(k) <= MAX_LINE_CHARS}
        line_posts.update(lines)
        tail_posts.update(lines & a.before_links)
        if a.keys and a.keys[0] == norm(a.title):
            headline += 1
        pre, suf = title_affixes(a.title)
        if pre:
            prefixes[pre] += 1
        if suf:
            suffixes[suf] += 1
    o.lines = {k: c for k, c in line_posts.most_common() if c >= need}
    o.tails = {k: tail_posts[k] for k in o.lines if tail_posts[k] >= TAIL_SHARE * o.lines[k]}
    for k in o.tails:
        del o.lines[k]
    o.prefixes = {k: c for k, c in prefixes.most_common() if c >= need}
    o.suffixes = {k: c for k, c in suffixes.most_common() if c >= need}
    # a suffix of two parts ("– 法国国际广播电台 - RFI"): the part before a learned one
    inner: Counter[str] = Counter()
    for a in samples:
        parts = _TITLE_SEP.split(a.title.strip())
        if len(parts) >= 3 and norm(parts[-1]) in o.suffixes:
            inner[norm(parts[-2])] += 1
    o.suffixes.update({k: c for k, c in inner.most_common() if c >= need and k not in o.suffixes})
    o.headline = headline if headline >= need else 0
    return o


def learn(articles: Iterable[Article | Sample], share: float = SHARE, min_posts: int = MIN_POSTS) -> Model:
    """Learn every outlet's boilerplate from parsed articles (at most
    ``SAMPLE_PER_OUTLET`` per outlet are read; each is kept as a small ``Sample``)."""
    by_outlet: dict[str, list[Sample]] = {}
    for a in articles:
        group = by_outlet.setdefault(a.outlet if isinstance(a, Sample) else outlet_of(a), [])
        if len(group) < SAMPLE_PER_OUTLET:
            group.append(a if isinstance(a, Sample) else Sample.of(a))
    outlets = {k: _learn_outlet(v, share, min_posts) for k, v in by_outlet.items()}
    return Model(outlets, share, min_posts)


EMPTY_MODEL = Model()  # nothing learned: only the headline a body starts with leaves the snippet text

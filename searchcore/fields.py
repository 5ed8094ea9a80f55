"""The one table of an article's fields, from which both engines derive everything.

Each engine reads ``FIELDS`` to build its schema (tantivy) or mapping
(Elasticsearch), to write a document, and to read a stored one back as a typed
``StoredDoc``; the search layer names fields only through this table and the facet
declarations (``searchcore.facets``). Adding a field is one row here (and, if
readers filter or count by it, one facet declaration): no engine file changes.

Kinds, and what each engine makes of them:

======== =============================================== ====================================
kind     tantivy                                         Elasticsearch
======== =============================================== ====================================
id       raw text, stored, indexed, fast                 keyword
text     bytes, stored, never indexed                    text, ``index: false``
keyword  raw text (one term per value), stored, fast     keyword (doc values for counting)
stream   whitespace-tokenized text, not stored           ``whitespace``-analysed text
date     date, stored, indexed, fast                     date
int      integer (indexed and fast unless stored-only)   integer
prior    float, fast, weight × value; their product      float doc values (not searched),
         as one multiplier (weights at write)            weighted at query time
======== =============================================== ====================================

What is not ``stored`` is not in Elasticsearch's stored ``_source`` either (it is
indexed from the request and left out): the ``_source`` holds what tantivy's document
store holds (docs/scaling-bytes.md).

A ``stream`` holds tokens our analysis made (``searchcore.analysis``), space-joined,
so neither engine re-segments Chinese and their positions agree; ``positions``
says whether phrase queries need them (the pairs streams) or frequencies suffice.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal

from .boilerplate import without_spans
from .highlight import WINDOW_CHARS
from .model import DEFAULT_OFFSET_MINUTES, SHANGHAI, IndexedArticle, site_of

Kind = Literal["id", "text", "keyword", "stream", "date", "int", "prior"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    value: Callable[[IndexedArticle], Any]  # what is written, from an analysed article
    stored: bool = False  # returned by ``get`` (and, if ``in_hits``, with every hit)
    in_hits: bool = True  # a stored field every hit carries (the HTML body is not: see StoredDoc)
    many: bool = False  # a list of values
    indexed: bool = True  # searchable, filterable or countable (False: stored only)
    positions: bool = False  # a stream that phrase queries read
    weight: str = ""  # a prior: the Settings attribute that weighs it


def freshness(dt: datetime) -> float:
    """A static, monotonic recency signal in [0, 1]: 0 in 2000, 1 in 2040.

    tantivy's ``weight_by_field`` multiplies a score by log2(2 + stored value) and
    cannot scale it at query time, so tantivy stores ``SEARCH_RECENCY_WEIGHT *
    freshness`` at index time (change the weight, then reindex); Elasticsearch
    applies the same curve at query time. Weight 0 means no recency boost.
    """
    years = (dt.timestamp() - 946684800) / (365.25 * 86400)
    return min(1.0, max(0.0, years / 40.0))


SUBSTANCE_CHARS = 300


def substance(text: str) -> float:
    """How much an article has to say, in [0, 1]: its own text (boilerplate left
    out) against SUBSTANCE_CHARS, a few sentences. A one-line notice that names a
    topic ("本报明日刊发评论员文章") scores about 0.1; any real article 1. Among
    articles matching alike, the notice's short title would otherwise win."""
    return min(1.0, len(text) / SUBSTANCE_CHARS)


def prior_multiplier(values: list[tuple[float, float]]) -> float:
    """The product of log2(2 + weight × value) over the priors: what a relevance
    score is multiplied by (tantivy stores it, Elasticsearch computes the same
    product of ln(2 + …) at query time: proportional, so both rank alike)."""
    out = 1.0
    for weight, value in values:
        out *= math.log2(2 + weight * value)
    return out


def _stored(name: str, kind: Kind = "text", in_hits: bool = True) -> Field:
    return Field(name, kind, lambda ia: getattr(ia.article, name) or "", stored=True, in_hits=in_hits, indexed=False)


def _stream(name: str, positions: bool = False) -> Field:
    return Field(name, "stream", lambda ia: getattr(ia, name), positions=positions)


FIELDS: tuple[Field, ...] = (
    Field("id", "id", lambda ia: ia.article.id, stored=True),
    _stored("title"),
    # A hit never carries the HTML body (only the article page shows it) and at
    # most WINDOW_CHARS of the text (all a snippet reads): a hit costs the same
    # whatever the size of its post. The text is stored only that far.
    _stored("body_html", in_hits=False),
    # The text snippets are made of: without the outlet's learned boilerplate and
    # the headline the body starts with (searchcore.boilerplate); body_html is whole.
    Field("body_text", "text", lambda ia: ia.search_text[:WINDOW_CHARS], stored=True, indexed=False),
    # What was left out, for the article page (hidden spans of body_html and their
    # lines) and related matching (the title without the outlet's affixes): JSON.
    Field("boilerplate", "text", lambda ia: ia.boilerplate, stored=True, in_hits=False, indexed=False),
    _stored("source_url"),
    _stored("path"),
    _stored("content_hash"),
    Field("categories", "keyword", lambda ia: list(ia.article.categories), stored=True, many=True),
    Field("tags", "keyword", lambda ia: list(ia.article.tags), stored=True, many=True),
    Field("site", "keyword", lambda ia: ia.article.site),  # the source link's host: StoredDoc.site
    Field("date", "date", lambda ia: ia.article.date, stored=True),
    # the Asia/Shanghai calendar day at three levels, for the date drill-down
    Field("year", "int", lambda ia: ia.day // 10000),
    Field("month", "int", lambda ia: ia.day // 100),
    Field("day", "int", lambda ia: ia.day),
    Field("offset", "int", lambda ia: ia.article.utc_offset_minutes, stored=True, indexed=False),
    # static priors, each multiplying a relevance score by log2(2 + weight × value)
    Field("fresh", "prior", lambda ia: freshness(ia.article.date), weight="recency_weight"),
    Field("substance", "prior", lambda ia: substance(ia.search_text), weight="substance_weight"),
    # words: positioned for the windows over them (a term's words near each other,
    # a spaced query's terms side by side): searchcore.query
    _stream("title_words", positions=True),
    _stream("body_words", positions=True),
    # single characters are term lookups: frequencies suffice
    _stream("title_chars"),
    _stream("body_chars"),
    # two characters are one pair, more a phrase of pairs: positions needed
    _stream("title_pairs", positions=True),
    _stream("body_pairs", positions=True),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}
STORED = tuple(f for f in FIELDS if f.stored)
HIT_FIELDS = tuple(f.name for f in STORED if f.in_hits)
STREAMS = tuple(f.name for f in FIELDS if f.kind == "stream")
PRIORS = tuple(f for f in FIELDS if f.kind == "prior")
DATE = next(f.name for f in FIELDS if f.kind == "date")  # the sort order of newest and oldest


def is_current_schema(positioned: Mapping[str, bool]) -> bool:
    """Whether an index with these fields (name: whether it records positions) was
    built from this table: an index built by an older version lacks a field (tantivy's
    field ids are positional, and a new field has no values in old documents) or
    positions a query now reads (a phrase over it would fail), and must be rebuilt."""
    return all(f.name in positioned and (positioned[f.name] or not f.positions) for f in FIELDS)


@dataclass(frozen=True)
class StoredDoc:
    """An article as an engine returns it: the stored fields of ``FIELDS``, typed.

    A hit's ``body_html`` is empty and its ``body_text`` at most WINDOW_CHARS long
    (see ``from_values``); ``get`` returns them whole.
    """

    id: str
    title: str
    date: datetime  # aware, UTC
    categories: list[str]
    tags: list[str]
    body_html: str
    body_text: str
    source_url: str
    path: str
    content_hash: str
    offset: int = DEFAULT_OFFSET_MINUTES
    boilerplate: str = ""  # searchcore.boilerplate.Cleaned.to_json(); "" in hits

    @functools.cached_property
    def _cleaned(self) -> dict[str, Any]:
        try:
            data = json.loads(self.boilerplate) if self.boilerplate else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    @property
    def clean_title(self) -> str:
        """The title without its outlet's learned prefix and suffix: what related
        articles are matched on (an outlet's name matches only its own articles)."""
        return str(self._cleaned.get("title") or self.title)

    @property
    def hidden_lines(self) -> list[str]:
        """The body's lines learned as its outlet's boilerplate (the page offers them
        folded, as 原文附加内容)."""
        return [str(x) for x in self._cleaned.get("lines") or []]

    @property
    def display_html(self) -> str:
        """The body as the article page shows it: without the boilerplate lines."""
        spans = [(int(a), int(b)) for a, b in self._cleaned.get("hidden") or []]
        return without_spans(self.body_html, spans) if spans else self.body_html

    @property
    def site(self) -> str:
        """The source link's host without ``www.``, as the site facet counts it."""
        return site_of(self.source_url)

    @property
    def local_date(self) -> datetime:
        """The date in the post's own offset, as the source wrote it (the article page
        adds it when it differs from Beijing time)."""
        return self.date.astimezone(timezone(timedelta(minutes=self.offset)))

    @property
    def shanghai_date(self) -> datetime:
        """The date in Asia/Shanghai: the one clock every page and the JSON API show,
        because the date facet and from/to count Beijing days; a time shown in the
        source's offset sat under another day than its facet bucket."""
        return self.date.astimezone(SHANGHAI)

    @property
    def local_differs(self) -> bool:
        """Whether the source wrote the date in another offset than Beijing time."""
        return self.offset != DEFAULT_OFFSET_MINUTES

    @property
    def offset_text(self) -> str:
        """The source's offset as ISO 8601 writes it: +02:00, -05:00."""
        sign = "-" if self.offset < 0 else "+"
        hours, minutes = divmod(abs(self.offset), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"

    @classmethod
    def from_values(cls, values: Mapping[str, Any], hit: bool = False) -> StoredDoc:
        """From an engine's stored values, already decoded to Python (missing ones
        default). A ``hit`` is bounded whatever the index holds: indexes built
        before the text was stored bounded hold it whole."""
        out: dict[str, Any] = {}
        for f in STORED:
            v = values.get(f.name)
            if f.many:
                out[f.name] = list(v or [])
            elif f.kind == "int":
                out[f.name] = DEFAULT_OFFSET_MINUTES if v is None else int(v)
            elif f.kind == "date":
                out[f.name] = v if v.tzinfo else v.replace(tzinfo=UTC)
            else:
                out[f.name] = v or ""
        if hit:
            out["body_html"] = ""
            out["body_text"] = out["body_text"][:WINDOW_CHARS]
        return cls(**out)


"""The one table of an article's fields, from which everything else is derived.

Each engine reads ``FIELDS`` to build its schema (tantivy) or mapping
(Elasticsearch), to write a document and to read a stored one back. The records
are built from it too (``searchcore.model``): ``Article``, the parsed post, has the
``parsed`` fields; ``StoredDoc``, what an engine returns, the ``stored`` ones; a hit
carries those ``in_hits``. What readers see of a field is its ``show``: whether a
hit's JSON and the article's JSON give it, how its value is written there, and
whether a hit's line on the results page shows it. The search layer names fields
only through this table and the facet declarations (``searchcore.facets``).

Adding a field is one row here, plus the line of ``searchcore.posts.parse_post``
that parses it if it is ``parsed``; if readers filter or count by it, one facet
declaration. No engine, view or template changes (docs/architecture.md shows one).

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
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .clock import DEFAULT_OFFSET_MINUTES, SHANGHAI
from .highlight import WINDOW_CHARS

Kind = Literal["id", "text", "keyword", "stream", "date", "int", "prior"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # a field's ``default`` when a record without its value is an error

# What a record holds for each kind (``Field.check``), and what a value of a field
# without a ``default`` is when it is missing (text and keywords: empty; the rest: an error).
_TYPES: dict[str, type] = {"id": str, "text": str, "keyword": str, "date": datetime, "int": int}
_EMPTY: dict[str, Any] = {"text": "", "keyword": ""}


def _as_is(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Show:
    """What readers see of a stored field, declared once with it.

    ``hits``: every hit's JSON gives it (``/api/search``), and with ``css`` the hit's
    line on the results page shows each value as ``<span class=css>``; ``page``: the
    article's JSON gives it (``/api/article``). ``json`` writes the value for the JSON,
    ``text`` a value for the page (on a hit's line, and on the article page's link
    when a facet counts the field). Values shown other than as text (the title as a
    link, the date as ``<time>``) are rendered by their templates.
    """

    hits: bool = True
    page: bool = True
    json: Callable[[Any], Any] = _as_is
    css: str = ""
    text: str = "{}"


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    # What is written, from an analysed article (a searchcore.model.IndexedArticle,
    # which is built from this table: hence Any). None: the parsed article's own
    # value (``Article.<name>``), which is what it is set to.
    value: Callable[[Any], Any] | None = None
    parsed: bool = False  # the parser produces it: a field of searchcore.model.Article
    stored: bool = False  # returned by ``get`` (and, if ``in_hits``, with every hit)
    in_hits: bool = True  # a stored field every hit carries (the HTML body is not: see StoredDoc)
    many: bool = False  # a list of values
    indexed: bool = True  # searchable, filterable or countable (False: stored only)
    positions: bool = False  # a stream that phrase queries read
    weight: str = ""  # a prior: the Settings attribute that weighs it
    default: Any = None  # a record's value when it has none; None: by kind (_EMPTY), else REQUIRED
    show: Show | None = None  # what readers see of it (stored fields only)

    def __post_init__(self) -> None:
        if self.value is None:
            if not self.parsed:
                raise ValueError(f"field {self.name}: neither parsed nor given a value")
            object.__setattr__(self, "value", operator.attrgetter(f"article.{self.name}"))
        if self.show and not (self.stored and (self.in_hits or not self.show.hits)):
            raise ValueError(f"field {self.name}: shown, so it must be stored (and in hits, if hits show it)")

    @property
    def empty(self) -> Any:
        """A record's value of this field when it is given none: the declared
        ``default``, an empty text or list, or REQUIRED (then it is an error)."""
        if self.default is not None:
            return self.default
        return [] if self.many else _EMPTY.get(self.kind, REQUIRED)

    @property
    def annotation(self) -> str:
        """The type a record holds, as an annotation."""
        one = _TYPES[self.kind].__name__
        return f"list[{one}]" if self.many else one

    @functools.cached_property
    def accepts(self) -> Callable[[Any], bool]:
        """Whether a value is of this field's type (a bool is no int, a naive date no
        date): one test built once per row, as every record made tests every value."""
        want = _TYPES[self.kind]
        if self.many:
            return lambda v: isinstance(v, list) and all(isinstance(x, want) for x in v)
        if want is int:
            return lambda v: isinstance(v, int) and not isinstance(v, bool)
        if want is datetime:
            return lambda v: isinstance(v, datetime) and v.tzinfo is not None
        return want.__instancecheck__  # isinstance(v, want), without a Python call

    def check(self, value: Any, record: str = "") -> None:
        """Raise a TypeError unless ``value`` is this field's type: a wrong value fails
        where it is made (a parser, an engine's reading), never read later as another."""
        if not self.accepts(value):
            aware = "an aware " if self.kind == "date" else ""
            raise TypeError(f"{record}.{self.name} must be {aware}{self.annotation}, not {repr(value)[:80]}")


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


def _parsed(name: str, **kw: Any) -> Field:
    """A text the parser produces, stored as it is and never searched as such (the
    streams are what is searched)."""
    return Field(name, "text", parsed=True, stored=True, indexed=False, **kw)


def _stream(name: str, positions: bool = False) -> Field:
    return Field(name, "stream", lambda ia: getattr(ia, name), positions=positions)


def _beijing(dt: datetime) -> str:
    return dt.astimezone(SHANGHAI).isoformat()  # the one clock (searchcore.clock)


def _or_none(url: str) -> str | None:
    return url or None


FIELDS: tuple[Field, ...] = (
    Field("id", "id", parsed=True, stored=True, show=Show()),
    _parsed("title", show=Show()),
    # A hit never carries the HTML body (only the article page shows it) and at
    # most WINDOW_CHARS of the text (all a snippet reads): a hit costs the same
    # whatever the size of its post. The text is stored only that far.
    _parsed("body_html", in_hits=False),
    # The text snippets are made of: without the outlet's learned boilerplate and
    # the headline the body starts with (searchcore.boilerplate); body_html is whole.
    _parsed("body_text", value=lambda ia: ia.search_text[:WINDOW_CHARS]),
    # What was left out, for the article page (hidden spans of body_html and their
    # lines) and related matching (the title without the outlet's affixes): JSON.
    Field("boilerplate", "text", lambda ia: ia.boilerplate, stored=True, in_hits=False, indexed=False),
    _parsed("source_url", show=Show(json=_or_none)),  # "" when the post has no usable link
    _parsed("path"),
    _parsed("content_hash"),
    Field("categories", "keyword", parsed=True, stored=True, many=True, show=Show(css="cat")),
    Field("tags", "keyword", parsed=True, stored=True, many=True, show=Show(css="tag", text="#{}")),
    Field("site", "keyword", lambda ia: ia.article.site),  # the source link's host: StoredDoc.site
    Field("date", "date", parsed=True, stored=True, show=Show(json=_beijing)),
    # the Asia/Shanghai calendar day at three levels, for the date drill-down
    Field("year", "int", lambda ia: ia.day // 10000),
    Field("month", "int", lambda ia: ia.day // 100),
    Field("day", "int", lambda ia: ia.day),
    # the post's own UTC offset in minutes (the article page shows its time too)
    Field("offset", "int", parsed=True, stored=True, indexed=False, default=DEFAULT_OFFSET_MINUTES),
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
PARSED = tuple(f for f in FIELDS if f.parsed)  # searchcore.model.Article
STORED = tuple(f for f in FIELDS if f.stored)  # searchcore.model.StoredDoc
HIT_FIELDS = tuple(f.name for f in STORED if f.in_hits)
SHOWN_IN_HITS = tuple(f for f in STORED if f.show and f.show.hits)  # a hit's JSON
SHOWN_ON_PAGE = tuple(f for f in STORED if f.show and f.show.page)  # an article's JSON
STREAMS = tuple(f.name for f in FIELDS if f.kind == "stream")
PRIORS = tuple(f for f in FIELDS if f.kind == "prior")
DATE = next(f.name for f in FIELDS if f.kind == "date")  # the sort order of newest and oldest
# A hit is read without the stored fields it does not carry: they need a value of their own.
if any(f.empty is REQUIRED for f in STORED if not f.in_hits):
    raise ValueError("a stored field left out of hits needs a default (a hit is read without it)")


def is_current_schema(positioned: Mapping[str, bool]) -> bool:
    """Whether an index with these fields (name: whether it records positions) was
    built from this table: an index built by an older version lacks a field (tantivy's
    field ids are positional, and a new field has no values in old documents) or
    positions a query now reads (a phrase over it would fail), and must be rebuilt."""
    return all(f.name in positioned and (positioned[f.name] or not f.positions) for f in FIELDS)

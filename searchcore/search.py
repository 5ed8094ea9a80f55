"""Search requests and results, independent of the web and of any engine.

Facets are declared once (``searchcore.facets``), fields once
(``searchcore.fields``), the matching policy once (``searchcore.query``): the
request, the engine query and the result are derived from them here, and an
engine only translates the query it is handed.

Results are data: facet values, date levels and days, which word or filter a way
out of zero results drops. The words a page shows for them (分类, 2022年, 去掉“X”)
are the web app's (``searchapp.labels``). Two kinds of text stay here: a
RequestError's message (``searchcore.params``), because the search page, its JSON
twin and the operators' CLI (``indexer explain``, which may not import the web
app) all show it as it is;
and highlighted, escaped titles and snippets (``highlight``), because which
characters matched is the analysis' answer, and escaping where the marks are
inserted is what keeps a post's text from ever being read as HTML.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from .analysis import Term, normalize, parse_query, query_words
from .config import Settings
from .engines.base import Count, Engine, EngineQuery
from .facets import FACET_BY_NAME, FACETS, TERMS_FACETS, Chip, DateStep, Days, FacetResult, FacetValue
from .fields import PRIORS
from .highlight import build_matcher, mark
from .highlight import snippet as make_snippet
from .model import StoredDoc
from .params import RequestError, attempt, clean, first, getlist, parse_positive_int
from .query import Bool, substring, text_query

if TYPE_CHECKING:
    from markupsafe import Markup

__all__ = [
    "FACETS",
    "Chip",
    "DateStep",
    "Days",
    "FacetResult",
    "FacetValue",
    "Hit",
    "Relaxation",
    "RequestError",
    "SearchRequest",
    "SearchResult",
    "Searcher",
    "TERMS_FACETS",
    "parse_positive_int",
]

MAX_QUERY_CHARS = 256
SORTS = ("relevance", "newest", "oldest")


@dataclass(frozen=True)
class SearchRequest:
    """What a reader asked for; parsed once from the URL, which is the whole state.

    ``selections`` holds each facet's selection (its own type: a terms facet's
    values, the date facet's ``Days``) by facet name, in FACETS order, facets
    without one left out: one spelling per state, so equal states are equal
    requests (the zero-result ways out count each once)."""

    q: str = ""
    selections: tuple[tuple[str, Any], ...] = ()
    sort: str = ""  # "" = the default for the query (relevance, or newest when empty)
    page: int = 1
    more: tuple[str, ...] = ()  # facets shown in full

    @classmethod
    def from_args(cls, args: Mapping[str, Any], max_page: int = 50) -> SearchRequest:
        """The request, or the first RequestError (the JSON API and the CLI refuse a
        bad parameter outright)."""
        return cls._read(args, max_page, None)

    @classmethod
    def parse(cls, args: Mapping[str, Any], max_page: int = 50) -> tuple[SearchRequest, list[RequestError]]:
        """The request read parameter by parameter, and what was wrong: a bad one
        falls back to its default (a query cut to its limit, page 1, the default
        sort, a facet without its bad values), so the search page still answers with
        the reader's query, filters and results and shows the error beside them."""
        errors: list[RequestError] = []
        return cls._read(args, max_page, errors), errors

    @classmethod
    def _read(cls, args: Mapping[str, Any], max_page: int, errors: list[RequestError] | None) -> SearchRequest:
        raw_q = " ".join(getlist(args, "q")[:1])
        q = attempt(
            lambda: clean(raw_q, "q", MAX_QUERY_CHARS), lambda: raw_q.replace("\x00", "").strip()[:MAX_QUERY_CHARS], errors
        )
        selections = tuple((f.name, selection) for f in FACETS if (selection := f.parse(args, errors)))
        sort = attempt(lambda: _sort(first(args, "sort")), lambda: "", errors)
        too_deep = f"最多只能翻到第 {max_page} 页，请缩小搜索范围"
        raw_page = first(args, "page", "1") or "1"
        page = attempt(lambda: parse_positive_int(raw_page, "page", "页码", max_page, too_deep), lambda: 1, errors)
        more = tuple(m for m in getlist(args, "more")[:4] if m in {f.name for f in TERMS_FACETS})
        return cls(q=q, selections=selections, sort=sort, page=page, more=more)

    @staticmethod
    def reordered(args: Mapping[str, Any]) -> bool:
        """Whether a facet's parameters are written other than canonically (a date
        range backwards): the page redirects to the canonical URL."""
        return any(f.reordered(args) for f in FACETS)

    # -- derived --------------------------------------------------------------
    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.terms else "newest")

    @cached_property
    def terms(self) -> tuple[Term, ...]:
        """Parsed once per request: the sort, the engine query, the highlighter,
        the relaxations and the templates all ask for it."""
        return tuple(parse_query(self.q))

    def selection(self, name: str) -> Any:
        """The facet ``name``'s selection (its ``empty`` one when it has none)."""
        for n, selection in self.selections:
            if n == name:
                return selection
        return FACET_BY_NAME[name].empty

    @property
    def has_filters(self) -> bool:
        return bool(self.selections)

    # -- URL state ------------------------------------------------------------
    def _param_groups(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The URL state in its one canonical order, grouped by what owns each part
        (the query, each facet, the sort, the page, the facets shown in full)."""
        groups: list[tuple[str, list[tuple[str, str]]]] = [("q", [("q", self.q)] if self.q else [])]
        chosen = dict(self.selections)  # a page builds this for each of its forty links or more
        groups += [(f.name, f.params(chosen[f.name]) if f.name in chosen else []) for f in FACETS]
        groups.append(("sort", [("sort", self.sort)] if self.sort else []))
        groups.append(("page", [("page", str(self.page))] if self.page > 1 else []))
        groups.append(("more", [("more", m) for m in self.more]))
        return groups

    def to_params(self) -> list[tuple[str, str]]:
        """Query parameters in a stable order; defaults are left out."""
        return [p for _, params in self._param_groups() for p in params]

    def params_around(self, owner: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The state without ``owner``'s parameters (a facet's name, or ``q``) and
        the page, split where they stand: a form puts its own controls between the
        two halves, so the URL it submits is the canonical one a link would be (one
        spelling per state, for caches and history)."""
        before: list[tuple[str, str]] = []
        after: list[tuple[str, str]] = []
        side = before
        for name, params in self._param_groups():
            if name == owner:
                side = after
            elif name != "page":
                side += params
        return before, after

    def with_(self, **changes: Any) -> SearchRequest:
        """A new state; any change other than the page goes back to page 1."""
        if "page" not in changes:
            changes["page"] = 1
        return replace(self, **changes)

    def select(self, name: str, selection: Any) -> SearchRequest:
        """A new state with facet ``name``'s selection replaced (page 1)."""
        current = dict(self.selections)
        current[name] = selection
        return self.with_(selections=tuple((f.name, current[f.name]) for f in FACETS if current.get(f.name)))

    def without(self, name: str) -> SearchRequest:
        """Without the query (``q``) or one facet's selection."""
        return self.with_(q="") if name == "q" else self.select(name, FACET_BY_NAME[name].empty)

    @property
    def unfiltered(self) -> SearchRequest:
        """The same query without any facet's selection."""
        return self.with_(selections=())

    def params_except(self, *names: str) -> list[tuple[str, str]]:
        """The URL state without these parameters: a form's hidden fields carry the
        rest, so submitting it changes only what the form shows."""
        return [(k, v) for k, v in self.to_params() if k not in names]


def _sort(value: str) -> str:
    sort = clean(value, "sort", 20)
    if sort and sort not in SORTS:
        raise RequestError(f"排序方式应为 {', '.join(SORTS)} 之一", "sort")
    return sort


# -- results -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Hit(StoredDoc):
    """One hit: its stored record (a StoredDoc of the fields every hit carries,
    ``fields.HIT_FIELDS``) and what the search made of it."""

    title_html: Markup  # the title, escaped, its matches marked
    snippet_html: Markup
    score: float | None = None
    explanation: Any = None

    @classmethod
    def of(cls, doc: StoredDoc, **made: Any) -> Hit:
        """``doc`` as a hit. Its values were checked when the engine's were read:
        they are taken as they are (a page makes twenty hits, related articles five)."""
        hit = object.__new__(cls)
        vars(hit).update({**vars(doc), "score": None, "explanation": None, **made})
        return hit


RelaxKind = Literal["drop_term", "drop_filter", "drop_query", "drop_filters", "only_term"]


@dataclass
class Relaxation:
    """A way out of zero results: drop one word or filter, and what it brings.

    ``kind`` says what is dropped: one word (``term``), one facet's selection
    (``facet``, and the ``chips`` it drops), the whole query, every filter; or
    ``only_term``: search ``term`` alone, without filters.
    """

    kind: RelaxKind
    request: SearchRequest
    total: int
    term: str = ""
    facet: str = ""
    chips: tuple[Chip, ...] = ()


@dataclass
class SearchResult:
    request: SearchRequest
    total: int
    hits: list[Hit]
    facets: dict[str, FacetResult]  # in FACETS order
    page_size: int
    took_ms: float = 0.0
    relaxations: list[Relaxation] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def chips(self) -> list[Chip]:
        """Every selected filter, facet by facet, each with the state without it."""
        return [chip for f in FACETS for chip in f.chips(self.request)]

    @classmethod
    def empty(cls, req: SearchRequest, page_size: int) -> SearchResult:
        """No index yet: every facet present and empty, so pages render alike."""
        facets = {f.name: f.read(req, []) for f in FACETS}
        return cls(request=req, total=0, hits=[], facets=facets, page_size=page_size)


class Searcher:
    """Runs SearchRequests on an engine and builds complete results."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        # (field, weight) of every prior, read once: every relevance search sends them
        self.priors = tuple((f.name, getattr(settings, f.weight)) for f in PRIORS)

    def engine_query(
        self, req: SearchRequest, limit: int | None = None, facets: bool = True, explain: bool = False
    ) -> EngineQuery:
        """The request as an engine query: its terms as a clause tree, each facet's
        filter, and (``facets``) each facet's counts under the others' filters
        (and its own, unless it is disjunctive)."""
        size = limit if limit is not None else self.settings.page_size
        own = {f.name: f.filter(req.selection(f.name)) for f in FACETS}
        filters = tuple(x for x in own.values() if x is not None)
        counts: tuple[Count, ...] = ()
        if facets:
            counts = tuple(
                f.count(req, [x for n, x in own.items() if x is not None and not (n == f.name and f.disjunctive)])
                for f in FACETS
            )
        return EngineQuery(
            match=text_query(req.terms, self.settings.title_boost),
            filters=filters,
            sort=req.effective_sort,
            offset=(req.page - 1) * size,
            limit=size,
            counts=counts,
            priors=self.priors,
            explain=explain,
        )

    def search(self, req: SearchRequest, explain: bool = False, relax: bool = True) -> SearchResult:
        res = self.engine.search(self.engine_query(req, explain=explain))
        matcher = build_matcher(req.terms)
        hits = [self._hit(h.doc, matcher, h.score, h.explanation) for h in res.hits]
        facets = {f.name: f.read(req, res.facets.get(f.name, []), failed=f.name in res.failed) for f in FACETS}
        result = SearchResult(
            request=req, total=res.total, hits=hits, facets=facets, page_size=self.settings.page_size, took_ms=res.took_ms
        )
        if relax and res.total == 0 and (req.terms or req.has_filters):
            result.relaxations = self.relaxations(req)
        return result

    @staticmethod
    def _hit(doc: StoredDoc, matcher, score: float | None, explanation: Any = None, snippet: bool = True) -> Hit:
        return Hit.of(
            doc,
            title_html=mark(doc.title, matcher),
            # no snippet asked for: an empty one, escaped Markup like any other
            snippet_html=make_snippet(doc.body_text, matcher) if snippet else mark("", None),
            score=score,
            explanation=explanation,
        )

    RELAX_BUDGET_S = 0.15  # seconds after which no further relaxation count starts
    RELAX_ALWAYS = 3  # counts that run whatever the time (the first options: drop one word or filter)

    def relaxations(self, req: SearchRequest) -> list[Relaxation]:
        """For zero results: how many hits dropping each word or filter would bring."""
        options: list[Relaxation] = []  # each with its total still to count

        def option(kind: RelaxKind, r: SearchRequest, **what: Any) -> None:
            options.append(Relaxation(kind, r, 0, **what))

        terms = req.terms
        if len(terms) > 1:
            for t in terms:
                rest = " ".join(("-" if o.negate else "") + (f'"{o.text}"' if o.exact else o.text) for o in terms if o is not t)
                option("drop_term", req.with_(q=rest), term=t.text)
        for f in FACETS:
            if req.selection(f.name):
                option("drop_filter", req.without(f.name), facet=f.name, chips=tuple(f.chips(req)))
        if terms and req.has_filters:
            option("drop_query", req.with_(q=""))
        bare = req.unfiltered
        if req.has_filters and terms:
            option("drop_filters", bare)
        if len(terms) > 1:  # when one step is not enough: each word alone, no filters
            for t in terms:
                if not t.negate:
                    option("only_term", bare.with_(q=f'"{t.text}"' if t.exact else t.text), term=t.text)
        # A page with no results must not cost much more than one with results:
        # at most a dozen counts, each distinct request once (dropping one of two
        # words is searching the other alone); after the first few, no new count
        # starts once the time budget is spent and a way out has been found. Until
        # one is, counting goes on (still at most a dozen): on a loaded machine the
        # first three counts (each finding nothing) outlasted the budget and the
        # reader was left with no link at all.
        deadline = time.monotonic() + self.RELAX_BUDGET_S
        out: list[Relaxation] = []
        counted: set[SearchRequest] = set()
        for opt in options[:12]:
            r = opt.request
            if r in counted:
                continue
            if out and len(counted) >= self.RELAX_ALWAYS and time.monotonic() > deadline:
                break
            counted.add(r)
            total = self.engine.search(self.engine_query(r, limit=0, facets=False)).total
            if total:
                out.append(replace(opt, total=total))
        out.sort(key=lambda x: -x.total)
        return out

    def article(self, doc_id: str) -> StoredDoc | None:
        return self.engine.get(doc_id)

    def related(self, doc: StoredDoc, limit: int = 5) -> list[Hit]:
        """Articles sharing words with this one's title, best first.

        Bounded whatever the post's size: the query is built from the title alone
        (at most 300 characters, at most 12 words), and hits are bounded by the engines.
        The title is taken without its outlet's learned affixes and the bodies it
        is matched against without their outlet's boilerplate
        (``searchcore.boilerplate``): "法国国际广播电台 - RFI" in every RFI title
        would otherwise make every RFI article related to every other.
        """
        words = [w for w in dict.fromkeys(query_words(normalize(doc.clean_title))) if len(w) > 1][:12]
        terms = tuple(t for w in words for t in parse_query(w)[:1])
        if not terms:
            return []
        match = text_query(terms, self.settings.title_boost, any_terms=True, body_words_only=True)
        res = self.engine.search(EngineQuery(match=match, limit=limit + 1))
        matcher = build_matcher(terms)
        # The article page lists related titles only: no snippets to compute.
        return [self._hit(h.doc, matcher, h.score, snippet=False) for h in res.hits if h.doc.id != doc.id][:limit]

    VOCAB_TTL = 60.0

    def _vocabulary(self) -> list[str]:
        """The most frequent categories and tags, refreshed at most once a minute."""
        now = time.monotonic()
        cached = getattr(self, "_vocab", None)
        if cached and now - cached[0] < self.VOCAB_TTL:
            return cached[1]
        suggested = [f for f in TERMS_FACETS if f.suggest]
        counts = tuple(Count(f.name, f.field, size=200) for f in suggested)
        res = self.engine.search(EngineQuery(counts=counts, limit=1))
        values = sorted(((c, str(v)) for f in suggested for v, c in res.facets.get(f.name, [])), reverse=True)
        vocab = list(dict.fromkeys(v for _, v in values))
        self._vocab = (now, vocab)
        return vocab

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Suggestions while typing, each containing what was typed (every word of
        it, compared normalized, so 臺灣 and 台湾 are one text): first the frequent
        values of the facets that feed suggestions (``TermsFacet.suggest``), then
        titles. A search matches words anywhere in an article, so its best hits often
        lack the typed text in their titles: titles are looked up as substrings of
        the title alone and checked, and nothing that lacks the text is offered.
        Bounded: one title search, one facet pass a minute."""
        terms = parse_query(prefix.strip()[:40])
        wanted = [t.text for t in terms if not t.negate]
        unwanted = [t.text for t in terms if t.negate]
        if not wanted:
            return []

        def contains(text: str) -> bool:
            norm = normalize(text)
            return all(w in norm for w in wanted) and not any(u in norm for u in unwanted)

        out: list[str] = [v for v in self._vocabulary() if contains(v)][: limit // 2]
        match = Bool(must=tuple(substring("title", t) for t in terms if not t.negate))
        for h in self.engine.search(EngineQuery(match=match, limit=limit * 3)).hits:
            if h.doc.title not in out and contains(h.doc.title):
                out.append(h.doc.title)
        return out[:limit]

"""Search requests and results, independent of the web and of any engine.

Facets are declared once (``FACETS``); each knows its URL parameter, its engine
field and whether its counts ignore its own filter (disjunctive), and the
request, the engine query and the result are all derived from that table.

Results are data: facet values, date levels and days, which word or filter a way
out of zero results drops. The words a page shows for them (分类, 2022年, 去掉“X”)
are the web app's (``searchapp.labels``). Two kinds of text stay here: a
RequestError's message, because the search page, its JSON twin and the operators'
CLI (``indexer explain``, which may not import the web app) all show it as it is;
and highlighted, escaped titles and snippets (``highlight``), because which
characters matched is the analysis' answer, and escaping where the marks are
inserted is what keeps a post's text from ever being read as HTML.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from .analysis import Term, normalize, parse_query, query_words
from .config import Settings
from .engines.base import Engine, EngineQuery, FacetSpec
from .highlight import build_matcher, mark
from .highlight import snippet as make_snippet
from .model import DEFAULT_OFFSET_MINUTES, SHANGHAI

if TYPE_CHECKING:
    from markupsafe import Markup

MAX_QUERY_CHARS = 256
MAX_VALUES_PER_FACET = 20
SORTS = ("relevance", "newest", "oldest")


class RequestError(ValueError):
    """A reader's request we cannot answer; the message is shown to them as it is
    (page, JSON API and CLI alike), and ``param`` names the parameter at fault."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class TermsFacet:
    name: str  # URL parameter and facet key
    field: str  # engine field
    size: int = 10
    more_size: int = 100


FACETS: tuple[TermsFacet, ...] = (
    TermsFacet("category", "category", size=10),
    TermsFacet("tag", "tag", size=12),
)
FACET_BY_NAME = {f.name: f for f in FACETS}


def _getlist(args: Mapping[str, Any], key: str) -> list[str]:
    if hasattr(args, "getlist"):
        return list(args.getlist(key))
    v = args.get(key)
    if v is None:
        return []
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _clean(value: str, name: str, limit: int) -> str:
    if "\x00" in value:
        raise RequestError(f"参数 {name} 含有非法字符", name)
    value = value.strip()
    if len(value) > limit:
        raise RequestError(f"参数 {name} 过长（最多 {limit} 个字符）", name)
    return value


# ASCII digits only. ``\d`` and ``str.isdigit()`` also accept other scripts' digits
# (fullwidth １, Arabic-Indic ٣) and superscripts (², which isdigit() accepts and
# int() refuses: that was a 500); our links never contain them, and one spelling
# per number keeps URLs (and caches) canonical.
_DIGITS = re.compile(r"[0-9]+")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# How a RequestError's message names a parameter (see the module's docstring).
_PARAM_WORDS = {"category": "分类", "tag": "标签", "from": "开始日期", "to": "结束日期"}


def parse_positive_int(value: str, name: str, label: str, maximum: int, too_big: str | None = None) -> int:
    """A whole number 1..maximum written in ASCII digits, or a RequestError in words.

    Shared by every numeric URL parameter (``page`` here, an article's ``part``),
    so none of them can reach ``int()`` with something it refuses or that is huge.
    """
    value = _clean(value, name, 40)
    if not _DIGITS.fullmatch(value):
        shown = "".join(c for c in value[:20] if c.isprintable())
        raise RequestError(f"{label}应为正整数，请用半角数字 0–9 书写（收到：{shown}）", name)
    digits = value.lstrip("0")
    if not digits:
        raise RequestError(f"{label}应为正整数，从 1 开始", name)
    if len(digits) > 9 or int(digits) > maximum:
        raise RequestError(too_big or f"{label}最大为 {maximum}", name)
    return int(digits)


def _parse_day(value: str, name: str) -> date | None:
    label = _PARAM_WORDS.get(name, f"日期 {name}")
    value = _clean(value, name, 40)
    if not value:
        return None
    if not _DAY.fullmatch(value):
        raise RequestError(f"{label}应为 YYYY-MM-DD 格式，用半角数字，例如 2024-03-15", name)
    try:
        d = date.fromisoformat(value)
    except ValueError:
        raise RequestError(f"{label}不存在：{value}", name) from None
    if not 1900 <= d.year <= 2100:
        raise RequestError(f"{label}超出范围（1900 年至 2100 年）", name)
    return d


@dataclass(frozen=True)
class SearchRequest:
    """What a reader asked for; parsed once from the URL, which is the whole state."""

    q: str = ""
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    sort: str = ""  # "" = the default for the query (relevance, or newest when empty)
    page: int = 1
    more: tuple[str, ...] = ()  # facets shown in full

    @classmethod
    def from_args(cls, args: Mapping[str, Any], max_page: int = 50) -> SearchRequest:
        q = _clean(" ".join(_getlist(args, "q")[:1]), "q", MAX_QUERY_CHARS)
        filters = []
        for f in FACETS:
            values = []
            for v in _getlist(args, f.name):
                v = _clean(v, f.name, 100)
                if v and v not in values:
                    values.append(v)
            if len(values) > MAX_VALUES_PER_FACET:
                raise RequestError(f"{_PARAM_WORDS[f.name]}最多选择 {MAX_VALUES_PER_FACET} 项", f.name)
            if values:
                filters.append((f.name, tuple(values)))
        date_from = _parse_day((_getlist(args, "from") or [""])[0], "from")
        date_to = _parse_day((_getlist(args, "to") or [""])[0], "to")
        if date_from and date_to and date_from > date_to:
            raise RequestError("开始日期晚于结束日期", "from")
        sort = _clean((_getlist(args, "sort") or [""])[0], "sort", 20)
        if sort and sort not in SORTS:
            raise RequestError(f"排序方式应为 {', '.join(SORTS)} 之一", "sort")
        raw_page = (_getlist(args, "page") or ["1"])[0] or "1"
        page = parse_positive_int(raw_page, "page", "页码", max_page, f"最多只能翻到第 {max_page} 页，请缩小搜索范围")
        more = tuple(m for m in _getlist(args, "more")[:4] if m in FACET_BY_NAME)
        return cls(q=q, filters=tuple(filters), date_from=date_from, date_to=date_to, sort=sort, page=page, more=more)

    # -- derived --------------------------------------------------------------
    @property
    def effective_sort(self) -> str:
        return self.sort or ("relevance" if self.terms else "newest")

    @cached_property
    def terms(self) -> tuple[Term, ...]:
        """Parsed once per request: the sort, the engine query, the highlighter,
        the relaxations and the templates all ask for it."""
        return tuple(parse_query(self.q))

    def selected(self, name: str) -> tuple[str, ...]:
        return dict(self.filters).get(name, ())

    @property
    def has_filters(self) -> bool:
        return bool(self.filters or self.date_from or self.date_to)

    # -- URL state ------------------------------------------------------------
    def to_params(self) -> list[tuple[str, str]]:
        """Query parameters in a stable order; defaults are left out."""
        params: list[tuple[str, str]] = []
        if self.q:
            params.append(("q", self.q))
        for name, values in self.filters:
            params.extend((name, v) for v in values)
        if self.date_from:
            params.append(("from", self.date_from.isoformat()))
        if self.date_to:
            params.append(("to", self.date_to.isoformat()))
        if self.sort:
            params.append(("sort", self.sort))
        if self.page > 1:
            params.append(("page", str(self.page)))
        params.extend(("more", m) for m in self.more)
        return params

    def with_(self, **changes: Any) -> SearchRequest:
        """A new state; any change other than the page goes back to page 1."""
        if "page" not in changes:
            changes["page"] = 1
        return replace(self, **changes)

    def toggle(self, name: str, value: str) -> SearchRequest:
        current = dict(self.filters)
        values = list(current.get(name, ()))
        if value in values:
            values.remove(value)
        else:
            values.append(value)
        current[name] = tuple(values)
        filters = tuple((f.name, current[f.name]) for f in FACETS if current.get(f.name))
        return self.with_(filters=filters)

    def without(self, name: str) -> SearchRequest:
        if name == "q":
            return self.with_(q="")
        if name == "date":
            return self.with_(date_from=None, date_to=None)
        return self.with_(filters=tuple((n, v) for n, v in self.filters if n != name))


# -- date drill-down -------------------------------------------------------------


def date_level(req: SearchRequest) -> str:
    """Year, then month, then day: the finest level the selected range allows."""
    a, b = req.date_from, req.date_to
    if a and b and (a.year, a.month) == (b.year, b.month):
        return "day"
    if a and b and a.year == b.year:
        return "month"
    return "year"


def bucket_range(level: str, key: int) -> tuple[date, date]:
    """(first day, last day) of a date facet bucket key: 2022, 202203 or 20220315."""
    if level == "year":
        return date(key, 1, 1), date(key, 12, 31)
    if level == "month":
        y, m = divmod(key, 100)
        last = date(y + (m == 12), m % 12 + 1, 1) - timedelta(days=1)
        return date(y, m, 1), last
    y, md = divmod(key, 10000)
    m, d = divmod(md, 100)
    day = date(y, m, d)
    return day, day


def _day_start(d: date) -> datetime:
    return datetime.combine(d, dtime(0, 0), tzinfo=SHANGHAI)


# -- results -----------------------------------------------------------------------


@dataclass
class FacetValue:
    value: str  # a category or tag, or a date bucket key (2022, 202203, 20220315)
    count: int
    selected: bool
    request: SearchRequest  # the state after clicking this value


@dataclass
class Facet:
    name: str
    values: list[FacetValue]
    has_more: bool = False
    expanded: bool = False


@dataclass(frozen=True)
class DateStep:
    """One step of the breadcrumb back up the date drill-down: all dates
    (``day`` None), the year of ``day``, or its month."""

    level: Literal["all", "year", "month"]
    day: date | None
    request: SearchRequest


@dataclass
class Hit:
    id: str
    title: str
    title_html: Markup
    date: datetime  # aware, in the post's own offset
    categories: list[str]
    tags: list[str]
    snippet_html: Markup
    source_url: str
    score: float | None = None
    explanation: Any = None


RelaxKind = Literal["drop_term", "drop_filter", "drop_date", "drop_query", "drop_filters", "only_term"]


@dataclass
class Relaxation:
    """A way out of zero results: drop one word or filter, and what it brings.

    ``kind`` says what is dropped: one word (``term``), one facet's filter
    (``facet`` and its ``values``), the date range, the whole query, every filter;
    or ``only_term``: search ``term`` alone, without filters.
    """

    kind: RelaxKind
    request: SearchRequest
    total: int
    term: str = ""
    facet: str = ""
    values: tuple[str, ...] = ()


@dataclass
class SearchResult:
    request: SearchRequest
    total: int
    hits: list[Hit]
    facets: dict[str, Facet]
    date_level: str
    date_trail: list[DateStep]
    page_size: int
    took_ms: float = 0.0
    relaxations: list[Relaxation] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def local_time(dt: datetime, offset_minutes: int) -> datetime:
    from datetime import timezone

    return dt.astimezone(timezone(timedelta(minutes=offset_minutes)))


class Searcher:
    """Runs SearchRequests on an engine and builds complete results."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    def engine_query(
        self, req: SearchRequest, limit: int | None = None, facets: bool = True, explain: bool = False
    ) -> EngineQuery:
        size = limit if limit is not None else self.settings.page_size
        level = date_level(req)
        specs: list[FacetSpec] = []
        if facets:
            for f in FACETS:
                specs.append(FacetSpec(f.name, f.field, size=(f.more_size if f.name in req.more else f.size) + 1, own=f.name))
            specs.append(FacetSpec("date", level, size=400, own=None, order="key"))
        return EngineQuery(
            terms=req.terms,
            filters={FACET_BY_NAME[n].field: v for n, v in req.filters},
            date_from=_day_start(req.date_from) if req.date_from else None,
            date_to=_day_start(req.date_to + timedelta(days=1)) if req.date_to else None,
            sort=req.effective_sort,
            offset=(req.page - 1) * size,
            limit=size,
            facets=tuple(specs),
            title_boost=self.settings.title_boost,
            recency_weight=self.settings.recency_weight,
            explain=explain,
        )

    def search(self, req: SearchRequest, explain: bool = False, relax: bool = True) -> SearchResult:
        eq = self.engine_query(req, explain=explain)
        res = self.engine.search(eq)
        matcher = build_matcher(req.terms)
        hits = [self._hit(h.doc, matcher, h.score, h.explanation) for h in res.hits]
        facets: dict[str, Facet] = {}
        for f in FACETS:
            selected = req.selected(f.name)
            limit = f.more_size if f.name in req.more else f.size
            buckets = res.facets.get(f.name, [])
            has_more = len(buckets) > limit
            everything = dict(buckets)
            counts = dict(buckets[:limit])
            for v in selected:  # a selected value stays visible, even at zero
                counts.setdefault(v, everything.get(v, 0))
            values = [FacetValue(str(v), c, v in selected, req.toggle(f.name, str(v))) for v, c in counts.items()]
            facets[f.name] = Facet(f.name, values, has_more=has_more, expanded=f.name in req.more)
        level = date_level(req)
        date_values = []
        for key, count in res.facets.get("date", []):
            first, last = bucket_range(level, int(key))
            date_values.append(FacetValue(str(key), count, False, req.with_(date_from=first, date_to=last)))
        facets["date"] = Facet("date", date_values)
        result = SearchResult(
            request=req,
            total=res.total,
            hits=hits,
            facets=facets,
            date_level=level,
            date_trail=self._date_trail(req),
            page_size=self.settings.page_size,
            took_ms=res.took_ms,
        )
        if relax and res.total == 0 and (req.terms or req.has_filters):
            result.relaxations = self.relaxations(req)
        return result

    def _hit(self, doc: dict[str, Any], matcher, score: float | None, explanation: Any = None, snippet: bool = True) -> Hit:
        return Hit(
            id=doc["id"],
            title=doc["title"],
            title_html=mark(doc["title"], matcher),
            date=local_time(doc["date"], doc.get("offset", DEFAULT_OFFSET_MINUTES)),
            categories=doc["categories"],
            tags=doc["tags"],
            # no snippet asked for: an empty one, escaped Markup like any other
            snippet_html=make_snippet(doc["body_text"], matcher) if snippet else mark("", None),
            source_url=doc.get("source_url") or "",
            score=score,
            explanation=explanation,
        )

    @staticmethod
    def _date_trail(req: SearchRequest) -> list[DateStep]:
        """Breadcrumb back up the drill-down: all dates, the year, the month."""
        trail = [DateStep("all", None, req.with_(date_from=None, date_to=None))]
        level = date_level(req)
        a = req.date_from
        if a and level in ("month", "day"):
            first, last = bucket_range("year", a.year)
            trail.append(DateStep("year", first, req.with_(date_from=first, date_to=last)))
        if a and level == "day":
            first, last = bucket_range("month", a.year * 100 + a.month)
            trail.append(DateStep("month", first, req.with_(date_from=first, date_to=last)))
        return trail

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
        for name, values in req.filters:
            option("drop_filter", req.without(name), facet=name, values=values)
        if req.date_from or req.date_to:
            option("drop_date", req.without("date"))
        if terms and req.has_filters:
            option("drop_query", req.with_(q=""))
        bare = req.with_(filters=(), date_from=None, date_to=None)
        if req.has_filters and terms:
            option("drop_filters", bare)
        if len(terms) > 1:  # when one step is not enough: each word alone, no filters
            for t in terms:
                if not t.negate:
                    option("only_term", bare.with_(q=f'"{t.text}"' if t.exact else t.text), term=t.text)
        # A page with no results must not cost much more than one with results:
        # at most a dozen counts, each distinct request once (dropping one of two
        # words is searching the other alone); after the first few, no new count
        # starts once the time budget is spent.
        deadline = time.monotonic() + self.RELAX_BUDGET_S
        out: list[Relaxation] = []
        counted: set[SearchRequest] = set()
        for opt in options[:12]:
            r = opt.request
            if r in counted:
                continue
            if len(counted) >= self.RELAX_ALWAYS and time.monotonic() > deadline:
                break
            counted.add(r)
            total = self.engine.search(self.engine_query(r, limit=0, facets=False)).total
            if total:
                out.append(replace(opt, total=total))
        out.sort(key=lambda x: -x.total)
        return out

    def article(self, doc_id: str) -> dict[str, Any] | None:
        doc = self.engine.get(doc_id)
        if doc is not None:
            doc["local_date"] = local_time(doc["date"], doc.get("offset", DEFAULT_OFFSET_MINUTES))
        return doc

    def related(self, doc: dict[str, Any], limit: int = 5) -> list[Hit]:
        """Articles sharing words with this one's title, best first.

        Bounded whatever the post's size: the query is built from the title alone
        (at most 300 characters, at most 12 words), and hits are bounded by the engines.
        """
        words = [w for w in dict.fromkeys(query_words(normalize(doc["title"]))) if len(w) > 1][:12]
        terms = tuple(t for w in words for t in parse_query(w)[:1])
        if not terms:
            return []
        eq = EngineQuery(
            terms=terms, any_terms=True, body_words_only=True, limit=limit + 1, title_boost=self.settings.title_boost
        )
        res = self.engine.search(eq)
        matcher = build_matcher(terms)
        # The article page lists related titles only: no snippets to compute.
        return [self._hit(h.doc, matcher, h.score, snippet=False) for h in res.hits if h.doc["id"] != doc["id"]][:limit]

    VOCAB_TTL = 60.0

    def _vocabulary(self) -> list[str]:
        """The most frequent categories and tags, refreshed at most once a minute."""
        now = time.monotonic()
        cached = getattr(self, "_vocab", None)
        if cached and now - cached[0] < self.VOCAB_TTL:
            return cached[1]
        facets = tuple(FacetSpec(f.name, f.field, size=200) for f in FACETS)
        res = self.engine.search(EngineQuery(facets=facets, limit=1))
        values = sorted(((c, str(v)) for f in FACETS for v, c in res.facets.get(f.name, [])), reverse=True)
        vocab = list(dict.fromkeys(v for _, v in values))
        self._vocab = (now, vocab)
        return vocab

    def suggest(self, prefix: str, limit: int = 8) -> list[str]:
        """Suggestions while typing: matching tags and categories (frequent terms),
        then titles of the best matches. Bounded: one search, one facet pass."""
        prefix = prefix.strip()[:40]
        if not prefix or not parse_query(prefix):
            return []
        norm = normalize(prefix)
        out: list[str] = [v for v in self._vocabulary() if norm in normalize(v)][: limit // 2]
        hits = self.engine.search(
            EngineQuery(terms=tuple(parse_query(prefix)), limit=limit, title_boost=self.settings.title_boost)
        )
        for h in hits.hits:
            if h.doc["title"] not in out:
                out.append(h.doc["title"])
        return out[:limit]

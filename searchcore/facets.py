"""Facets, declared once: each owns its selection (read from the URL, checked,
written back to it), its filter, its count request, the reading of its buckets,
and the chips and the way out of zero results that drop it.

In the spirit of elasticsearch-dsl's ``FacetedSearch`` and Datasette's facets: the
search request, the engine query, the result, the page, the JSON API and the
selected-filter chips all iterate ``FACETS``; no facet is named anywhere else.
Adding a facet is one declaration below (its field must be in
``searchcore.fields``); its words on the page come from ``label``.

A request holds one selection per facet, of the facet's own type: a terms facet's
is a tuple of values, the date facet's a ``Days`` range. The request is only the
holder (``Request``: a protocol, so this module needs nothing from
``searchcore.search``, which needs the facets): which parameters make a
selection, what it filters, which values and chips a click leads to, the facet
says.

Two kinds. A **terms** facet (category, tag, site) selects any of several values
and counts disjunctively: its counts ignore its own filter, so a reader sees how
many articles each other value would add. The **date** facet drills down (years,
then months, then days of the selected range) and counts within its own range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, ClassVar, Literal, Protocol

from .clock import day_start
from .engines.base import Count
from .params import RequestError, attempt, clean, first, getlist, parse_day
from .query import AnyValue, DateRange, Filter

MAX_VALUES_PER_FACET = 20


class Request(Protocol):
    """A search request as a facet sees it (``searchcore.search.SearchRequest``):
    each facet's selection, the same request with another, the facets shown in full."""

    @property
    def more(self) -> tuple[str, ...]: ...

    def selection(self, facet: str) -> Any: ...

    def select(self, facet: str, selection: Any) -> Request: ...


@dataclass(frozen=True)
class Days:
    """The date facet's selection: Asia/Shanghai days from ``first`` to ``last``, both
    included; either end may be open (None). Empty (false) when both are."""

    first: date | None = None
    last: date | None = None

    def __bool__(self) -> bool:
        return bool(self.first or self.last)


@dataclass
class FacetValue:
    value: str  # a category, tag or site, or a date bucket key (2022, 202203, 20220315)
    count: int
    selected: bool
    request: Request  # the state after clicking this value
    days: tuple[date, date] | None = None  # a date bucket's first and last day


@dataclass(frozen=True)
class DateStep:
    """One step of the breadcrumb back up the date drill-down: all dates
    (``day`` None), the year of ``day``, or its month."""

    level: Literal["all", "year", "month"]
    day: date | None
    request: Request


@dataclass
class FacetResult:
    name: str
    kind: str  # "terms" or "date": which template renders it
    values: list[FacetValue]
    has_more: bool = False
    expanded: bool = False
    failed: bool = False  # could not be counted this time; the page answers all the same
    level: str = ""  # date: the level of its buckets (year, month, day)
    trail: list[DateStep] = field(default_factory=list)  # date: the way back up
    selection: Any = None  # the facet's selection in the request (its form shows it)


@dataclass(frozen=True)
class Chip:
    """One selected filter, and the state without it. ``value`` is its text as the
    facet writes it; a date chip has its range in ``days`` too (the page words it)."""

    facet: str
    value: str
    request: Request
    days: tuple[date | None, date | None] | None = None


@dataclass(frozen=True)
class TermsFacet:
    name: str  # URL parameter, key in results and in /api/search's facets
    field: str  # a keyword field of searchcore.fields
    label: str  # the reader's word for it (errors name the parameter by it too)
    size: int = 10  # values shown
    more_size: int = 100  # values shown once the reader asks for more
    suggest: bool = True  # its frequent values are search suggestions
    kind: str = "terms"
    disjunctive: bool = True
    empty: ClassVar[tuple[str, ...]] = ()  # the selection of nothing

    def parse(self, args: Mapping[str, Any], errors: list[RequestError] | None = None) -> tuple[str, ...]:
        """The selected values; with ``errors``, a bad value is left out and reported
        and only the first MAX_VALUES_PER_FACET are kept."""
        values: list[str] = []
        for raw in getlist(args, self.name):
            v = attempt(lambda raw=raw: clean(raw, self.name, 100), lambda: "", errors)
            if v and v not in values:
                values.append(v)
        if len(values) > MAX_VALUES_PER_FACET:
            too_many = RequestError(f"{self.label}最多选择 {MAX_VALUES_PER_FACET} 项", self.name)
            if errors is None:
                raise too_many
            errors.append(too_many)
            values = values[:MAX_VALUES_PER_FACET]
        return tuple(values)

    def reordered(self, args: Mapping[str, Any]) -> bool:
        """Whether the URL states this selection other than its canonical form (never)."""
        return False

    def params(self, selection: tuple[str, ...]) -> list[tuple[str, str]]:
        return [(self.name, v) for v in selection]

    def toggle(self, req: Request, value: str) -> Request:
        """The request with ``value`` selected, or no longer selected if it was."""
        values = req.selection(self.name)
        return req.select(self.name, tuple(v for v in values if v != value) if value in values else (*values, value))

    def filter(self, selection: tuple[str, ...]) -> Filter | None:
        return AnyValue(self.field, selection) if selection else None

    def count(self, req: Request, filters: Sequence[Filter]) -> Count:
        shown = self.more_size if self.name in req.more else self.size
        return Count(self.name, self.field, shown + 1, tuple(filters))  # one more: is there more?

    def read(self, req: Request, buckets: list[tuple[Any, int]], failed: bool = False) -> FacetResult:
        selected = req.selection(self.name)
        expanded = self.name in req.more
        limit = self.more_size if expanded else self.size
        counts = dict(buckets[:limit])
        everything = dict(buckets)
        for v in selected:  # a selected value stays visible, even at zero
            counts.setdefault(v, everything.get(v, 0))
        values = [FacetValue(str(v), c, v in selected, self.toggle(req, str(v))) for v, c in counts.items()]
        return FacetResult(self.name, self.kind, values, len(buckets) > limit, expanded, failed, selection=selected)

    def chips(self, req: Request) -> list[Chip]:
        return [Chip(self.name, v, self.toggle(req, v)) for v in req.selection(self.name)]


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


@dataclass(frozen=True)
class DateFacet:
    """The date drill-down over the ``year``, ``month`` and ``day`` fields (Asia/Shanghai
    days), selected with ``from`` and ``to`` (inclusive days) on ``field``."""

    name: str = "date"
    field: str = "date"
    label: str = "日期"
    from_label: str = "开始日期"
    to_label: str = "结束日期"
    kind: str = "date"
    disjunctive: bool = False  # counts within its own range: that is the drill-down
    max_buckets: int = 400
    empty: ClassVar[Days] = Days()  # the selection of nothing: all dates (a Days is immutable)

    def parse(self, args: Mapping[str, Any], errors: list[RequestError] | None = None) -> Days:
        """The range, inclusive days. A range written backwards (from after to) is
        the same range: readers pick two days in either order, and an error there
        left them with nothing. With ``errors``, a bad bound is left open and reported."""
        lo, hi = self._bounds(args, errors)
        if lo and hi and lo > hi:
            lo, hi = hi, lo
        return Days(lo, hi)

    def _bounds(self, args: Mapping[str, Any], errors: list[RequestError] | None) -> tuple[date | None, date | None]:
        lo = attempt(lambda: parse_day(first(args, "from"), "from", self.from_label), lambda: None, errors)
        hi = attempt(lambda: parse_day(first(args, "to"), "to", self.to_label), lambda: None, errors)
        return lo, hi

    def reordered(self, args: Mapping[str, Any]) -> bool:
        """Whether the URL gives the range backwards: the page then redirects to the
        canonical URL (from before to), so links, history and caches see one spelling."""
        lo, hi = self._bounds(args, [])
        return bool(lo and hi and lo > hi)

    def params(self, selection: Days) -> list[tuple[str, str]]:
        out = []
        if selection.first:
            out.append(("from", selection.first.isoformat()))
        if selection.last:
            out.append(("to", selection.last.isoformat()))
        return out

    def filter(self, selection: Days) -> Filter | None:
        if not selection:
            return None
        lo = day_start(selection.first) if selection.first else None
        hi = day_start(selection.last + timedelta(days=1)) if selection.last else None
        return DateRange(self.field, lo, hi)

    @staticmethod
    def level(selection: Days) -> str:
        """Year, then month, then day: the finest level the selected range allows."""
        a, b = selection.first, selection.last
        if a and b and (a.year, a.month) == (b.year, b.month):
            return "day"
        if a and b and a.year == b.year:
            return "month"
        return "year"

    def count(self, req: Request, filters: Sequence[Filter]) -> Count:
        return Count(self.name, self.level(req.selection(self.name)), self.max_buckets, tuple(filters), by_key=True)

    def read(self, req: Request, buckets: list[tuple[Any, int]], failed: bool = False) -> FacetResult:
        selection = req.selection(self.name)
        level = self.level(selection)
        values = []
        for key, count in buckets:
            first_day, last_day = bucket_range(level, int(key))
            drill = req.select(self.name, Days(first_day, last_day))
            values.append(FacetValue(str(key), count, False, drill, (first_day, last_day)))
        trail = self.trail(req)
        return FacetResult(self.name, self.kind, values, failed=failed, level=level, trail=trail, selection=selection)

    def trail(self, req: Request) -> list[DateStep]:
        """Breadcrumb back up the drill-down: all dates, the year, the month."""
        selection = req.selection(self.name)
        steps = [DateStep("all", None, req.select(self.name, Days()))]
        level = self.level(selection)
        a = selection.first
        if a and level in ("month", "day"):
            steps.append(DateStep("year", date(a.year, 1, 1), req.select(self.name, Days(*bucket_range("year", a.year)))))
        if a and level == "day":
            month = bucket_range("month", a.year * 100 + a.month)
            steps.append(DateStep("month", month[0], req.select(self.name, Days(*month))))
        return steps

    def chips(self, req: Request) -> list[Chip]:
        s = req.selection(self.name)
        if not s:
            return []
        return [Chip(self.name, f"{s.first or '…'} 至 {s.last or '…'}", req.select(self.name, Days()), (s.first, s.last))]


Facet = TermsFacet | DateFacet
FACETS: tuple[Facet, ...] = (
    TermsFacet("category", "categories", "分类", size=10),
    TermsFacet("tag", "tags", "标签", size=12),
    TermsFacet("site", "site", "来源", suggest=False),
    DateFacet(),
)
FACET_BY_NAME: dict[str, Facet] = {f.name: f for f in FACETS}
TERMS_FACETS: tuple[TermsFacet, ...] = tuple(f for f in FACETS if isinstance(f, TermsFacet))

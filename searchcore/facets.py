"""Facets, declared once: each owns its URL parameter, its filter, its count
request, the reading of its buckets and the chips of its selection.

In the spirit of elasticsearch-dsl's ``FacetedSearch`` and Datasette's facets: the
search request, the engine query, the result, the page, the JSON API and the
selected-filter chips all iterate ``FACETS``; no facet is named anywhere else.
Adding a facet is one declaration below (its field must be in
``searchcore.fields``); its words on the page come from ``label``.

Two kinds. A **terms** facet (category, tag, site) selects any of several values
and counts disjunctively: its counts ignore its own filter, so a reader sees how
many articles each other value would add. The **date** facet drills down (years,
then months, then days of the selected range) and counts within its own range.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from .engines.base import Count
from .model import SHANGHAI
from .params import RequestError, clean, first, getlist, parse_day
from .query import AnyValue, DateRange, Filter

if TYPE_CHECKING:
    from .search import SearchRequest

MAX_VALUES_PER_FACET = 20
T = TypeVar("T")


def attempt(read: Callable[[], T], salvage: Callable[[], T], errors: list[RequestError] | None) -> T:
    """``read()``; on a RequestError, raise it (``errors`` None: a strict caller such as
    the JSON API or the CLI) or record it and return ``salvage()``, so the search page
    can answer with every other parameter and show this one's error beside it."""
    try:
        return read()
    except RequestError as exc:
        if errors is None:
            raise
        errors.append(exc)
        return salvage()


@dataclass
class FacetValue:
    value: str  # a category, tag or site, or a date bucket key (2022, 202203, 20220315)
    count: int
    selected: bool
    request: SearchRequest  # the state after clicking this value
    days: tuple[date, date] | None = None  # a date bucket's first and last day


@dataclass(frozen=True)
class DateStep:
    """One step of the breadcrumb back up the date drill-down: all dates
    (``day`` None), the year of ``day``, or its month."""

    level: Literal["all", "year", "month"]
    day: date | None
    request: SearchRequest


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


@dataclass(frozen=True)
class Chip:
    """One selected filter, and the state without it."""

    facet: str
    value: str
    request: SearchRequest


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

    def selection(self, req: SearchRequest) -> tuple[str, ...]:
        return req.selected(self.name)

    def params(self, req: SearchRequest) -> list[tuple[str, str]]:
        return [(self.name, v) for v in req.selected(self.name)]

    def clear(self, req: SearchRequest) -> SearchRequest:
        return req.with_(filters=tuple((n, v) for n, v in req.filters if n != self.name))

    def filter(self, req: SearchRequest) -> Filter | None:
        values = req.selected(self.name)
        return AnyValue(self.field, values) if values else None

    def count(self, req: SearchRequest, filters: Sequence[Filter]) -> Count:
        shown = self.more_size if self.name in req.more else self.size
        return Count(self.name, self.field, shown + 1, tuple(filters))  # one more: is there more?

    def read(self, req: SearchRequest, buckets: list[tuple[Any, int]], failed: bool = False) -> FacetResult:
        selected = req.selected(self.name)
        expanded = self.name in req.more
        limit = self.more_size if expanded else self.size
        counts = dict(buckets[:limit])
        everything = dict(buckets)
        for v in selected:  # a selected value stays visible, even at zero
            counts.setdefault(v, everything.get(v, 0))
        values = [FacetValue(str(v), c, v in selected, req.toggle(self.name, str(v))) for v, c in counts.items()]
        return FacetResult(self.name, self.kind, values, len(buckets) > limit, expanded, failed)

    def chips(self, req: SearchRequest) -> list[Chip]:
        return [Chip(self.name, v, req.toggle(self.name, v)) for v in req.selected(self.name)]


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


def day_start(d: date) -> datetime:
    """Midnight in Asia/Shanghai: the clock of the date facet and of from/to."""
    return datetime.combine(d, dtime(0, 0), tzinfo=SHANGHAI)


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

    def parse(self, args: Mapping[str, Any], errors: list[RequestError] | None = None) -> tuple[date | None, date | None]:
        """(from, to), inclusive days. A range written backwards (from after to) is
        the same range: readers pick two days in either order, and an error there
        left them with nothing. With ``errors``, a bad bound is left open and reported."""
        lo, hi = self._bounds(args, errors)
        if lo and hi and lo > hi:
            lo, hi = hi, lo
        return lo, hi

    def _bounds(self, args: Mapping[str, Any], errors: list[RequestError] | None) -> tuple[date | None, date | None]:
        lo = attempt(lambda: parse_day(first(args, "from"), "from", self.from_label), lambda: None, errors)
        hi = attempt(lambda: parse_day(first(args, "to"), "to", self.to_label), lambda: None, errors)
        return lo, hi

    def reordered(self, args: Mapping[str, Any]) -> bool:
        """Whether the URL gives the range backwards: the page then redirects to the
        canonical URL (from before to), so links, history and caches see one spelling."""
        lo, hi = self._bounds(args, [])
        return bool(lo and hi and lo > hi)

    def selection(self, req: SearchRequest) -> tuple[str, ...]:
        if not (req.date_from or req.date_to):
            return ()
        return (f"{req.date_from or '…'} 至 {req.date_to or '…'}",)

    def params(self, req: SearchRequest) -> list[tuple[str, str]]:
        out = []
        if req.date_from:
            out.append(("from", req.date_from.isoformat()))
        if req.date_to:
            out.append(("to", req.date_to.isoformat()))
        return out

    def clear(self, req: SearchRequest) -> SearchRequest:
        return req.with_(date_from=None, date_to=None)

    def filter(self, req: SearchRequest) -> Filter | None:
        if not (req.date_from or req.date_to):
            return None
        lo = day_start(req.date_from) if req.date_from else None
        hi = day_start(req.date_to + timedelta(days=1)) if req.date_to else None
        return DateRange(self.field, lo, hi)

    def count(self, req: SearchRequest, filters: Sequence[Filter]) -> Count:
        return Count(self.name, date_level(req), self.max_buckets, tuple(filters), by_key=True)

    def read(self, req: SearchRequest, buckets: list[tuple[Any, int]], failed: bool = False) -> FacetResult:
        level = date_level(req)
        values = []
        for key, count in buckets:
            first_day, last_day = bucket_range(level, int(key))
            drill = req.with_(date_from=first_day, date_to=last_day)
            values.append(FacetValue(str(key), count, False, drill, (first_day, last_day)))
        return FacetResult(self.name, self.kind, values, failed=failed, level=level, trail=self.trail(req))

    @staticmethod
    def trail(req: SearchRequest) -> list[DateStep]:
        """Breadcrumb back up the drill-down: all dates, the year, the month."""
        steps = [DateStep("all", None, req.with_(date_from=None, date_to=None))]
        level = date_level(req)
        a = req.date_from
        if a and level in ("month", "day"):
            first_day, last_day = bucket_range("year", a.year)
            steps.append(DateStep("year", first_day, req.with_(date_from=first_day, date_to=last_day)))
        if a and level == "day":
            first_day, last_day = bucket_range("month", a.year * 100 + a.month)
            steps.append(DateStep("month", first_day, req.with_(date_from=first_day, date_to=last_day)))
        return steps

    def chips(self, req: SearchRequest) -> list[Chip]:
        return [Chip(self.name, v, self.clear(req)) for v in self.selection(req)]


Facet = TermsFacet | DateFacet
DATES = DateFacet()
FACETS: tuple[Facet, ...] = (
    TermsFacet("category", "categories", "分类", size=10),
    TermsFacet("tag", "tags", "标签", size=12),
    TermsFacet("site", "site", "来源", suggest=False),
    DATES,
)
FACET_BY_NAME: dict[str, Facet] = {f.name: f for f in FACETS}
TERMS_FACETS: tuple[TermsFacet, ...] = tuple(f for f in FACETS if isinstance(f, TermsFacet))

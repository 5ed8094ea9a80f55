"""The words a search page shows, put to the core's results.

``searchcore.search`` returns data: facet values, a date level and bucket keys,
the steps back up the date drill-down, which word or filter a way out of zero
results drops. This module words them (分类, 2022年, 3月, 去掉“X”) and hands the
templates and the JSON twin a ``ResultView`` whose every value is complete, so a
template only renders and the page and its JSON say the same thing. Wording a
result is the web app's concern: another front end (the CLI, a feed) words it
its own way, and the core stays free of interface text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from searchcore.facets import FacetValue, bucket_range
from searchcore.fields import FIELD_BY_NAME, SHOWN_IN_HITS
from searchcore.model import StoredDoc
from searchcore.search import FACETS, TERMS_FACETS, Chip, DateStep, FacetResult, Hit, Relaxation, SearchRequest, SearchResult

# A facet's word is declared with the facet (searchcore.facets): the core's error
# messages name its parameter by it too.
FACET_LABELS = {f.name: f.label for f in FACETS}
FACET_UNAVAILABLE = "暂时无法统计"
# The fields a hit's line shows value by value (categories, tags: their rows' ``show``).
HIT_BADGES = tuple(f for f in SHOWN_IN_HITS if f.show and f.show.css)
SORT_LABELS = {"relevance": "相关度", "newest": "最新", "oldest": "最早"}
# The timeline's caption, by the date facet's level.
LEVEL_LABELS = {"year": "按年", "month": "按月", "day": "按日"}
BAR_STEPS = 20  # a timeline bar's height in twentieths of the tallest (CSS classes h0..h20)
MAX_TIMELINE_SLOTS = 120  # wider spans are drawn without their empty years, months or days


def date_label(level: str, key: int) -> str:
    """A date bucket as a reader reads it: 2022年, 2022年3月, or 3月15日 (at day
    level the year and month are already on the breadcrumb)."""
    if level == "year":
        return f"{key}年"
    if level == "month":
        y, m = divmod(key, 100)
        return f"{y}年{m}月"
    m, d = divmod(key % 10000, 100)
    return f"{m}月{d}日"


def range_label(lo: date | None, hi: date | None) -> str:
    """A selected date range as it reads: a whole year (2021年), a whole month
    (2021年7月), one day (2021年7月14日), else its two ends (2021-07-01 至
    2021-08-15); an open end reads 起 or 止. The chip says what the reader chose,
    usually by clicking a year or month, in the words the facet showed."""
    if lo and hi:
        if lo == hi:
            return f"{lo.year}年{lo.month}月{lo.day}日"
        if (lo, hi) == bucket_range("year", lo.year):
            return f"{lo.year}年"
        if (lo, hi) == bucket_range("month", lo.year * 100 + lo.month):
            return f"{lo.year}年{lo.month}月"
        return f"{lo.isoformat()} 至 {hi.isoformat()}"
    if lo:
        return f"{lo.isoformat()} 起"
    if hi:
        return f"{hi.isoformat()} 止"
    return ""


def step_label(step: DateStep) -> str:
    """A breadcrumb step: 全部日期 › 2022年 › 3月."""
    if step.level == "all" or step.day is None:
        return "全部日期"
    if step.level == "year":
        return f"{step.day.year}年"
    return f"{step.day.month}月"


def relaxation_label(r: Relaxation) -> str:
    """What following a way out of zero results drops, in words."""
    if r.kind == "drop_term":
        return f"去掉“{r.term}”"
    if r.kind == "only_term":
        return f"只搜索“{r.term}”"
    if r.kind == "drop_filter":  # worded as its chips are: 去掉标签：早间, 去掉日期：2021年
        return f"去掉{FACET_LABELS[r.facet]}：{'、'.join(chip_text(c) for c in r.chips)}"
    if r.kind == "drop_query":
        return "去掉搜索词，只用筛选条件"
    return "去掉全部筛选条件"


@dataclass
class ValueView(FacetValue):
    """A facet value as the core counted it, and its words (2022年 for the
    bucket 2022; a category or tag as it is)."""

    label: str = ""


@dataclass
class FacetView(FacetResult):
    """A facet's result as the core returned it (its ``values`` are ValueViews),
    its name as the reader reads it (分类), and the date drill-down's way back up
    as (words, request) steps. A failed facet is shown as FACET_UNAVAILABLE."""

    label: str = ""
    crumbs: list[tuple[str, SearchRequest]] = field(default_factory=list)

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS.get(self.level, "")

    @property
    def timeline(self) -> list[Bar]:
        """The date facet's values as bars over time, with the empty years, months or
        days between them drawn empty (a gap is news too), heights in BAR_STEPS."""
        if not self.level or not self.values:
            return []
        tallest = max(v.count for v in self.values) or 1
        by_day = {v.days[0]: v for v in self.values if v.days}
        firsts = sorted(by_day)
        slots = _slots(self.level, firsts[0], firsts[-1]) if firsts else []
        if len(slots) > MAX_TIMELINE_SLOTS:
            slots = firsts
        bars = []
        for day in slots:
            v = by_day.get(day)
            if v is None:
                bars.append(Bar(date_label(self.level, _key(self.level, day)), 0, None, 0))
            else:
                height = max(1, -(-v.count * BAR_STEPS // tallest)) if v.count else 0
                bars.append(Bar(v.label, v.count, v.request, height))
        return bars


@dataclass(frozen=True)
class Bar:
    """One year, month or day of the timeline: its words, its count, the drill-down
    (None for an empty slot: nothing to drill into) and its height class."""

    label: str
    count: int
    request: SearchRequest | None
    height: int


def _key(level: str, day: date) -> int:
    """The date facet's bucket key of the bucket starting on ``day``."""
    if level == "year":
        return day.year
    if level == "month":
        return day.year * 100 + day.month
    return day.year * 10000 + day.month * 100 + day.day


def _slots(level: str, first: date, last: date) -> list[date]:
    """The first days of every bucket from ``first`` to ``last`` (both bucket starts)."""
    out = []
    day = first
    while day <= last and len(out) <= MAX_TIMELINE_SLOTS:
        out.append(day)
        if level == "year":
            day = date(day.year + 1, 1, 1)
        elif level == "month":
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        else:
            day = day + timedelta(days=1)
    return out


@dataclass(frozen=True)
class ChipView:
    """A selected filter as the reader reads it (分类：路透), and the state without it."""

    facet: str
    label: str
    value: str
    request: SearchRequest


@dataclass(frozen=True)
class RelaxationView:
    label: str
    request: SearchRequest
    total: int


@dataclass(frozen=True)
class ResultView:
    """A SearchResult with its words: what the templates and the JSON API render."""

    result: SearchResult
    facets: dict[str, FacetView]
    chips: list[ChipView]
    relaxations: list[RelaxationView]

    @property
    def request(self) -> SearchRequest:
        return self.result.request

    @property
    def total(self) -> int:
        return self.result.total

    @property
    def hits(self) -> list[Hit]:
        return self.result.hits

    @property
    def page_size(self) -> int:
        return self.result.page_size

    @property
    def pages(self) -> int:
        return self.result.pages

    @property
    def took_ms(self) -> float:
        return self.result.took_ms


V = TypeVar("V")


def _worded(view: type[V], core: object, **words: Any) -> V:
    """The core's value as its ``view`` subclass: the same fields (shared, not
    copied), plus the view's ``words``. Made without ``__init__``: a page words
    every facet value, and passing the fields as arguments took twice as long as
    this (the old field-by-field copy)."""
    made = view.__new__(view)
    made.__dict__.update(vars(core), **words)
    return made


def _facet(facet: FacetResult) -> FacetView:
    def label(value: str) -> str:
        return date_label(facet.level, int(value)) if facet.level else value

    return _worded(
        FacetView,
        facet,
        values=[_worded(ValueView, v, label=label(v.value)) for v in facet.values],
        label=FACET_LABELS[facet.name],
        crumbs=[(step_label(s), s.request) for s in facet.trail],
    )


def _values(record: Any, name: str) -> list[Any]:
    value = getattr(record, name, None)
    return value if isinstance(value, list) else [value] if value else []


def badges(hit: Hit) -> list[tuple[str, str]]:
    """What a hit's line shows after its time, as (class, text): each value of the
    fields whose row says so, written as the row says (finance, #经济)."""
    return [(f.show.css, f.show.text.format(v)) for f in HIT_BADGES if f.show for v in _values(hit, f.name)]


def facet_links(doc: StoredDoc) -> list[tuple[str, str, SearchRequest]]:
    """An article's own facet values (its categories, tags, ...), each as
    (facet, text, the search selecting it): the article page's links, each value
    written as its field's row says (tags as hashtags)."""
    out = []
    for f in TERMS_FACETS:
        show = FIELD_BY_NAME[f.field].show
        text = show.text if show else "{}"
        for v in _values(doc, f.field):
            out.append((f.name, text.format(v), f.toggle(SearchRequest(), v)))
    return out


def chip_text(chip: Chip) -> str:
    """A selected value as it reads: itself, or a date range in words (2021年7月)."""
    return range_label(*chip.days) if chip.days is not None else chip.value


def _chip(chip: Chip) -> ChipView:
    """分类：路透 beside 标签：路透 (the facet's word tells them apart); a date range
    worded as it reads (日期：2021年7月)."""
    return ChipView(chip.facet, f"{FACET_LABELS[chip.facet]}：{chip_text(chip)}", chip.value, chip.request)


def present(result: SearchResult) -> ResultView:
    """The result in the reader's words."""
    return ResultView(
        result=result,
        facets={name: _facet(f) for name, f in result.facets.items()},
        chips=[_chip(c) for c in result.chips],
        relaxations=[RelaxationView(relaxation_label(r), r.request, r.total) for r in result.relaxations],
    )

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
from datetime import date

from searchcore.fields import StoredDoc
from searchcore.search import FACETS, TERMS_FACETS, Chip, DateStep, FacetResult, Hit, Relaxation, SearchRequest, SearchResult

# A facet's word is declared with the facet (searchcore.facets): the core's error
# messages name its parameter by it too.
FACET_LABELS = {f.name: f.label for f in FACETS}
FACET_UNAVAILABLE = "暂时无法统计"
# How a value is written beside an article (tags as hashtags); the rest as they are.
VALUE_FORMAT = {"tag": "#{}"}
SORT_LABELS = {"relevance": "相关度", "newest": "最新", "oldest": "最早"}


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
    if r.kind == "drop_filter":
        return f"去掉{FACET_LABELS[r.facet]}：{'、'.join(r.values)}"
    if r.kind == "drop_date":
        return "去掉日期范围"
    if r.kind == "drop_query":
        return "去掉搜索词，只用筛选条件"
    return "去掉全部筛选条件"


@dataclass(frozen=True)
class ValueView:
    value: str
    label: str
    count: int
    selected: bool
    request: SearchRequest  # the state after clicking this value
    days: tuple[date, date] | None = None  # a date bucket's first and last day


@dataclass(frozen=True)
class FacetView:
    name: str
    kind: str  # which template block renders it
    label: str
    values: list[ValueView]
    has_more: bool = False
    expanded: bool = False
    failed: bool = False  # shown as FACET_UNAVAILABLE; the results stand
    trail: list[tuple[str, SearchRequest]] = field(default_factory=list)  # date: the way back up


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
    def date_level(self) -> str:
        return self.result.date_level

    @property
    def page_size(self) -> int:
        return self.result.page_size

    @property
    def pages(self) -> int:
        return self.result.pages

    @property
    def took_ms(self) -> float:
        return self.result.took_ms


def _facet(facet: FacetResult) -> FacetView:
    def label(value: str) -> str:
        return date_label(facet.level, int(value)) if facet.level else value

    values = [ValueView(v.value, label(v.value), v.count, v.selected, v.request, v.days) for v in facet.values]
    trail = [(step_label(s), s.request) for s in facet.trail]
    return FacetView(
        facet.name, facet.kind, FACET_LABELS[facet.name], values, facet.has_more, facet.expanded, facet.failed, trail
    )


def facet_links(doc: StoredDoc) -> list[tuple[str, str, SearchRequest]]:
    """An article's own facet values (its categories, tags, ...), each as
    (facet, text, the search selecting it): the article page's links."""
    out = []
    for f in TERMS_FACETS:
        value = getattr(doc, f.field, None)
        for v in value if isinstance(value, list) else [value] if value else []:
            out.append((f.name, VALUE_FORMAT.get(f.name, "{}").format(v), SearchRequest().toggle(f.name, v)))
    return out


def _chip(chip: Chip) -> ChipView:
    label = FACET_LABELS[chip.facet]
    return ChipView(chip.facet, f"{label}：{chip.value}", chip.value, chip.request)


def present(result: SearchResult) -> ResultView:
    """The result in the reader's words."""
    return ResultView(
        result=result,
        facets={name: _facet(f) for name, f in result.facets.items()},
        chips=[_chip(c) for c in result.chips],
        relaxations=[RelaxationView(relaxation_label(r), r.request, r.total) for r in result.relaxations],
    )

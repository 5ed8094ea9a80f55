"""The engine protocol: what every engine does, in engine-neutral types.

The search layer builds an ``EngineQuery``; each engine compiles it to its own
query language. Tokens come from ``searchcore.analysis``, never from the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from ..analysis import Term
from ..highlight import WINDOW_CHARS
from ..model import IndexedArticle


class EngineError(RuntimeError):
    """The engine failed; the message is for logs and operators."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached right now (the app answers 503 and retries)."""


class IndexMissing(EngineError):
    """No index exists yet: the operator has not run the indexer."""


@dataclass(frozen=True)
class FacetSpec:
    """One facet to count: ``field`` is an engine field; ``own`` names the filter
    this facet ignores (disjunctive counts), or None to respect every filter."""

    name: str
    field: str
    size: int = 10
    own: str | None = None
    order: str = "count"  # or "key" (date buckets in time order)


@dataclass(frozen=True)
class EngineQuery:
    terms: tuple[Term, ...] = ()
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)  # field -> any of values
    date_from: datetime | None = None  # inclusive, UTC
    date_to: datetime | None = None  # exclusive, UTC
    sort: str = "relevance"  # relevance | newest | oldest
    offset: int = 0
    limit: int = 10
    facets: tuple[FacetSpec, ...] = ()
    title_boost: float = 3.0
    recency_weight: float = 0.0
    explain: bool = False
    any_terms: bool = False  # OR the terms (related articles) instead of AND
    # Bodies match whole words only, not any substring (related articles): the
    # substring clause over bodies is a phrase of pairs, the costliest one at scale.
    body_words_only: bool = False

    def without_filter(self, name: str | None) -> EngineQuery:
        if name is None:
            return self
        if name == "date":
            return replace(self, date_from=None, date_to=None)
        return replace(self, filters={k: v for k, v in self.filters.items() if k != name})


@dataclass
class EngineHit:
    doc: dict[str, Any]
    score: float | None = None
    explanation: Any = None


@dataclass
class EngineResult:
    total: int
    hits: list[EngineHit]
    facets: dict[str, list[tuple[Any, int]]]
    took_ms: float = 0.0


@runtime_checkable
class IndexWriter(Protocol):
    """A batch writer; ``commit`` makes writes visible and durable."""

    def upsert(self, docs: Iterable[IndexedArticle]) -> list[tuple[str, str]]:
        """Write documents; returns (id, reason) for each the engine refused."""

    def delete(self, ids: Iterable[str]) -> None: ...

    def commit(self) -> None: ...

    def publish(self, keep_old: bool = False) -> None:
        """For a rebuild: point the alias at the new index, atomically."""

    def abort(self) -> None: ...

    def close(self) -> None:
        """Finish background work (merges, file clean-up) after the last commit."""


@runtime_checkable
class Engine(Protocol):
    name: str

    def health(self) -> dict[str, Any]: ...

    def count(self) -> int: ...

    def physical_index(self) -> str | None:
        """The versioned index the alias points at (None if none yet)."""

    def writer(self, rebuild: bool = False) -> IndexWriter: ...

    def search(self, query: EngineQuery) -> EngineResult:
        """A hit's ``doc`` holds the stored fields (``stored_values``), bounded:
        ``body_html`` is empty (only the article page shows it) and ``body_text`` holds
        at most WINDOW_CHARS characters (all a snippet reads), so a hit costs the same
        whatever the size of its post."""

    def get(self, doc_id: str) -> dict[str, Any] | None:
        """An article's stored fields (``stored_values``), whole; None if no such id."""

    def close(self) -> None: ...


def date_parts(day: int) -> dict[str, int]:
    """The facet keys of a YYYYMMDD day: year 2022, month 202203, day 20220314."""
    return {"year": day // 10000, "month": day // 100, "day": day}


def stored_values(ia: IndexedArticle) -> dict[str, Any]:
    """The stored (displayed) fields of an article, the same for every engine.

    The plain text is stored only as far as the highlighter reads it
    (WINDOW_CHARS): it is never shown whole (the article page shows the HTML), and
    storing all of a 9 MB post's text doubled what every hit on it loaded. Indexes
    built before keep the whole text; hits are bounded when read all the same.
    """
    a = ia.article
    return {
        "id": a.id,
        "title": a.title,
        "date": a.date,
        "categories": list(a.categories),
        "tags": list(a.tags),
        "body_html": a.body_html,
        "body_text": a.body_text[:WINDOW_CHARS],
        "source_url": a.source_url or "",
        "path": a.path,
        "content_hash": a.content_hash,
        "offset": a.utc_offset_minutes,
    }

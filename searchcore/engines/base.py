"""The engine protocol: what every engine does, in engine-neutral types.

The search layer builds an ``EngineQuery`` (a clause tree from ``searchcore.query``
over the fields of ``searchcore.fields``); each engine translates it to its own
query language. Tokens come from ``searchcore.analysis``, never from the engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..model import IndexedArticle, StoredDoc
from ..query import Clause, Filter, MatchAll


class EngineError(RuntimeError):
    """The engine failed; the message is for logs and operators."""


class EngineUnavailable(EngineError):
    """The engine cannot be reached right now (the app answers 503 and retries)."""


class IndexMissing(EngineError):
    """No index exists yet: the operator has not run the indexer."""


@dataclass(frozen=True)
class Count:
    """One facet's counts: the values of ``field`` over the documents the query's
    ``match`` and these ``filters`` select (a disjunctive facet leaves its own
    filter out), the ``size`` most frequent, or the first by key (``by_key``: dates
    in time order)."""

    name: str  # the key of its buckets in EngineResult.facets
    field: str
    size: int = 10
    filters: tuple[Filter, ...] = ()
    by_key: bool = False


@dataclass(frozen=True)
class EngineQuery:
    """What an engine runs: a neutral clause tree (``searchcore.query``), the filters
    (scored 0), the order, the page, and the counts to make beside the hits."""

    match: Clause = MatchAll()
    filters: tuple[Filter, ...] = ()
    sort: str = "relevance"  # relevance | newest | oldest
    offset: int = 0
    limit: int = 10
    counts: tuple[Count, ...] = ()
    # relevance order only: the score times the product of log2(2 + weight × value)
    # over these (field, weight) priors (fields.prior_multiplier)
    priors: tuple[tuple[str, float], ...] = ()
    explain: bool = False

    @property
    def ranked(self) -> bool:
        """Ordered by score: relevance order with something to score."""
        return self.sort == "relevance" and not isinstance(self.match, MatchAll)


@dataclass
class EngineHit:
    doc: StoredDoc
    score: float | None = None
    explanation: Any = None


@dataclass
class EngineResult:
    total: int
    hits: list[EngineHit]
    facets: dict[str, list[tuple[Any, int]]]
    took_ms: float = 0.0
    failed: tuple[str, ...] = ()  # counts that could not be made (the hits stand)


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

    def health(self) -> dict[str, Any]:
        """``ok`` (the engine answers and the index is searchable), ``engine``,
        ``documents``; when not ok, ``error``, and ``index_missing: True`` when the
        engine answers but nothing has been indexed yet (it can serve, empty)."""

    def count(self) -> int: ...

    def layout(self) -> dict[str, Any]:
        """Shards, replicas, nodes and cluster status, where the engine has them
        (``indexer status``); ``{}`` for an engine on one machine."""

    def physical_index(self) -> str | None:
        """The versioned index the alias points at (None if none yet)."""

    def writer(self, rebuild: bool = False) -> IndexWriter: ...

    def search(self, query: EngineQuery) -> EngineResult:
        """Hits carry ``StoredDoc.from_values(..., hit=True)``: bounded whatever the
        size of the post. A count that fails is named in ``failed``; the hits stand."""

    def get(self, doc_id: str) -> StoredDoc | None:
        """An article's stored fields, whole; None if no such id."""

    def close(self) -> None: ...

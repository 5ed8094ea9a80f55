"""The embedded engine: tantivy, an index folder on disk, no server.

Layout under ``<data_dir>/tantivy/<alias>/``: one folder per physical index
(``<alias>-<timestamp>``) and a ``CURRENT`` file naming the live one. A rebuild
fills a new folder and replaces ``CURRENT`` with an atomic rename, so readers
switch in one step and a failed rebuild leaves them where they were.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tantivy

from ..cache import GenerationCache
from ..config import Settings
from ..fields import DATE, FIELDS, PRIORS, STORED, Field, is_current_schema, prior_multiplier
from ..highlight import WINDOW_CHARS
from ..model import IndexedArticle, StoredDoc
from ..query import AnyValue, Bool, Clause, Constant, DateRange, Filter, MatchAll, Tokens, filtered
from .base import Count, EngineError, EngineHit, EngineQuery, EngineResult, EngineUnavailable, IndexMissing
from .common import outdated, physical_name

log = logging.getLogger(__name__)

TOKENIZER = "newsearch_ws"
# tantivy's weight_by_field multiplies a score by log2(2 + one stored value): the
# value whose log2(2 + v) is the priors' product (fields.prior_multiplier)
MULTIPLIER = "prior_multiplier"
# The defaults of SlicePolicy. A search is cut into date slices searched on
# parallel threads when its posting lists reach this many document visits (a
# phrase of pairs counts four per document: reading positions costs that much
# more than a term lookup). Below it a slice's own date filter costs more than
# the thread saves.
SLICE_MIN_VISITS = 300_000
PHRASE_VISIT_COST = 4
# Slicing needs an index this large to pay; below it no date quantiles are computed.
SLICE_MIN_DOCS = 100_000


def _add_field(sb: tantivy.SchemaBuilder, f: Field) -> None:
    """One row of ``searchcore.fields`` as a tantivy field (the table says why)."""
    if f.kind in ("id", "keyword"):
        sb.add_text_field(f.name, stored=f.stored, tokenizer_name="raw", fast=True)
    elif f.kind == "text":
        # bytes: stored for display, never indexed (a raw text field would turn a
        # whole body into one over-long term)
        sb.add_bytes_field(f.name, stored=True)
    elif f.kind == "stream":
        sb.add_text_field(f.name, stored=False, tokenizer_name=TOKENIZER, index_option="position" if f.positions else "freq")
    elif f.kind == "date":
        sb.add_date_field(f.name, stored=f.stored, indexed=True, fast=True)
    elif f.kind == "int":
        sb.add_integer_field(f.name, stored=f.stored, indexed=f.indexed, fast=f.indexed)
    elif f.kind == "prior":
        sb.add_float_field(f.name, stored=False, indexed=False, fast=True)
    else:  # pragma: no cover - a new kind must be taught to every engine
        raise ValueError(f"no tantivy field for kind {f.kind!r}")


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    for f in FIELDS:
        _add_field(sb, f)
    # weight_by_field reads one field: the priors' product, stored (see to_document)
    sb.add_float_field(MULTIPLIER, stored=False, indexed=False, fast=True)
    return sb.build()


@functools.cache
def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU
    quota (a container limited to two CPUs on a large host has two)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


def idle_cores() -> int:
    """Cores with nothing to run at this instant, besides the caller's own.

    From the kernel's run queue (the fourth field of /proc/loadavg counts the
    runnable threads, the caller among them). A reader alone on the machine gets
    the second core; under load every core is busy with other readers and
    slicing would only add its own filters' work. Without /proc: assume none.
    """
    try:
        with open("/proc/loadavg", "rb") as fh:
            running = int(fh.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    return max(0, usable_cores() - running)


@dataclass(frozen=True)
class SlicePolicy:
    """When a large query is cut into date slices searched on parallel threads.

    Slicing earns its place at a million articles (README, "Search latency": the
    slowest queries' page went from p95 60.4 to 41.5 ms) but costs a fifth of the
    throughput when no core is idle, so it is bounded three ways below; the most
    slices a search may use is ``Settings.search_threads``. The policy is fixed
    when the engine is built: a test that wants slices on a small index or a busy
    machine builds its engine with a policy of its own rather than changing a
    live engine's attributes under other readers' threads.
    """

    min_docs: int = SLICE_MIN_DOCS  # smaller indexes are never sliced
    min_visits: int = SLICE_MIN_VISITS  # nor queries walking fewer postings (TantivyEngine._visits)
    # cores idle at this instant besides the caller's: one slice more per idle core
    idle_cores: Callable[[], int] = idle_cores


def _settle(futures: list[Future]) -> None:
    """Cancel what has not started and wait for what has: a failed search must not
    leave work on the pool for the next request to queue behind."""
    for f in futures:
        f.cancel()
    wait(futures)


class _PendingCounts:
    """Facet counts on their way: cached ones, and the rest being counted."""

    def __init__(self, cache: GenerationCache, generation: tuple) -> None:
        self.cache = cache
        self.generation = generation
        self.parts: list[tuple[tuple, Any]] = []  # (key, dict | Future | callable)

    def collect(self) -> tuple[dict[str, list[tuple[Any, int]]], tuple[str, ...]]:
        """Every count, and the names of those that failed: every started count is
        read, so none is left running, and a failed one costs only its facets (the
        page still answers; the error is logged for operators)."""
        out: dict[str, list[tuple[Any, int]]] = {}
        failed: list[str] = []
        for key, part in self.parts:
            if isinstance(part, dict):  # from the cache
                out.update(part)
                continue
            try:
                value = part.result() if isinstance(part, Future) else part()
            except Exception as exc:  # noqa: BLE001 - degrade: the hits stand
                names = [c.name for c in key[1]]
                log.warning("facet counts %s failed: %s: %s", ", ".join(names), type(exc).__name__, exc)
                failed += names
                continue
            self.cache.put(self.generation, key, value)
            out.update(value)
        return out, tuple(failed)

    def cancel(self) -> None:
        _settle([part for _, part in self.parts if isinstance(part, Future)])


def _register(index: tantivy.Index) -> tantivy.Index:
    """Our streams arrive space-joined: split them on whitespace, nothing else
    (no lower-casing or length limit: analysis already normalized them)."""
    index.register_tokenizer(TOKENIZER, tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace()).build())
    return index


def _field_positions(folder: Path) -> dict[str, bool]:
    """The fields of the index in ``folder`` and whether each records positions,
    from its meta.json (what ``is_current_schema`` checks)."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    out = {}
    for f in meta.get("schema", []):
        indexing = (f.get("options") or {}).get("indexing") or {}
        out[f.get("name")] = isinstance(indexing, dict) and indexing.get("record") == "position"
    return out


class TantivyWriter:
    def __init__(self, engine: TantivyEngine, folder: Path, rebuild: bool) -> None:
        self.engine = engine
        self.folder = folder
        self.rebuild = rebuild
        self.index = _register(tantivy.Index(engine.schema, path=str(folder), reuse=True))
        try:
            self._w = self.index.writer(heap_size=200_000_000, num_threads=1)
        except ValueError as exc:
            raise EngineError(
                f"the index at {folder} is locked by another writer ({exc}); wait for the other indexer run to finish"
            ) from None

    def upsert(self, docs: Iterable[IndexedArticle]) -> list[tuple[str, str]]:
        refused: list[tuple[str, str]] = []
        for ia in docs:
            try:
                doc = self.engine.to_document(ia)
            except (ValueError, OverflowError) as exc:
                refused.append((ia.article.id, f"tantivy refused the document: {exc}"))
                continue
            if not self.rebuild:
                # A rebuild's folder holds nothing to replace: skipping the delete
                # saves tantivy applying it to every segment at each commit.
                self._w.delete_documents_by_term("id", ia.article.id)
            self._w.add_document(doc)
        return refused

    def delete(self, ids: Iterable[str]) -> None:
        for doc_id in ids:
            self._w.delete_documents_by_term("id", doc_id)

    def commit(self) -> None:
        self._w.commit()

    def publish(self, keep_old: bool = False) -> None:
        self._w.commit()
        self._finish()
        old = self.engine.physical_index()
        self.engine.set_current(self.folder.name)
        if old and old != self.folder.name and not keep_old:
            shutil.rmtree(self.engine.root / old, ignore_errors=True)

    def abort(self) -> None:
        try:
            self._w.rollback()
        finally:
            if self.rebuild:
                del self._w
                shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> None:
        try:
            self._finish()
        except Exception:  # noqa: BLE001 - a closed writer has nothing to wait for
            pass

    def _finish(self) -> None:
        """Wait for merges, then delete the files of merged-away segments (tantivy
        only collects them at its next commit, which a finished run never makes:
        without this, an index just built is up to twice its size on disk)."""
        self._w.wait_merging_threads()
        del self._w
        gc_writer = self.index.writer(heap_size=15_000_000, num_threads=1)
        gc_writer.garbage_collect_files()
        del gc_writer


class TantivyEngine:
    """Embedded engine; safe for one writer process and many reader processes."""

    name = "tantivy"

    def __init__(self, settings: Settings, slicing: SlicePolicy | None = None) -> None:
        self.settings = settings
        self.root = Path(settings.data_dir) / "tantivy" / settings.index
        self.schema = build_schema()
        self._lock = threading.Lock()
        self._index: tantivy.Index | None = None
        self._index_name: str | None = None
        self._seen: tuple[int, int] = (0, 0)
        self.facet_cache: GenerationCache[dict[str, list[tuple[Any, int]]]] = GenerationCache(settings.facet_cache)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid = 0
        self._slices: tuple[tuple, list[datetime]] | None = None
        self._slicing = slicing or SlicePolicy()
        self._weights = {f.name: getattr(settings, f.weight) for f in PRIORS}  # baked into each document
        self._sliced = 0

    @property
    def slicing(self) -> SlicePolicy:
        """The slicing policy this engine was built with (read-only)."""
        return self._slicing

    @property
    def sliced(self) -> int:
        """Searches answered in date slices so far: tests check the path ran."""
        return self._sliced

    # -- alias ------------------------------------------------------------
    @property
    def _current_file(self) -> Path:
        return self.root / "CURRENT"

    def physical_index(self) -> str | None:
        try:
            name = self._current_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return name or None

    def set_current(self, name: str) -> None:
        tmp = self.root / f".CURRENT.{os.getpid()}"
        tmp.write_text(name + "\n", encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._current_file)

    def list_physical(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name.startswith(self.settings.index + "-"))

    # -- reading ------------------------------------------------------------
    def _stamp(self) -> tuple[int, int]:
        """(CURRENT, meta.json) modification times: a swap or a commit changes one.

        Two stat calls per search are far cheaper than reloading on a timer, and
        readers see a commit as soon as it lands.
        """
        try:
            cur = self._current_file.stat().st_mtime_ns
        except FileNotFoundError:
            return (0, 0)
        try:
            meta = (self.root / (self._index_name or "") / "meta.json").stat().st_mtime_ns if self._index_name else 0
        except FileNotFoundError:
            meta = 0
        return (cur, meta)

    def _searcher(self) -> tuple[tantivy.Index, tantivy.Searcher]:
        index, searcher, _ = self._searcher_at()
        return index, searcher

    def _searcher_at(self) -> tuple[tantivy.Index, tantivy.Searcher, tuple]:
        """A searcher and the generation it reads (physical index, stamp): cached
        facet counts are valid for exactly one generation."""
        with self._lock:
            stamp = self._stamp()
            if self._index is None or stamp != self._seen:
                name = self.physical_index()
                if name is None:
                    self._index = None
                    raise IndexMissing(f"no index yet at {self.root}: run `indexer index PATH` first")
                if name != self._index_name or self._index is None:
                    folder = self.root / name
                    if not tantivy.Index.exists(str(folder)):
                        raise IndexMissing(f"CURRENT names {name}, which is not an index; run `indexer reindex PATH`")
                    if not is_current_schema(_field_positions(folder)):
                        raise IndexMissing(outdated(name, rebuild_hint=False))
                    self._index = _register(tantivy.Index.open(str(folder)))
                    self._index_name = name
                else:
                    self._index.reload()
                self._seen = self._stamp()
            index = self._index
            generation = (self._index_name, self._seen)
        return index, index.searcher(), generation

    def health(self) -> dict[str, Any]:
        try:
            _, searcher = self._searcher()
        except IndexMissing as exc:
            return {"ok": False, "engine": self.name, "error": str(exc), "index_missing": True}
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return {"ok": False, "engine": self.name, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, "engine": self.name, "index": self._index_name, "documents": searcher.num_docs}

    def layout(self) -> dict[str, Any]:
        """One folder on one machine: nothing to lay out."""
        return {}

    def count(self) -> int:
        try:
            return self._searcher()[1].num_docs
        except IndexMissing:
            return 0

    def writer(self, rebuild: bool = False) -> TantivyWriter:
        self.root.mkdir(parents=True, exist_ok=True)
        current = self.physical_index()
        if rebuild or current is None:
            name = physical_name(self.settings.index)
            folder = self.root / name
            folder.mkdir(parents=True)
            w = TantivyWriter(self, folder, rebuild=True)
            if current is None:
                # First run: no readers to protect, make the empty index live now so
                # commits are visible as they land (still fresh: nothing to replace).
                w.rebuild = False
                self.set_current(name)
            return w
        if not is_current_schema(_field_positions(self.root / current)):
            raise EngineError(outdated(current))
        return TantivyWriter(self, self.root / current, rebuild=False)

    def to_document(self, ia: IndexedArticle) -> tantivy.Document:
        doc = tantivy.Document()
        priors: list[tuple[float, float]] = []
        for f in FIELDS:
            value = f.value(ia)
            for v in value if f.many else (value,):
                if f.kind in ("id", "keyword", "stream"):
                    if v:  # an empty keyword is no value (no "" bucket in the counts)
                        doc.add_text(f.name, v)
                elif f.kind == "text":
                    doc.add_bytes(f.name, str(v).encode("utf-8"))
                elif f.kind == "date":
                    doc.add_date(f.name, v)
                elif f.kind == "int":
                    doc.add_integer(f.name, v)
                elif f.kind == "prior":
                    # weighted here: weight_by_field cannot scale at query time (fields.freshness)
                    weight = self._weights[f.name]
                    doc.add_float(f.name, weight * v)
                    priors.append((weight, v))
        doc.add_float(MULTIPLIER, 2 ** prior_multiplier(priors) - 2)
        return doc

    @staticmethod
    def _from_document(d: dict[str, list[Any]], hit: bool = False) -> StoredDoc:
        """A stored document, typed. A ``hit`` decodes no HTML body and at most
        WINDOW_CHARS of the text (see base.Engine.search): decoding both bodies of a
        9 MB post took 9 ms per hit."""
        values: dict[str, Any] = {}
        for f in STORED:
            raw = d.get(f.name) or []
            if f.kind != "text":
                values[f.name] = raw if f.many else (raw[0] if raw else None)
            elif raw and not (hit and not f.in_hits):
                data = bytes(raw[0])
                if hit and f.name == "body_text":
                    # a UTF-8 character is at most 4 bytes; "ignore" drops only the one
                    # the cut may split at the end (the stored bytes are valid UTF-8)
                    values[f.name] = data[: 4 * WINDOW_CHARS].decode("utf-8", "ignore")
                else:
                    values[f.name] = data.decode("utf-8")
        return StoredDoc.from_values(values, hit=hit)

    # -- queries --------------------------------------------------------------
    def _translate(self, c: Clause) -> tantivy.Query:
        """A clause of the neutral tree (``searchcore.query``) as a tantivy query."""
        Q = tantivy.Query
        if isinstance(c, Tokens):
            if c.phrase:
                at = c.at or range(len(c.tokens))
                q = Q.phrase_query(self.schema, c.field, [(i, c.tokens[i]) for i in at], c.slop)
            else:
                q = Q.term_query(self.schema, c.field, c.tokens[0])
            return q if c.boost == 1.0 else Q.boost_query(q, c.boost)
        if isinstance(c, AnyValue):
            return Q.term_set_query(self.schema, c.field, list(c.values))
        if isinstance(c, DateRange):
            return self._date_range(c.lo, c.hi, c.field)
        if isinstance(c, MatchAll):
            return Q.all_query()
        if isinstance(c, Constant):
            return Q.const_score_query(self._translate(c.clause), c.score)
        return self._bool(c)

    def _bool(self, c: Bool) -> tantivy.Query:
        Q = tantivy.Query
        Must, Should, MustNot = tantivy.Occur.Must, tantivy.Occur.Should, tantivy.Occur.MustNot
        clauses = [(Must, self._translate(x)) for x in c.must]
        shoulds = [(Should, self._translate(x)) for x in c.should]
        if shoulds and c.filter and not c.must:
            # tantivy makes Should optional beside any Must: keep "at least one"
            clauses.append((Must, Q.boolean_query(shoulds)))
        else:
            clauses += shoulds
        # A filter decides membership only: scored 0, as in Elasticsearch's filter
        # context (a constant added before the recency multiplier would reorder hits).
        clauses += [(Must, Q.const_score_query(self._translate(f), 0.0)) for f in c.filter]
        clauses += [(MustNot, self._translate(x)) for x in c.must_not]
        if not any(occ is not MustNot for occ, _ in clauses):
            clauses.append((Must, Q.all_query()))
        q = clauses[0][1] if len(clauses) == 1 and clauses[0][0] is Must else Q.boolean_query(clauses)
        return q if c.boost == 1.0 else Q.boost_query(q, c.boost)

    def _compile(self, match: Clause, filters: tuple[Filter, ...] = ()) -> tantivy.Query:
        return self._translate(filtered(match, filters))

    def _executor(self) -> ThreadPoolExecutor | None:
        """Threads for one search's independent parts (slices, facet counts).

        tantivy releases the GIL while it searches, so on two cores a large query
        answers in about half the time. Created in the process that uses it: a
        gunicorn worker forked from a parent must not inherit the parent's threads.
        """
        if self.settings.search_threads <= 1:
            return None
        with self._lock:
            if self._pool is None or self._pool_pid != os.getpid():
                self._pool = ThreadPoolExecutor(self.settings.search_threads, thread_name_prefix="tantivy-search")
                self._pool_pid = os.getpid()
            return self._pool

    def _slice_points(self, searcher: tantivy.Searcher, generation: tuple) -> list[datetime]:
        """Dates that cut the index into ``search_threads`` slices of equal size,
        computed once per index generation (one percentiles pass, ~15 ms at 1M)."""
        with self._lock:
            if self._slices is not None and self._slices[0] == generation:
                return self._slices[1]
        points: list[datetime] = []
        parts = self.settings.search_threads
        if parts > 1 and searcher.num_docs >= self._slicing.min_docs:
            percents = [100.0 * i / parts for i in range(1, parts)]
            res = searcher.aggregate(tantivy.Query.all_query(), {"p": {"percentiles": {"field": DATE, "percents": percents}}})
            values = [v for v in res.get("p", {}).get("values", {}).values() if v is not None and math.isfinite(v)]
            points = sorted({datetime.fromtimestamp(int(v // 1e9), UTC) for v in values})
        with self._lock:
            self._slices = (generation, points)
        return points

    def _visits(self, searcher: tantivy.Searcher, c: Clause) -> int:
        """Roughly how many postings a clause walks, from document frequencies alone
        (a few dictionary lookups, no search): a phrase walks its rarest token's
        list (positions counting PHRASE_VISIT_COST per document), AND its cheapest
        clause; OR is about as costly as its costliest alternative (for a term,
        the substring over bodies, against which SLICE_MIN_VISITS was set)."""
        if isinstance(c, Tokens):
            cost = PHRASE_VISIT_COST if c.phrase else 1
            return cost * min(searcher.doc_freq(c.field, t) for t in c.tokens)
        if isinstance(c, Constant):
            return self._visits(searcher, c.clause)
        if isinstance(c, Bool):
            if c.must:
                return min(self._visits(searcher, x) for x in c.must)
            return max((self._visits(searcher, x) for x in c.should), default=0)
        return 0  # everything, or a filter: nothing to score, never sliced

    def _top(
        self, searcher: tantivy.Searcher, query: tantivy.Query, q: EngineQuery, order: dict[str, Any], generation: tuple
    ) -> tuple[list[tuple[Any, Any]], int]:
        """The requested page of hits and the total, whole or in date slices (when
        the query is large and a core is idle).

        Each slice returns its own best ``offset + limit``, merged by the same key
        (score, or date) and tie order as tantivy's, so a page is the same whichever
        way it was found, and pages never overlap or skip.
        """
        if q.limit <= 0:
            # Only the total (a relaxation's count): counted unscored, no top-k to keep.
            res = searcher.aggregate(query, {"n": {"value_count": {"field": DATE}}})
            return [], int(res.get("n", {}).get("value") or 0)
        limit = q.limit
        pool = self._executor()
        idle = 0
        if pool is not None and self._visits(searcher, q.match) >= self._slicing.min_visits:
            idle = self._slicing.idle_cores()
        points = self._slice_points(searcher, generation) if idle else []
        for f in q.filters:  # no slice boundary outside the reader's own date range
            if isinstance(f, DateRange) and f.field == DATE:
                points = [p for p in points if (f.lo is None or p > f.lo) and (f.hi is None or p < f.hi)]
        if len(points) > idle:  # as many slices as there are idle cores, and ours
            step = (len(points) + 1) / (idle + 1)
            points = [points[round(i * step) - 1] for i in range(1, idle + 1)]
        if not points:
            res = searcher.search(query, limit, count=True, offset=q.offset, **order)
            return res.hits, int(res.count or 0)
        Q, Must = tantivy.Query, tantivy.Occur.Must
        bounds = [None, *points, None]
        slices = [
            Q.boolean_query([(Must, query), (Must, Q.const_score_query(self._date_range(lo, hi), 0.0))])
            for lo, hi in zip(bounds, bounds[1:], strict=False)
        ]
        with self._lock:
            self._sliced += 1
        want = q.offset + limit
        run = functools.partial(searcher.search, limit=want, count=True, **order)
        futures = [pool.submit(run, sq) for sq in slices[1:]]
        try:
            results = [run(slices[0])] + [f.result() for f in futures]
        finally:
            _settle(futures)
        # tantivy breaks ties by document address, whatever the order: so does the
        # merge, and a sliced page is the page the whole index would give.
        ascending = order.get("order") == tantivy.Order.Asc
        merged = sorted(
            (h for r in results for h in r.hits),
            key=lambda h: (h[0] if ascending else -h[0], h[1].segment_ord, h[1].doc),
        )
        return merged[q.offset : want], sum(int(r.count or 0) for r in results)

    def _date_range(self, lo: datetime | None, hi: datetime | None, field: str = DATE) -> tantivy.Query:
        """[lo, hi), open where a bound is None (tantivy refuses an exclusive flag
        on a missing bound, so an open upper end is "inclusive")."""
        return tantivy.Query.range_query(
            self.schema,
            field,
            tantivy.FieldType.Date,
            lower_bound=lo,
            upper_bound=hi,
            include_lower=True,
            include_upper=hi is None,
        )

    def _aggregate(self, searcher: tantivy.Searcher, q: EngineQuery, generation: tuple) -> _PendingCounts:
        """Start the facet counts the cache lacks (on the search threads, beside the
        hits); the caller collects them, or cancels them if the search fails.

        Counts under the same filters share one aggregation pass: unfiltered, or for
        every facet whose own filter is not set, that is one pass for all of them.
        """
        groups: dict[tuple[Filter, ...], list[Count]] = {}
        for c in q.counts:
            groups.setdefault(c.filters, []).append(c)
        pool = self._executor()
        pending = _PendingCounts(self.facet_cache, generation)
        for filters, counts in groups.items():
            key = (q.match, tuple(counts))  # what the counts depend on: not sort, page or weights
            cached = self.facet_cache.get(generation, key)
            if cached is not None:
                pending.parts.append((key, cached))
                continue
            compute = functools.partial(self._count, searcher, self._compile(q.match, filters), counts)
            pending.parts.append((key, pool.submit(compute) if pool else compute))
        return pending

    @staticmethod
    def _count(searcher: tantivy.Searcher, query: tantivy.Query, counts: list[Count]) -> dict[str, list[tuple[Any, int]]]:
        aggs = {}
        for c in counts:
            terms: dict[str, Any] = {"field": c.field, "size": c.size}
            if c.by_key:
                terms["order"] = {"_key": "asc"}
            aggs[c.name] = {"terms": terms}
        res = searcher.aggregate(query, aggs)
        return {c.name: [(b["key"], int(b["doc_count"])) for b in res.get(c.name, {}).get("buckets", [])] for c in counts}

    def search(self, q: EngineQuery) -> EngineResult:
        t0 = time.perf_counter()
        try:
            _, searcher, generation = self._searcher_at()
        except IndexMissing:
            raise
        except Exception as exc:  # noqa: BLE001
            raise EngineUnavailable(f"tantivy index unreadable: {exc}") from exc
        query = self._compile(q.match, q.filters)
        order: dict[str, Any] = {}
        if q.sort in ("newest", "oldest"):
            order["order_by_field"] = DATE
            order["order"] = tantivy.Order.Desc if q.sort == "newest" else tantivy.Order.Asc
        elif q.ranked:
            order["weight_by_field"] = MULTIPLIER
        pending = self._aggregate(searcher, q, generation) if q.counts else None
        try:
            top, total = self._top(searcher, query, q, order, generation)
            hits = []
            for key, addr in top:
                doc = self._from_document(searcher.doc(addr).to_dict(), hit=True)
                score = float(key) if "order_by_field" not in order else None
                expl = None
                if q.explain:
                    try:
                        expl = query.explain(searcher, addr).to_json()
                    except Exception as exc:  # noqa: BLE001 - explain is best effort
                        expl = str(exc)
                hits.append(EngineHit(doc=doc, score=score, explanation=expl))
        except BaseException:
            if pending is not None:
                pending.cancel()
            raise
        facets, failed = pending.collect() if pending is not None else ({}, ())
        took = (time.perf_counter() - t0) * 1000
        return EngineResult(total=total, hits=hits, facets=facets, took_ms=took, failed=failed)

    def get(self, doc_id: str) -> StoredDoc | None:
        _, searcher = self._searcher()
        res = searcher.search(tantivy.Query.term_query(self.schema, "id", doc_id), 1, count=False)
        if not res.hits:
            return None
        return self._from_document(searcher.doc(res.hits[0][1]).to_dict())

    def close(self) -> None:
        with self._lock:
            self._index = None
            self._index_name = None
            if self._pool is not None and self._pool_pid == os.getpid():
                self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

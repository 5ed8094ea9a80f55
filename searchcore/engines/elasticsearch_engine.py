"""The production engine: Elasticsearch 9 through elasticsearch-py 9.

Text arrives already analysed: each token stream is sent as space-joined tokens
into a ``whitespace``-analysed field, so Elasticsearch never re-segments Chinese
and its positions equal ours (phrases over the char stream are exact substrings).

Indices are versioned (``<alias>-<timestamp>``) behind an alias. A rebuild loads a
new index with replicas 0 and refresh off, restores both, checks the document
count, and swaps the alias in one ``_aliases`` call; until then readers see the
old index, and a failed rebuild deletes only the new one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, TransportError
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch.helpers import streaming_bulk

from ..config import Settings
from ..fields import DATE, FIELDS, HIT_FIELDS, STORED, Field, is_current_schema
from ..model import IndexedArticle, StoredDoc
from ..query import AnyValue, Bool, Clause, Constant, DateRange, MatchAll, Tokens, filtered
from .base import EngineError, EngineHit, EngineQuery, EngineResult, EngineUnavailable, IndexMissing
from .common import outdated, physical_name

log = logging.getLogger(__name__)


def _mapping(f: Field) -> dict[str, Any]:
    """One row of ``searchcore.fields`` as an Elasticsearch field (the table says why)."""
    if f.kind in ("id", "keyword"):
        return {"type": "keyword"}
    if f.kind == "text":
        return {"type": "text", "index": False}
    if f.kind == "stream":
        # single characters and words need frequencies only; phrases need positions
        return {"type": "text", "analyzer": "whitespace", "index_options": "positions" if f.positions else "freqs"}
    if f.kind == "date":
        return {"type": "date"}
    if f.kind == "int":
        return {"type": "integer"} if f.indexed else {"type": "integer", "index": False}
    if f.kind == "prior":
        # read only as doc values, by function_score's field_value_factor: never
        # searched, so no points (the BKD tree a range query would read)
        return {"type": "float", "index": False}
    raise ValueError(f"no Elasticsearch mapping for kind {f.kind!r}")  # pragma: no cover


# The stored _source is Elasticsearch's copy of what the table stores, as tantivy's
# document store is: the fields that are not ``stored`` (token streams, the site, the
# calendar fields, the priors) are indexed from the request and left out of it.
# Nothing reads them back (hits and ``get`` name stored fields only; a rebuild reads
# the posts, never this index), and their copies there were 55 % of the index:
# the streams are the text again as words, as characters and as pairs
# (docs/scaling-bytes.md). Elasticsearch 9.5 does keep the whole request as
# ``_recovery_source`` (for a replica's operation-based recovery), more than the
# exclusion saves, but only until the shard's retention lease has passed the
# document and a merge rewrites its segment. Measured at 20,000 articles: none left
# after a merge once the lease had passed, and the index as the indexer leaves it
# (its own merges, none forced) takes 42 % of the bytes it took with the streams
# kept; force-merged, 45 %.
_SOURCE_EXCLUDES = [f.name for f in FIELDS if not f.stored]
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "_source": {"excludes": _SOURCE_EXCLUDES},
    "properties": {f.name: _mapping(f) for f in FIELDS},
}
# A hit shows a title and a snippet: it never gets the HTML body (see
# base.Engine.search); the article page asks for it with ``get``. Named as
# includes: the node filters a source faster that way than by excludes (a
# 1.1 MB post's hit: 18.8 ms against 24.2; 7.3 without any source, which is the
# node parsing the source). An index built before the streams left the stored
# _source still holds them: includes keep them out of every response there too.
_HIT_SOURCE = list(HIT_FIELDS)
_DOC_SOURCE = [f.name for f in STORED]


class ElasticsearchWriter:
    # How long a bulk item waits for its shard to be available (the node's own
    # default); past it the item fails with 503 and the run stops (see _bulk).
    shard_wait = "1m"

    def __init__(self, engine: ElasticsearchEngine, index: str, rebuild: bool) -> None:
        self.engine = engine
        self.es = engine.es
        self.index = index
        self.rebuild = rebuild
        self.written: set[str] = set()
        if not rebuild:
            # Refresh only at our commits while this writer runs: Elasticsearch's
            # one-second refresh would otherwise cut a tiny segment every second of
            # a long run, and merging them back costs more than writing them. (A
            # rebuild's new index is created with refresh off.)
            self._set_refresh("-1")

    def upsert(self, docs: Iterable[IndexedArticle]) -> list[tuple[str, str]]:
        refused: list[tuple[str, str]] = []
        actions = []
        for ia in docs:
            doc_id = ia.article.id
            if len(doc_id.encode("utf-8")) > 512:  # ES would fail the whole bulk request
                refused.append((doc_id, "Elasticsearch refuses ids over 512 bytes: shorten the file name"))
                continue
            actions.append({"_op_type": "index", "_index": self.index, "_id": doc_id, "_source": self.engine.to_source(ia)})
        try:
            return refused + self._bulk(actions)
        except BadRequestError:
            # A request-level 400 names no document: send one by one to find it.
            for action in actions:
                try:
                    refused += self._bulk([action])
                except BadRequestError as exc:
                    refused.append((action["_id"], f"Elasticsearch refused the document: {exc.message}"))
            return refused

    def _bulk(self, actions: Iterable[dict]) -> list[tuple[str, str]]:
        """Bulk in chunks sized by count and bytes; 429s are retried with back-off."""
        refused: list[tuple[str, str]] = []
        try:
            for ok, item in streaming_bulk(
                self.es,
                actions,
                chunk_size=1000,
                max_chunk_bytes=8 * 1024 * 1024,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=5,
                initial_backoff=1,
                max_backoff=30,
                timeout=self.shard_wait,
            ):
                op, info = next(iter(item.items()))
                if ok:
                    if op == "index":
                        self.written.add(str(info.get("_id")))
                elif not (op == "delete" and info.get("status") == 404):
                    err = info.get("error")
                    reason = err.get("reason") if isinstance(err, dict) else str(err)
                    status = int(info.get("status") or 500)
                    if status >= 500:
                        # The node's failure (a shard it cannot reach, a node that
                        # stopped), not the post's: stop the run, so a rebuild never
                        # publishes an index missing these articles and a post is
                        # never filed as rejected for it. (A 429 still refused after
                        # the retries is the post's: one too large for the node's
                        # indexing pressure would otherwise stop every run.)
                        raise EngineUnavailable(
                            f"Elasticsearch could not store {info.get('_id')} ({status}): {reason}; "
                            "the run stops (a rebuild leaves readers on the old index; the next run retries)"
                        )
                    refused.append((str(info.get("_id")), f"Elasticsearch refused the document ({status}): {reason}"))
        except (ESConnectionError, TransportError) as exc:  # a 400 (ApiError) passes through to upsert
            raise EngineUnavailable(f"Elasticsearch bulk load failed: {exc}") from exc
        return refused

    def delete(self, ids: Iterable[str]) -> None:
        self._bulk({"_op_type": "delete", "_index": self.index, "_id": i} for i in ids)

    def commit(self) -> None:
        if not self.rebuild:
            self.engine._call(self.es.indices.refresh, index=self.index)

    def publish(self, keep_old: bool = False) -> None:
        es = self.es
        call = self.engine._call
        call(
            es.indices.put_settings,
            index=self.index,
            settings={"index": {"refresh_interval": "1s", "number_of_replicas": self.engine.replicas}},
        )
        call(es.indices.refresh, index=self.index)
        count = call(es.count, index=self.index)["count"]
        if count != len(self.written):
            raise EngineError(f"new index {self.index} holds {count} documents, expected {len(self.written)}: not swapping")
        self._wait_green()
        old = self.engine.physical_index()
        actions: list[dict] = [{"add": {"index": self.index, "alias": self.engine.alias, "is_write_index": True}}]
        if old and old != self.index:
            actions.insert(0, {"remove": {"index": old, "alias": self.engine.alias}})
        call(es.indices.update_aliases, actions=actions)
        if old and old != self.index and not keep_old:
            call(es.indices.delete, index=old, ignore_unavailable=True)

    def _wait_green(self) -> None:
        """Readers move to the new index only once every replica is allocated: a
        swap to a yellow index would leave them on one copy of each shard.

        The timeout counts time without progress, not in all: copying the replicas
        of a large index takes long (at Elasticsearch's default 40 MB/s per node,
        about 11 minutes at 10 M articles: docs/scaling.md), and the wait goes on
        while shard copies are being made or become active; it gives up when for
        SEARCH_GREEN_TIMEOUT seconds none is (a replica no node can hold)."""
        timeout = self.engine.settings.elasticsearch_green_timeout
        step = min(timeout, 30.0)
        deadline = time.monotonic() + timeout
        active = -1
        while True:
            # a timed-out wait answers 408 with the health itself: read it, not an error
            health = self.engine._call(
                self.es.options(request_timeout=step + 30, ignore_status=408).cluster.health,
                index=self.index,
                wait_for_status="green",
                timeout=f"{step:g}s",
            )
            if not health.get("timed_out") and health.get("status") == "green":
                return
            copying = int(health.get("initializing_shards") or 0) + int(health.get("relocating_shards") or 0)
            now_active = int(health.get("active_shards") or 0)
            if copying or 0 <= active < now_active:
                deadline = time.monotonic() + timeout  # progress: the clock starts again
            active = max(active, now_active)
            if time.monotonic() >= deadline:
                raise EngineError(
                    f"new index {self.index} is {health.get('status')} after {timeout:g} s without progress "
                    f"({health.get('unassigned_shards', '?')} shard copies unassigned: "
                    f"{self.engine.replicas} replicas need {self.engine.replicas + 1} nodes); "
                    "readers stay on the old index: add nodes or lower SEARCH_REPLICAS"
                )

    def abort(self) -> None:
        if self.rebuild:
            try:
                self.es.indices.delete(index=self.index, ignore_unavailable=True)
            except Exception as exc:  # noqa: BLE001 - best effort; the alias never moved
                log.warning("could not delete unfinished index %s: %s", self.index, exc)

    def close(self) -> None:
        if not self.rebuild:
            self._set_refresh("1s")

    def _set_refresh(self, interval: str) -> None:
        self.engine._call(self.es.indices.put_settings, index=self.index, settings={"index": {"refresh_interval": interval}})


class ElasticsearchEngine:
    name = "elasticsearch"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.alias = settings.index
        self.replicas = settings.elasticsearch_replicas
        # from+size beyond this walks with search_after (deep pages stay cheap for ES)
        self.window = settings.elasticsearch_max_result_window
        kwargs: dict[str, Any] = {"request_timeout": 30, "retry_on_timeout": True, "max_retries": 3}
        if settings.elasticsearch_api_key:
            kwargs["api_key"] = settings.elasticsearch_api_key
        elif settings.elasticsearch_username:
            kwargs["basic_auth"] = (settings.elasticsearch_username, settings.elasticsearch_password or "")
        if settings.elasticsearch_ca_certs:
            kwargs["ca_certs"] = settings.elasticsearch_ca_certs
        # every node named: requests are spread over them, and one that cannot be
        # reached is retried on another (max_retries)
        self.es = Elasticsearch(settings.elasticsearch_hosts, **kwargs)

    # -- plumbing -----------------------------------------------------------
    def _call(self, fn, **kw):
        try:
            return fn(**kw)
        except NotFoundError as exc:
            if _is_missing_index(exc):
                raise self._missing() from exc
            raise
        except (ESConnectionError, TransportError) as exc:
            raise EngineUnavailable(f"Elasticsearch at {self.settings.elasticsearch_url} is unreachable: {exc}") from exc
        except ApiError as exc:
            raise _refused(getattr(exc, "status_code", 500), exc, self.alias) from exc

    def _missing(self) -> IndexMissing:
        return IndexMissing(f"no index {self.alias!r} in Elasticsearch: run `indexer index PATH` first")

    def physical_index(self) -> str | None:
        try:
            res = self._call(self.es.indices.get_alias, name=self.alias)
        except (IndexMissing, NotFoundError):
            return None
        names = sorted(res.keys())
        return names[-1] if names else None

    def health(self) -> dict[str, Any]:
        try:
            quick = self.es.options(request_timeout=5, max_retries=0)
            h = quick.cluster.health()
            count = quick.count(index=self.alias)["count"]
        except NotFoundError:
            # The node answers: it can serve, there is just nothing to search yet.
            return {"ok": False, "engine": self.name, "error": f"no index {self.alias!r} yet", "index_missing": True}
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return {"ok": False, "engine": self.name, "error": f"{type(exc).__name__}: {exc}"}
        ok = h.get("status") in ("green", "yellow")
        return {"ok": ok, "engine": self.name, "cluster": h.get("status"), "index": self.alias, "documents": count}

    def layout(self) -> dict[str, Any]:
        """The live index's shards and replicas as the node has them (an index built
        before a change of SEARCH_SHARDS keeps its own until a reindex), and the
        cluster's nodes and status: for ``indexer status``, not for every health
        probe. Empty when the node or the index cannot tell."""
        quick = self.es.options(request_timeout=5, max_retries=0)
        try:
            got = quick.indices.get_settings(index=self.alias, name="index.number_of_*")
            h = quick.cluster.health()
        except Exception:  # noqa: BLE001 - status reports, never raises
            return {}
        index = next(iter(got.values()), {}).get("settings", {}).get("index", {})
        return {
            "shards": int(index.get("number_of_shards", 0)),
            "replicas": int(index.get("number_of_replicas", 0)),
            "nodes": h.get("number_of_nodes"),
            "cluster": h.get("status"),
        }

    def count(self) -> int:
        try:
            return int(self._call(self.es.count, index=self.alias)["count"])
        except IndexMissing:
            return 0

    def _create(self, name: str, loading: bool) -> None:
        settings = {
            "number_of_shards": self.settings.search_shards,
            "number_of_replicas": 0 if loading else self.replicas,
            "refresh_interval": "-1" if loading else "1s",
            "max_result_window": self.window,
            # The default codec, not "best_compression": that would shrink the stored
            # _source from 2,509 to 952 bytes an article, but every page's ten hits
            # would take three times as long to fetch (the node's median 3.0 → 9.0 ms
            # at 20,000 articles, 6.5 ms before the streams left _source:
            # docs/scaling-bytes.md).
        }
        self._call(self.es.indices.create, index=name, settings={"index": settings}, mappings=MAPPINGS)

    def writer(self, rebuild: bool = False) -> ElasticsearchWriter:
        current = self.physical_index()
        if rebuild or current is None:
            name = physical_name(self.alias)
            self._create(name, loading=rebuild and current is not None)
            if current is None:
                self._call(
                    self.es.indices.update_aliases,
                    actions=[{"add": {"index": name, "alias": self.alias, "is_write_index": True}}],
                )
                return ElasticsearchWriter(self, name, rebuild=False)
            return ElasticsearchWriter(self, name, rebuild=True)
        mapping = self._call(self.es.indices.get_mapping, index=current)
        props = next(iter(mapping.values()), {}).get("mappings", {}).get("properties", {})
        if not is_current_schema({k: v.get("index_options", "positions") == "positions" for k, v in props.items()}):
            raise EngineError(outdated(current))
        return ElasticsearchWriter(self, current, rebuild=False)

    @staticmethod
    def to_source(ia: IndexedArticle) -> dict[str, Any]:
        src: dict[str, Any] = {}
        for f in FIELDS:
            v = f.value(ia)
            if f.kind == "date":
                v = v.astimezone(UTC).isoformat()
            elif f.kind == "keyword":  # an empty keyword is no value (no "" bucket in the counts)
                v = [x for x in v if x] if f.many else (v or None)
            src[f.name] = v  # a prior: weighted at query time (fields.prior_multiplier)
        return src

    # -- queries --------------------------------------------------------------
    @classmethod
    def _translate(cls, c: Clause) -> dict[str, Any]:
        """A clause of the neutral tree (``searchcore.query``) in the query DSL."""
        if isinstance(c, Tokens):
            if c.phrase:  # match_phrase wants every position: ``at`` is tantivy's shortcut
                phrase = {"query": " ".join(c.tokens), "analyzer": "whitespace", "boost": c.boost}
                return {"match_phrase": {c.field: phrase | ({"slop": c.slop} if c.slop else {})}}
            return {"term": {c.field: {"value": c.tokens[0], "boost": c.boost}}}
        if isinstance(c, AnyValue):
            return {"terms": {c.field: list(c.values)}}
        if isinstance(c, DateRange):
            rng: dict[str, Any] = {}
            if c.lo:
                rng["gte"] = c.lo.astimezone(UTC).isoformat()
            if c.hi:
                rng["lt"] = c.hi.astimezone(UTC).isoformat()
            return {"range": {c.field: rng}}
        if isinstance(c, MatchAll):
            return {"match_all": {}}
        if isinstance(c, Constant):
            return {"constant_score": {"filter": cls._translate(c.clause), "boost": c.score}}
        return cls._bool(c)

    @classmethod
    def _bool(cls, c: Bool) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for key, clauses in (("must", c.must), ("should", c.should), ("must_not", c.must_not), ("filter", c.filter)):
            if clauses:
                body[key] = [cls._translate(x) for x in clauses]
        if c.should and not c.must:
            body["minimum_should_match"] = 1  # beside a filter, ES would make them optional
        if not c.must and not c.should and not c.filter:
            body["must"] = [{"match_all": {}}]
        if c.boost != 1.0:
            body["boost"] = c.boost
        return {"bool": body}

    def _query(self, q: EngineQuery) -> dict[str, Any]:
        """The hits' query: match and filters (scored 0), weighted by recency."""
        query = self._translate(filtered(q.match, q.filters))
        functions = [
            {"field_value_factor": {"field": name, "factor": weight, "modifier": "ln2p", "missing": 0}}
            for name, weight in q.priors
            if weight > 0
        ]
        if functions and q.ranked:
            # score × Π ln(2 + w × value): tantivy's weight_by_field gives score ×
            # Π log2(2 + w × value), proportional, the same ranking (fields.prior_multiplier).
            scoring = {"functions": functions, "score_mode": "multiply", "boost_mode": "multiply"}
            query = {"function_score": {"query": query, **scoring}}
        return query

    def _body(self, q: EngineQuery) -> dict[str, Any]:
        """The hits: query, sort and page; no counts."""
        body: dict[str, Any] = {
            "query": self._query(q),
            "track_total_hits": True,
            "from": q.offset,
            "size": q.limit,
            "_source": {"includes": _HIT_SOURCE},
        }
        if q.sort in ("newest", "oldest"):
            body["sort"] = [{DATE: "desc" if q.sort == "newest" else "asc"}, {"id": "asc"}]
        if q.explain:
            body["explain"] = True
        return body

    def _count_body(self, q: EngineQuery) -> dict[str, Any]:
        """The facet counts, as a request of their own: unscored (filter context)
        and with ``size: 0``, the kind Elasticsearch's shard request cache keeps
        (by default) until the next refresh, as tantivy's facet cache does."""
        aggs: dict[str, Any] = {}
        for c in q.counts:
            terms: dict[str, Any] = {"field": c.field, "size": c.size}
            if c.by_key:
                terms["order"] = {"_key": "asc"}
            flt = {"bool": {"filter": [self._translate(f) for f in c.filters]}} if c.filters else {"match_all": {}}
            aggs[c.name] = {"filter": flt, "aggs": {"v": {"terms": terms}}}
        query = {"bool": {"filter": [self._translate(q.match)]}} if not isinstance(q.match, MatchAll) else {"match_all": {}}
        return {"query": query, "size": 0, "track_total_hits": False, "aggs": aggs}

    def _msearch(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any] | EngineError]:
        """Several searches in one round trip (the node runs them in parallel); an
        answer that failed comes back as its error, for the caller to raise or not."""
        searches: list[dict[str, Any]] = []
        for body in bodies:
            searches += [{"index": self.alias}, body]
        out: list[dict[str, Any] | EngineError] = []
        for r in self._call(self.es.msearch, searches=searches)["responses"]:
            err = r.get("error")
            if err is None:
                out.append(r)
            elif isinstance(err, dict) and err.get("type") == "index_not_found_exception":
                out.append(self._missing())
            else:
                out.append(_refused(r.get("status", 500), err, self.alias))
        return out

    def search(self, q: EngineQuery) -> EngineResult:
        t0 = time.perf_counter()
        body = self._body(q)
        deep = q.offset + q.limit > self.window
        if deep:
            body.update({"from": 0, "size": 0})
        counted: dict[str, Any] | EngineError = {}
        if q.counts:
            res, counted = self._msearch([body, self._count_body(q)])
            if isinstance(res, EngineError):
                raise res
        else:
            res = self._call(self.es.search, index=self.alias, **body)
        raw_hits = self._search_after(q, body) if deep else res["hits"]["hits"]
        hits = [
            EngineHit(doc=self._stored(h["_source"], hit=True), score=h.get("_score"), explanation=h.get("_explanation"))
            for h in raw_hits
        ]
        failed: tuple[str, ...] = ()
        if isinstance(counted, EngineError):  # degrade: the hits stand, the facets say so
            log.warning("facet counts failed: %s", counted)
            counted, failed = {}, tuple(c.name for c in q.counts)
        facets = {}
        for c in q.counts:
            buckets = counted.get("aggregations", {}).get(c.name, {}).get("v", {}).get("buckets", [])
            facets[c.name] = [(b["key"], int(b["doc_count"])) for b in buckets]
        total = int(res["hits"]["total"]["value"])
        return EngineResult(total=total, hits=hits, facets=facets, took_ms=(time.perf_counter() - t0) * 1000, failed=failed)

    def _search_after(self, q: EngineQuery, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Reach a page past ``max_result_window`` by walking sorted chunks.

        Each step carries only sort keys (no _source), so a deep page costs a few
        light requests instead of an error or a huge from+size.
        """
        walk: dict[str, Any] = {"query": body["query"], "track_total_hits": False}
        walk["sort"] = body.get("sort") or ["_score", {"id": "asc"}]
        cursor = None
        skipped = 0
        while skipped < q.offset:
            size = min(self.window, q.offset - skipped)
            step = dict(walk, size=size, _source=False)
            if cursor is not None:
                step["search_after"] = cursor
            got = self._call(self.es.search, index=self.alias, **step)["hits"]["hits"]
            if not got:
                return []
            cursor = got[-1]["sort"]
            skipped += len(got)
        page = dict(walk, size=q.limit, _source=body["_source"])
        if cursor is not None:
            page["search_after"] = cursor
        return self._call(self.es.search, index=self.alias, **page)["hits"]["hits"]

    @staticmethod
    def _stored(src: dict[str, Any], hit: bool = False) -> StoredDoc:
        values = dict(src)
        if isinstance(values.get(DATE), str):
            values[DATE] = datetime.fromisoformat(values[DATE].replace("Z", "+00:00"))
        return StoredDoc.from_values(values, hit=hit)

    def get(self, doc_id: str) -> StoredDoc | None:
        try:
            res = self._call(self.es.get, index=self.alias, id=doc_id, source_includes=_DOC_SOURCE)
        except NotFoundError:
            return None
        return self._stored(res["_source"])

    def close(self) -> None:
        self.es.close()


def _refused(status: int, detail: object, alias: str = "") -> EngineError:
    """An error answer from Elasticsearch: busy or down (readers get a 503 and
    retry), an index built before a field recorded what a query reads (readers see
    "no index" as with tantivy, the operator the reason), or a real error."""
    if "indexed without position data" in str(detail):
        return IndexMissing(outdated(alias or "behind the alias", rebuild_hint=False))
    if status in (429, 502, 503, 504):
        return EngineUnavailable(f"Elasticsearch is overloaded or unavailable: {detail}")
    return EngineError(f"Elasticsearch error: {detail}")


def _is_missing_index(exc: NotFoundError) -> bool:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return err.get("type") == "index_not_found_exception"
    return "index_not_found" in str(exc)

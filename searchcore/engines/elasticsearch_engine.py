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
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError, TransportError
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch.helpers import streaming_bulk

from ..analysis import Term
from ..config import Settings
from ..highlight import WINDOW_CHARS
from ..model import DEFAULT_OFFSET_MINUTES, IndexedArticle
from .base import (
    EngineError,
    EngineHit,
    EngineQuery,
    EngineResult,
    EngineUnavailable,
    IndexMissing,
    date_parts,
    stored_values,
)
from .common import freshness, is_current_schema, outdated, physical_name

log = logging.getLogger(__name__)

_UNINDEXED = {"type": "text", "index": False}
# Token streams are indexed, never shown: leave them out of every response. (They
# stay in the stored _source: excluding them there makes Elasticsearch keep a
# second, full copy as _recovery_source, which costs more than it saves.)
_TOKEN_FIELDS = ["*_words", "*_chars", "*_pairs"]
# A hit shows a title and a snippet: it never gets the HTML body (see
# base.Engine.search); the article page asks for it with ``get``. Named as
# includes: the node filters a source faster that way than by excludes (a
# 1.1 MB post's hit: 18.8 ms against 24.2; 7.3 without any source, which is the
# node parsing the source, token streams and all).
_HIT_FIELDS = ["id", "title", "body_text", "date", "categories", "tags", "source_url", "path", "content_hash", "offset"]
MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "id": {"type": "keyword"},
        "title": _UNINDEXED,
        "body_html": _UNINDEXED,
        "body_text": _UNINDEXED,
        "source_url": {"type": "keyword", "index": False, "doc_values": False},
        "path": {"type": "keyword", "index": False, "doc_values": False},
        "content_hash": {"type": "keyword"},
        "categories": {"type": "keyword"},
        "tags": {"type": "keyword"},
        "date": {"type": "date"},
        "year": {"type": "integer"},
        "month": {"type": "integer"},
        "day": {"type": "integer"},
        "offset": {"type": "integer", "index": False},
        "fresh": {"type": "float"},
        "title_words": {"type": "text", "analyzer": "whitespace", "index_options": "freqs"},
        "body_words": {"type": "text", "analyzer": "whitespace", "index_options": "freqs"},
        # single characters are term lookups; two are one pair, more a phrase of pairs
        "title_chars": {"type": "text", "analyzer": "whitespace", "index_options": "freqs"},
        "body_chars": {"type": "text", "analyzer": "whitespace", "index_options": "freqs"},
        "title_pairs": {"type": "text", "analyzer": "whitespace"},
        "body_pairs": {"type": "text", "analyzer": "whitespace"},
    },
}
# Our facet fields are named after the URL parameter in the core; map them here.
_FIELD = {"category": "categories", "tag": "tags"}


class ElasticsearchWriter:
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
            ):
                op, info = next(iter(item.items()))
                if ok:
                    if op == "index":
                        self.written.add(str(info.get("_id")))
                elif not (op == "delete" and info.get("status") == 404):
                    err = info.get("error")
                    reason = err.get("reason") if isinstance(err, dict) else str(err)
                    refused.append((str(info.get("_id")), f"Elasticsearch refused the document ({info.get('status')}): {reason}"))
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
        old = self.engine.physical_index()
        actions: list[dict] = [{"add": {"index": self.index, "alias": self.engine.alias, "is_write_index": True}}]
        if old and old != self.index:
            actions.insert(0, {"remove": {"index": old, "alias": self.engine.alias}})
        call(es.indices.update_aliases, actions=actions)
        if old and old != self.index and not keep_old:
            call(es.indices.delete, index=old, ignore_unavailable=True)

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
        self.es = Elasticsearch(settings.elasticsearch_url, **kwargs)

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
            raise _refused(getattr(exc, "status_code", 500), exc) from exc

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
            return {"ok": False, "engine": self.name, "error": f"no index {self.alias!r} yet"}
        except Exception as exc:  # noqa: BLE001 - health reports, never raises
            return {"ok": False, "engine": self.name, "error": f"{type(exc).__name__}: {exc}"}
        ok = h.get("status") in ("green", "yellow")
        return {"ok": ok, "engine": self.name, "cluster": h.get("status"), "index": self.alias, "documents": count}

    def count(self) -> int:
        try:
            return int(self._call(self.es.count, index=self.alias)["count"])
        except IndexMissing:
            return 0

    def _create(self, name: str, loading: bool) -> None:
        settings = {
            "number_of_shards": 1,
            "number_of_replicas": 0 if loading else self.replicas,
            "refresh_interval": "-1" if loading else "1s",
            "max_result_window": self.window,
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
        if not is_current_schema(props):
            raise EngineError(outdated(current))
        return ElasticsearchWriter(self, current, rebuild=False)

    def to_source(self, ia: IndexedArticle) -> dict[str, Any]:
        src = stored_values(ia)
        src["date"] = src["date"].astimezone(UTC).isoformat()
        src.update(date_parts(ia.day))
        src["fresh"] = freshness(ia.article.date)  # weighted at query time
        src["title_words"] = ia.title_words
        src["title_chars"] = ia.title_chars
        src["body_words"] = ia.body_words
        src["body_chars"] = ia.body_chars
        src["title_pairs"] = ia.title_pairs
        src["body_pairs"] = ia.body_pairs
        return src

    # -- queries --------------------------------------------------------------
    @staticmethod
    def _term_query(t: Term, boost: float, body_words_only: bool = False) -> dict:
        def chars(field: str, b: float) -> dict:
            stream, tokens = t.substring
            if len(tokens) == 1:
                return {"term": {f"{field}_{stream}": {"value": tokens[0], "boost": b}}}
            return {"match_phrase": {f"{field}_{stream}": {"query": " ".join(tokens), "analyzer": "whitespace", "boost": b}}}

        def words(field: str, b: float) -> dict:
            if len(t.words) == 1:
                return {"term": {field: {"value": t.words[0].replace(" ", "_"), "boost": b}}}
            return {"bool": {"must": [{"term": {field: w.replace(" ", "_")}} for w in t.words], "boost": b}}

        should = [chars("title", boost)] if body_words_only else [chars("title", boost), chars("body", 1.0)]
        if t.words:
            should += [words("title_words", boost * 2), words("body_words", 2.0)]
        return {"bool": {"should": should, "minimum_should_match": 1}}

    def _text_query(self, q: EngineQuery) -> dict:
        must, must_not, should = [], [], []
        for t in q.terms:
            clause = self._term_query(t, q.title_boost, q.body_words_only)
            (must_not if t.negate else should if q.any_terms else must).append(clause)
        body: dict[str, Any] = {}
        if must:
            body["must"] = must
        if should:
            body["should"] = should
            body["minimum_should_match"] = 1
        if must_not:
            body["must_not"] = must_not
        if not must and not should:
            body["must"] = [{"match_all": {}}]
        query: dict = {"bool": body}
        if q.recency_weight > 0 and q.terms and q.sort == "relevance":
            # score * ln(2 + w * freshness): tantivy's weight_by_field is
            # score * log2(2 + stored), the same ranking (see common.freshness).
            query = {
                "function_score": {
                    "query": query,
                    "field_value_factor": {"field": "fresh", "factor": q.recency_weight, "modifier": "ln2p", "missing": 0},
                    "boost_mode": "multiply",
                }
            }
        return query

    @staticmethod
    def _filter_clauses(q: EngineQuery, skip: str | None = None) -> list[dict]:
        out = []
        for field, values in q.filters.items():
            if values and field != skip:
                out.append({"terms": {_FIELD.get(field, field): list(values)}})
        if skip != "date" and (q.date_from or q.date_to):
            rng: dict[str, Any] = {}
            if q.date_from:
                rng["gte"] = q.date_from.astimezone(UTC).isoformat()
            if q.date_to:
                rng["lt"] = q.date_to.astimezone(UTC).isoformat()
            out.append({"range": {"date": rng}})
        return out

    def _body(self, q: EngineQuery) -> dict[str, Any]:
        """The hits: text query, filters (scored 0), sort and page; no counts."""
        query = self._text_query(q)
        filters = self._filter_clauses(q)
        if filters:
            query = {"bool": {"must": [query], "filter": filters}}
        body: dict[str, Any] = {
            "query": query,
            "track_total_hits": True,
            "from": q.offset,
            "size": q.limit,
            "_source": {"includes": _HIT_FIELDS},
        }
        if q.sort == "newest":
            body["sort"] = [{"date": "desc"}, {"id": "asc"}]
        elif q.sort == "oldest":
            body["sort"] = [{"date": "asc"}, {"id": "asc"}]
        if q.explain:
            body["explain"] = True
        return body

    def _facet_body(self, q: EngineQuery) -> dict[str, Any]:
        """The facet counts, as a request of their own: unscored (filter context)
        and with ``size: 0``, the kind Elasticsearch's shard request cache keeps
        (by default) until the next refresh, as tantivy's facet cache does."""
        aggs: dict[str, Any] = {}
        for f in q.facets:
            flt = self._filter_clauses(q, skip=f.own)  # disjunctive: ignore the facet's own filter
            terms: dict[str, Any] = {"field": _FIELD.get(f.field, f.field), "size": f.size}
            if f.order == "key":
                terms["order"] = {"_key": "asc"}
            aggs[f.name] = {"filter": {"bool": {"filter": flt}} if flt else {"match_all": {}}, "aggs": {"v": {"terms": terms}}}
        unweighted = replace(q, recency_weight=0.0)  # scores are not needed for counting
        query = {"bool": {"filter": [self._text_query(unweighted)]}} if q.terms else {"match_all": {}}
        return {"query": query, "size": 0, "track_total_hits": False, "aggs": aggs}

    def _msearch(self, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Several searches in one round trip (the node runs them in parallel)."""
        searches: list[dict[str, Any]] = []
        for body in bodies:
            searches += [{"index": self.alias}, body]
        out = []
        for r in self._call(self.es.msearch, searches=searches)["responses"]:
            err = r.get("error")
            if err is not None:
                if isinstance(err, dict) and err.get("type") == "index_not_found_exception":
                    raise self._missing()
                raise _refused(r.get("status", 500), err)
            out.append(r)
        return out

    def search(self, q: EngineQuery) -> EngineResult:
        t0 = time.perf_counter()
        body = self._body(q)
        deep = q.offset + q.limit > self.window
        if deep:
            body.update({"from": 0, "size": 0})
        if q.facets:
            res, counted = self._msearch([body, self._facet_body(q)])
        else:
            res, counted = self._call(self.es.search, index=self.alias, **body), {}
        raw_hits = self._search_after(q, body) if deep else res["hits"]["hits"]
        hits = [
            EngineHit(doc=self._from_source(h["_source"], hit=True), score=h.get("_score"), explanation=h.get("_explanation"))
            for h in raw_hits
        ]
        facets = {}
        for f in q.facets:
            buckets = counted.get("aggregations", {}).get(f.name, {}).get("v", {}).get("buckets", [])
            facets[f.name] = [(b["key"], int(b["doc_count"])) for b in buckets]
        total = res["hits"]["total"]["value"]
        return EngineResult(total=int(total), hits=hits, facets=facets, took_ms=(time.perf_counter() - t0) * 1000)

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
    def _from_source(src: dict[str, Any], hit: bool = False) -> dict[str, Any]:
        """A stored document as the search layer wants it; a ``hit``'s text is cut to
        WINDOW_CHARS (indexes built before stored_values bounded it hold it whole)."""
        out = {k: src.get(k) for k in ("id", "title", "body_html", "body_text", "source_url", "path", "content_hash")}
        for k in ("title", "body_html", "body_text", "source_url", "path", "content_hash"):
            out[k] = out[k] or ""
        if hit:
            out["body_text"] = out["body_text"][:WINDOW_CHARS]
        out["categories"] = list(src.get("categories") or [])
        out["tags"] = list(src.get("tags") or [])
        out["date"] = datetime.fromisoformat(src["date"].replace("Z", "+00:00"))
        out["offset"] = src.get("offset", DEFAULT_OFFSET_MINUTES)
        return out

    def get(self, doc_id: str) -> dict[str, Any] | None:
        try:
            res = self._call(self.es.get, index=self.alias, id=doc_id, source_excludes=_TOKEN_FIELDS)
        except NotFoundError:
            return None
        return self._from_source(res["_source"])

    def close(self) -> None:
        self.es.close()


def _refused(status: int, detail: object) -> EngineError:
    """An error answer from Elasticsearch: busy or down (readers get a 503 and
    retry) or a real error."""
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

"""Graded evaluation of the ranking: nDCG@10 and P@5 per kind of query.

Shared by tests/test_ranking.py and bench/eval_ranking.py. The graded set is
tests/fixtures/graded.yaml (queries, information needs, judgments 0/1/2 over a
pool of candidates); the corpus is the hand-written posts of
tests/fixtures/ranking plus the 300 synthetic posts (seed 11) the other tests use
as distractors. See docs/relevance.md.

* nDCG@10: gain = grade (0, 1 or 2), discount log2(rank + 1), normalised by the
  ideal ordering of the query's own judgments (its best ten grades). A document
  that was never judged counts 0.
* P@5: the share of the first five results judged 1 or 2 (a query with fewer
  than five results is still divided by five).

``baseline_ranking`` is the second pooling ranking: every post that contains
each wanted term's normalised text (and no excluded one), in title or text,
ranked by how often the terms occur (ties by id). It reads the posts directly,
with no engine.
"""

from __future__ import annotations

import math
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
RANKING_POSTS = FIXTURES / "ranking"
GRADED = FIXTURES / "graded.yaml"
SYNTHETIC_POSTS = 300
SYNTHETIC_SEED = 11
KINDS = ("exact-unspaced", "two-char", "multi-word", "traditional", "phrase", "mixed-script", "topic")
K_NDCG = 10
K_P = 5


FINDINGS = {
    "apart": "words far apart or in passing (新冠…疫苗)",
    "notice": "one-line notice naming the topic",
    "boundary": "two characters across a word boundary (台海军)",
    "links": "topic only in a related-links list",
}


def load_roles(path: Path = GRADED) -> dict[str, str]:
    """{doc id: finding} for the hand-written posts built around a finding."""
    roles = yaml.safe_load(path.read_text(encoding="utf-8"))["roles"]
    assert set(roles.values()) <= set(FINDINGS), roles
    return roles


def load_graded(path: Path = GRADED) -> list[dict[str, Any]]:
    """The graded queries: each has q, kind, need and judgments {id: grade}."""
    queries = yaml.safe_load(path.read_text(encoding="utf-8"))["queries"]
    for item in queries:
        assert item["kind"] in KINDS, item
        assert all(g in (0, 1, 2) for g in item["judgments"].values()), item
    return queries


def build_corpus(out: Path, synthetic: Path | None = None) -> Path:
    """``out`` filled with the ranking posts and the 300 synthetic distractors
    (copied from ``synthetic`` when given, else generated with seed 11)."""
    out.mkdir(parents=True, exist_ok=True)
    if synthetic is not None:
        shutil.copytree(synthetic, out, dirs_exist_ok=True)
    else:
        from synthetic import write_corpus

        write_corpus(out, SYNTHETIC_POSTS, seed=SYNTHETIC_SEED)
    for p in RANKING_POSTS.iterdir():
        shutil.copy(p, out / p.name)
    return out


def dcg(grades: list[int]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(grades))


def ndcg(ranked: list[str], judgments: dict[str, int], k: int = K_NDCG) -> float:
    ideal = dcg(sorted(judgments.values(), reverse=True)[:k])
    if ideal == 0:
        return 0.0
    return dcg([judgments.get(d, 0) for d in ranked[:k]]) / ideal


def precision(ranked: list[str], judgments: dict[str, int], k: int = K_P) -> float:
    return sum(1 for d in ranked[:k] if judgments.get(d, 0) >= 1) / k


@dataclass
class Figures:
    """Per query, per kind and overall figures of one ranking."""

    per_query: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    overall: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"per_kind": self.per_kind, "overall": self.overall, "per_query": self.per_query}


def score(rankings: dict[str, list[str]], queries: list[dict[str, Any]]) -> Figures:
    """Figures for ``rankings`` ({query: ranked ids}) against the judgments."""
    fig = Figures()
    by_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for item in queries:
        ranked = rankings[item["q"]]
        n, p = ndcg(ranked, item["judgments"]), precision(ranked, item["judgments"])
        fig.per_query[item["q"]] = {"kind": item["kind"], "ndcg10": n, "p5": p, "top10": ranked[:K_NDCG]}
        by_kind[item["kind"]].append((n, p))
    for kind in KINDS:
        vals = by_kind.get(kind)
        if vals:
            fig.per_kind[kind] = {
                "queries": len(vals),
                "ndcg10": sum(v[0] for v in vals) / len(vals),
                "p5": sum(v[1] for v in vals) / len(vals),
            }
    allv = [v for vals in by_kind.values() for v in vals]
    fig.overall = {"queries": len(allv), "ndcg10": sum(v[0] for v in allv) / len(allv), "p5": sum(v[1] for v in allv) / len(allv)}
    return fig


def intrusions(rankings: dict[str, list[str]], queries: list[dict[str, Any]], roles: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per finding, how often a post built around it and judged 0 for a query
    ranks in that query's top 5 (``top5``) and above the query's best-ranked
    article of grade 2 (``above_best``)."""
    out = {f: {"top5": 0, "above_best": 0} for f in FINDINGS}
    for item in queries:
        ranked, judged = rankings[item["q"]], item["judgments"]
        best = next((i for i, d in enumerate(ranked) if judged.get(d, 0) == 2), len(ranked))
        for i, d in enumerate(ranked[:K_NDCG]):
            role = roles.get(d)
            if role and judged.get(d, 0) == 0:
                out[role]["top5"] += i < K_P
                out[role]["above_best"] += i < best
    return out


def engine_rankings(searcher, queries: list[dict[str, Any]], k: int = K_NDCG) -> dict[str, list[str]]:
    """The ids a ``searchcore.search.Searcher`` ranks first for each query."""
    from searchcore.search import SearchRequest

    out = {}
    for item in queries:
        query = searcher.engine_query(SearchRequest(q=item["q"]), limit=k, facets=False)
        out[item["q"]] = [h.doc.id for h in searcher.engine.search(query).hits]
    return out


def evaluate(searcher, queries: list[dict[str, Any]] | None = None) -> Figures:
    queries = queries if queries is not None else load_graded()
    return score(engine_rankings(searcher, queries), queries)


def read_posts(folder: Path) -> dict[str, tuple[str, str]]:
    """{id: (normalised title, normalised text)} of every post that parses."""
    from searchcore.analysis import normalize
    from searchcore.posts import Rejected, parse_post

    out = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        try:
            a = parse_post(p.read_bytes(), p.name)
        except Rejected:
            continue
        out[a.id] = (normalize(a.title), normalize(a.body_text))
    return out


def baseline_ranking(q: str, posts: dict[str, tuple[str, str]], k: int = K_NDCG) -> list[str]:
    """Posts containing every wanted term's text and no excluded one, by occurrences."""
    from searchcore.analysis import parse_query

    terms = parse_query(q)
    wanted = [t.text for t in terms if not t.negate]
    excluded = [t.text for t in terms if t.negate]
    scored = []
    for doc_id, (title, text) in posts.items():
        whole = title + "\n" + text
        if any(x in whole for x in excluded) or not all(w in whole for w in wanted):
            continue
        scored.append((-sum(whole.count(w) for w in wanted), doc_id))
    return [d for _, d in sorted(scored)[:k]]


def table(figures: dict[str, Figures], title: str = "") -> str:
    """A Markdown table: one row per kind, nDCG@10 and P@5 per engine."""
    names = list(figures)
    head = "| kind | queries | " + " | ".join(f"nDCG@10 {n} | P@5 {n}" for n in names) + " |"
    rule = "| --- | ---: | " + " | ".join("---: | ---:" for _ in names) + " |"
    rows = [head, rule]
    first = figures[names[0]]
    for kind in KINDS:
        if kind not in first.per_kind:
            continue
        cells = " | ".join(f"{figures[n].per_kind[kind]['ndcg10']:.3f} | {figures[n].per_kind[kind]['p5']:.3f}" for n in names)
        rows.append(f"| {kind} | {first.per_kind[kind]['queries']} | {cells} |")
    cells = " | ".join(f"**{figures[n].overall['ndcg10']:.3f}** | **{figures[n].overall['p5']:.3f}**" for n in names)
    rows.append(f"| all | {first.overall['queries']} | {cells} |")
    return (f"{title}\n\n" if title else "") + "\n".join(rows)

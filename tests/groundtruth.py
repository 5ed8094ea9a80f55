"""Expected answers computed straight from the post files, independently of any
engine, so contract tests compare engines with the corpus, not with constants."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from searchcore.analysis import normalize
from searchcore.clock import SHANGHAI
from searchcore.files import read_post
from searchcore.model import Article
from searchcore.posts import Rejected


@dataclass
class Truth:
    articles: list[Article]

    @classmethod
    def load(cls, root: Path) -> Truth:
        seen: set[str] = set()
        arts = []
        for p in sorted(root.rglob("*")):
            if not p.is_file():
                continue
            try:
                _, a = read_post(str(p), p.relative_to(root).as_posix())
            except Rejected:
                continue
            if a.content_hash in seen:
                continue
            seen.add(a.content_hash)
            arts.append(a)
        return cls(arts)

    def day(self, a: Article) -> date:
        return a.date.astimezone(SHANGHAI).date()

    def containing(self, text: str) -> set[str]:
        """Ids whose title or body contains ``text`` after normalization."""
        n = normalize(text)
        return {a.id for a in self.articles if n in normalize(a.title) or n in normalize(a.body_text)}

    def filtered(
        self, categories=(), tags=(), start: date | None = None, end: date | None = None, sites=()
    ) -> list[Article]:
        out = []
        for a in self.articles:
            if categories and not set(categories) & set(a.categories):
                continue
            if tags and not set(tags) & set(a.tags):
                continue
            if sites and a.site not in sites:
                continue
            d = self.day(a)
            if start and d < start or end and d > end:
                continue
            out.append(a)
        return out

    @staticmethod
    def counts(arts: list[Article], field: str) -> Counter:
        c: Counter = Counter()
        for a in arts:
            value = getattr(a, field)
            for v in [value] if isinstance(value, str) else value:
                if v:  # an article without a source link has no site
                    c[v] += 1
        return c

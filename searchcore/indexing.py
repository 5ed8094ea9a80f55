"""Turning a post file into an IndexedArticle: read, parse, sanitize, analyse.

Pure per file and picklable, so the indexer can run it in worker processes (which
it always does: a hostile file must be processed where it can be interrupted).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .analysis import char_stream, normalize, pair_stream, word_stream
from .boilerplate import EMPTY_MODEL, Model
from .clock import shanghai_day
from .files import DEFAULT_MAX_BYTES, read_post
from .model import Article, IndexedArticle
from .posts import Rejected


@dataclass
class FileOutcome:
    relpath: str
    size: int
    mtime_ns: int
    file_hash: str = ""
    article: IndexedArticle | None = None
    kind: str = ""
    reason: str = ""
    warnings: tuple[str, ...] = ()  # see Article.warnings; the run report lists them


def index_article(article: Article, model: Model | None = None) -> IndexedArticle:
    """The token streams every engine indexes (``parse_post`` has bounded the body).

    The body streams come from the text without the outlet's boilerplate that
    ``model`` learned (and without the headline it starts with), so a feed footer
    or a related-links block never makes an article match what it is not about.
    The title streams keep the whole title: a reader searching "RFI" means it.
    """
    cleaned = (model or EMPTY_MODEL).apply(article)
    title = normalize(article.title)
    body = normalize(cleaned.text)
    title_chars = char_stream(title)
    body_chars = char_stream(body)
    return IndexedArticle(
        article=article,
        title_words=word_stream(title),
        title_chars=title_chars,
        body_words=word_stream(body),
        body_chars=body_chars,
        title_pairs=pair_stream(title_chars),
        body_pairs=pair_stream(body_chars),
        day=shanghai_day(article.date),
        # empty when nothing was left out: the article's own text is meant (search_text)
        clean_text=cleaned.text if cleaned.text != article.body_text else "",
        boilerplate=cleaned.to_json(),
    )


def process_file(
    path: str,
    relpath: str,
    size: int,
    mtime_ns: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    root: str | None = None,
    follow_symlinks: bool = False,
    model: Model | None = None,
    analyse: bool = True,
) -> FileOutcome:
    """Everything the indexer does to one file before the engine sees it.

    ``root`` (the resolved posts folder) and ``follow_symlinks`` decide whether a
    file outside the folder may be read; see ``searchcore.files``. ``model`` is
    the boilerplate learned for this run (``searchcore.boilerplate``). Without
    ``analyse`` the article comes without token streams: learning the boilerplate
    reads posts but indexes none, and analysis is most of a file's cost.
    """
    out = FileOutcome(relpath=relpath, size=size, mtime_ns=mtime_ns)
    try:
        raw, article = read_post(path, relpath, max_bytes, root=root, follow_symlinks=follow_symlinks)
        out.file_hash = hashlib.blake2b(raw, digest_size=16).hexdigest()
        out.article = index_article(article, model) if analyse else IndexedArticle(article, "", "", "", "")
        out.warnings = tuple(article.warnings)
    except Rejected as exc:
        out.kind, out.reason = exc.kind, exc.reason
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a run
        out.kind, out.reason = "error", f"unexpected {type(exc).__name__}: {exc}"
    return out

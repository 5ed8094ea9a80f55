"""Turning a post file into an IndexedArticle: read, parse, sanitize, analyse.

Pure per file and picklable, so the indexer can run it in worker processes (which
it always does: a hostile file must be processed where it can be interrupted).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .analysis import char_stream, load_user_dict, normalize, pair_stream, word_stream
from .files import read_post
from .model import Article, IndexedArticle, shanghai_day
from .posts import DEFAULT_MAX_BYTES, Rejected


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


def index_article(article: Article) -> IndexedArticle:
    """The token streams every engine indexes (``parse_post`` has bounded the body)."""
    title = normalize(article.title)
    body = normalize(article.body_text)
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
    )


def process_file(
    path: str,
    relpath: str,
    size: int,
    mtime_ns: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    root: str | None = None,
    follow_symlinks: bool = False,
) -> FileOutcome:
    """Everything the indexer does to one file before the engine sees it.

    ``root`` (the resolved posts folder) and ``follow_symlinks`` decide whether a
    file outside the folder may be read; see ``searchcore.files``.
    """
    out = FileOutcome(relpath=relpath, size=size, mtime_ns=mtime_ns)
    try:
        raw, article = read_post(path, relpath, max_bytes, root=root, follow_symlinks=follow_symlinks)
        out.file_hash = hashlib.blake2b(raw, digest_size=16).hexdigest()
        out.article = index_article(article)
        out.warnings = tuple(article.warnings)
    except Rejected as exc:
        out.kind, out.reason = exc.kind, exc.reason
    except Exception as exc:  # noqa: BLE001 - one bad file must never stop a run
        out.kind, out.reason = "error", f"unexpected {type(exc).__name__}: {exc}"
    return out


def init_worker(user_dict: str | None, parent: int | None = None) -> None:
    """Worker start-up: die with the process that started it (a SIGKILLed run leaves
    no orphans), and load the operator's dictionary once.

    ``parent`` is the pid the worker expects as its parent: if that process is
    already gone when the death signal is armed, nobody would ever send it, so the
    worker exits at once instead of living on as an orphan.
    """
    _die_with_parent()
    if parent is not None and os.getppid() != parent:
        os._exit(0)
    load_user_dict(Path(user_dict) if user_dict else None)


def _die_with_parent() -> None:
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: orphans exit when their connection closes
        pass

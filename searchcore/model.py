"""The article as it flows from a file to an index (see docs/architecture.md)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

# The newsroom's UTC offset in minutes (+08:00): the offset of a post that names
# none, and the zone of the date facet. Every default of 480 is this name.
DEFAULT_OFFSET_MINUTES = 480
SHANGHAI = timezone(timedelta(minutes=DEFAULT_OFFSET_MINUTES), "Asia/Shanghai")


@dataclass(frozen=True)
class Article:
    """Clean fields of one post: sanitized HTML for display, plain text for search.

    ``id`` is the file name's stem, stable across runs; ``content_hash`` covers
    what a reader sees, so the same article under two file names is a duplicate.
    """

    id: str
    title: str
    date: datetime  # aware, UTC
    categories: list[str]
    tags: list[str]
    body_html: str
    body_text: str
    source_url: str | None
    path: str
    content_hash: str
    utc_offset_minutes: int = DEFAULT_OFFSET_MINUTES
    # What the parser changed or dropped without refusing the file (a title cut to
    # its limit, tags over the limit, a date taken from the file name): the run
    # report shows each one, so nothing is lost silently.
    warnings: tuple[str, ...] = ()

    @property
    def site(self) -> str:
        """The source link's host without ``www.`` (rfi.fr): the outlet a reader
        knows, for the 来源 facet; empty when there is no usable http(s) link."""
        return site_of(self.source_url)

    @property
    def local_date(self) -> datetime:
        """The date in the post's own offset, as the newsroom wrote it."""
        return self.date.astimezone(timezone(timedelta(minutes=self.utc_offset_minutes)))


@dataclass(frozen=True)
class IndexedArticle:
    """An article with its token streams (space-joined, see analysis.joined);
    what every engine writes."""

    article: Article
    title_words: str
    title_chars: str
    body_words: str
    body_chars: str
    title_pairs: str = ""
    body_pairs: str = ""
    day: int = 0  # Asia/Shanghai calendar day as YYYYMMDD, for the date facet
    # The body's text without its outlet's learned boilerplate and without the
    # headline it starts with: what snippets show and the body streams hold
    # (searchcore.boilerplate). Empty: the article's body_text.
    clean_text: str = ""
    boilerplate: str = ""  # Cleaned.to_json(): the clean title, hidden spans and lines

    @property
    def search_text(self) -> str:
        """The body text that is indexed and shown in snippets."""
        return self.clean_text or self.article.body_text


_HOST = re.compile(r"[\w.:-]{1,253}")


def site_of(url: str | None) -> str:
    """The host of an http(s) URL, lower case, without ``www.`` or a port."""
    if not url:
        return ""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname or ""
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https"):
        return ""
    host = host.rstrip(".")
    if not _HOST.fullmatch(host):  # a hostile link's "host" is not shown as one
        return ""
    return host[4:] if host.startswith("www.") else host


def shanghai_day(dt: datetime) -> int:
    d = dt.astimezone(SHANGHAI)
    return d.year * 10000 + d.month * 100 + d.day

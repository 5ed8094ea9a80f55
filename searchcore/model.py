"""The article as it flows from a file to an index and back (see docs/architecture.md),
as records of the field table.

``Article`` (the parsed post) has the table's ``parsed`` fields and ``StoredDoc``
(what an engine returns) its ``stored`` ones: ``record`` adds them to the class
from ``searchcore.fields.FIELDS``, so a field is declared once, in its row, and
each class here holds only what the fields do not say (the parser's warnings, the
properties derived from several fields). Every value is checked against its row
when a record is made: a wrong type is a TypeError that names the field, where the
value was made, and a missing value without a default (a date, an int with no
declared default) is one too, never a value read silently as another.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from .clock import DEFAULT_OFFSET_MINUTES, SHANGHAI
from .fields import PARSED, REQUIRED, STORED, Field
from .highlight import WINDOW_CHARS
from .htmlparts import without_spans

R = TypeVar("R", bound="Record")


class Record:
    """A record of field-table rows (``FIELDS``), each value checked on the way in."""

    FIELDS: ClassVar[tuple[Field, ...]] = ()
    _TESTS: ClassVar[tuple[tuple[str, Callable[[Any], bool]], ...]] = ()

    def __post_init__(self) -> None:
        values = self.__dict__  # a record is made for every hit: the rows' tests, looked up once
        for name, accepts in self._TESTS:
            if not accepts(values[name]):
                next(f for f in self.FIELDS if f.name == name).check(values[name], type(self).__name__)


def record(rows: tuple[Field, ...]) -> Callable[[type[R]], type[R]]:
    """A class decorator: the class as a frozen dataclass whose fields are ``rows``
    (keyword arguments, before the class's own), each with its type and default."""

    def build(cls: type[R]) -> type[R]:
        own = dict(cls.__dict__.get("__annotations__", {}))
        for f in rows:
            empty = f.empty
            if empty is not REQUIRED:
                setattr(cls, f.name, dataclasses.field(default_factory=list) if f.many else empty)
        cls.__annotations__ = {**{f.name: f.annotation for f in rows}, **own}
        cls.FIELDS = rows
        cls._TESTS = tuple((f.name, f.accepts) for f in rows)
        return dataclass(frozen=True, kw_only=True)(cls)

    return build


class _Dated(Record):
    @property
    def site(self) -> str:
        """The source link's host without ``www.`` (rfi.fr): the outlet a reader
        knows, for the 来源 facet; empty when there is no usable http(s) link."""
        return site_of(self.source_url)

    @property
    def local_date(self) -> datetime:
        """The date in the post's own offset, as the source wrote it (the article page
        adds it when it differs from Beijing time)."""
        return self.date.astimezone(timezone(timedelta(minutes=self.offset)))


@record(PARSED)
class Article(_Dated):
    """Clean fields of one post (the table's ``parsed`` fields): sanitized HTML for
    display, plain text for search.

    ``id`` is the file name's stem, stable across runs; ``content_hash`` covers
    what a reader sees, so the same article under two file names is a duplicate.
    """

    # What the parser changed or dropped without refusing the file (a title cut to
    # its limit, tags over the limit, a date taken from the file name): the run
    # report shows each one, so nothing is lost silently.
    warnings: tuple[str, ...] = ()


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


@record(STORED)
class StoredDoc(_Dated):
    """An article as an engine returns it: the table's ``stored`` fields.

    A hit's ``body_html`` is empty and its ``body_text`` at most WINDOW_CHARS long
    (see ``from_values``); ``get`` returns them whole.
    """

    @functools.cached_property
    def _cleaned(self) -> dict[str, Any]:
        try:
            data = json.loads(self.boilerplate) if self.boilerplate else {}
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    @property
    def clean_title(self) -> str:
        """The title without its outlet's learned prefix and suffix: what related
        articles are matched on (an outlet's name matches only its own articles)."""
        return str(self._cleaned.get("title") or self.title)

    @property
    def hidden_lines(self) -> list[str]:
        """The body's lines learned as its outlet's boilerplate (the page offers them
        folded, as 原文附加内容)."""
        return [str(x) for x in self._cleaned.get("lines") or []]

    @property
    def display_html(self) -> str:
        """The body as the article page shows it: without the boilerplate lines."""
        spans = [(int(a), int(b)) for a, b in self._cleaned.get("hidden") or []]
        html = self.body_html
        return without_spans(html, spans) if spans else html

    @property
    def shanghai_date(self) -> datetime:
        """The date in Asia/Shanghai: the one clock every page and the JSON API show,
        because the date facet and from/to count Beijing days; a time shown in the
        source's offset sat under another day than its facet bucket."""
        return self.date.astimezone(SHANGHAI)

    @property
    def local_differs(self) -> bool:
        """Whether the source wrote the date in another offset than Beijing time."""
        return self.offset != DEFAULT_OFFSET_MINUTES

    @property
    def offset_text(self) -> str:
        """The source's offset as ISO 8601 writes it: +02:00, -05:00."""
        offset = self.offset
        sign = "-" if offset < 0 else "+"
        hours, minutes = divmod(abs(offset), 60)
        return f"{sign}{hours:02d}:{minutes:02d}"

    @classmethod
    def from_values(cls, values: Mapping[str, Any], hit: bool = False) -> StoredDoc:
        """From an engine's stored values, decoded to Python: a missing value is its
        field's default (an error for a field without one), a naive date is UTC. A
        ``hit`` is bounded whatever the index holds: indexes built before the text
        was stored bounded hold it whole."""
        out: dict[str, Any] = {}
        for f in cls.FIELDS:
            v = values.get(f.name)
            if v is None:
                continue  # the dataclass's default, or a TypeError naming the field
            if f.many:
                v = list(v)
            elif f.kind == "date" and isinstance(v, datetime) and v.tzinfo is None:
                v = v.replace(tzinfo=UTC)
            out[f.name] = v
        if hit:
            out["body_html"] = ""
            out["body_text"] = out.get("body_text", "")[:WINDOW_CHARS]
        return cls(**out)


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

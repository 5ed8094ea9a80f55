"""Reading a Jekyll post file into an Article, or saying exactly why not.

Everything here is pure (bytes in, Article or Rejected out); reading a file safely
is ``searchcore.files.read_post``,
which reads the file; the indexer runs it in worker processes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from .clock import DEFAULT_OFFSET_MINUTES
from .htmlparts import split
from .model import Article
from .sanitize import UnsafeHTML, html_to_text, sanitize_html

POST_SUFFIXES = (".md", ".markdown", ".html", ".htm")
DEFAULT_OFFSET = timezone(timedelta(minutes=DEFAULT_OFFSET_MINUTES))  # a Jekyll site's time zone for Chinese news

try:  # the C loader is 5-10x faster where libyaml is present
    _Loader: Any = yaml.CBaseLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.BaseLoader


class Rejected(Exception):
    """A file that cannot become an article; ``reason`` is for the operator."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


_FILENAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.+)$")
_DATE = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_FRONT = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*$\r?\n?", re.DOTALL | re.MULTILINE)
_SOURCE_LINE = re.compile(r"^[ \t]*<(https?://[^>\s]*)?>[ \t]*$", re.MULTILINE)
_NAV_LINE = re.compile(
    r"^[ \t]*(?:\[返回[^\]\n]*\]\([^)\n]*\)|<a\b[^>\n]*>\s*返回[^<\n]*</a>)"
    r"(?:[ \t]*[｜|][ \t]*(?:\[返回[^\]\n]*\]\([^)\n]*\)|<a\b[^>\n]*>\s*返回[^<\n]*</a>))*[ \t]*$",
    re.MULTILINE,
)
_ARTICLE_SOURCE = re.compile(r"[（(]\s*文章来源\s*[：:][^）)\n]{0,60}[）)]")
_md = MarkdownIt("commonmark", {"html": True, "linkify": False}).disable("code")


YEARS = (1900, 2100)  # dates outside are typos (or attacks), not news


def parse_date(value: str) -> tuple[datetime, int] | None:
    """Parse a Jekyll date; returns (UTC datetime, offset in minutes) or None.

    Without an offset the site's zone (+08:00) is meant, as Jekyll would do.
    """
    parsed = date_or_problem(value)
    return None if isinstance(parsed, str) else parsed


def date_or_problem(value: str) -> tuple[datetime, int] | str:
    """Like ``parse_date``, but says in words why a date is unusable, so the
    operator learns it from the run report instead of a silent fallback."""
    m = _DATE.match(value.strip())
    if not m:
        return f"{value.strip()[:40]!r} is not a date like 2022-01-03 09:45:21 +0800"
    y, mo, d, hh, mi, ss, tz = m.groups()
    if tz is None:
        offset = DEFAULT_OFFSET
    elif tz == "Z":
        offset = UTC
    else:
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 18 or minutes > 59:  # real offsets run from -12:00 to +14:00
            return f"{tz} is not a UTC offset"
        offset = timezone(sign * timedelta(hours=hours, minutes=minutes))
    if not YEARS[0] <= int(y) <= YEARS[1]:
        return f"year {y} is outside {YEARS[0]}–{YEARS[1]}"
    try:
        local = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=offset)
    except ValueError:
        return f"{value.strip()[:40]!r} is not a calendar date and time"
    minutes = int(offset.utcoffset(None).total_seconds() // 60)
    return local.astimezone(UTC), minutes


def _file_name_date(stem: str) -> tuple[datetime, int] | str | None:
    """The date a file name starts with (YYYY-MM-DD-slug), at midnight in the
    site's zone; a reason when it names an impossible date; None when it names none."""
    fm = _FILENAME.match(stem)
    if not fm:
        return None
    y, mo, d = (int(g) for g in fm.groups()[:3])
    if not YEARS[0] <= y <= YEARS[1]:
        return f"the file name's year {fm.group(1)} is outside {YEARS[0]}–{YEARS[1]}"
    try:
        local = datetime(y, mo, d, tzinfo=DEFAULT_OFFSET)
    except ValueError:
        return f"the file name's date {y:04d}-{mo:02d}-{d:02d} is not a calendar date"
    return local.astimezone(UTC), DEFAULT_OFFSET_MINUTES


MAX_LIST_ITEMS = 50  # categories or tags kept per post
MAX_ITEM_CHARS = 100  # characters kept per category or tag
MAX_TITLE_CHARS = 300
MAX_ID_CHARS = 200
# How much of a body (sanitized HTML) is kept, shown and searched. The longest real
# post has 39,532 characters of HTML; a 9 MB post has millions, and every search
# that lists it reads its whole stored record (7 ms on tantivy, 18 on
# Elasticsearch), while its token streams, ~20× its size, were refused by
# Elasticsearch (HTTP 429). Past this bound the run report says what was left out
# and the source link has the rest.
MAX_BODY_CHARS = 500_000


def split_list(value: Any, field: str = "tags", warnings: list[str] | None = None) -> list[str]:
    """Jekyll's rule: a YAML list, or a string of space-separated values.

    Values are bounded (count and length); what is cut is said in ``warnings``.
    """
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split()
    out: list[str] = []
    long_items = 0
    for item in items:
        if isinstance(item, (list, dict)):
            continue
        text = " ".join(neutralize(str(item)).split())
        if len(text) > MAX_ITEM_CHARS:
            text, long_items = text[:MAX_ITEM_CHARS], long_items + 1
        if text and text not in out:
            out.append(text)
    if warnings is not None:
        if long_items:
            warnings.append(f"{long_items} {field} longer than {MAX_ITEM_CHARS} characters were cut to {MAX_ITEM_CHARS}")
        if len(out) > MAX_LIST_ITEMS:
            warnings.append(f"{len(out):,} {field}: kept the first {MAX_LIST_ITEMS}")
    return out[:MAX_LIST_ITEMS]


# Characters that can hide or disguise text (C0 and C1 controls but tab and
# newline, DEL, and the bidirectional embeddings, overrides and isolates that
# make "gpj.exe" read "exe.jpg"). They carry no meaning in a news post.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def neutralize(text: str) -> str:
    """Drop control and bidi-override characters (see ``_INVISIBLE``)."""
    return _INVISIBLE.sub("", text)


def decode(raw: bytes) -> tuple[str, str]:
    """Decode explicitly: a BOM says the encoding; else UTF-8; else GB18030.

    GB18030 accepts many byte strings, so it is only taken when the result has
    Jekyll front matter; anything else is refused rather than guessed.
    """
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8"), "utf-8-sig"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16"), "utf-16"
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.lstrip().startswith("---"):
        return text, "gb18030"
    pos = utf8_error.start
    raise Rejected(
        "encoding",
        f"not UTF-8 (invalid byte 0x{raw[pos]:02x} at offset {pos}) and not GB18030 text: re-save the file as UTF-8",
    )


def _digest(*parts: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def _text_of(raw: bytes) -> str:
    """Decoded text with Unix line ends and nothing invisible, or Rejected."""
    if b"\0" in raw[:8192] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 is full of NULs
        raise Rejected("binary", "binary file (contains NUL bytes), not a text post")
    text, _encoding = decode(raw)
    if "\0" in text[:8192]:
        raise Rejected("binary", "binary file (contains NUL characters), not a text post")
    # Windows and old Mac line ends, then what must never reach a title or a tag.
    return neutralize(text.replace("\r\n", "\n").replace("\r", "\n"))


def _front_matter(text: str) -> tuple[dict, str]:
    """(the front matter's mapping, the body after it), or Rejected."""
    m = _FRONT.match(text)
    if not m:
        raise Rejected("front-matter", "no YAML front matter: the file must start with a '---' line and close it with another")
    try:
        meta = yaml.load(m.group(1), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise Rejected("yaml", f"front matter is not valid YAML{where}: {problem}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise Rejected("yaml", "front matter is not a YAML mapping of keys to values")
    return meta, text[m.end() :]


def _title_of(meta: dict, warnings: list[str]) -> str:
    value = meta.get("title")
    title = " ".join(neutralize(str(value or "")).split()) if not isinstance(value, (list, dict)) else ""
    if not title:
        raise Rejected("no-title", "no title: front matter needs a non-empty 'title'")
    if len(title) > MAX_TITLE_CHARS:
        warnings.append(f"title of {len(title):,} characters cut to {MAX_TITLE_CHARS}")
        title = title[:MAX_TITLE_CHARS]
    return title


def _date_of(meta: dict, stem: str, warnings: list[str]) -> tuple[datetime, int]:
    """The front matter's date, else the file name's (with a warning when the front
    matter had one that could not be used), else Rejected saying why."""
    raw_date = meta.get("date")
    if isinstance(raw_date, str) and raw_date.strip():
        parsed: tuple[datetime, int] | str | None = date_or_problem(raw_date)
    elif raw_date not in (None, ""):
        parsed = "it is not a single value"
    else:
        parsed = None  # no date in the front matter: the file name's is meant
    if isinstance(parsed, tuple):
        return parsed
    fallback = _file_name_date(stem)
    if isinstance(fallback, tuple):
        if parsed is not None:
            day = fallback[0].astimezone(DEFAULT_OFFSET).date().isoformat()
            warnings.append(f"front matter date unusable ({parsed}): used the file name's date {day}")
        return fallback
    problems = "; ".join(p for p in (parsed and f"front matter date: {parsed}", fallback) if p)
    raise Rejected(
        "no-date",
        f"no usable date{f' ({problems})' if problems else ''}: add 'date: YYYY-MM-DD HH:MM:SS +0800' "
        "or name the file YYYY-MM-DD-slug.md",
    )


def _without_boilerplate(body: str, meta: dict) -> tuple[str, str]:
    """The body without its source line and navigation, and the source URL (from the
    trailing ``<http…>`` line, else the front matter; "" when there is none)."""
    source_url = None
    for sm in _SOURCE_LINE.finditer(body):
        if sm.group(1):
            source_url = sm.group(1)
    body = _ARTICLE_SOURCE.sub("", _NAV_LINE.sub("", _SOURCE_LINE.sub("", body)))
    if source_url is None:
        from_field = meta.get("from") or meta.get("source_url") or meta.get("link")
        if isinstance(from_field, str) and from_field.startswith(("http://", "https://")):
            source_url = from_field.strip()
    return body, source_url or ""


def _body_html(body: str, name: str, warnings: list[str]) -> str:
    """Rendered (Markdown files), sanitized and bounded HTML, or Rejected."""
    if name.lower().endswith((".md", ".markdown")):
        try:
            body = _md.render(body)
        except RecursionError:
            raise Rejected("html-bomb", "markdown nested too deeply to render") from None
    try:
        body_html = sanitize_html(body)
    except UnsafeHTML as exc:
        raise Rejected("html-bomb", str(exc)) from None
    if len(body_html) > MAX_BODY_CHARS:
        kept = split(body_html, MAX_BODY_CHARS)[0].render(body_html)  # well-formed, cut between elements
        warnings.append(
            f"body of {len(body_html):,} characters of HTML: kept the first {len(kept):,}; "
            "the rest is neither shown nor searchable"
        )
        body_html = kept
    return body_html


def parse_post(raw: bytes, relpath: str) -> Article:
    """Turn a post's bytes into an Article, or raise Rejected with the reason."""
    warnings: list[str] = []
    name = Path(relpath).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    meta, body = _front_matter(_text_of(raw))
    title = _title_of(meta, warnings)
    when, offset_minutes = _date_of(meta, stem, warnings)
    body, source_url = _without_boilerplate(body, meta)
    body_html = _body_html(body, name, warnings)
    body_text = html_to_text(body_html)
    if not body_text.strip():
        raise Rejected("empty-body", "empty body: nothing to show or search after removing markup and boilerplate")

    categories = split_list(meta.get("categories"), "categories", warnings) or split_list(
        meta.get("category"), "categories", warnings
    )
    tags = split_list(meta.get("tags"), "tags", warnings) or split_list(meta.get("tag"), "tags", warnings)
    if len(stem) > MAX_ID_CHARS:
        warnings.append(f"file name of {len(stem)} characters: the article's id is its first {MAX_ID_CHARS}")
    return Article(
        id=stem[:MAX_ID_CHARS],
        title=title,
        date=when,
        categories=categories,
        tags=tags,
        body_html=body_html,
        body_text=body_text,
        source_url=source_url,
        path=relpath,
        content_hash=_digest(title, body_text),
        offset=offset_minutes,
        warnings=tuple(warnings),
    )

"""Reading a Jekyll post file into an Article, or saying exactly why not.

Everything here is pure (bytes in, Article or Rejected out) except ``read_post``,
which reads the file; the indexer runs it in worker processes.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt

from .model import Article
from .sanitize import UnsafeHTML, html_to_text, sanitize_html

POST_SUFFIXES = (".md", ".markdown", ".html", ".htm")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_OFFSET = timezone(timedelta(hours=8))  # a Jekyll site's time zone for Chinese news

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


def parse_date(value: str) -> tuple[datetime, int] | None:
    """Parse a Jekyll date; returns (UTC datetime, offset in minutes) or None.

    Without an offset the site's zone (+08:00) is meant, as Jekyll would do.
    """
    m = _DATE.match(value.strip())
    if not m:
        return None
    y, mo, d, hh, mi, ss, tz = m.groups()
    if tz is None:
        offset = DEFAULT_OFFSET
    elif tz == "Z":
        offset = UTC
    else:
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        local = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=offset)
    except ValueError:
        return None
    if not 1900 <= local.year <= 2100:
        return None
    minutes = int(offset.utcoffset(None).total_seconds() // 60)
    return local.astimezone(UTC), minutes


def split_list(value: Any) -> list[str]:
    """Jekyll's rule: a YAML list, or a string of space-separated values."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split()
    out: list[str] = []
    for item in items:
        if isinstance(item, (list, dict)):
            continue
        text = " ".join(str(item).split())
        if text and text not in out:
            out.append(text[:100])
    return out[:50]


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


def parse_post(raw: bytes, relpath: str) -> Article:
    """Turn a post's bytes into an Article, or raise Rejected with the reason."""
    if b"\0" in raw[:8192]:
        raise Rejected("binary", "binary file (contains NUL bytes), not a text post")
    text, _encoding = decode(raw)
    name = Path(relpath).name
    stem = name.rsplit(".", 1)[0] if "." in name else name

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

    title = " ".join(str(meta.get("title") or "").split()) if not isinstance(meta.get("title"), (list, dict)) else ""
    if not title:
        raise Rejected("no-title", "no title: front matter needs a non-empty 'title'")

    parsed = None
    raw_date = meta.get("date")
    if isinstance(raw_date, str) and raw_date.strip():
        parsed = parse_date(raw_date)
    fm = _FILENAME.match(stem)
    if parsed is None and fm:
        try:
            d = date(int(fm.group(1)), int(fm.group(2)), int(fm.group(3)))
            parsed = (datetime(d.year, d.month, d.day, tzinfo=DEFAULT_OFFSET).astimezone(UTC), 480)
        except ValueError:
            parsed = None
    if parsed is None:
        shown = f" (front matter says {raw_date!r})" if raw_date else ""
        raise Rejected(
            "no-date", f"no usable date{shown}: add 'date: YYYY-MM-DD HH:MM:SS +0800' or name the file YYYY-MM-DD-slug.md"
        )
    when, offset_minutes = parsed

    body = text[m.end() :]
    source_url = None
    for sm in _SOURCE_LINE.finditer(body):
        if sm.group(1):
            source_url = sm.group(1)
    body = _SOURCE_LINE.sub("", body)
    body = _NAV_LINE.sub("", body)
    body = _ARTICLE_SOURCE.sub("", body)
    if source_url is None:
        from_field = meta.get("from") or meta.get("source_url") or meta.get("link")
        if isinstance(from_field, str) and from_field.startswith(("http://", "https://")):
            source_url = from_field.strip()

    if name.lower().endswith((".md", ".markdown")):
        try:
            body = _md.render(body)
        except RecursionError:
            raise Rejected("html-bomb", "markdown nested too deeply to render") from None
    try:
        body_html = sanitize_html(body)
    except UnsafeHTML as exc:
        raise Rejected("html-bomb", str(exc)) from None
    body_text = html_to_text(body_html)
    if not body_text.strip():
        raise Rejected("empty-body", "empty body: nothing to show or search after removing markup and boilerplate")

    categories = split_list(meta.get("categories")) or split_list(meta.get("category"))
    tags = split_list(meta.get("tags")) or split_list(meta.get("tag"))
    return Article(
        id=stem[:200],
        title=title[:300],
        date=when,
        categories=categories,
        tags=tags,
        body_html=body_html,
        body_text=body_text,
        source_url=source_url,
        path=relpath,
        content_hash=_digest(title, body_text),
        utc_offset_minutes=offset_minutes,
    )


def read_post(path: Path, relpath: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, Article]:
    """Read and parse one file; size is checked before reading a byte."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise Rejected("unreadable", f"cannot stat file: {exc.strerror or exc}") from None
    if size > max_bytes:
        raise Rejected("too-large", f"file is {size / 1048576:.1f} MB, over the {max_bytes / 1048576:.0f} MB limit (--max-bytes)")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise Rejected("unreadable", f"cannot read file: {exc.strerror or exc}") from None
    if not raw.strip():
        raise Rejected("empty-file", "empty file")
    return raw, parse_post(raw, relpath)

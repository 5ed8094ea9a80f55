"""HTML sanitizing with bleach, done once at index time.

Stored HTML is what the article page shows, so it must be safe to render as is:
an allowlist of tags and attributes, links forced to ``rel="noopener nofollow"``,
no scripts, styles, frames, event handlers or ``javascript:`` URLs.
"""

from __future__ import annotations

import html
import re

import bleach

ALLOWED_TAGS = frozenset(
    """a abbr b blockquote br caption cite code dd del dl dt em figcaption figure
    h2 h3 h4 h5 h6 hr i img ins li ol p pre q s small strong sub sup table tbody td
    tfoot th thead tr u ul""".split()
)
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title"],
    "img": ["src", "alt", "title", "width", "height"],
    "td": ["colspan", "rowspan"],
    "th": ["colspan", "rowspan"],
    "abbr": ["title"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})

# Elements whose *content* must go too; bleach's strip=True keeps inner text.
# An unclosed script or style runs to the end of the document in a browser, so we
# drop to the end; the others only when closed (else bleach strips the tag alone).
_DROP_TO_END = re.compile(r"<(script|style|xmp|plaintext)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL)
_DROP_WITH_CONTENT = re.compile(
    r"<(iframe|object|noscript|template|svg|math|video|audio|canvas|select|textarea|button|form|head|title|noembed|noframes)"
    r"\b[^>]*>.*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
MAX_DEPTH = 256


class UnsafeHTML(ValueError):
    """The HTML cannot be sanitized safely (e.g. an HTML bomb)."""


def nesting_depth(markup: str, limit: int = MAX_DEPTH) -> int:
    """Estimate the element nesting depth, stopping early past ``limit``.

    html5lib recurses per level; a 100,000-deep bomb would exhaust the stack
    or the clock, so we refuse before parsing.
    """
    depth = peak = 0
    for m in _TAG.finditer(markup):
        name = m.group(2).lower()
        if name in _VOID or m.group(3):
            continue
        if m.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            if depth > peak:
                peak = depth
                if peak > limit:
                    return peak
    return peak


_cleaner = bleach.sanitizer.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[],
)
# bleach serializes every kept link as ``<a href="...">``; a second html5lib pass
# (bleach's Linker) would double the cost, so we add rel with a regex.
_LINK_OPEN = re.compile(r"<a (?=[^>]*\bhref=)")
_EMPTY_P = re.compile(r"<p>\s*(?:<br>\s*)*</p>")
_BLANKS = re.compile(r"\n\s*\n+")


def sanitize_html(markup: str) -> str:
    """Return HTML that is safe to show, with links marked nofollow."""
    depth = nesting_depth(markup)
    if depth > MAX_DEPTH:
        raise UnsafeHTML(f"HTML nested more than {MAX_DEPTH} levels deep (an HTML bomb?)")
    markup = _COMMENT.sub("", markup)
    markup = _DROP_TO_END.sub("", markup)
    markup = _DROP_WITH_CONTENT.sub("", markup)
    try:
        clean = _cleaner.clean(markup)
    except RecursionError as exc:  # pragma: no cover - guarded by nesting_depth
        raise UnsafeHTML("HTML too deeply nested to sanitize") from exc
    clean = _LINK_OPEN.sub('<a rel="noopener nofollow" ', clean)
    clean = _EMPTY_P.sub("", clean)
    return _BLANKS.sub("\n", clean).strip()


_BLOCK_END = re.compile(
    r"<br\s*/?>|</(?:p|li|h[2-6]|blockquote|tr|table|pre|figure|figcaption|dd|dt)>|<hr\s*/?>",
    re.IGNORECASE,
)
_ANY_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")


def html_to_text(clean_html: str) -> str:
    """Plain text of sanitized HTML, paragraphs on their own lines."""
    text = _BLOCK_END.sub("\n", clean_html)
    text = html.unescape(_ANY_TAG.sub("", text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)

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
# Longer attribute values are dropped: no real link or caption needs more, and one
# 9 MB href would make a single unsplittable element of an article page.
MAX_ATTRIBUTE_CHARS = 2_048


def _allowed_attribute(tag: str, name: str, value: str) -> bool:
    return name in ALLOWED_ATTRIBUTES.get(tag, ()) and len(value) <= MAX_ATTRIBUTE_CHARS


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
# The most elements one post may have. The largest real post seen has about 1,100;
# sanitizing costs ~20 µs an element, so this bound keeps any post near 2 s, and a
# file of 600,000 empty elements (4.5 MB of ``<p><b>x</b></p>``) is refused in
# milliseconds instead of costing a worker ten seconds.
MAX_ELEMENTS = 100_000


class UnsafeHTML(ValueError):
    """The HTML cannot be sanitized safely (e.g. an HTML bomb)."""


def markup_shape(markup: str, depth_limit: int = MAX_DEPTH, element_limit: int = MAX_ELEMENTS) -> tuple[int, int]:
    """Estimate (nesting depth, element count), stopping early past either limit.

    html5lib recurses per level and spends time per element; a 100,000-deep
    bomb would exhaust the stack and a flat one the clock, so we measure the
    shape with one regex pass and refuse before parsing.
    """
    depth = peak = elements = 0
    for m in _TAG.finditer(markup):
        if m.group(1):
            depth = max(0, depth - 1)
            continue
        elements += 1
        if elements > element_limit:
            break
        if m.group(2).lower() in _VOID or m.group(3):
            continue
        depth += 1
        if depth > peak:
            peak = depth
            if peak > depth_limit:
                break
    return peak, elements


def nesting_depth(markup: str, limit: int = MAX_DEPTH) -> int:
    """The element nesting depth, stopping early past ``limit``."""
    return markup_shape(markup, depth_limit=limit, element_limit=len(markup))[0]


_EtreeWalker = bleach.html5lib_shim.getTreeWalker("etree")


class _LinearWalker(_EtreeWalker):  # type: ignore[misc, valid-type]
    """html5lib's etree walker with a parent step that costs O(1), not O(siblings).

    On the way back up, the stock walker finds the parent's position among *its*
    siblings with ``list.count`` and ``list.index``: one scan of the siblings per
    element, so n siblings cost n² (4.5 MB of ``<p><b>x</b></p>`` took minutes,
    at any depth). This walker remembers each ancestor's position on the way down
    instead; everything else, and so the output, is the stock walker's.
    """

    def __init__(self, tree) -> None:
        super().__init__(tree)
        self._keys: list[int | None] = []  # position of each element in ``parents``

    def getFirstChild(self, node):  # noqa: N802 - html5lib's name
        key = node[1] if isinstance(node, tuple) else None
        child = super().getFirstChild(node)
        if child is not None and child[3] is None:  # descended into an element
            self._keys.append(key)
        return child

    def getNextSibling(self, node):  # noqa: N802
        sibling = super().getNextSibling(node)
        if sibling is not None and node[3] == "text" and sibling[3] is None:  # descended from text into children
            self._keys.append(node[1])
        return sibling

    def getParentNode(self, node):  # noqa: N802
        if not isinstance(node, tuple):
            return None
        element, key, parents, flag = node
        if flag == "text":
            return element if not parents else (element, key, parents, None)
        parent = parents.pop()
        parent_key = self._keys.pop()
        return parent if not parents else (parent, parent_key, parents, None)


_cleaner = bleach.sanitizer.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=_allowed_attribute,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[],
)
_cleaner.walker = _LinearWalker
# bleach serializes every kept link as ``<a href="...">``; a second html5lib pass
# (bleach's Linker) would double the cost, so we add rel with a regex.
_LINK_OPEN = re.compile(r"<a (?=[^>]*\bhref=)")
_IMG = re.compile(r"<img\b([^>]*)>")
_ATTR = re.compile(r'([a-z]+)="([^"]*)"')
IMAGE_LINK_CLASS = "image-link"
_IMAGE_LINK = re.compile(rf'<a class="{IMAGE_LINK_CLASS}"[^>]*>.*?</a>')


def _image_link(m: re.Match[str]) -> str:
    """An image becomes a link the reader may follow, never a fetch the page makes.

    A remote image loads from its host when the page is shown, and so tells that
    host who reads what (a planted image is a reader tracker). As a link, the
    image is fetched only if the reader clicks it; the alt text says what it is.
    bleach has already quoted and escaped every attribute value.
    """
    attrs = dict(_ATTR.findall(m.group(1)))
    src = attrs.get("src", "")
    if not src.lower().startswith(("http://", "https://")):
        return ""
    alt = " ".join(html.unescape(attrs.get("alt", "")).split())[:80]
    label = html.escape(f"图片：{alt}" if alt else "图片", quote=False)
    return f'<a class="{IMAGE_LINK_CLASS}" href="{src}" rel="noopener nofollow noreferrer">[{label}]</a>'


_EMPTY_P = re.compile(r"<p>\s*(?:<br>\s*)*</p>")
_BLANKS = re.compile(r"\n\s*\n+")


def sanitize_html(markup: str) -> str:
    """Return HTML that is safe to show, with links marked nofollow."""
    depth, elements = markup_shape(markup)
    if depth > MAX_DEPTH:
        raise UnsafeHTML(f"HTML nested more than {MAX_DEPTH} levels deep (an HTML bomb?)")
    if elements > MAX_ELEMENTS:
        raise UnsafeHTML(f"HTML has more than {MAX_ELEMENTS:,} elements (the largest real article has about a thousand)")
    markup = _COMMENT.sub("", markup)
    markup = _DROP_TO_END.sub("", markup)
    markup = _DROP_WITH_CONTENT.sub("", markup)
    try:
        clean = _cleaner.clean(markup)
    except RecursionError as exc:  # pragma: no cover - guarded by nesting_depth
        raise UnsafeHTML("HTML too deeply nested to sanitize") from exc
    clean = _LINK_OPEN.sub('<a rel="noopener nofollow" ', clean)
    clean = _IMG.sub(_image_link, clean)
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
    text = _IMAGE_LINK.sub("", clean_html)  # a picture's label is not the article's text
    text = _BLOCK_END.sub("\n", text)
    text = html.unescape(_ANY_TAG.sub("", text))
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)

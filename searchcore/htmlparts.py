"""Cutting sanitized HTML into well-formed parts of a bounded size, and cutting
spans out of it (``without_spans``: the article page without its outlet's boilerplate).

Two bounds use it: the indexer keeps at most ``posts.MAX_BODY_CHARS`` of a body
(the first part), and the article page shows a long body in parts a phone can load
(``searchapp.parts``).

The HTML comes from the sanitizer (bleach, serialized by html5lib), so it is
well-formed: every start tag of a non-void element has its end tag, text has
``<`` escaped, attribute values are quoted. A part ends where a top-level
element ends when it can; when one element is itself longer than a part (a post
that is one huge ``<div>`` or one paragraph), the part ends between two of its
descendants, or inside its text, closing the elements still open, and the next
part opens them again. Every part is thus well-formed HTML on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# A start tag longer than this (a huge attribute) is reopened without its attributes.
_MAX_REOPEN = 1_000

_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
# A tag, its attributes quoted (a quoted value may hold ">"), or a comment.
_TOKEN = re.compile(r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:[^>"']|"[^"]*"|'[^']*')*)>|<!--.*?-->""", re.DOTALL)
# An entity just before a cut would be split by it: "&amp" + ";".
_OPEN_ENTITY = re.compile(r"&[#a-zA-Z0-9]{0,32}\Z")


@dataclass(frozen=True)
class Part:
    """``html[start:end]``, wrapped in the tags that make it whole."""

    start: int
    end: int
    reopen: str = ""  # start tags of the elements this part begins inside
    close: str = ""  # end tags of the elements still open where it ends

    def render(self, html: str) -> str:
        return self.reopen + html[self.start : self.end] + self.close


def split(html: str, size: int) -> list[Part]:
    """Cut ``html`` into parts of about ``size`` characters (at most
    ``size + size // 4`` plus the length of one tag), as described above."""
    if len(html) <= size:
        return [Part(0, len(html))]
    slack = size // 4
    parts: list[Part] = []
    stack: list[tuple[str, str]] = []  # open elements: (name, start tag to reopen it)
    start, reopen = 0, ""

    def cut(at: int) -> None:
        nonlocal start, reopen
        if at <= start:
            return
        close = "".join(f"</{name}>" for name, _ in reversed(stack))
        parts.append(Part(start, at, reopen, close))
        start, reopen = at, "".join(tag for _, tag in stack)

    def cut_text(text_from: int, until: int) -> None:
        """Cut inside the run of text ``html[text_from:until]`` while the part is too long."""
        while until - start > size + slack:
            at = max(start + size, text_from)
            entity = _OPEN_ENTITY.search(html, max(text_from, at - 34), at)
            cut(entity.start() if entity and entity.start() > start else at)

    text_from = 0
    for m in _TOKEN.finditer(html):
        cut_text(text_from, m.start())
        text_from = m.end()
        close, name = m.group(1), (m.group(2) or "").lower()
        if name and close:
            for i in range(len(stack) - 1, -1, -1):  # well-formed: the innermost open one
                if stack[i][0] == name:
                    del stack[i:]
                    break
        elif name and name not in _VOID and not m.group(3).rstrip().endswith("/"):
            tag = m.group(0) if len(m.group(0)) <= _MAX_REOPEN else f"<{name}>"
            stack.append((name, tag))
        length = m.end() - start
        if length >= size and (not stack or length >= size + slack):
            cut(m.end())
    cut_text(text_from, len(html))
    if start < len(html) or not parts:
        parts.append(Part(start, len(html), reopen, ""))
    return parts


def without_spans(body_html: str, spans: Iterable[tuple[int, int]]) -> str:
    """``body_html`` without the text and images at ``spans`` (each a text run or an
    ``<img>``/image link's text, as ``blocks`` found them). Tags outside the spans
    stay, so the result is as well-formed as the input; what is left of a hidden
    line is empty elements, which show nothing (empty links are removed)."""
    out: list[str] = []
    pos = 0
    hidden_before = False  # the previous span ended right before this gap
    for start, end in sorted(spans):
        if start < pos or end > len(body_html):
            continue  # not spans of this HTML (an index of another version): leave it whole
        gap = body_html[pos:start]
        # line breaks between two hidden lines would leave blank lines: void, so
        # dropping them keeps the HTML well-formed
        out.append(_BREAK.sub("", gap) if hidden_before and _ONLY_TAGS.fullmatch(gap) else gap)
        pos, hidden_before = end, True
    rest = body_html[pos:]
    out.append(_BREAK.sub("", rest) if hidden_before and _ONLY_TAGS.fullmatch(rest) else rest)
    # a link whose text was hidden is dropped whole: an empty link is a trap for
    # keyboards and screen readers (it has no name)
    return _EMPTY_LINK.sub("", "".join(out))


_EMPTY_LINK = re.compile(r"<a\b[^>]*>(?:\s|<br>)*</a>")
_BREAK = re.compile(r"<br\s*/?>")
_ONLY_TAGS = re.compile(r"(?:\s|<[^>]*>)*")

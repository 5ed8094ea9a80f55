"""Highlighting from our own analysis, identical whichever engine answered.

Engines return documents; we find the matched text in the stored plain text with
the same normalization the engines indexed, so the marks are exactly the matched
characters. Everything else is escaped here, once.

Only a bounded window is ever read: the first ``WINDOW_CHARS`` characters of a
text. Normalizing (OpenCC) and scanning a whole body cost time in proportion to
its length, so one 9 MB post made every query that listed it take a quarter of a
second; a snippet from its first pages is as useful to a reader.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

from markupsafe import Markup, escape

from .analysis import Term, normalize

_SEP = r"[\W_]{0,8}?"  # what the char tokens skip between two matched tokens

# The part of a body a snippet may come from. Real posts are far shorter: of the
# 3,482 posts in the reference corpus the longest plain text is 34,626 characters,
# the 99.9th percentile 17,019 and the median 673, so all but one are highlighted
# whole. Normalizing 20,000 characters takes about 1 ms; engines store at most
# this much plain text (see fields.FIELDS, body_text) and hits read no more.
WINDOW_CHARS = 20_000


def _token_pattern(tok: str) -> str:
    pat = re.escape(tok)
    if tok.isascii() and tok.isalnum():
        pat = rf"(?<![0-9a-z]){pat}(?![0-9a-z])"
    return pat


def build_matcher(terms: Iterable[Term]) -> re.Pattern[str] | None:
    """One regex for every positive term: its char phrase and its words."""
    alts: dict[str, int] = {}
    for t in terms:
        if t.negate:
            continue
        alts[_SEP.join(_token_pattern(c) for c in t.chars)] = sum(map(len, t.chars))
        for w in t.words:
            if len(w) > 1 or len(t.chars) == 1:
                alts[_token_pattern(w)] = len(w)
    if not alts:
        return None
    ordered = sorted(alts, key=lambda p: -alts[p])
    return re.compile("|".join(f"(?:{p})" for p in ordered))


class _NormalizedCache:
    """Normalized windows, least recently used first out, bounded by the characters
    held rather than by entries: popular queries show the same bodies again and
    again, and a page normalizes its twenty bodies (OpenCC over kilobytes is the
    largest per-hit cost left). An entry bound sized for 20,000-character windows
    (1,024) kept only a few pages' worth of real bodies (median 673 characters);
    a budget of characters keeps about 6,000 of them, and at most MAX_CHARS (16 MB
    of text, keys and values, per process) whatever their size."""

    MAX_CHARS = 4_000_000

    def __init__(self) -> None:
        self._data: OrderedDict[str, str] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def __call__(self, text: str) -> str:
        with self._lock:
            found = self._data.get(text)
            if found is not None:
                self._data.move_to_end(text)
                return found
        norm = normalize(text)
        with self._lock:
            if text not in self._data:
                self._data[text] = norm
                self._chars += len(text)
                while self._chars > self.MAX_CHARS and self._data:
                    old, _ = self._data.popitem(last=False)
                    self._chars -= len(old)
        return norm

    def cache_clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._chars = 0


_normalized = _NormalizedCache()


def spans(text: str, matcher: re.Pattern[str] | None) -> list[tuple[int, int]]:
    """Matched (start, end) offsets in ``text``, within its first WINDOW_CHARS."""
    if matcher is None or not text:
        return []
    window = text[:WINDOW_CHARS]
    return [(m.start(), m.end()) for m in matcher.finditer(_normalized(window)) if m.end() > m.start()]


def mark(text: str, matcher: re.Pattern[str] | None, start: int = 0, end: int | None = None) -> Markup:
    """Escape ``text[start:end]`` and wrap matched spans in ``<mark>`` (spans are
    looked for in its first WINDOW_CHARS characters; the rest is only escaped)."""
    end = len(text) if end is None else end
    out: list[str] = []
    pos = start
    for s, e in spans(text[start:end], matcher):
        s, e = s + start, e + start
        out.append(str(escape(text[pos:s])))
        out.append(f"<mark>{escape(text[s:e])}</mark>")
        pos = e
    out.append(str(escape(text[pos:end])))
    return Markup("".join(out))


def snippet(text: str, matcher: re.Pattern[str] | None, width: int = 120) -> Markup:
    """A window of about ``width`` characters around the densest run of matches in
    the first WINDOW_CHARS characters of ``text`` (an ellipsis says there is more)."""
    full = len(text)
    text = text[:WINDOW_CHARS]
    found = spans(text, matcher)
    if not found:
        cut = text[:width]
        return Markup(escape(cut) + ("…" if full > width else ""))
    best_start, best_count = found[0][0], 0
    j = 0
    for i, (s, _) in enumerate(found):
        while found[j][0] < s - width // 2:
            j += 1
        if i - j + 1 > best_count:
            best_count, best_start = i - j + 1, found[j][0]
    start = max(0, best_start - width // 4)
    end = min(len(text), start + width)
    start = max(0, min(start, end - width))
    body = mark(text, matcher, start, end)
    return Markup(("…" if start > 0 else "") + body + ("…" if end < full else ""))

"""A very long article's HTML cut into parts a phone can load.

One page of 9 MB (the indexer accepted posts of any length up to 10 MB) takes seconds to arrive
and to lay out on a phone, and is a cheap way to make every reader who opens it
wait. Real posts are far shorter (the longest in the reference corpus is 39,532
characters of HTML), so only a post over ``PART_CHARS`` is split, and each part
is a page of its own (``/article/<id>?part=N``).

How a part is cut (well-formed on its own, at element boundaries when it can) is
``searchcore.htmlparts``. Splitting reads the whole HTML once, so its result is
kept per article version (see ``parts_of``); the indexer keeps at most
``posts.MAX_BODY_CHARS`` of a body, so an article has at most a handful of parts.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from searchcore.htmlparts import Part, split

# About 200 kB of UTF-8 for Chinese text with its markup (a CJK character is 3
# bytes), and twice the longest real post: no real article is ever split.
PART_CHARS = 80_000


class _Cache:
    """The parts of the last few long articles, keyed by their id and content hash
    (a new version of the post is a new key). Small: a list of offsets each."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, int], list[Part]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int], html: str) -> list[Part]:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
        parts = split(html, PART_CHARS)
        with self._lock:
            self._items[key] = parts
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return parts


_cache = _Cache()


def parts_of(doc_id: str, content_hash: str, html: str) -> list[Part]:
    """The parts of an article's HTML; one part (no work) for all but very long posts."""
    if len(html) <= PART_CHARS:
        return [Part(0, len(html))]
    return _cache.get((doc_id, content_hash, len(html)), html)

"""A small LRU for answers that depend only on the index's contents.

Facet counts of the empty query and of popular queries are the same for every
reader until the index changes, and at a million articles they cost as much as
the search itself. The cache is per process (each gunicorn worker warms its own)
and is emptied as soon as the engine sees a commit or an alias swap, so a count
is never older than the hits shown beside it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class GenerationCache(Generic[V]):
    """LRU keyed by anything hashable, valid for one index generation."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._generation: Hashable = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, generation: Hashable, key: Hashable) -> V | None:
        """The value for ``key`` in this generation, or None (a miss)."""
        if self.size <= 0:
            return None
        with self._lock:
            if generation != self._generation:
                self._data.clear()
                self._generation = generation
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
            return None

    def put(self, generation: Hashable, key: Hashable, value: V) -> None:
        """Keep ``value`` unless the index moved on while it was computed."""
        if self.size <= 0:
            return
        with self._lock:
            if generation == self._generation:
                self._data[key] = value
                while len(self._data) > self.size:
                    self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._generation = None

    def __len__(self) -> int:
        return len(self._data)

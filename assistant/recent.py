"""A small thread-safe cache of the most recently used values (least recently used dropped).

Vectors of questions are asked for several times per answer (retrieval, a survey's second
search, the survey decision): the embedding is computed once and kept here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Recent(Generic[V]):
    """Up to `size` values by key; `get(key, make)` computes a missing one outside the lock
    (two threads may both compute it; the last one kept wins, and both are equal)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

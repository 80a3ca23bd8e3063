"""Datasets kept in memory per worker process, keyed by content hash, least recently used out.

The trials of one study run in the same worker process over and over against the same
dataset; reading and parsing it once per process instead of once per trial saves most of a
short trial's time. The key is the dataset's sha256, so a changed file is a new entry.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")


def _size(value: Any) -> int:
    if isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True).sum())
    if isinstance(value, pd.Series):
        return int(value.memory_usage(deep=True))
    return sys.getsizeof(value)


class FrameCache:
    """At most ``max_bytes`` of loaded values; thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[str, tuple[Any, int]] = OrderedDict()  # oldest use first
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def get(self, key: str, load: Callable[[], T]) -> T:
        """The value under ``key``, calling ``load()`` to make it on a miss.

        The lock is held while loading, so concurrent requests for one dataset load it once.
        A value larger than the whole cache is returned but not kept (keeping it would
        evict everything else and still not fit).
        """
        with self._lock:
            if key in self._entries:
                self.hits += 1
                self._entries.move_to_end(key)
                value: T = self._entries[key][0]
                return value
            self.misses += 1
            value = load()
            size = _size(value)
            if size > self.max_bytes:
                return value
            while self._bytes + size > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
            self._entries[key] = (value, size)
            self._bytes += size
            return value

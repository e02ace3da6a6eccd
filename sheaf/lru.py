"""The one bounded cache every Sheaf cache uses (vk decodes, proof lengths, key files).

Hand-written rather than functools.lru_cache because callers need explicit get/put with a key
that is not the call's arguments (a digest of the raw bytes), an eviction hook (key files are
memfds to close) and thread safety across the normalizer's callers.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Thread-safe least-recently-used map holding at most `maxsize` entries."""

    def __init__(self, maxsize: int, on_evict: Callable[[K, V], None] | None = None) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self._on_evict = on_evict
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            v = self._data.get(key)
            if v is not None:
                self._data.move_to_end(key)
            return v

    def put(self, key: K, value: V) -> None:
        evicted: list[tuple[K, V]] = []
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                evicted.append(self._data.popitem(last=False))
        if self._on_evict is not None:
            for k, v in evicted:
                self._on_evict(k, v)

    def get_or_put(self, key: K, make: Callable[[], V]) -> V:
        """The cached value, else `make()` stored (two racing misses may both call `make`)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        value = make()
        self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            items = list(self._data.items())
            self._data.clear()
        if self._on_evict is not None:
            for k, v in items:
                self._on_evict(k, v)

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._data

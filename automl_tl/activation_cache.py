"""An in-memory LRU of frozen-prefix activations, bounded in bytes, for any framework's arrays."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable


class ActivationCache:
    """Keys are tuples naming what changes the values (backbone and weights, data manifest,
    image size, block); values are arrays or tensors with an ``nbytes`` attribute."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: "OrderedDict[Hashable, Any]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def bytes_used(self) -> int:
        return sum(int(value.nbytes) for value in self._entries.values())

    def get(self, key: Hashable) -> Any:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
            self.hits += 1
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self.misses += 1
        self._entries[key] = value
        self._entries.move_to_end(key)
        while self.bytes_used > self.max_bytes and len(self._entries) > 1:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()


DEFAULT_CACHE_GB = 4.0
CACHE_ENV = "AUTOML_TL_CACHE_GB"


def cache_from_env() -> ActivationCache:
    """A cache bounded by ``$AUTOML_TL_CACHE_GB`` gigabytes (4 by default)."""
    import os

    return ActivationCache(int(float(os.environ.get(CACHE_ENV, DEFAULT_CACHE_GB)) * 2**30))

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

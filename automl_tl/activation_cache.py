"""An in-memory LRU of frozen-prefix activations, bounded in bytes, for any framework's arrays."""

from __future__ import annotations

import abc
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


class PrefixActivations(abc.ABC):
    """Activations after block k (k = 0 is the normalised image) and pooled features, for one
    backbone (``tag`` names it and its weights), data table and image size, through a shared
    cache. Block k is computed from the deepest block below k already cached, never twice.
    Frameworks supply how to normalise the images, run blocks and pool."""

    def __init__(self, cache: ActivationCache, tag: str, data: Any, n_blocks: int) -> None:
        self.cache, self.data, self.n_blocks = cache, data, n_blocks
        self.prefix = (tag, data.manifest_hash or str(id(data)), data.image_size)

    @abc.abstractmethod
    def normalised_images(self) -> Any:
        """The whole table as model input."""

    @abc.abstractmethod
    def run_blocks(self, inputs: Any, start: int, stop: int) -> Any:
        """Blocks ``start..stop-1`` (in inference mode) over activations after block ``start``."""

    @abc.abstractmethod
    def pool(self, top: Any) -> Any:
        """Global pooling (and whatever the backbone applies after it) of the last block's output."""

    def after_block(self, k: int) -> Any:
        """Activations after the first ``k`` blocks, for every image in the table."""
        cached = self.cache.get((*self.prefix, f"block:{k}"))
        if cached is not None:
            return cached
        start, inputs = 0, None
        for j in range(k - 1, -1, -1):
            inputs = self.cache.get((*self.prefix, f"block:{j}"))
            if inputs is not None:
                start = j
                break
        if inputs is None:
            inputs = self.normalised_images()
            self.cache.put((*self.prefix, "block:0"), inputs)
        if k == 0:
            return inputs
        result = self.run_blocks(inputs, start, k)
        self.cache.put((*self.prefix, f"block:{k}"), result)
        return result

    def pooled(self) -> Any:
        """Pooled features of the whole frozen backbone: the classic bottleneck features."""
        key = (*self.prefix, "pooled")
        cached = self.cache.get(key)
        if cached is None:
            cached = self.pool(self.after_block(self.n_blocks))
            self.cache.put(key, cached)
        return cached

"""Frozen-prefix activations for any framework: block k computed once, from the deepest cached block.

Blocks below the freeze point keep their pretrained weights and run with BatchNorm in
inference mode, so their output for a given image never changes: computing it once and
reusing it across trials, runs and resumed studies is exact, not an approximation (up to
float16 storage, see docs/decisions.md).
"""

from __future__ import annotations

import abc
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from automl_tl.cache.store import ActivationKey, ActivationStore, MemoryStore, _Float16Overflow, images_digest
from automl_tl.data.images import DECODER_VERSION
from automl_tl.data.pages import release
from automl_tl.runtime.deadline import active, raise_if_passed
from automl_tl.runtime.notices import notice_once
from automl_tl.runtime.time_ledger import CACHE_PASSES, charged
from automl_tl.types import ImageTable

__all__ = ["LivePrefix", "NormalisedImages", "PrefixActivations", "PrefixIdentity", "normalise_images", "notice_once",
           "rows_as_float32", "table_digest"]

BATCH_PIXELS_SIDE = 96
POOLED_FLOAT32_BYTES = 512 * 2**20  # a few cut points' pooled features, kept in memory as float32 (the newest always)
_POOLED_FLOAT32: OrderedDict[tuple[ActivationKey, int], np.ndarray] = OrderedDict()  # (key, stored itemsize)


def normalise_images(images: np.ndarray, mean: Sequence[float], std: Sequence[float], *,
                     channels_first: bool = False) -> np.ndarray:
    """RGB images (N, H, W, 3) as float32 model input, ``(pixel / 255 - mean) / std`` per channel: NHWC, or
    NCHW with ``channels_first``. ``images`` are uint8 pixels, or floats already scaled to [0, 1] by
    ``automl_tl.data.images.to_model_input``; both give the same bits. uint8 goes through a 256-entry
    table of that float32 arithmetic per channel: 3-4x faster than converting and scaling the whole array
    (about 0.4 s against 1.0-1.7 s for 10,000 images at 48 px)."""
    pixels = np.asarray(images)
    mean32, std32 = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if pixels.dtype != np.uint8:
        scaled = (pixels.astype(np.float32, copy=False) - mean32) / std32
        return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2)) if channels_first else scaled
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)  # the values to_model_input makes
    table = (levels[:, None] - mean32) / std32  # (256, 3): every pixel value of every channel
    if not channels_first:
        return table[pixels, np.arange(3)]
    n, height, width, _ = pixels.shape
    out = np.empty((n, 3, height, width), np.float32)
    for channel in range(3):
        np.take(table[:, channel], pixels[..., channel], out=out[:, channel])
    return out


class NormalisedImages:
    """The table's images as float32 model input, normalised batch by batch as they are read:
    the whole data set is never converted at once. Indexing (a slice or an index array) returns
    an in-memory float32 array; the memory map's pages are released after each read."""

    def __init__(self, images: np.ndarray, normalise: Callable[[np.ndarray], np.ndarray]) -> None:
        self.images, self.normalise = images, normalise
        sample = normalise(np.asarray(images[:1]))
        self.shape = (len(images), *sample.shape[1:])
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        batch = np.asarray(self.images[index])
        release(self.images)
        return self.normalise(batch)


class LivePrefix:
    """Activations after block ``stop``, computed when read from those after block ``start`` (a stored
    entry, or the images): for an entry the cache has no room for. Indexing returns float32 rows."""

    def __init__(self, owner: PrefixActivations, source: Any, start: int, stop: int) -> None:
        self.owner, self.source, self.start, self.stop = owner, source, start, stop
        sample = owner.run_batch(np.array(source[:1], dtype=np.float32), start, stop)
        self.shape = (len(source), *sample.shape[1:])
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> np.ndarray:
        inputs = np.array(self.source[index], dtype=np.float32)  # a writable copy
        release(self.source)
        if inputs.ndim == len(self.shape) - 1:  # a single row
            return self.owner.run_batch(inputs[None], self.start, self.stop)[0]
        step = self.owner.rows_per_batch()
        parts = [self.owner.run_batch(inputs[i : i + step], self.start, self.stop) for i in range(0, len(inputs), step)]
        return np.concatenate(parts) if parts else np.empty((0, *self.shape[1:]), np.float32)


@dataclass(frozen=True)
class PrefixIdentity:
    """What the activations of one backbone depend on, besides the block: see ActivationKey."""

    framework: str
    backbone: str
    preprocessing: str  # e.g. "mean=..;std=..;layout=NCHW"

    def key(self, data: ImageTable, block: str, images: str, weights: str) -> ActivationKey:
        return ActivationKey(self.framework, self.backbone, weights, data.image_size,
                             self.preprocessing, images, block)


def table_digest(data: ImageTable) -> str | None:
    """A digest of the table's image contents; None when the table cannot say what its images are."""
    if data.content_hashes:
        return images_digest(tuple(data.content_hashes), data.image_size, DECODER_VERSION)
    if data.manifest_hash:
        return images_digest((data.manifest_hash,), data.image_size, DECODER_VERSION)
    return None


class PrefixActivations(abc.ABC):
    """Activations after block k (k = 0 is the normalised image) and pooled features after block
    k, for one backbone and one data table, through a store. Block k starts from the deepest block
    below k that is already stored, never from the image when a block is there. Frameworks supply
    how to normalise the images, run blocks over a batch and pool a batch."""

    batch_size = 128  # images per forward pass at up to BATCH_PIXELS_SIDE px; fewer for larger images

    def rows_per_batch(self) -> int:
        """Images per forward pass: ``batch_size`` up to 96 px, then fewer, so that a batch's largest
        activations stay about the same size (at 224 px: 23 images, not 128 with 1.6 GB of activations)."""
        side = max(int(self.data.image_size), 1)
        scaled = int(self.batch_size * (BATCH_PIXELS_SIDE / side) ** 2)
        return max(1, min(self.batch_size, max(8, scaled)))

    def __init__(self, store: ActivationStore, identity: PrefixIdentity, data: ImageTable, n_blocks: int) -> None:
        digest = table_digest(data)
        # Without a content digest nothing may be shared: keep the activations with this object only.
        self.store: ActivationStore = store if digest is not None else MemoryStore()
        self.identity, self.data, self.n_blocks = identity, data, n_blocks
        self.images = digest or "unnamed"
        self._normalised: NormalisedImages | None = None
        self._chain: list[str] = []

    @abc.abstractmethod
    def normalise_batch(self, images: np.ndarray) -> np.ndarray:
        """A batch of uint8 (N, H, W, 3) images as float32 model input, in the framework's layout."""

    @abc.abstractmethod
    def block_weights_digest(self, i: int) -> str:
        """A digest of block ``i``'s weights and buffers (BatchNorm statistics too)."""

    @abc.abstractmethod
    def post_pool_digest(self, k: int) -> str:
        """A digest of the weights applied after pooling block ``k``'s output; "" when none are."""

    def weights_digest(self, k: int, pooled: bool = False) -> str:
        """A digest of every weight the activations after block ``k`` depend on: blocks ``0..k-1``,
        chained so that a deeper block hashes only its own weights, plus post-pooling weights."""
        while len(self._chain) <= k:
            i = len(self._chain)
            link = "start" if i == 0 else self._chain[-1] + self.block_weights_digest(i - 1)
            self._chain.append(hashlib.sha256(link.encode()).hexdigest())
        after_pool = self.post_pool_digest(k) if pooled else ""
        return hashlib.sha256((self._chain[k] + after_pool).encode()).hexdigest() if after_pool else self._chain[k]

    @abc.abstractmethod
    def run_batch(self, inputs: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Blocks ``start..stop-1``, in inference mode, over a float32 batch of activations after block ``start``."""

    @abc.abstractmethod
    def pool_batch(self, top: np.ndarray, block: int) -> np.ndarray:
        """Global pooling of a batch of activations after ``block`` (and, for the last block,
        whatever the backbone applies after pooling)."""

    def pool_along(self, inputs: np.ndarray, start: int, depths: list[int]) -> dict[int, np.ndarray]:
        """Pooled features after each block in ``depths`` (ascending, all > ``start``), from one batch of
        activations after block ``start``, in one pass. Frameworks may override this to stay on device."""
        pooled, current, x = {}, start, inputs
        for depth in depths:
            x = self.run_batch(x, current, depth)
            current = depth
            pooled[depth] = self.pool_batch(x, depth)
        return pooled

    # -- public -----------------------------------------------------------------------------
    def after_block(self, k: int) -> Any:
        """Activations after the first ``k`` blocks, for every image in the table (rows in table order):
        a memory-mapped entry, or, when the cache has no room for it, a ``LivePrefix`` that runs the
        frozen blocks on every read (the search says so once)."""
        if k == 0:
            return self._images()
        key = self._key(f"block:{k}", k)
        cached = self.store.get(key)
        if cached is not None:
            return cached
        start, inputs = self._deepest_below(k)
        live = LivePrefix(self, inputs, start, k)
        nbytes = int(np.prod(live.shape)) * self.store_itemsize()
        if not self.store.fits(nbytes):
            notice_once(f"The activations after block {k} of {self.identity.backbone} ({nbytes / 2**30:.1f} GB) do not "
                        f"fit the activation cache (AUTOML_TL_CACHE_GB, or the free disk): trials that freeze "
                        f"{k} blocks run those blocks on every batch instead of reading them.")
            return live
        return self._compute({k: key}, inputs, lambda batch: {k: self.run_batch(batch, start, k)})[k]

    def store_itemsize(self) -> int:
        """Bytes per stored value (float16 unless the store keeps float32)."""
        return int(getattr(getattr(self.store, "dtype", None), "itemsize", 4))

    def pooled(self, k: int | None = None) -> np.ndarray:
        """Pooled features after block ``k`` (the last block by default): the classic bottleneck features.
        The pass that computes them also stores the pooled features of every other depth it runs
        through, so trying another cut point later costs no block run at all."""
        k = self.n_blocks if k is None else k
        key = self._pooled_key(k)
        cached = self.store.get(key)
        if cached is not None:
            return cached
        stored = self.store.get(self._key(f"block:{k}", k)) if k > 0 else None
        if stored is not None:
            return self._compute({k: key}, stored, lambda batch: {k: self.pool_batch(batch, k)})[k]
        start, inputs = self._deepest_below(k)
        keys = {j: self._pooled_key(j) for j in range(start + 1, self.n_blocks + 1)}
        wanted = {j: key for j, key in keys.items() if j == k or not self.store.contains(key)}
        if k == start:  # only when k == 0: pooling the images themselves
            wanted = {k: key}
            return self._compute(wanted, inputs, lambda batch: {k: self.pool_batch(batch, k)})[k]
        depths = sorted(wanted)
        return self._compute(wanted, inputs, lambda batch: self.pool_along(batch, start, depths))[k]

    def pooled_float32(self, k: int | None = None) -> np.ndarray:
        """``pooled(k)`` as an in-memory float32 array. Pooled features are small and every head-only
        epoch reads all of them, so the last few are kept converted, shared by the trials of a process."""
        k = self.n_blocks if k is None else k
        if isinstance(self.store, MemoryStore):
            return np.asarray(self.pooled(k), dtype=np.float32)
        key = (self._pooled_key(k), self.store_itemsize())  # a float32 store's values are not a float16 one's
        cached = _POOLED_FLOAT32.get(key)
        if cached is None:
            cached = np.asarray(self.pooled(k), dtype=np.float32)
            cached.setflags(write=False)
            _POOLED_FLOAT32[key] = cached
            while len(_POOLED_FLOAT32) > 1 and sum(a.nbytes for a in _POOLED_FLOAT32.values()) > POOLED_FLOAT32_BYTES:
                _POOLED_FLOAT32.popitem(last=False)
        else:
            _POOLED_FLOAT32.move_to_end(key)
        return cached

    def stored_block(self, k: int) -> int:
        """The deepest block ``j <= k`` whose activations the store holds (0, the images, when none): where a
        pass to block ``k`` would start. Only looks; computes and opens nothing (for cost estimates)."""
        for j in range(min(k, self.n_blocks), 0, -1):
            if self.store.contains(self._key(f"block:{j}", j)):
                return j
        return 0

    def pooled_stored(self, k: int | None = None) -> bool:
        """Whether the store holds the pooled features after block ``k`` (the last block by default). Only looks."""
        return self.store.contains(self._pooled_key(self.n_blocks if k is None else k))

    # -- internals --------------------------------------------------------------------------
    def _key(self, block: str, k: int, pooled: bool = False) -> ActivationKey:
        return self.identity.key(self.data, block, self.images, self.weights_digest(k, pooled))

    def _pooled_key(self, k: int) -> ActivationKey:
        return self._key(f"pooled:{k}", k, pooled=True)

    def _images(self) -> NormalisedImages:
        if self._normalised is None:
            self._normalised = NormalisedImages(self.data.images, self.normalise_batch)
        return self._normalised

    def _deepest_below(self, k: int) -> tuple[int, Any]:
        for j in range(k - 1, 0, -1):
            key = self._key(f"block:{j}", j)
            cached = self.store.get(key) if self.store.contains(key) else None
            if cached is not None:
                return j, cached
        return 0, self._images()

    def _compute(self, keys: dict[int, ActivationKey], inputs: Any,
                 fn: Callable[[np.ndarray], dict[int, np.ndarray]]) -> dict[int, np.ndarray]:
        with charged(CACHE_PASSES):  # a search's time summary counts it as a cache pass, not as the trial's own time
            try:
                return self._fill(keys, inputs, fn, float16_ok=True)
            except _Float16Overflow:
                return self._fill(keys, inputs, fn, float16_ok=False)

    def _fill(self, keys: dict[int, ActivationKey], inputs: Any,
              fn: Callable[[np.ndarray], dict[int, np.ndarray]], float16_ok: bool) -> dict[int, np.ndarray]:
        """Run ``fn`` over the table batch by batch, writing each of its outputs to its entry; every
        entry becomes visible only when all are complete. Under a deadline that passes (the active one,
        ``automl_tl.runtime.deadline``), the pass stops between batches with ``DeadlineReached`` and its
        writers are aborted: nothing half-written is kept."""
        if len(inputs) == 0:
            raise ValueError("cannot compute activations for an empty table")
        writers: dict[int, Any] = {}
        deadline = active()
        try:
            step = self.rows_per_batch()
            for start in range(0, len(inputs), step):
                raise_if_passed(deadline, f"computing {self.identity.backbone}'s frozen-block activations")
                batch = np.array(inputs[start : start + step], dtype=np.float32)  # a writable copy
                release(inputs)
                for depth, rows in fn(batch).items():
                    rows = np.asarray(rows, dtype=np.float32)
                    if depth not in writers:
                        writers[depth] = self.store.writer(keys[depth], (len(inputs), *rows.shape[1:]), float16_ok)
                    writers[depth].write(start, rows)
            results = {}
            for depth in list(writers):
                results[depth] = writers.pop(depth).commit()
            return results
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise


def rows_as_float32(source: Any, indices: np.ndarray) -> np.ndarray:
    """Rows of a (possibly memory-mapped, float16) activation array, as a float32 array.
    Sorted reads keep a memory map sequential; the caller's order is restored after."""
    indices = np.asarray(indices, dtype=np.int64)
    order = np.argsort(indices, kind="stable")
    rows = np.empty((len(indices), *source.shape[1:]), dtype=np.float32)
    rows[order] = source[indices[order]]
    release(source)
    return rows

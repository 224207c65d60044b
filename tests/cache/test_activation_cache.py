"""The frozen-prefix activation cache: keys, staleness, deepest-block reuse, disk bounds, float16."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from automl_tl.cache.activations import LivePrefix, PrefixActivations, PrefixIdentity, rows_as_float32
from automl_tl.cache.store import (
    ActivationKey,
    DiskStore,
    MemoryStore,
    arrays_digest,
    store_from_env,
)
from automl_tl.errors import UserError
from automl_tl.testing import synthetic_table
from automl_tl.types import ImageTable


class LinearBlocks(PrefixActivations):
    """A numpy 'backbone': block i multiplies by weights[i]. Counts how much work each call does."""

    batch_size = 7

    def __init__(self, store, data: ImageTable, weights: list[float], name: str = "linear") -> None:
        super().__init__(store, PrefixIdentity("numpy", name, "scale=1/255"), data, len(weights))
        self.weights = weights
        self.block_runs: list[tuple[int, int]] = []

    def normalise_batch(self, images: np.ndarray) -> np.ndarray:
        return images.astype(np.float32) / 255.0

    def block_weights_digest(self, i: int) -> str:
        return arrays_digest([(str(i), np.asarray([self.weights[i]], np.float64))])

    def post_pool_digest(self, k: int) -> str:
        return ""

    def run_batch(self, inputs: np.ndarray, start: int, stop: int) -> np.ndarray:
        self.block_runs.append((start, stop))
        for w in self.weights[start:stop]:
            inputs = inputs * w
        return inputs

    def pool_batch(self, top: np.ndarray, block: int) -> np.ndarray:
        return top.mean(axis=(1, 2))


def direct(data: ImageTable, weights: list[float], k: int) -> np.ndarray:
    return data.images.astype(np.float32) / 255.0 * float(np.prod(weights[:k]))


@pytest.fixture
def store(tmp_path: Path) -> DiskStore:
    return DiskStore(tmp_path / "cache", max_bytes=2**30, dtype="float32")


def test_block_k_equals_direct_computation_and_starts_from_the_deepest_cached_block(store):
    data = synthetic_table(n_per_split=5, size=8)
    prefix = LinearBlocks(store, data, [2.0, 0.5, 3.0, 1.5])
    np.testing.assert_allclose(prefix.after_block(2), direct(data, prefix.weights, 2), rtol=1e-6)
    prefix.block_runs.clear()
    np.testing.assert_allclose(prefix.after_block(4), direct(data, prefix.weights, 4), rtol=1e-6)
    assert prefix.block_runs and all(run == (2, 4) for run in prefix.block_runs), "block 4 must start from cached block 2"
    prefix.block_runs.clear()
    np.testing.assert_allclose(prefix.pooled(4), direct(data, prefix.weights, 4).mean(axis=(1, 2)), rtol=1e-6)
    assert prefix.block_runs == [], "pooled features of a cached block need no block run"


def test_a_second_process_reads_what_the_first_wrote(store, tmp_path):
    data = synthetic_table(n_per_split=4, size=8)
    first = LinearBlocks(store, data, [2.0, 3.0])
    expected = first.pooled()
    again = LinearBlocks(DiskStore(store.root, store.max_bytes, "float32"), data, [2.0, 3.0])
    np.testing.assert_array_equal(again.pooled(), expected)
    assert again.block_runs == [] and again.store.hits >= 1


def test_entries_are_memory_mapped_and_read_only(store):
    prefix = LinearBlocks(store, synthetic_table(n_per_split=4, size=8), [2.0, 3.0])
    prefix.after_block(1)
    cached = prefix.after_block(1)
    assert isinstance(cached, np.memmap)
    with pytest.raises(ValueError):
        cached[0] = 0


def test_a_changed_image_is_never_served_stale(store):
    data = synthetic_table(n_per_split=4, size=8)
    before = LinearBlocks(store, data, [2.0, 3.0]).pooled()
    images = data.images.copy()
    images[3] = 255 - images[3]
    hashes = list(data.content_hashes or [f"img{i}" for i in range(len(images))])
    hashes[3] = "changed"
    changed = dataclasses.replace(data, images=images, content_hashes=tuple(hashes))
    original = dataclasses.replace(data, content_hashes=tuple(f"img{i}" for i in range(len(images))))
    LinearBlocks(store, original, [2.0, 3.0]).pooled()
    after = LinearBlocks(store, changed, [2.0, 3.0]).pooled()
    np.testing.assert_allclose(after, direct(changed, [2.0, 3.0], 2).mean(axis=(1, 2)), rtol=1e-6)
    assert not np.allclose(after[3], before[3])


def test_changed_weights_are_never_served_stale(store):
    data = synthetic_table(n_per_split=4, size=8)
    old_prefix = LinearBlocks(store, data, [2.0, 3.0])
    old_prefix.after_block(1)
    old = old_prefix.after_block(2)
    # Same backbone name, same data, one weight changed: a different key, fresh values.
    new_prefix = LinearBlocks(store, data, [2.0, 4.0])
    new = new_prefix.after_block(2)
    np.testing.assert_allclose(new, direct(data, [2.0, 4.0], 2), rtol=1e-6)
    assert not np.allclose(old, new)
    # Block 1 did not change, so it is shared: block 2 starts from it.
    assert new_prefix.block_runs and all(run == (1, 2) for run in new_prefix.block_runs)


def test_the_key_covers_framework_size_preprocessing_and_block():
    base = ActivationKey("torch", "mobilenet_v2", "w", 48, "mean=a", "imgs", "block:3")
    variants = [dataclasses.replace(base, **{field: value}) for field, value in
                [("framework", "keras"), ("backbone", "resnet18"), ("weights", "w2"), ("image_size", 64),
                 ("preprocessing", "mean=b"), ("images", "imgs2"), ("block", "block:4")]]
    digests = {base.digest(), *(v.digest() for v in variants)}
    assert len(digests) == len(variants) + 1


def test_the_store_stays_under_its_size_limit_evicting_the_least_recently_used(tmp_path):
    data = synthetic_table(n_per_split=6, size=16)
    one_entry = LinearBlocks(MemoryStore(), data, [1.0]).after_block(1).nbytes // 2  # float16 on disk
    store = DiskStore(tmp_path / "small", max_bytes=int(one_entry * 2.5), dtype="float16")
    prefix = LinearBlocks(store, data, [1.0, 2.0, 3.0, 4.0])
    prefix.after_block(1)
    first = store.path(prefix._key("block:1", 1))
    os.utime(first, (1, 1))  # make block 1 the least recently used
    prefix.after_block(2)
    prefix.after_block(3)
    assert store.bytes_used() <= store.max_bytes
    assert not first.exists() and store.evicted >= 1
    assert len(store.entries()) == 2


def test_an_entry_the_cache_cannot_hold_runs_live_and_says_so_once(inbox, tmp_path):
    inbox.take()
    store = DiskStore(tmp_path / "tiny", max_bytes=10, dtype="float16")
    data = synthetic_table(n_per_split=4, size=8)
    prefix = LinearBlocks(store, data, [2.0, 3.0])
    live = prefix.after_block(2)
    assert isinstance(live, LivePrefix) and live.shape == (len(data.images), 8, 8, 3)
    picked = np.array([5, 0, 3])
    np.testing.assert_allclose(rows_as_float32(live, picked), direct(data, [2.0, 3.0], 2)[picked], rtol=1e-6)
    prefix.after_block(2)
    notices = inbox.take()
    assert len(notices) == 1 and "after block 2 of linear" in notices[0] and "AUTOML_TL_CACHE_GB" in notices[0]
    assert store.entries() == [] and inbox.take() == []
    # Nothing the size of the data set was kept in memory: reading rows runs the blocks on those rows only.
    prefix.block_runs.clear()
    live[np.array([1, 2])]
    assert prefix.block_runs == [(0, 2)]


def test_the_limit_follows_the_free_disk(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    import automl_tl.cache.store as activation_store

    usage = namedtuple("usage", "total used free")
    store = DiskStore(tmp_path / "disk", max_bytes=2**40, dtype="float32")
    data = synthetic_table(n_per_split=4, size=8)
    entry_bytes = len(data.images) * 8 * 8 * 3 * 4
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, activation_store.DISK_RESERVE + entry_bytes // 2))
    assert not store.fits(entry_bytes)  # the disk, not the limit, is what is short
    assert isinstance(LinearBlocks(store, data, [2.0]).after_block(1), LivePrefix)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 2**50))
    assert store.fits(entry_bytes)
    # Without AUTOML_TL_CACHE_GB the limit is half the disk the cache may use, within 1 and 64 GB.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 10 * 2**30))
    assert activation_store.default_cache_bytes(tmp_path / "new") == 5 * 2**30
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 2**50))
    assert activation_store.default_cache_bytes(tmp_path / "new") == 64 * 2**30


def test_float16_storage_is_close_and_overflow_falls_back_to_float32(tmp_path):
    data = synthetic_table(n_per_split=4, size=8)
    store = DiskStore(tmp_path / "half", max_bytes=2**30, dtype="float16")
    half = LinearBlocks(store, data, [6.0]).after_block(1)
    assert half.dtype == np.float16
    np.testing.assert_allclose(np.asarray(half, np.float32), direct(data, [6.0], 1), rtol=1e-3, atol=1e-3)
    huge = LinearBlocks(store, data, [1e6]).after_block(1)
    assert huge.dtype == np.float32 and np.isfinite(huge).all()
    np.testing.assert_allclose(huge, direct(data, [1e6], 1), rtol=1e-6)


def test_an_interrupted_write_leaves_nothing_to_serve(store):
    class Failing(LinearBlocks):
        def run_batch(self, inputs, start, stop):
            if len(self.block_runs) == 1:
                raise KeyboardInterrupt
            return super().run_batch(inputs, start, stop)

    data = synthetic_table(n_per_split=6, size=8)
    with pytest.raises(KeyboardInterrupt):
        Failing(store, data, [2.0]).after_block(1)
    assert store.entries() == [] and not list(store.root.glob(".partial-*"))
    np.testing.assert_allclose(LinearBlocks(store, data, [2.0]).after_block(1), direct(data, [2.0], 1), rtol=1e-6)


def test_a_table_without_content_hashes_is_never_shared(store):
    data = dataclasses.replace(synthetic_table(n_per_split=4, size=8), content_hashes=(), manifest_hash="")
    LinearBlocks(store, data, [2.0]).pooled()
    assert store.entries() == []


def test_rows_keep_the_callers_order_and_become_float32():
    source = np.arange(12, dtype=np.float16).reshape(6, 2)
    picked = rows_as_float32(source, np.array([4, 0, 2]))
    assert picked.dtype == np.float32
    np.testing.assert_array_equal(picked, [[8, 9], [0, 1], [4, 5]])


def test_store_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "here"))
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "0.5")
    store = store_from_env()
    assert store.root == tmp_path / "here" and store.max_bytes == 2**29 and store.dtype == np.float16
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "lots")
    with pytest.raises(UserError, match="AUTOML_TL_CACHE_GB"):
        store_from_env()
    monkeypatch.setenv("AUTOML_TL_CACHE_GB", "1")
    monkeypatch.setenv("AUTOML_TL_CACHE_DTYPE", "int8")
    with pytest.raises(UserError, match="AUTOML_TL_CACHE_DTYPE"):
        store_from_env()


def test_one_pass_stores_pooled_features_at_every_depth_so_other_cut_points_are_free(store):
    data = synthetic_table(n_per_split=4, size=8)
    weights = [2.0, 0.5, 3.0, 1.5]
    prefix = LinearBlocks(store, data, weights)
    prefix.pooled(2)
    assert prefix.block_runs, "the first pooled features need a pass over the blocks"
    prefix.block_runs.clear()
    for k in (1, 3, 4):
        np.testing.assert_allclose(prefix.pooled(k), direct(data, weights, k).mean(axis=(1, 2)), rtol=1e-6)
    assert prefix.block_runs == [], "every other depth was pooled on the same pass"


def test_a_deadline_stops_a_pass_between_batches_leaving_nothing_half_written(store):
    """Under a deadline that passes, ``_fill`` stops at the next batch and aborts its writers; the next pass
    without a deadline computes the entry whole."""
    import time

    from automl_tl.runtime.deadline import Deadline, DeadlineReached, running_under

    deadline = Deadline.after(3600.0)

    class Late(LinearBlocks):
        def run_batch(self, inputs, start, stop):
            if len(self.block_runs) == 1:  # the deadline passes while the second batch runs
                object.__setattr__(deadline, "seconds", time.monotonic() - deadline.started)
            return super().run_batch(inputs, start, stop)

    data = synthetic_table(n_per_split=6, size=8)  # 18 rows, batches of 7: three batches
    late = Late(store, data, [2.0])
    with running_under(deadline), pytest.raises(DeadlineReached, match="frozen-block activations"):
        late.after_block(1)
    assert len(late.block_runs) == 2, "the pass stops at the batch after the deadline"
    assert store.entries() == [] and not list(store.root.glob(".partial-*"))
    np.testing.assert_allclose(LinearBlocks(store, data, [2.0]).after_block(1), direct(data, [2.0], 1), rtol=1e-6)

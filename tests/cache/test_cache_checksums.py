"""Activation entries prove their content: a damaged entry is never served, it is computed again, and the
search says so once per cache folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from automl_tl.cache import activations
from automl_tl.cache.store import DiskStore
from automl_tl.data import checksums
from automl_tl.testing import synthetic_table
from tests.cache.test_activation_cache import LinearBlocks, direct

WEIGHTS = [2.0, 0.5, 3.0]


def flip_bytes(path: Path, rng: np.random.Generator) -> None:
    """Flip one bit in each of a few bytes after the header."""
    data = bytearray(path.read_bytes())
    for index in rng.integers(128, len(data), 3):
        data[index] ^= 1 << int(rng.integers(0, 8))
    path.write_bytes(bytes(data))


def random_values(path: Path, rng: np.random.Generator) -> None:
    """The same shape and dtype, other values: only the content can tell."""
    array = np.load(path)
    np.save(path, rng.standard_normal(array.shape).astype(array.dtype))


def random_block_in_the_middle(path: Path, rng: np.random.Generator) -> None:
    """2 KB of random bytes written into the middle of the file (what made every trial's loss nan)."""
    size = path.stat().st_size
    with open(path, "r+b") as stream:
        stream.seek(max(128, size // 2 - 1024))
        stream.write(rng.integers(0, 256, min(2048, size - 128), dtype=np.uint8).tobytes())


def truncate(path: Path, rng: np.random.Generator) -> None:
    os.truncate(path, path.stat().st_size // 2)


DAMAGE: dict[str, Callable[[Path, np.random.Generator], None]] = {
    "flipped bytes": flip_bytes, "random values": random_values, "2 KB in the middle": random_block_in_the_middle,
    "truncated": truncate}


def fill(store: DiskStore, data) -> tuple[LinearBlocks, list[Path]]:
    """The pooled features of every depth and block 2, computed into ``store``; returns the entries written."""
    prefix = LinearBlocks(store, data, WEIGHTS)
    prefix.pooled(1)
    prefix.after_block(2)
    return prefix, sorted(store.entries())


def check_values(prefix: LinearBlocks, data) -> None:
    np.testing.assert_allclose(prefix.after_block(2), direct(data, WEIGHTS, 2), rtol=1e-6)
    np.testing.assert_allclose(prefix.pooled(3), direct(data, WEIGHTS, 3).mean(axis=(1, 2)), rtol=1e-5)


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_entry_is_computed_again_with_one_notice(inbox, tmp_path, damage):
    data, store = synthetic_table(n_per_split=5, size=8), DiskStore(tmp_path / "cache", 2**30, "float32")
    _, entries = fill(store, data)
    assert len(entries) == 4  # pooled 1..3, block 2
    rng = np.random.default_rng(0)
    for entry in entries:
        DAMAGE[damage](entry, rng)
    checksums.forget()  # what a new process knows
    inbox.take()
    again = LinearBlocks(DiskStore(store.root, 2**30, "float32"), data, WEIGHTS)
    check_values(again, data)
    assert again.block_runs, "damaged entries are computed again, never served"
    notices = inbox.take()
    assert len(notices) == 1 and str(store.root) in notices[0] and notices[0].startswith("2 cache entries")
    assert again.store.rebuilt == 2  # block 2 and pooled 3: the ones read
    checksums.forget()
    third = LinearBlocks(DiskStore(store.root, 2**30, "float32"), data, WEIGHTS)
    check_values(third, data)
    assert third.block_runs == [] and inbox.take() == [], "the entries computed again are whole"


def test_swapped_missing_and_damaged_sidecars_are_not_trusted(inbox, tmp_path):
    data, store = synthetic_table(n_per_split=5, size=8), DiskStore(tmp_path / "cache", 2**30, "float32")
    prefix, _ = fill(store, data)
    block, pooled = store.path(prefix._key("block:2", 2)), store.path(prefix._pooled_key(3))
    pooled_one = store.path(prefix._pooled_key(1))
    sidecars = {path: path.with_suffix(".json").read_bytes() for path in (block, pooled, pooled_one)}
    block.with_suffix(".json").write_bytes(sidecars[pooled])  # swapped with another entry's
    pooled.with_suffix(".json").write_bytes(sidecars[block])
    pooled_one.with_suffix(".json").unlink()  # missing
    checksums.forget()
    inbox.take()
    again = LinearBlocks(DiskStore(store.root, 2**30, "float32"), data, WEIGHTS)
    check_values(again, data)
    np.testing.assert_allclose(again.pooled(1), direct(data, WEIGHTS, 1).mean(axis=(1, 2)), rtol=1e-5)
    notices = inbox.take()
    assert len(notices) == 1 and notices[0].startswith("3 cache entries")
    for path in (block, pooled):  # each sidecar names its own entry again
        assert json.loads(path.with_suffix(".json").read_text())["entry"] == path.stem
    block.with_suffix(".json").write_text("{not json")
    checksums.forget()
    assert DiskStore(store.root, 2**30, "float32").get(prefix._key("block:2", 2)) is None
    assert not block.exists(), "an entry whose sidecar is damaged is deleted, to be computed again"


def test_an_entry_is_hashed_once_per_process_and_again_after_it_changes(tmp_path, monkeypatch):
    data, store = synthetic_table(n_per_split=5, size=8), DiskStore(tmp_path / "cache", 2**30, "float32")
    prefix, _ = fill(store, data)
    key = prefix._key("block:2", 2)
    hashed: list[int] = []
    real = checksums.hash_fd
    monkeypatch.setattr(checksums, "hash_fd", lambda fd: hashed.append(fd) or real(fd))
    store.get(key)
    assert hashed == [], "the process that wrote an entry knows its checksum"
    checksums.forget()
    for _ in range(3):
        assert store.get(key) is not None
    assert len(hashed) == 1, "hashed on the first open only"
    path = store.path(key)
    random_values(path, np.random.default_rng(1))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # written to later
    assert store.get(key) is None and len(hashed) == 2 and store.rebuilt == 1


def test_writing_out_of_order_still_records_the_files_checksum(tmp_path):
    store = DiskStore(tmp_path / "cache", 2**30, "float32")
    key = LinearBlocks(store, synthetic_table(n_per_split=2, size=4), [1.0])._key("block:1", 1)
    rows = np.arange(24, dtype=np.float32).reshape(6, 4)
    writer = store.writer(key, (6, 4))
    writer.write(3, rows[3:])
    writer.write(0, rows[:3])
    writer.commit()
    checksums.forget()
    np.testing.assert_array_equal(store.get(key), rows)


def test_entries_are_not_checked_while_checking_is_off(tmp_path, monkeypatch):
    data, store = synthetic_table(n_per_split=5, size=8), DiskStore(tmp_path / "cache", 2**30, "float32")
    prefix, _ = fill(store, data)
    key = prefix._key("block:2", 2)
    flip_bytes(store.path(key), np.random.default_rng(2))
    checksums.forget()
    monkeypatch.setattr(checksums, "VERIFY", False)  # bench/cache_checksum.py's "off"
    assert store.get(key) is not None
    monkeypatch.setattr(checksums, "VERIFY", True)
    assert store.get(key) is None


@pytest.mark.slow
def test_a_search_over_damaged_cache_entries_computes_them_again_and_succeeds(small_sample, tmp_path, monkeypatch, capsys):
    """The issue's case: 2 KB of random bytes in the middle of every entry made every trial's loss nan."""
    from automl_tl.cli import main

    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))
    args = ["--trials", "2", "--epochs", "1", "--image-size", "32", "--backbones", "mobilenet_v2", "--seed", "3",
            "--no-smart-start"]
    assert main(["search", str(small_sample), "--study", "clean", *args]) == 0
    entries = [p for p in (tmp_path / "cache").rglob("*.npy") if not p.name.startswith(".")]
    assert len(entries) >= 2 and any(p.parent.name == "decoded" for p in entries)
    rng = np.random.default_rng(0)
    for entry in entries:
        random_block_in_the_middle(entry, rng)
    checksums.forget()  # a new process: nothing checked, nothing kept in memory
    activations._POOLED_FLOAT32.clear()
    capsys.readouterr()
    assert main(["search", str(small_sample), "--study", "after", *args]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "nan" not in out
    assert f"1 cache entry in {tmp_path / 'cache' / 'decoded'} did not match the checksum" in out
    assert f"in {tmp_path / 'cache'} did not match the checksum" in out

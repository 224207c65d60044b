"""Where frozen-prefix activations live: memory-mapped .npy files on disk, bounded in size.

An entry is one array: the activations of every image of one data table after one block
of one backbone. Its file name is a digest of everything that changes the values (see
``ActivationKey``), so a changed image or changed weights give a different name and can
never be served stale. Files are written under a temporary name and renamed into place,
so a killed process or a second worker never leaves or reads half an entry. Reading maps
the file instead of loading it: trials touch only the rows they use, and memory does not
grow from trial to trial. When the folder exceeds its size limit, the least recently used
entries are deleted (a process that still maps one keeps reading it safely).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from automl_tl.data.image_store import cache_dir
from automl_tl.data.pages import free_bytes, is_entry, new_array_file

FORMAT_VERSION = 2  # bump when the layout of entries or the meaning of a key changes
CACHE_GB_ENV = "AUTOML_TL_CACHE_GB"
CACHE_DTYPE_ENV = "AUTOML_TL_CACHE_DTYPE"
MEMORY_ENTRY_BYTES = 1 << 30  # the largest entry a MemoryStore keeps (for weights that exist once)
DISK_RESERVE = 2 << 30  # bytes of the disk the cache leaves free
DEFAULT_CACHE_SHARE, DEFAULT_CACHE_MAX_GB, DEFAULT_CACHE_MIN_GB = 0.5, 64.0, 1.0
STALE_PARTIAL_S = 24 * 3600  # a partial write older than this was left by a killed process
FLOAT16_SAFE_MAX = 6.0e4  # float16 overflows above 65504; larger activations are kept as float32


@dataclass(frozen=True)
class ActivationKey:
    """Everything that changes the cached values. ``images`` digests every image's content hash
    in table order; ``weights`` digests the backbone's actual tensors, not a file name."""

    framework: str
    backbone: str
    weights: str
    image_size: int
    preprocessing: str
    images: str
    block: str  # "block:K" (after K blocks) or "pooled:K" (pooled features of block K)

    def digest(self, stored_as: str = "float16") -> str:
        """The entry's file name. ``stored_as`` is the dtype the store keeps values in: a float32 store
        never serves what a float16 one rounded (float16 keeps the digests entries had before)."""
        fields = {"format": FORMAT_VERSION, **asdict(self)}
        if stored_as != "float16":
            fields["stored_as"] = stored_as
        text = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:40]


@functools.lru_cache(maxsize=16)
def images_digest(content_hashes: tuple[str, ...], image_size: int, decoder: str) -> str:
    """One digest for a table's images, in order: any changed, added or moved image changes it."""
    h = hashlib.sha256(f"{decoder}|{image_size}|".encode())
    for content in content_hashes:
        h.update(content.encode())
        h.update(b"\n")
    return h.hexdigest()


def arrays_digest(named_arrays: Iterable[tuple[str, np.ndarray]]) -> str:
    """A digest of named arrays (a model's weights): names, shapes, dtypes and bytes."""
    h = hashlib.sha256()
    for name, array in named_arrays:
        array = np.ascontiguousarray(array)
        h.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        h.update(array.data.cast("B"))
    return h.hexdigest()


class ActivationWriter(Protocol):
    """Fills one entry batch by batch, then makes it visible."""

    def write(self, start: int, rows: np.ndarray) -> None: ...

    def commit(self) -> np.ndarray: ...

    def abort(self) -> None: ...


class ActivationStore(Protocol):
    """A place to keep activations: on disk for real searches, in memory for throwaway weights."""

    hits: int
    misses: int

    def get(self, key: ActivationKey) -> np.ndarray | None: ...

    def contains(self, key: ActivationKey) -> bool: ...

    def fits(self, nbytes: int) -> bool: ...

    def writer(self, key: ActivationKey, shape: tuple[int, ...], float16_ok: bool) -> ActivationWriter: ...


class _MemoryWriter:
    def __init__(self, store: MemoryStore, key: ActivationKey, shape: tuple[int, ...]) -> None:
        self.store, self.key = store, key
        self.array = np.empty(shape, dtype=np.float32)

    def write(self, start: int, rows: np.ndarray) -> None:
        self.array[start : start + len(rows)] = rows

    def commit(self) -> np.ndarray:
        self.store.entries[self.key] = self.array
        return self.array

    def abort(self) -> None:
        self.array = np.empty(0, np.float32)


class MemoryStore:
    """Activations kept for the life of one object: for weights that exist only once (from scratch)."""

    def __init__(self) -> None:
        self.entries: dict[ActivationKey, np.ndarray] = {}
        self.hits = self.misses = 0

    def get(self, key: ActivationKey) -> np.ndarray | None:
        value = self.entries.get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
        return value

    def contains(self, key: ActivationKey) -> bool:
        return key in self.entries

    def fits(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` may be kept (in memory: up to ``MEMORY_ENTRY_BYTES``)."""
        return nbytes <= MEMORY_ENTRY_BYTES

    def writer(self, key: ActivationKey, shape: tuple[int, ...], float16_ok: bool) -> ActivationWriter:
        return _MemoryWriter(self, key, shape)


class _DiskWriter:
    """Rows go to a partial ``.npy`` file with ``pwrite`` (no writable memory map, whose dirty pages
    would count as this process's memory), and the file is renamed into place when complete."""

    def __init__(self, store: DiskStore, key: ActivationKey, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.store, self.key, self.dtype, self.shape = store, key, dtype, shape
        self.tmp, self.offset = new_array_file(store.root, shape, dtype)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.fd: int | None = os.open(self.tmp, os.O_RDWR)
        self.overflowed = False

    def write(self, start: int, rows: np.ndarray) -> None:
        if self.dtype == np.float16 and rows.size and float(np.abs(rows).max()) > FLOAT16_SAFE_MAX:
            self.overflowed = True  # commit() refuses the entry; it is recomputed as float32
        if not self.overflowed and self.fd is not None:
            data = np.ascontiguousarray(rows, dtype=self.dtype)
            os.pwrite(self.fd, data.data.cast("B"), self.offset + start * self.row_bytes)

    def commit(self) -> np.ndarray:
        self._close()
        if self.overflowed:
            self.abort()
            raise _Float16Overflow(self.shape)
        final = self.store.path(self.key)
        os.replace(self.tmp, final)
        self.store.describe(self.key, self.shape, self.dtype)
        self.store.evict(keep=final)
        return np.load(final, mmap_mode="r")

    def abort(self) -> None:
        self._close()
        self.tmp.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Float16Overflow(Exception):
    """An activation exceeded float16's range: the entry is recomputed as float32."""


class DiskStore:
    """Memory-mapped entries under ``root``, least recently used evicted beyond ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int, dtype: str = "float16") -> None:
        if dtype not in ("float16", "float32"):
            raise ValueError(f"cache dtype must be float16 or float32, not {dtype!r}")
        self.root, self.max_bytes, self.dtype = Path(root), int(max_bytes), np.dtype(dtype)
        self.hits = self.misses = self.evicted = 0

    def path(self, key: ActivationKey) -> Path:
        """The entry's file: its key's digest for this store's dtype (see ``ActivationKey.digest``)."""
        return self.root / f"{key.digest(self.dtype.name)}.npy"

    def describe(self, key: ActivationKey, shape: tuple[int, ...], dtype: np.dtype) -> None:
        """A readable sidecar saying what the entry holds (its key, shape and dtype)."""
        info = {**asdict(key), "shape": list(shape), "dtype": np.dtype(dtype).name}
        sidecar = self.path(key).with_suffix(".json")
        tmp = sidecar.with_name(f".partial-{os.getpid()}-{sidecar.name}")
        tmp.write_text(json.dumps(info, indent=1))
        os.replace(tmp, sidecar)

    def get(self, key: ActivationKey) -> np.ndarray | None:
        path = self.path(key)
        try:
            array = np.load(path, mmap_mode="r")
        except (FileNotFoundError, ValueError, OSError):
            self.misses += 1
            return None
        try:
            os.utime(path)  # recently used: evicted last
        except OSError:
            pass
        self.hits += 1
        return array

    def contains(self, key: ActivationKey) -> bool:
        return self.path(key).is_file()

    def fits(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` can be written: within the size limit, and within the free disk
        (less ``DISK_RESERVE``) once older entries are evicted."""
        if nbytes > self.max_bytes:
            return False
        return nbytes + DISK_RESERVE <= free_bytes(self.root) + self.bytes_used()

    def writer(self, key: ActivationKey, shape: tuple[int, ...], float16_ok: bool = True) -> ActivationWriter:
        nbytes = int(np.prod(shape)) * self.dtype.itemsize
        if not self.fits(nbytes):
            # Only pooled features get here (block entries are checked first and run live): they are small.
            return _MemoryWriter(MemoryStore(), key, shape)
        self.evict(extra=nbytes)  # make room first: the disk may be the limit, not only max_bytes
        dtype = self.dtype if float16_ok else np.dtype(np.float32)
        return _DiskWriter(self, key, shape, dtype)

    def entries(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [p for p in self.root.glob("*.npy") if is_entry(p)]  # never a partial write, nor a file not ours

    def bytes_used(self) -> int:
        total = 0
        for entry in self.entries():
            try:
                total += entry.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def evict(self, keep: Path | None = None, extra: int = 0) -> None:
        """Delete least recently used entries until the folder, plus ``extra`` bytes about to be written,
        fits ``max_bytes`` and the free disk keeps ``DISK_RESERVE``."""
        stats = []
        for entry in self.entries():
            try:
                stats.append((entry.stat().st_mtime, entry.stat().st_size, entry))
            except FileNotFoundError:
                pass
        total = sum(size for _, size, _ in stats)
        budget = min(self.max_bytes, total + free_bytes(self.root) - DISK_RESERVE) - extra
        for _, size, entry in sorted(stats):
            if total <= budget:
                break
            if entry == keep:
                continue
            entry.unlink(missing_ok=True)
            entry.with_suffix(".json").unlink(missing_ok=True)
            total -= size
            self.evicted += 1


@dataclass(frozen=True)
class FolderUsage:
    """A store folder's own files: ``entries`` (one ``.npy`` each) and their ``bytes``, sidecars included."""

    entries: int
    bytes: int


def _own_files(root: Path) -> list[tuple[Path, os.stat_result]]:
    """The entry files (``is_entry``) directly in ``root``, with their stats; none when it does not exist."""
    found = []
    for path in root.iterdir() if root.is_dir() else []:
        try:
            if is_entry(path) and path.is_file():
                found.append((path, path.stat()))
        except FileNotFoundError:  # evicted by another process meanwhile
            pass
    return found


def folder_usage(root: Path) -> FolderUsage:
    """What the activation cache or the decoded-image store in ``root`` holds (its sub-folders not counted)."""
    files = _own_files(root)
    return FolderUsage(sum(path.suffix == ".npy" for path, _ in files), sum(stat.st_size for _, stat in files))


def clear_folder(root: Path, now: float | None = None) -> FolderUsage:
    """Delete a store folder's entries and the partial writes that killed processes left (older than
    ``STALE_PARTIAL_S``; a younger one may be a running search's). Files that are not a store's, and
    sub-folders, stay. Returns what was removed. A process that still maps a deleted entry reads on safely."""
    removed = folder_usage(root)
    for path, _ in _own_files(root):
        path.unlink(missing_ok=True)
    cutoff = (time.time() if now is None else now) - STALE_PARTIAL_S
    for partial in root.glob(".partial-*") if root.is_dir() else []:
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink(missing_ok=True)
        except FileNotFoundError:
            pass
    return removed


def default_cache_dir() -> Path:
    """The activation cache's folder (see ``automl_tl.data.image_store.cache_dir``)."""
    return cache_dir()


def default_cache_bytes(root: Path) -> int:
    """Half of the disk that the cache may use (its free space plus what it holds now), between 1 and
    64 GB: at 224 px an early block of one backbone over 50,000 images is several GB."""
    used = DiskStore(root, 0).bytes_used()
    share = DEFAULT_CACHE_SHARE * (free_bytes(root) + used)
    return int(min(max(share, DEFAULT_CACHE_MIN_GB * 2**30), DEFAULT_CACHE_MAX_GB * 2**30))


def store_from_env() -> DiskStore:
    """The shared on-disk store, configured by ``$AUTOML_TL_CACHE_DIR``, ``$AUTOML_TL_CACHE_GB`` (by
    default half the disk it may use, see ``default_cache_bytes``) and ``$AUTOML_TL_CACHE_DTYPE``
    (float16 by default)."""
    from automl_tl.errors import UserError

    root = default_cache_dir()
    raw_gb = os.environ.get(CACHE_GB_ENV)
    if raw_gb is None or not raw_gb.strip():
        limit = default_cache_bytes(root)
    else:
        try:
            limit = int(float(raw_gb) * 2**30)
        except ValueError:
            raise UserError(f"{CACHE_GB_ENV}={raw_gb!r} is not a number. Set it to the cache's size limit in GB, e.g. 4.") from None
    dtype = os.environ.get(CACHE_DTYPE_ENV, "float16")
    if dtype not in ("float16", "float32"):
        raise UserError(f"{CACHE_DTYPE_ENV}={dtype!r}: choose float16 (the default) or float32.")
    return DiskStore(root, limit, dtype)

"""Where frozen-prefix activations live: memory-mapped .npy files on disk, bounded in size.

An entry is one array: the activations of every image of one data table after one block
of one backbone. Its file name is a digest of everything that changes the values (see
``ActivationKey``), so a changed image or changed weights give a different name and can
never be served stale. Files are written under a temporary name and renamed into place,
so a killed process or a second worker never leaves or reads half an entry. Reading maps
the file instead of loading it: trials touch only the rows they use, and memory does not
grow from trial to trial. When the folder exceeds its size limit, the least recently used
entries are deleted (a process that still maps one keeps reading it safely).

Each entry's sidecar keeps its key, shape, dtype and a checksum of the file, computed as the rows
are written; an entry is checked against it when first opened in a process, and one that fails
(or whose sidecar is missing, damaged or another entry's) is deleted and computed again
(``automl_tl.data.cache_entries``). Only entries whose sidecar proves them ours are counted,
evicted or cleared.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from automl_tl.cache.keys import (
    ENTRY_FORMAT,
    ActivationKey,
    arrays_digest,
    images_digest,
    proves_activation,
    proves_own,
)
from automl_tl.data import checksums
from automl_tl.data.cache_entries import (
    DamagedEntry,
    FolderUsage,
    commit_partial,
    discard_entry,
    drop_partial,
    new_array_file,
    note_rebuilt,
    open_checked,
    owned_entries,
    read_sidecar,
    write_sidecar,
)
from automl_tl.data.cache_entries import clear_folder as clear_store_folder
from automl_tl.data.cache_entries import folder_usage as store_folder_usage
from automl_tl.runtime.cache_paths import activations_dir
from automl_tl.runtime.disk_room import DISK_RESERVE, StoredEntry, evict_least_recent, free_bytes, room_for
from automl_tl.runtime.env_vars import CACHE_DTYPE, CACHE_GB

__all__ = ["ActivationKey", "ActivationStore", "ActivationWriter", "DiskStore", "FolderUsage", "MemoryStore",
           "DISK_RESERVE", "arrays_digest", "clear_folder", "default_cache_bytes", "folder_usage",
           "images_digest", "proves_activation", "store_from_env"]

CACHE_GB_ENV, CACHE_DTYPE_ENV = CACHE_GB.name, CACHE_DTYPE.name
MEMORY_ENTRY_BYTES = 1 << 30  # the largest entry a MemoryStore keeps (for weights that exist once)
DEFAULT_CACHE_SHARE, DEFAULT_CACHE_MAX_GB, DEFAULT_CACHE_MIN_GB = 0.5, 64.0, 1.0
FLOAT16_SAFE_MAX = 6.0e4  # float16 overflows above 65504; larger activations are kept as float32


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
    would count as this process's memory), and the file is renamed into place when complete. Rows
    come in order, so their checksum is computed as they are written; rows out of order make
    ``commit`` hash the finished file instead."""

    def __init__(self, store: DiskStore, key: ActivationKey, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.store, self.key, self.dtype, self.shape = store, key, dtype, shape
        self.tmp, self.offset = new_array_file(store.root, shape, dtype)
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        self.fd: int | None = os.open(self.tmp, os.O_RDWR)
        self.overflowed = False
        self.hasher: Any = checksums.new_hasher()
        self.hasher.update(os.pread(self.fd, self.offset, 0))  # the .npy header
        self.hashed_rows = 0

    def write(self, start: int, rows: np.ndarray) -> None:
        if self.dtype == np.float16 and rows.size and float(np.abs(rows).max()) > FLOAT16_SAFE_MAX:
            self.overflowed = True  # commit() refuses the entry; it is recomputed as float32
        if not self.overflowed and self.fd is not None:
            data = np.ascontiguousarray(rows, dtype=self.dtype)
            os.pwrite(self.fd, data.data.cast("B"), self.offset + start * self.row_bytes)
            if self.hasher is not None and start == self.hashed_rows:
                self.hasher.update(data.data.cast("B"))
                self.hashed_rows += len(data)
            else:
                self.hasher = None

    def commit(self) -> np.ndarray:
        if self.overflowed or self.fd is None:
            self.abort()
            raise _Float16Overflow(self.shape)
        if self.hasher is not None and self.hashed_rows == self.shape[0]:
            checksum = checksums.checksum_of(self.hasher)
        else:
            checksum = checksums.hash_fd(self.fd)
        checksums.remember(self.fd, checksum)
        self._close()
        final = self.store.path(self.key)
        self.store.describe(self.key, self.shape, self.dtype, checksum)  # the sidecar first: no entry is unproven
        commit_partial(self.tmp, final)
        self.store.evict(keep=final)
        return np.load(final, mmap_mode="r")

    def abort(self) -> None:
        self._close()
        drop_partial(self.tmp)

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
        self.hits = self.misses = self.evicted = self.rebuilt = 0

    def path(self, key: ActivationKey) -> Path:
        """The entry's file: its key's digest for this store's dtype (see ``ActivationKey.digest``)."""
        return self.root / f"{key.digest(self.dtype.name)}.npy"

    def describe(self, key: ActivationKey, shape: tuple[int, ...], dtype: np.dtype, checksum: str) -> None:
        """The entry's sidecar: this format, the entry's name, its key, shape, dtype and checksum."""
        path = self.path(key)
        write_sidecar(path.with_suffix(".json"), {
            "format": ENTRY_FORMAT, "entry": path.stem, "key": asdict(key), "stored_as": self.dtype.name,
            "shape": list(shape), "dtype": np.dtype(dtype).name, "checksum": checksum})

    def get(self, key: ActivationKey) -> np.ndarray | None:
        """The entry of ``key``, memory-mapped, once it has proven its content; None when there is none. An
        entry that fails its check is deleted (it is computed again) and the search says so."""
        path = self.path(key)
        try:
            array = self._open_checked(key, path)
        except (FileNotFoundError, DamagedEntry) as exc:
            if isinstance(exc, DamagedEntry):
                discard_entry(path)  # named by our key's digest: ours
                note_rebuilt(self.root)
                self.rebuilt += 1
            self.misses += 1
            return None
        try:
            os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))  # recently used (the access time)
        except OSError:
            pass
        self.hits += 1
        return array

    def _open_checked(self, key: ActivationKey, path: Path) -> np.ndarray:
        if not path.exists():
            raise FileNotFoundError(path)  # no entry (a sidecar alone is what a killed write leaves)
        info = read_sidecar(path.with_suffix(".json"))
        if info is None or info.get("format") != ENTRY_FORMAT or info.get("entry") != path.stem \
                or info.get("key") != asdict(key) or info.get("stored_as") != self.dtype.name:
            raise DamagedEntry("its sidecar is missing, damaged or another entry's")
        try:
            shape = tuple(int(n) for n in info["shape"])
            dtype = np.dtype(info["dtype"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DamagedEntry(f"its sidecar is damaged: {exc}") from None
        if dtype not in (np.float16, np.float32) or not checksums.is_checksum(info.get("checksum")):
            raise DamagedEntry("its sidecar is damaged")
        return open_checked(path, str(info["checksum"]), shape, dtype)

    def contains(self, key: ActivationKey) -> bool:
        return self.path(key).is_file()

    def fits(self, nbytes: int) -> bool:
        """Whether an entry of ``nbytes`` can be written: within the size limit, and within the free disk
        (less ``DISK_RESERVE``) once older entries are evicted."""
        if nbytes > self.max_bytes:
            return False
        return room_for(self.root, nbytes, reclaimable=self.bytes_used())

    def writer(self, key: ActivationKey, shape: tuple[int, ...], float16_ok: bool = True) -> ActivationWriter:
        nbytes = int(np.prod(shape)) * self.dtype.itemsize
        if not self.fits(nbytes):
            # Only pooled features get here (block entries are checked first and run live): they are small.
            return _MemoryWriter(MemoryStore(), key, shape)
        self.evict(extra=nbytes)  # make room first: the disk may be the limit, not only max_bytes
        dtype = self.dtype if float16_ok else np.dtype(np.float32)
        return _DiskWriter(self, key, shape, dtype)

    def entries(self) -> list[Path]:
        """The entries whose sidecar proves them this cache's (never a partial write, nor a file not ours)."""
        return owned_entries(self.root, proves_activation)

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
                info = entry.stat()
                stats.append(StoredEntry(info.st_atime, info.st_size, entry))  # reads set the access time
            except FileNotFoundError:
                pass
        self.evicted += evict_least_recent(stats, self.root, discard_entry, max_bytes=self.max_bytes, extra=extra,
                                           keep=keep)


def folder_usage(root: Path) -> FolderUsage:
    """What the activation cache or the decoded-image store in ``root`` holds: the entries whose sidecar
    proves them ours (sub-folders not counted)."""
    return store_folder_usage(root, proves_own)


def clear_folder(root: Path, now: float | None = None) -> FolderUsage:
    """Delete the entries of either store in ``root`` whose sidecar proves them ours, and the partial writes
    that killed processes left, proven ours by their marker or content (see ``cache_entries.clear_folder``).
    Files that are not a store's, and sub-folders, stay. Returns what was removed."""
    return clear_store_folder(root, proves_own, now)


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

    root = activations_dir()
    raw_gb = CACHE_GB.raw()
    if raw_gb is None or not raw_gb.strip():
        limit = default_cache_bytes(root)
    else:
        try:
            limit = int(float(raw_gb) * 2**30)
        except ValueError:
            raise UserError(f"{CACHE_GB_ENV}={raw_gb!r} is not a number. Set it to the cache's size limit in GB, e.g. 4.") from None
    dtype = CACHE_DTYPE.value("float16")
    if dtype not in ("float16", "float32"):
        raise UserError(f"{CACHE_DTYPE_ENV}={dtype!r}: choose float16 (the default) or float32.")
    return DiskStore(root, limit, dtype)

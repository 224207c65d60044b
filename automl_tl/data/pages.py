"""Array files on disk, written and read without letting them fill the resident set.

A read-only file mapping's pages count as this process's memory once touched, until the
kernel needs them back. Streaming through a decoded-image store or an activation entry
much larger than a batch would so grow the resident set with the data set. ``release``
drops a mapping's pages from the process (``MADV_DONTNEED``): the bytes stay in the
kernel's page cache, so the next read of them is still a memory copy, not a disk read.
"""

from __future__ import annotations

import mmap

import numpy as np

_DONTNEED = getattr(mmap, "MADV_DONTNEED", None)


def release(array: object) -> None:
    """Drop the resident pages of the file mapping behind ``array``, if it has one (no-op otherwise)."""
    mapping = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    if mapping is None or _DONTNEED is None:
        return
    try:
        mapping.madvise(_DONTNEED)
    except (OSError, ValueError):  # a closed mapping, or a platform that refuses: memory is only reclaimed later
        pass


def read_rows(array: np.ndarray, start: int, stop: int) -> np.ndarray:
    """``array[start:stop]`` as an in-memory copy; a memory-mapped source's pages are released after."""
    rows = np.array(array[start:stop])
    release(array)
    return rows

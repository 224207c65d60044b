"""How much of the disk a store may fill, and which entries go when it is full: one rule for every store.

Both stores of the cache folder (the activations, the decoded images) leave ``DISK_RESERVE`` of their disk
free: what the study database, the trials' artifacts, an export and the rest of the system still need. An
entry is written only when it leaves the reserve (``room_for``); after a write, ``evict_least_recent``
deletes the store's least recently used entries until the rest fit the store's own limits (bytes, entries)
and the reserve. Each store says when an entry was last used, and proves which files are its entries.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DISK_RESERVE", "StoredEntry", "evict_least_recent", "free_bytes", "room_for"]

DISK_RESERVE = 2 << 30  # bytes of its disk every store leaves free (docs/decisions.md, issue 25 part 3)


def free_bytes(path: Path) -> int:
    """Free space on the disk that holds ``path`` (or would: the nearest folder above it that exists)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(shutil.disk_usage(probe).free)
    except OSError:
        return 0


def room_for(folder: Path, nbytes: int, reclaimable: int = 0) -> bool:
    """Whether ``nbytes`` can be written in ``folder`` and still leave ``DISK_RESERVE`` free, once the
    store has deleted ``reclaimable`` bytes of its own."""
    return nbytes + DISK_RESERVE <= free_bytes(folder) + reclaimable


@dataclass(frozen=True)
class StoredEntry:
    """One entry of a store: when it was last used (seconds, any clock the store keeps), its bytes, its file."""

    last_used: float
    size: int
    path: Path


def evict_least_recent(entries: Iterable[StoredEntry], folder: Path, discard: Callable[[Path], None], *,
                       max_bytes: int | None = None, max_entries: int | None = None, extra: int = 0,
                       keep: Path | None = None) -> int:
    """Delete (with ``discard``) the least recently used ``entries`` until those left, with ``extra`` bytes
    about to be written, fit ``max_bytes`` and ``max_entries`` (None: no such limit) and the disk of
    ``folder`` keeps ``DISK_RESERVE`` free. ``keep`` is never deleted. Returns how many were deleted."""
    ordered = sorted(entries, key=lambda entry: (entry.last_used, entry.size, str(entry.path)))
    total, count = sum(entry.size for entry in ordered), len(ordered)
    budget = total + free_bytes(folder) - DISK_RESERVE
    if max_bytes is not None:
        budget = min(budget, max_bytes)
    budget -= extra
    deleted = 0
    for entry in ordered:
        if total <= budget and (max_entries is None or count <= max_entries):
            break
        if entry.path == keep:
            continue
        discard(entry.path)
        total, count, deleted = total - entry.size, count - 1, deleted + 1
    return deleted

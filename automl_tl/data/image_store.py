"""Decoded images, stored once on disk and memory-mapped: no command decodes an image twice.

An entry is one uint8 array (images, size, size, 3) in a ``.npy`` file, plus a ``.json``
sidecar saying which of the data set's files it holds and why the others were refused.
Its name digests everything that changes the pixels: every file's sha1 in order, the size,
the resize rule, the decoder's version and the pixel cap. A search, its resume, each worker,
``report`` and ``evaluate`` hash the files (reading bytes is cheap; decoding is not), find
the entry and map it. Decoding writes rows with ``pwrite`` from a pool of threads (Pillow
releases the GIL while it decodes and resizes), so neither the image set nor the file's
dirty pages ever sit in this process's memory. The file is complete before it is renamed
into place: a killed process leaves only a ``.partial-*`` file, and two workers decoding the
same data at once both write the same bytes and the second rename is harmless. The sidecar also
keeps the entry's name, shape and a checksum of the file; an entry is checked against it when first
opened in a process, and one that fails is deleted and decoded again (``cache_entries``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.data import checksums
from automl_tl.data.cache_entries import (
    DamagedEntry,
    checksum_file,
    commit_partial,
    discard_entry,
    drop_partial,
    new_array_file,
    note_rebuilt,
    open_checked,
    owned_sidecars,
    read_sidecar,
    write_sidecar,
)
from automl_tl.data.images import DECODER_VERSION, BadImage, decode_image
from automl_tl.errors import UserError
from automl_tl.runtime.cache_paths import decoded_dir
from automl_tl.runtime.deadline import active, raise_if_passed
from automl_tl.runtime.disk_room import StoredEntry, evict_least_recent, free_bytes, room_for
from automl_tl.runtime.env_vars import CACHE_DIR
from automl_tl.runtime.threads import usable_cpus
from automl_tl.types import ImageItem, ResizeRule

STORE_VERSION = 2  # bump when the layout of entries changes (2: sidecars keep a checksum)
ENTRY_FORMAT = f"automl-tl decoded images {STORE_VERSION}"
_LEGACY_FIELDS = frozenset({"version", "decoder", "image_size", "rule", "max_pixels", "kept", "reasons"})
KEEP_ENTRIES = 4  # the most recently used entries kept; older ones are deleted when a new one is written


def decode_workers() -> int:
    """Threads that decode: one per CPU this process may use (its affinity and CPU quota)."""
    return usable_cpus()


@dataclass
class StoredImages:
    """One entry: the images that decoded, in data set order, and why the others did not."""

    pixels: np.ndarray  # read-only memory map, uint8 (kept, size, size, 3)
    kept: list[int]  # indices into the data set's items, parallel to pixels
    reasons: dict[int, str]  # index -> why that file is not an image we can use
    decoded_now: int  # how many images this call decoded (0: all came from the store)


def read_hashes(items: Sequence[ImageItem], show_progress: bool) -> tuple[list[str], dict[int, str]]:
    """Each file's sha1, read on a thread pool; unreadable files get "" and a reason."""
    hashes: list[str] = [""] * len(items)
    unreadable: dict[int, str] = {}

    def work(index: int) -> None:
        try:
            data = items[index].path.read_bytes()
        except OSError as exc:
            unreadable[index] = f"unreadable: {exc.strerror or exc}"
            return
        hashes[index] = hashlib.sha1(data).hexdigest()

    run_with_progress(work, len(items), "Reading images", show_progress)
    return hashes, unreadable


def entry_key(hashes: Sequence[str], image_size: int, rule: ResizeRule, max_pixels: int) -> str:
    """The entry's name: every input of the pixels, the files' contents in order first."""
    h = hashlib.sha256(f"{STORE_VERSION}|{DECODER_VERSION}|{image_size}|{rule.token()}|{max_pixels}|".encode())
    for digest in hashes:
        h.update((digest or "-").encode())
        h.update(b"\n")
    return h.hexdigest()[:40]


def stored_images(items: Sequence[ImageItem], hashes: Sequence[str], unreadable: dict[int, str], image_size: int,
                  rule: ResizeRule, max_pixels: int, root: Path | None = None, show_progress: bool = True) -> StoredImages:
    """The entry for these files, decoding them into the store only when it is not there yet."""
    root = Path(root) if root is not None else decoded_dir()
    key = entry_key(hashes, image_size, rule, max_pixels)
    found = _open(root, key)
    if found is not None:
        return found
    return _decode(root, key, items, unreadable, image_size, rule, max_pixels, show_progress)


def proves_decoded(name: str, content: dict[str, Any]) -> bool:
    """Whether ``content`` is the sidecar of the decoded-image entry ``name``: it names this format, the
    entry and a checksum. A sidecar of version 1 (no checksum), recognised by its exact fields, counts as
    ours too, so that ``cache --clear`` and eviction remove it."""
    if content.get("format") == ENTRY_FORMAT:
        return content.get("entry") == name and checksums.is_checksum(content.get("checksum"))
    return content.get("version") == 1 and set(content) == _LEGACY_FIELDS


def _open(root: Path, key: str) -> StoredImages | None:
    """The entry ``key`` once it has proven its content; None when there is none, or when it failed its
    check (then it is deleted, to be decoded again, and the search says so)."""
    sidecar, path = root / f"{key}.json", root / f"{key}.npy"
    try:
        found = _open_checked(sidecar, path, key)
    except FileNotFoundError:
        return None
    except DamagedEntry:
        discard_entry(path)  # named by this data's key: ours
        note_rebuilt(root)
        return None
    try:
        os.utime(sidecar)  # recently used: kept when older entries are deleted
    except OSError:
        pass
    return found


def _open_checked(sidecar: Path, path: Path, key: str) -> StoredImages:
    if not path.exists():
        raise FileNotFoundError(path)  # no entry (a sidecar alone is what a killed write leaves)
    meta = read_sidecar(sidecar)
    if meta is None or not proves_decoded(key, meta) or meta.get("format") != ENTRY_FORMAT:
        raise DamagedEntry("its sidecar is missing, damaged or another entry's")
    try:
        kept = [int(i) for i in meta["kept"]]
        reasons = {int(i): str(r) for i, r in meta["reasons"]}
        shape = tuple(int(n) for n in meta["shape"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DamagedEntry(f"its sidecar is damaged: {exc}") from None
    if len(shape) != 4 or shape[0] != len(kept) or shape[3] != 3 or meta.get("dtype") != "uint8":
        raise DamagedEntry("its sidecar is damaged")
    pixels = open_checked(path, str(meta["checksum"]), shape, np.dtype(np.uint8))
    return StoredImages(pixels, kept, reasons, 0)


def _decode(root: Path, key: str, items: Sequence[ImageItem], unreadable: dict[int, str], image_size: int,
            rule: ResizeRule, max_pixels: int, show_progress: bool) -> StoredImages:
    todo = [i for i in range(len(items)) if i not in unreadable]
    row_shape = (image_size, image_size, 3)
    row_bytes = int(np.prod(row_shape))
    _check_space(root, len(todo) * row_bytes)
    reasons = dict(unreadable)
    partial, offset = new_array_file(root, (len(todo), *row_shape), np.uint8)
    final = root / f"{key}.npy"
    try:
        fd = os.open(partial, os.O_RDWR)
        try:
            def work(slot: int) -> None:
                index = todo[slot]
                try:
                    pixels = decode_image(items[index].path.read_bytes(), image_size, max_pixels, rule)
                except OSError as exc:
                    reasons[index] = f"unreadable: {exc.strerror or exc}"
                    return
                except BadImage as exc:
                    reasons[index] = str(exc)
                    return
                os.pwrite(fd, np.ascontiguousarray(pixels).tobytes(), offset + slot * row_bytes)

            run_with_progress(work, len(todo), f"Decoding images ({image_size} px, {rule.mode})", show_progress)
            good_slots = [slot for slot, index in enumerate(todo) if index not in reasons]
            if len(good_slots) < len(todo):
                partial = _compact(root, partial, fd, offset, good_slots, row_shape)
        finally:
            os.close(fd)
        kept = [todo[slot] for slot in good_slots]
        write_sidecar(final.with_suffix(".json"), {
            "format": ENTRY_FORMAT, "entry": key, "decoder": DECODER_VERSION, "image_size": image_size,
            "rule": rule.token(), "max_pixels": max_pixels, "shape": [len(kept), *row_shape], "dtype": "uint8",
            "checksum": checksum_file(partial), "kept": kept, "reasons": sorted(reasons.items())})
        commit_partial(partial, final)
    except BaseException:
        drop_partial(partial)
        raise
    _evict(root, keep=key)
    pixels = np.load(final, mmap_mode="r")
    return StoredImages(pixels, kept, reasons, len(todo))


def _compact(root: Path, partial: Path, fd: int, offset: int, good_slots: list[int], row_shape: tuple[int, ...]) -> Path:
    """A new partial file with only the rows that decoded, copied in order; the old one is removed."""
    row_bytes = int(np.prod(row_shape))
    compacted, new_offset = new_array_file(root, (len(good_slots), *row_shape), np.uint8)
    out = os.open(compacted, os.O_RDWR)
    try:
        for new, slot in enumerate(good_slots):
            os.pwrite(out, os.pread(fd, row_bytes, offset + slot * row_bytes), new_offset + new * row_bytes)
    finally:
        os.close(out)
    drop_partial(partial)
    return compacted


def _check_space(root: Path, needed: int) -> None:
    root.mkdir(parents=True, exist_ok=True)
    if not room_for(root, needed):
        free = free_bytes(root)
        raise UserError(
            f"Decoding these images needs {needed / 2**30:.1f} GB in {root}, and its disk has {free / 2**30:.1f} GB "
            f"free. Free some space, point {CACHE_DIR.name} at a larger disk, or choose a smaller --image-size."
        )


def _evict(root: Path, keep: str) -> None:
    """Keep the ``KEEP_ENTRIES`` most recently used entries (``keep`` always) and the disk's reserve; delete
    the rest (``runtime.disk_room``'s policy). A sidecar's time is its entry's last use."""
    entries = []
    for sidecar in owned_sidecars(root, proves_decoded):  # never a partial write, nor a file not ours
        array = sidecar.with_suffix(".npy")
        try:
            used = sidecar.stat().st_mtime
        except FileNotFoundError:
            continue
        entries.append(StoredEntry(used, array.stat().st_size if array.is_file() else 0, array))  # a sidecar alone counts
    evict_least_recent(entries, root, discard_entry, max_entries=KEEP_ENTRIES, keep=root / f"{keep}.npy")


def run_with_progress(work: Callable[[int], None], total: int, what: str, show_progress: bool) -> None:
    """Call ``work(i)`` for every i in range(total) on one thread per core, with a progress bar. Under a
    deadline (``automl_tl.runtime.deadline``) that passes, the calls not yet begun raise ``DeadlineReached``
    instead, and so does this function: the caller drops what it wrote."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    deadline = active()  # read here: the pool's threads do not see this thread's context

    def checked(index: int) -> None:
        raise_if_passed(deadline, what[:1].lower() + what[1:])
        work(index)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress, transient=True) as bar, \
            ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        task = bar.add_task(what, total=total)
        for _ in pool.map(checked if deadline is not None else work, range(total), chunksize=1):
            bar.advance(task)

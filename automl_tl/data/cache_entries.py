"""The files of a cache folder that automl-tl can prove it wrote, and nothing else.

Both stores (the decoded images in ``decoded/``, the activations in the cache folder itself) keep each
entry as ``<40 hex digits>.npy`` beside a ``.json`` sidecar. A file is the stores' to count, evict or
clear only when its sidecar proves it: the sidecar parses, names the store's format, the entry's name
(its own stem) and a checksum, as ``proves`` decides for each store. A name alone proves nothing: a file
of the user's named like an entry, or like a partial write, stays.

Partial writes are proven the same way. An array being written (``.partial-<random>.npy``) has a marker
beside it (``.partial-<random>.npy.json``) that names it; a sidecar being written
(``.partial-<pid>-<random>-<entry>.json``) holds the sidecar itself. ``clear_folder`` removes such files
once they are older than ``STALE_PARTIAL_S`` (a younger one may belong to a running search).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.data import checksums
from automl_tl.runtime.atomic_files import commit_file, replace_text
from automl_tl.runtime.notices import count_notice

ENTRY_NAME = re.compile(r"^[0-9a-f]{40}$")
"""The stem of every entry the stores write (a digest)."""
PARTIAL_FORMAT = "automl-tl partial write 1"
STALE_PARTIAL_S = 24 * 3600  # a partial write older than this was left by a killed process
SIDECAR_CHECKSUM = "sidecar_checksum"  # a sidecar's checksum of its own other fields

Proves = Callable[[str, dict[str, Any]], bool]
"""A store's test of a sidecar: ``proves(entry_name, content)`` is True when ``content`` is that store's
sidecar of the entry named ``entry_name``."""


@dataclass(frozen=True)
class FolderUsage:
    """A store folder's own files: ``entries`` (one ``.npy`` each) and their ``bytes``, sidecars included."""

    entries: int
    bytes: int


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable, not JSON or not an object."""
    try:
        content = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return content if isinstance(content, dict) else None


def _own_checksum(content: dict[str, Any]) -> str:
    hasher = checksums.new_hasher()
    rest = {name: value for name, value in content.items() if name != SIDECAR_CHECKSUM}
    hasher.update(json.dumps(rest, sort_keys=True, separators=(",", ":")).encode())
    return checksums.checksum_of(hasher)


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The sidecar in ``path`` when it is whole: its own checksum (``SIDECAR_CHECKSUM``) matches what it
    holds, so that a changed list of images or key is never believed; None otherwise."""
    content = read_json(path)
    if content is None or content.get(SIDECAR_CHECKSUM) != _own_checksum(content):
        return None
    return content


def write_sidecar(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` and its own checksum as JSON to ``path`` whole: under a partial name first, then
    renamed into place."""
    partial = path.with_name(f".partial-{os.getpid()}-{secrets.token_hex(4)}-{path.name}")
    replace_text(path, json.dumps({**content, SIDECAR_CHECKSUM: _own_checksum(content)}, indent=1), partial=partial)


def owned_sidecars(root: Path, proves: Proves) -> Iterator[Path]:
    """The sidecars directly in ``root`` that ``proves`` says are the store's (none when ``root`` is absent)."""
    for sidecar in root.glob("*.json") if root.is_dir() else []:
        if ENTRY_NAME.match(sidecar.stem):
            content = read_json(sidecar)
            if content is not None and proves(sidecar.stem, content):
                yield sidecar


def owned_entries(root: Path, proves: Proves) -> list[Path]:
    """The ``.npy`` files in ``root`` whose sidecar proves them the store's."""
    return [sidecar.with_suffix(".npy") for sidecar in owned_sidecars(root, proves)
            if sidecar.with_suffix(".npy").is_file()]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def folder_usage(root: Path, proves: Proves) -> FolderUsage:
    """What the store in ``root`` holds: its proven entries and their bytes (sidecars included)."""
    entries = total = 0
    for sidecar in owned_sidecars(root, proves):
        array = sidecar.with_suffix(".npy")
        entries += array.is_file()
        total += _size(array) + _size(sidecar)
    return FolderUsage(entries, total)


def discard_entry(array: Path) -> None:
    """Delete one entry of the store (its ``.npy`` and its sidecar): the caller has its name from a key."""
    array.unlink(missing_ok=True)
    array.with_suffix(".json").unlink(missing_ok=True)


def note_rebuilt(root: Path) -> None:
    """Count one entry of ``root`` that failed its check and is made again; the search says how many, in one
    line per folder (``runtime.notices.count_notice``)."""
    count_notice(f"rebuilt:{root}", lambda count: (
        f"{count} cache {'entry' if count == 1 else 'entries'} in {root} did not match the checksum written with "
        f"{'it' if count == 1 else 'them'} (damaged on disk, or changed by another program) and "
        f"{'was' if count == 1 else 'were'} computed again."))


class DamagedEntry(Exception):
    """An entry file that is not what its sidecar says: another size, shape or type, or other bytes."""


def open_checked(array: Path, checksum: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The entry ``array`` mapped read-only, once its header says ``shape`` and ``dtype``, its size fits them
    and its bytes have ``checksum`` (see ``checksums.matches``). Raises ``FileNotFoundError`` when there is
    no such file and ``DamagedEntry`` when it is not that entry."""
    with open(array, "rb") as stream:
        try:
            version = np.lib.format.read_magic(stream)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}[version]
            found_shape, fortran, found_dtype = read_header(stream)
        except Exception as exc:  # noqa: BLE001 - numpy parses a damaged header with Python's tokenizer
            raise DamagedEntry(f"unreadable header: {exc!r}") from None
        offset = stream.tell()
        nbytes = int(np.prod(found_shape, dtype=np.int64)) * found_dtype.itemsize
        if tuple(found_shape) != tuple(shape) or found_dtype != dtype or fortran:
            raise DamagedEntry(f"holds {found_dtype} {found_shape}, its sidecar says {dtype} {shape}")
        if os.fstat(stream.fileno()).st_size != offset + nbytes:
            raise DamagedEntry("its size does not fit its shape")
        if not checksums.matches(stream.fileno(), checksum):
            raise DamagedEntry("its bytes do not match their checksum")
        if nbytes == 0:
            empty = np.empty(shape, dtype)
            empty.setflags(write=False)
            return empty
        return np.memmap(stream, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))


# -- partial writes ---------------------------------------------------------------------------
def new_array_file(folder: Path, shape: tuple[int, ...], dtype: np.dtype | type) -> tuple[Path, int]:
    """A sparse ``.npy`` file of ``shape`` and ``dtype`` under a ``.partial-*`` name in ``folder``, with the
    marker that proves it automl-tl's, and the offset where its data starts: rows go in with ``os.pwrite``
    and ``commit_partial`` renames the file into place whole (``drop_partial`` deletes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=".partial-", suffix=".npy", dir=folder)
    os.close(handle)
    path = Path(name)
    try:
        _marker(path).write_text(json.dumps({"format": PARTIAL_FORMAT, "partial": path.name}))
        header = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
        offset = int(header.offset)
        del header
    except BaseException:
        drop_partial(path)
        raise
    return path, offset


def _marker(partial: Path) -> Path:
    return partial.with_name(partial.name + ".json")


def commit_partial(partial: Path, final: Path) -> None:
    """Rename a complete partial array into place as ``final``, and remove its marker."""
    commit_file(partial, final)
    _marker(partial).unlink(missing_ok=True)


def drop_partial(partial: Path) -> None:
    """Delete a partial array and its marker."""
    partial.unlink(missing_ok=True)
    _marker(partial).unlink(missing_ok=True)


def _proven_partials(root: Path, proves: Proves) -> Iterator[list[Path]]:
    """Each partial write in ``root`` that its own content or marker proves automl-tl's, as its files."""
    for path in root.glob(".partial-*.json") if root.is_dir() else []:
        content = read_json(path)
        if content is None:
            continue
        named = content.get("partial")
        if content.get("format") == PARTIAL_FORMAT and isinstance(named, str) and path.name == f"{named}.json" \
                and named.startswith(".partial-") and named.endswith(".npy") and "/" not in named:
            yield [path, path.with_name(named)]  # a marker, and the array it names
        elif len(path.name) > 46 and path.name[-46] == "-" and ENTRY_NAME.match(path.name[-45:-5]) \
                and proves(path.name[-45:-5], content):
            yield [path]  # a sidecar that was being written


def _older_than(paths: list[Path], cutoff: float) -> bool:
    for path in paths:
        try:
            if path.stat().st_mtime >= cutoff:
                return False
        except FileNotFoundError:
            pass
    return True


def clear_folder(root: Path, proves: Proves, now: float | None = None) -> FolderUsage:
    """Delete the store's proven entries in ``root`` and the proven partial writes older than
    ``STALE_PARTIAL_S``. Every other file, and every sub-folder, stays. Returns what was removed. A process
    that still maps a deleted entry reads on safely."""
    removed = folder_usage(root, proves)
    for sidecar in list(owned_sidecars(root, proves)):
        discard_entry(sidecar.with_suffix(".npy"))
    cutoff = (time.time() if now is None else now) - STALE_PARTIAL_S
    for files in list(_proven_partials(root, proves)):
        if _older_than(files, cutoff):
            for path in files:
                path.unlink(missing_ok=True)
    return removed


def checksum_file(path: Path) -> str:
    """The checksum of the file at ``path``, remembered as checked (this process has just written it)."""
    with open(path, "rb") as stream:
        checksum = checksums.hash_fd(stream.fileno())
        checksums.remember(stream.fileno(), checksum)
    return checksum

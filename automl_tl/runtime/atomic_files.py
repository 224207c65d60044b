"""Write-then-rename: the one way automl-tl replaces a file, so a reader sees the old file or the new one whole.

``replace_file`` lets a caller fill a partial file beside the target (any writer: ``write_text``,
``np.savez``, ``h5py``, a download), then renames it over the target with ``os.replace``. A failure, an
interrupt included, deletes the partial file and leaves the target as it was. Each store keeps its own
rules through the options: the partial file's name (stores recognise their own leftovers by it),
``durable`` (fsync before the rename), ``mode`` (permission bits) and ``check`` (a last look at the
target just before it is replaced, e.g. that it is still a regular file of ours: ``runtime.owned_files``).
``commit_file`` renames a partial file the caller filled itself (arrays written row by row).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["commit_file", "replace_file", "replace_text"]


def _new_partial(target: Path, prefix: str | None, suffix: str) -> Path:
    handle, name = tempfile.mkstemp(prefix=f".{target.name}." if prefix is None else prefix, suffix=suffix,
                                    dir=target.parent)
    os.close(handle)
    return Path(name)


def _sync(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def commit_file(partial: Path, target: Path) -> None:
    """Rename the complete file ``partial`` over ``target`` (same folder) in one step."""
    os.replace(partial, target)


def replace_file(target: Path, fill: Callable[[Path], object], *, partial: Path | None = None,
                 prefix: str | None = None, suffix: str = ".partial", durable: bool = False,
                 mode: int | None = None, check: Callable[[], object] | None = None) -> Path:
    """Replace ``target`` whole with what ``fill(partial_path)`` writes. The partial file is ``partial`` when
    given, else a new unique file in the target's folder named ``prefix`` (``.<name>.`` by default), random
    letters and ``suffix``. ``durable``: its bytes reach the disk before the rename. ``mode``: its permission
    bits. ``check``: called just before the rename; what it raises stops the write. Returns ``target``."""
    path = partial if partial is not None else _new_partial(target, prefix, suffix)
    try:
        fill(path)
        if durable:
            _sync(path)
        if mode is not None:
            os.chmod(path, mode)
        if check is not None:
            check()
        commit_file(path, target)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return target


def replace_text(target: Path, text: str, *, partial: Path | None = None, prefix: str | None = None,
                 suffix: str = ".partial", durable: bool = False) -> Path:
    """``replace_file`` with ``text`` written as UTF-8."""
    return replace_file(target, lambda path: path.write_text(text, encoding="utf-8"), partial=partial,
                        prefix=prefix, suffix=suffix, durable=durable)

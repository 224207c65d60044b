"""Keeping every data path inside its data root, and naming the files that are not regular files."""

from __future__ import annotations

import stat
from pathlib import Path

from automl_tl.errors import UserError


def resolve_under(root: Path, candidate: str | Path, *, context: str = "") -> Path:
    """Resolve ``candidate`` (relative to ``root`` unless absolute), following symlinks.

    Returns the resolved path, or raises ``UserError`` when it lands outside the
    resolved ``root`` (a ``..`` step, an absolute path elsewhere, or a symlink that
    points out). ``context`` (for example ``"labels.csv line 4"``) starts the message.
    """
    base = Path(root).resolve()
    path = Path(candidate)
    if not path.is_absolute():
        path = base / path
    resolved = path.resolve()
    if resolved == base or resolved.is_relative_to(base):
        return resolved
    where = f"{context}: " if context else ""
    raise UserError(
        f"{where}{str(candidate)!r} leads to {resolved}, which is outside the data folder {base}. "
        f"Keep every image inside the data folder: no '..' steps, absolute paths elsewhere, "
        f"or symlinks that point out of it."
    )


_SPECIAL_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def special_kind(mode: int) -> str:
    """What a file that is neither a regular file nor a folder is, in words ("a named pipe (FIFO)", ...),
    from its ``st_mode``: such a file is named, never opened (a FIFO would block, /dev/zero never ends)."""
    return next((words for test, words in _SPECIAL_KINDS if test(mode)), "not a regular file")

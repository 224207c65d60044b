"""Writing a path the user named: only ever a regular file, replaced whole, and only when it is ours.

Every command that writes a user-named path (``report -o``, ``show --plot``, ``export -o``) goes through
here. The rule:

- A target that is a symbolic link, a device (``/dev/null``, ``/dev/full``), a FIFO or a socket is refused,
  with ``--overwrite`` too: the tool writes files, and writing "through" such a path would replace it or
  something elsewhere. Links are refused whatever they point to (``/dev/stdout`` among them), so a link can
  never make a write land outside the place the user named.
- An existing regular file is replaced without asking only when it carries the mark the tool writes into
  its own files (``recognise`` says so from the file's first and last bytes); any other file needs
  ``--overwrite``.
- The new content goes to a temporary file in the same folder, then ``runtime.atomic_files`` puts it in place: the
  target holds its old content or the complete new one, never a part. A replaced file keeps its permission
  bits; a new one gets 0o666 less the umask, like any file a program creates.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from automl_tl.errors import UserError
from automl_tl.runtime.atomic_files import replace_file

# How many bytes of each end of an existing file ``recognise`` is shown.
MARK_WINDOW = 64 * 1024
OVERWRITE_OPTION = "--overwrite"

Recogniser = Callable[[bytes, bytes], bool]

_SPECIAL_KINDS = ((stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "named pipe (FIFO)"),
                  (stat.S_ISSOCK, "socket"))


def output_path(text: str) -> Path:
    """The absolute path of an output the user named: ``~`` expanded and the folders above it resolved,
    but the last part kept as given, so that a symbolic link there is seen as the link it is."""
    path = Path(text).expanduser().absolute()
    if path.name in ("", ".", ".."):
        return path.resolve()
    return path.parent.resolve() / path.name


def special_kind(mode: int) -> str | None:
    """What a file of this ``st_mode`` is when it is neither a regular file, a folder nor a link; else None."""
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), None)


def refuse_special(path: Path, option: str, example: str) -> os.stat_result | None:
    """Refuse a target that is a link, a device, a FIFO or a socket; return its ``lstat`` (None when absent).
    ``option`` is how the user named it (``-o``), ``example`` a name to suggest instead."""
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):  # nothing there (creating its folder says what is in the way)
        return None
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot look at it ({exc.strerror or exc}). Choose another path; "
                        f"nothing was written.") from None
    if stat.S_ISLNK(info.st_mode):
        raise UserError(
            f"{option} {path} is a symbolic link (to {os.readlink(path)}). automl-tl writes its output as a file at "
            f"the path it is given and never through a link, so that a link cannot make it replace something "
            f"elsewhere (/dev/stdout is such a link: the output is a file, not a stream). Name a regular file or "
            f"folder instead, e.g. {option} {example}; nothing was written."
        )
    kind = special_kind(info.st_mode)
    if kind is not None:
        raise UserError(
            f"{option} {path} is a {kind}, not a regular file. automl-tl writes its output as a file, and writing "
            f"it there would replace the {kind}, so it is left as it is (to discard the output, write it to a "
            f"file and delete that). Name a regular file instead, e.g. {option} {example}; nothing was written."
        )
    return info


def read_ends(path: Path, window: int = MARK_WINDOW) -> tuple[bytes, bytes]:
    """The first and last ``window`` bytes of a regular file (both the whole file when it is small); opened
    without following a link and without blocking, so a path swapped for a FIFO meanwhile cannot hang."""
    handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            return b"", b""
        head = os.pread(handle, window, 0)
        tail = os.pread(handle, window, max(0, info.st_size - window))
        return head, tail
    finally:
        os.close(handle)


def is_ours(path: Path, recognise: Recogniser) -> bool:
    """Whether the regular file at ``path`` carries the tool's mark, as ``recognise`` reads it."""
    try:
        head, tail = read_ends(path)
    except OSError:
        return False
    return bool(head) and recognise(head, tail)


def check_file_target(path: Path, option: str, recognise: Recogniser, overwrite: bool, example_name: str) -> None:
    """Refuse, before anything is written, a target the write must not replace (see the module's rule).
    ``example_name`` is a file name to suggest, e.g. ``report.html``."""
    info = refuse_special(path, option, example_name)
    if info is None:
        return
    if stat.S_ISDIR(info.st_mode):
        raise UserError(f"{option} {path} is a folder. Name the file to write, e.g. {option} {path / example_name}; "
                        f"nothing was written.")
    if not overwrite and not is_ours(path, recognise):
        raise UserError(
            f"{option} {path}: a file of that name exists, and automl-tl did not write it (it has none of the marks "
            f"automl-tl puts in its own reports and plots), so it is left as it is. Pass {OVERWRITE_OPTION} to replace "
            f"it, or choose another name; nothing was written."
        )


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _new_file_mode() -> int:
    return 0o666 & ~_umask()


def new_folder_mode() -> int:
    """The permission bits any program's new folder gets (0o777 less the umask): a private staging folder
    (``mkdtemp`` makes 0o700) is given them once it is complete, so an export is as shareable as a copy."""
    return 0o777 & ~_umask()


def write_file(path: Path, data: bytes, option: str, recognise: Recogniser, overwrite: bool, example_name: str) -> Path:
    """Write ``data`` to ``path`` atomically, after ``check_file_target``'s checks (made again just before
    the replace, in case the path changed while the data was prepared). A failed write leaves nothing."""
    check_file_target(path, option, recognise, overwrite, example_name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            mode = stat.S_IMODE(path.lstat().st_mode)  # a replaced file keeps its permissions
        except FileNotFoundError:
            mode = _new_file_mode()  # mkstemp made the file private; a new output is as shareable as any file
        replace_file(path, lambda partial: partial.write_bytes(data), durable=True, mode=mode,
                     check=lambda: check_file_target(path, option, recognise, overwrite, example_name))
    except OSError as exc:
        raise UserError(f"{option} {path}: cannot write it ({exc.strerror or exc}; {exc.filename or path.parent}). "
                        f"Choose another path; nothing was written.") from None
    return path

"""The export folder: staged next to its target, moved into place whole, and replaced only when it is
recognisably a complete automl-tl export whose every file the export wrote itself.

An export writes ``automl-tl-export.json`` last, listing every file and folder it wrote. ``--overwrite``
replaces a folder only when that list matches the folder's contents exactly; anything else (a folder
with a stray ``metadata.json``, an export someone added files to) is refused and left untouched.

The staging folder ``.NAME.exporting-*`` gets ``.automl-tl-exporting`` as its first file and is locked
(``flock`` on the folder) while its export runs; the swap into place is atomic where the system allows (see
``runtime.folder_swap``). What a killed export leaves beside the target is cleared by the next export to
the same place (``export_leftovers``), and only what these markers prove is the tool's own.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from automl_tl.errors import UserError
from automl_tl.runtime.folder_swap import replace_folder, signals_deferred
from automl_tl.runtime.owned_files import new_folder_mode, refuse_special

MARKER_FILE = "automl-tl-export.json"
MARKER_KIND = "automl-tl export"
# The first file of a staging folder, removed once the export marker proves the folder is ours.
STAGING_MARKER = ".automl-tl-exporting"
STAGING_KIND = "automl-tl export in progress"
# What exports written before the marker existed hold besides their model file or folder.
LEGACY_FILES = ("labels.json", "metadata.json", "preprocessing.json")


def folder_entries(folder: Path) -> list[str]:
    """Every file, link and folder under ``folder``, as sorted POSIX paths relative to it."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def write_marker(staging: Path) -> None:
    """Record what the staged export holds; written last, so a marker means a complete export. The staging
    marker goes only once this one is written: at every moment one of the two proves the folder is ours."""
    entries = [entry for entry in folder_entries(staging) if entry != STAGING_MARKER] + [MARKER_FILE]
    (staging / MARKER_FILE).write_text(json.dumps({"kind": MARKER_KIND, "entries": sorted(entries)}, indent=2))
    (staging / STAGING_MARKER).unlink(missing_ok=True)


def written_entries(folder: Path) -> set[str] | None:
    """What the export in ``folder`` wrote, from its marker (or, for an older export, from its
    metadata's model file); None when the folder is not recognisably an automl-tl export."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
        if isinstance(marker, dict) and marker.get("kind") == MARKER_KIND and isinstance(marker.get("entries"), list):
            return {str(entry) for entry in marker["entries"]}
        return None
    except FileNotFoundError:
        pass
    except (OSError, ValueError):
        return None
    try:  # an export made before the marker: its three JSON files and its model file or folder, nothing else
        metadata = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
        model_file = metadata["model_file"] if isinstance(metadata, dict) else None
    except (OSError, ValueError, KeyError):
        return None
    if not isinstance(model_file, str) or not model_file or "/" in model_file or model_file.startswith("."):
        return None
    model = folder / model_file
    if model.is_symlink() or not model.exists():
        return None
    inside = [f"{model_file}/{entry}" for entry in folder_entries(model)] if model.is_dir() else []
    return {*LEGACY_FILES, model_file, *inside}


def check_replaceable(out_dir: Path, overwrite: bool) -> None:
    """Refuse, before anything is written, a target that the export must not replace: a link, a device, a
    FIFO or a socket (whatever ``overwrite`` says), a file, or a folder that is not an earlier export."""
    refuse_special(out_dir, "-o", "model")
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"-o {out_dir}: this is a file, not a folder. Choose a folder for the export; nothing was written.")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UserError(
            f"-o {out_dir}: the folder exists and is not empty. Choose a new folder, or pass --overwrite to replace "
            f"an earlier automl-tl export there; nothing was written."
        )
    written = written_entries(out_dir)
    if written is None:
        raise UserError(
            f"-o {out_dir} --overwrite: the folder is not an automl-tl export (it has no {MARKER_FILE} that lists "
            f"what an export wrote), so it is left as it is. Choose a new folder; nothing was written."
        )
    extra = sorted(set(folder_entries(out_dir)) - written)
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise UserError(
            f"-o {out_dir} --overwrite: the folder holds files that the earlier export did not write ({shown}); "
            f"replacing it would delete them, so it is left as it is. Move them out, or choose a new folder; "
            f"nothing was written."
        )


def lock_folder(folder: Path, wait: bool) -> int | None:
    """An exclusive ``flock`` on the folder itself (it follows the folder through renames and ends with the
    process, also a killed one): the descriptor to close, or None when another process holds it."""
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError:
        os.close(handle)
        return None
    return handle


def remove_owned_folder(folder: Path) -> None:
    """Delete a folder the tool has proved is its own, its markers last, so that a kill part-way leaves a
    folder that is still provably its own (and so cleared next time); whatever cannot be deleted stays."""
    try:
        for entry in sorted(folder.iterdir()):
            if entry.name in (STAGING_MARKER, MARKER_FILE):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        for name in (STAGING_MARKER, MARKER_FILE):
            (folder / name).unlink(missing_ok=True)
        folder.rmdir()
    except OSError:
        pass


def _new_staging(out_dir: Path) -> tuple[Path, int]:
    """mkdtemp beside the target, then its lock. The next export's clean-up removes an empty, unlocked
    folder of this name (a kill before the marker leaves one), so one that vanished before it was locked
    is made again."""
    for _ in range(5):
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.exporting-", dir=out_dir.parent))
        try:
            handle = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass  # a file system without locks: the export goes on, unlocked
        try:
            if os.path.samestat(os.fstat(handle), os.stat(staging)):
                return staging, handle
        except FileNotFoundError:
            pass
        os.close(handle)
    raise OSError(errno.EAGAIN, "the staging folder kept disappearing", str(out_dir.parent))


@contextmanager
def staging_folder(out_dir: Path) -> Iterator[Path]:
    """A new, private, locked staging folder beside the target, its marker written first, so the final move
    is a rename on one file system; removed again if the block fails (after ``move_into_place``, nothing is left)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging, lock = _new_staging(out_dir)
    except OSError as exc:
        raise UserError(
            f"-o {out_dir}: cannot create the export folder there ({exc.strerror or exc}). Choose a folder in a "
            f"writable place; nothing was written."
        ) from None
    try:
        (staging / STAGING_MARKER).write_text(json.dumps({"kind": STAGING_KIND, "target": out_dir.name}))
        yield staging
    except BaseException:
        remove_owned_folder(staging)
        raise
    finally:
        os.close(lock)


def move_into_place(staging: Path, out_dir: Path) -> None:
    """Put the staged export at ``out_dir``, replacing a checked earlier export (or an empty folder) as a
    whole: at every moment ``out_dir`` is the old folder or the new one (or, after a kill between the two
    renames of a system without an atomic exchange, the old one waits complete in ``.NAME.previous-*``)."""
    if not os.path.lexists(out_dir):
        with signals_deferred():
            os.rename(staging, out_dir)
        return
    lock = lock_folder(out_dir, wait=True)  # so that no other export's clean-up touches it while it moves
    try:
        aside = out_dir.parent / f".{out_dir.name}.previous-{uuid.uuid4().hex[:8]}"
        old = replace_folder(staging, out_dir, aside)
        remove_owned_folder(old)
    finally:
        if lock is not None:
            os.close(lock)


def finish_export(staging: Path, out_dir: Path, overwrite: bool) -> None:
    """The last steps of an export whose files are all in ``staging``: its marker, the target checked again
    (it may have changed while the model was exported), and the move into place."""
    write_marker(staging)
    os.chmod(staging, new_folder_mode())  # private while it was written, shareable once complete
    check_replaceable(out_dir, overwrite)
    move_into_place(staging, out_dir)

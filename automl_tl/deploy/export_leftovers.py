"""What a killed export leaves beside its target, found and cleared by the next export to the same place.

A kill can leave two kinds of hidden folder next to ``-o NAME``:

- ``.NAME.exporting-XXXXXXXX``: a staging folder (the export's first file in it, ``.automl-tl-exporting``,
  proves it is the tool's own) or, after an atomic exchange, the old export on its way to deletion;
- ``.NAME.previous-XXXXXXXX``: the old export moved aside by the two-rename swap.

One is touched only when it is a real folder of this user, no running export holds its lock, and a marker
proves it is the tool's own: the staging marker, or an export marker that lists every entry in it (a
deletion cut short leaves fewer, never others); an empty one goes too (a kill just before the staging
marker or just after the last file leaves one; rmdir cannot delete anything). A folder without a marker
and not empty, or with an entry its marker does not list, stays as it is. If ``NAME`` itself is missing
and a complete old export waits in ``.NAME.previous-*``, it is put back: that is the state the user had
before the killed export began. Everything else is deleted.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

from automl_tl.deploy.export_folder import (
    STAGING_KIND,
    STAGING_MARKER,
    folder_entries,
    lock_folder,
    remove_owned_folder,
    written_entries,
)


def leftover_pattern(name: str) -> re.Pattern[str]:
    """The names a staging or set-aside folder of the target ``name`` gets (mkdtemp's and uuid's 8 characters)."""
    return re.compile(rf"\.{re.escape(name)}\.(exporting|previous)-[A-Za-z0-9_]{{8}}")


def _has_staging_marker(folder: Path) -> bool:
    marker = folder / STAGING_MARKER
    try:
        if not stat.S_ISREG(marker.lstat().st_mode):
            return False
        content = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and content.get("kind") == STAGING_KIND


def ownership(folder: Path) -> str | None:
    """``"staging"``, ``"complete"`` (an export whose marker lists exactly what it holds), ``"partial"`` (every
    entry listed, some gone), ``"empty"``, or None when nothing proves that the folder is the tool's own."""
    try:
        info = folder.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    if _has_staging_marker(folder):
        return "staging"
    try:
        with os.scandir(folder) as entries:
            if next(entries, None) is None:
                return "empty"  # a kill before the first marker, or after the last: rmdir deletes nothing
    except OSError:
        return None
    listed = written_entries(folder)
    if listed is None:
        return None
    try:
        present = set(folder_entries(folder))
    except OSError:
        return None
    if present == listed:
        return "complete"
    return "partial" if present <= listed else None


def _newest_first(path: Path) -> tuple[float, str]:
    try:
        return -path.lstat().st_mtime, path.name
    except OSError:
        return 0.0, path.name


def clear_leftovers(out_dir: Path) -> list[str]:
    """Clear what killed exports to ``out_dir`` left beside it (see the module's rule); returns what was done,
    one line per folder, for a note. Never raises: a leftover that cannot be cleared now stays for next time."""
    pattern = leftover_pattern(out_dir.name)
    try:
        found = [path for path in out_dir.parent.iterdir() if pattern.fullmatch(path.name)]
    except OSError:
        return []
    done: list[str] = []
    for folder in sorted(found, key=_newest_first):
        lock = lock_folder(folder, wait=False)
        if lock is None:  # a running export's, or not a folder we may open
            continue
        try:
            proof = ownership(folder)
            if proof is None:
                continue
            if proof == "complete" and folder.name.startswith(f".{out_dir.name}.previous-") \
                    and not os.path.lexists(out_dir):
                os.rename(folder, out_dir)
                done.append(f"restored the earlier export {out_dir} from {folder.name}, where an interrupted "
                            f"export had set it aside")
            else:
                remove_owned_folder(folder)
                done.append(f"removed {folder.name}, left by an interrupted export")
        except OSError:
            continue
        finally:
            os.close(lock)
    return done

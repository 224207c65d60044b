"""The export folder: staged next to its target, moved into place whole, and replaced only when it is
recognisably a complete automl-tl export whose every file the export wrote itself.

An export writes ``automl-tl-export.json`` last, listing every file and folder it wrote. ``--overwrite``
replaces a folder only when that list matches the folder's contents exactly; anything else (a folder
with a stray ``metadata.json``, an export someone added files to) is refused and left untouched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from automl_tl.errors import UserError

MARKER_FILE = "automl-tl-export.json"
MARKER_KIND = "automl-tl export"
# What exports written before the marker existed hold besides their model file or folder.
LEGACY_FILES = ("labels.json", "metadata.json", "preprocessing.json")


def folder_entries(folder: Path) -> list[str]:
    """Every file, link and folder under ``folder``, as sorted POSIX paths relative to it."""
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*"))


def write_marker(staging: Path) -> None:
    """Record what the staged export holds; written last, so a marker means a complete export."""
    entries = folder_entries(staging) + [MARKER_FILE]
    (staging / MARKER_FILE).write_text(json.dumps({"kind": MARKER_KIND, "entries": sorted(entries)}, indent=2))


def _written_entries(folder: Path) -> set[str] | None:
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
    """Refuse, before anything is written, a target that the export must not replace."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        raise UserError(f"-o {out_dir}: this is a file, not a folder. Choose a folder for the export; nothing was written.")
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UserError(
            f"-o {out_dir}: the folder exists and is not empty. Choose a new folder, or pass --overwrite to replace "
            f"an earlier automl-tl export there; nothing was written."
        )
    written = _written_entries(out_dir)
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


def make_staging(out_dir: Path) -> Path:
    """A new, private staging folder beside the target, so the final move is a rename on one file system."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.exporting-", dir=out_dir.parent))
    except OSError as exc:
        raise UserError(
            f"-o {out_dir}: cannot create the export folder there ({exc.strerror or exc}). Choose a folder in a "
            f"writable place; nothing was written."
        ) from None


def move_into_place(staging: Path, out_dir: Path) -> None:
    """Put the staged export at ``out_dir``, replacing a checked earlier export as a whole."""
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    previous = out_dir.parent / f".{out_dir.name}.previous-{uuid.uuid4().hex[:8]}"
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()  # an empty folder holds nothing of the user's
        staging.rename(out_dir)
        return
    os.rename(out_dir, previous)
    try:
        staging.rename(out_dir)
    except BaseException:
        os.rename(previous, out_dir)
        raise
    shutil.rmtree(previous, ignore_errors=True)

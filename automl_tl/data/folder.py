"""The folder-per-class dataset adapter: DATA/cat/1.jpg, DATA/dog/2.png, ..."""

from __future__ import annotations

import os
from pathlib import Path

from automl_tl.data.images import IMAGE_SUFFIXES, is_image_file
from automl_tl.data.paths import resolve_under
from automl_tl.data.split import make_splits
from automl_tl.errors import UserError
from automl_tl.runtime.label_names import label_key, look_alike
from automl_tl.types import DataSplits, ImageItem

_LAYOUT = "one sub-folder per class with the images inside, e.g. {root}/cat/1.jpg and {root}/dog/2.png"


class FolderDataset:
    """Reads a folder whose non-hidden sub-folders are the classes.

    Images (``.jpg``, ``.jpeg``, ``.png``, any case) are found recursively inside each
    class folder; other files and hidden files or folders are ignored, and so are
    loose files in the root. Every path must resolve inside the root.
    """

    name = "folder"

    def __init__(self, val_fraction: float = 0.15, test_fraction: float = 0.15) -> None:
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def claims(self, location: str) -> bool:
        """True when ``location`` is an existing directory."""
        return Path(location).expanduser().is_dir()

    def discover(self, location: str) -> DataSplits:
        """Find the classes and images under ``location`` and split them stably."""
        given = Path(location).expanduser()
        if not given.exists():
            raise UserError(
                f"Data folder {given} does not exist. Check the path, or leave DATA out to use the bundled sample."
            )
        if not given.is_dir():
            raise UserError(
                f"{given} is not a folder. Pass a folder with {_LAYOUT.format(root='DATA')}, "
                f"or a .csv manifest with path,label columns."
            )
        root = given.resolve()
        class_dirs = _class_folders(root)
        _check_class_names([name for name, _ in class_dirs], given)
        found = {name: _images_in(root, name, folder) for name, folder in class_dirs}
        layout = _LAYOUT.format(root=given)
        if not class_dirs or not any(found.values()):
            what = "no class sub-folders" if not class_dirs else "no images in its class sub-folders"
            raise UserError(
                f"Data folder {given} has {what}. Expected {layout} "
                f"(image types: {', '.join(IMAGE_SUFFIXES)})."
            )
        empty = [name for name, images in found.items() if not images]
        if empty:
            raise UserError(
                f"Class folder(s) {', '.join(repr(n) for n in empty)} in {given} contain no images "
                f"({', '.join(IMAGE_SUFFIXES)}). Add images to them or remove the folder(s)."
            )
        if len(class_dirs) < 2:
            raise UserError(
                f"Data folder {given} has only one class ({class_dirs[0][0]!r}). Classification needs at "
                f"least two: add another sub-folder of images, e.g. {given}/other/1.jpg."
            )
        class_names = tuple(name for name, _ in class_dirs)
        items = tuple(
            ImageItem(path=path, relpath=relpath, label=label)
            for label, name in enumerate(class_names)
            for relpath, path in found[name]
        )
        return make_splits(root, f"folder {given}", class_names, items, self.val_fraction, self.test_fraction)


def _check_class_names(names: list[str], given: Path) -> None:
    """A class folder's name is the class's label: refuse one of only spaces, and two that a reader cannot
    tell apart (see ``automl_tl.runtime.label_names``)."""
    blank = [name for name in names if not label_key(name)]
    if blank:
        raise UserError(f"Class folder {blank[0]!r} in {given} has a name of only spaces, which cannot name a class. "
                        f"Rename it to the class's name.")
    twins = look_alike(names)
    if twins is not None:
        raise UserError(f"Class folders {twins[0]!r} and {twins[1]!r} in {given} differ only in spaces or in how an "
                        f"accent is encoded, so their classes would print the same. Merge them into one folder, or "
                        f"rename one.")


def _listdir(folder: Path) -> list[os.DirEntry[str]]:
    """Sorted directory entries, with an unreadable folder reported as a UserError."""
    try:
        with os.scandir(folder) as entries:
            return sorted(entries, key=lambda entry: entry.name)
    except OSError as exc:
        raise UserError(f"Cannot read folder {folder}: {exc.strerror or exc}. Check its permissions.") from None


def _class_folders(root: Path) -> list[tuple[str, Path]]:
    """(class name, folder) for each non-hidden immediate sub-folder, sorted by name."""
    return [
        (entry.name, resolve_under(root, entry.name))
        for entry in _listdir(root)
        if not entry.name.startswith(".") and entry.is_dir()
    ]


def _images_in(root: Path, name: str, class_dir: Path) -> list[tuple[str, Path]]:
    """(POSIX relpath from root, resolved path) for every image below ``class_dir``, sorted by relpath.

    Symlinked folders are followed when they stay inside the root; each real folder
    is visited once, so a symlink loop cannot run forever.
    """
    found: list[tuple[str, Path]] = []
    visited: set[Path] = set()
    pending: list[tuple[Path, Path]] = [(class_dir, Path(name))]  # (resolved, as seen from root)
    while pending:
        real, logical = pending.pop()
        if real in visited:
            continue
        visited.add(real)
        for entry in _listdir(real):
            if entry.name.startswith("."):
                continue
            rel = logical / entry.name
            if entry.is_dir():
                pending.append((_real_path(root, real, entry, rel), rel))
            elif entry.is_file() and is_image_file(Path(entry.name)):
                found.append((rel.as_posix(), _real_path(root, real, entry, rel)))
    found.sort()
    return found


def _real_path(root: Path, real_parent: Path, entry: os.DirEntry[str], rel: Path) -> Path:
    """The resolved path of ``entry``; only symlinks need resolving (and checking against the root)."""
    if entry.is_symlink():
        return resolve_under(root, rel)
    return real_parent / entry.name

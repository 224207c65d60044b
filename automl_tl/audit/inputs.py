"""What the audit reads of each image: its content hash, its size in pixels and its perceptual hashes.

Two sources give the same ``AuditInput``. ``from_files`` (``automl-tl audit``) reads every file once, on a
thread per core: the bytes are hashed (sha1, as the decoded-image store names them), the header gives the
size (parsed from the bytes already read, not by opening the file again), and the image is decoded small
(``THUMB_SIDE`` px, by the loader's own decoder, so a file it would skip is unreadable here for the same
reason); nothing is written anywhere. ``from_table`` (the start of a
search) reuses what the search already has: the content hashes, the skipped files and the decoded pixels
of its image table, and only reads each file's header for its size.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from automl_tl.audit.perceptual import THUMB_SIDE, thumbnail, turned_fingerprints
from automl_tl.data.image_store import run_with_progress
from automl_tl.data.images import DECODE_FORMATS, DEFAULT_MAX_PIXELS, BadImage, decode_image
from automl_tl.types import DataSplits, ImageTable, ResizeRule

_HEADER_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


@dataclass
class AuditInput:
    """The readable images (parallel lists) and the unreadable ones, with the data set's class names."""

    files: list[str]
    classes: list[str]
    splits: list[str]
    content: list[str]  # sha1 of each file's bytes
    sizes: list[tuple[int, int]]  # (width, height) from each file's header
    prints: np.ndarray  # (N, TURNS, 63) perceptual fingerprints, see perceptual.turned_fingerprints
    unreadable: list[tuple[str, str]]  # (file, reason)
    class_names: tuple[str, ...]

    @property
    def images(self) -> int:
        """Every image file of the data set, the unreadable ones too."""
        return len(self.files) + len(self.unreadable)


def header_size(source: Path | bytes) -> tuple[int, int]:
    """(width, height) from the header of an image file, or of its bytes already read; (0, 0) when the header
    cannot be read."""
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=DECODE_FORMATS) as im:
            return int(im.size[0]), int(im.size[1])
    except _HEADER_ERRORS:
        return 0, 0


def _grey(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(rgb), "RGB").convert("L"))


def from_files(splits: DataSplits, max_pixels: int = DEFAULT_MAX_PIXELS, show_progress: bool = True) -> AuditInput:
    """Read every image of ``splits`` once (hash, header, a small decode); writes nothing."""
    items = splits.items
    content = [""] * len(items)
    sizes = [(0, 0)] * len(items)
    thumbs = np.zeros((len(items), THUMB_SIDE, THUMB_SIDE), dtype=np.uint8)
    reasons: dict[int, str] = {}

    def work(index: int) -> None:
        try:
            data = items[index].path.read_bytes()
        except OSError as exc:
            reasons[index] = f"unreadable: {exc.strerror or exc}"  # the loader's words (image_store.read_hashes)
            return
        content[index] = hashlib.sha1(data).hexdigest()
        try:
            pixels = decode_image(data, THUMB_SIDE, max_pixels, ResizeRule("crop"))
        except BadImage as exc:
            reasons[index] = str(exc)
            return
        sizes[index] = header_size(data)
        thumbs[index] = _grey(pixels)

    run_with_progress(work, len(items), "Auditing images", show_progress)
    kept = [i for i in range(len(items)) if i not in reasons]
    return AuditInput(
        files=[items[i].relpath for i in kept], classes=[splits.class_names[items[i].label] for i in kept],
        splits=[splits.split[i] for i in kept], content=[content[i] for i in kept], sizes=[sizes[i] for i in kept],
        prints=turned_fingerprints(thumbs[kept]), unreadable=[(items[i].relpath, reasons[i]) for i in sorted(reasons)],
        class_names=tuple(splits.class_names))


def from_table(table: ImageTable, splits: DataSplits, show_progress: bool = False) -> AuditInput:
    """The audit's input from a search's image table (its pixels, hashes and skipped files) and the files'
    headers; nothing is decoded again."""
    split_of = _split_per_row(table)
    path_of = {item.relpath: item.path for item in splits.items}
    files = list(table.relpaths)
    sizes = [(0, 0)] * len(files)
    thumbs = np.zeros((len(files), THUMB_SIDE, THUMB_SIDE), dtype=np.uint8)

    def work(row: int) -> None:
        sizes[row] = header_size(path_of[files[row]]) if files[row] in path_of else (0, 0)
        thumbs[row] = thumbnail(_grey(np.asarray(table.images[row])))

    run_with_progress(work, len(files), "Auditing images", show_progress)
    return AuditInput(
        files=files, classes=[table.class_names[int(y)] for y in table.labels], splits=split_of,
        content=list(table.content_hashes) if table.content_hashes else [""] * len(files), sizes=sizes,
        prints=turned_fingerprints(thumbs), unreadable=[(str(f), str(r)) for f, r in table.skipped], class_names=tuple(table.class_names))


def _split_per_row(table: ImageTable) -> list[str]:
    names = [""] * len(table.relpaths)
    for name, rows in table.splits.items():
        for row in rows:
            names[int(row)] = name
    return names


def readable_sizes(found: AuditInput) -> tuple[list[str], list[tuple[int, int]]]:
    """The files whose header gave a size, and those sizes (a header read can fail after a decode did not)."""
    kept = [(f, s) for f, s in zip(found.files, found.sizes) if s[0] > 0 and s[1] > 0]
    return [f for f, _ in kept], [s for _, s in kept]

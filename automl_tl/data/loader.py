"""Decode a data set's images into one in-memory ImageTable."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from ..errors import UserError
from ..types import SPLITS, DataSplits, ImageItem, ImageTable
from .images import DEFAULT_MAX_PIXELS, BadImage, decode_image

_SHOWN = 5  # how many bad files a message lists by name
_SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def load_table(
    splits: DataSplits,
    image_size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bad_fraction: float = 0.05,
    show_progress: bool = True,
) -> ImageTable:
    """Read and decode every image of ``splits`` into an ``ImageTable``.

    Each file is read once; its bytes give a sha1 (``content_hashes``) and are decoded
    to (image_size, image_size, 3) uint8 RGB by a small thread pool. Unreadable or bad
    images are skipped and listed in ``skipped`` as (relpath, reason); more than
    ``max_bad_fraction`` of them, a class left without training images, or an empty
    validation or test split is a ``UserError``. ``manifest_hash`` is the sha256 of the
    sorted lines "relpath<TAB>class name<TAB>sha1" of the kept images, so it changes
    when any image's bytes, name or class change.
    """
    if image_size < 1:
        raise UserError(f"The image size must be a positive number of pixels, got {image_size}.")
    items = splits.items
    total = len(items)
    if total == 0:
        raise UserError(f"{splits.source} has no images. Add images, or leave DATA out to use the bundled sample.")
    images = np.empty((total, image_size, image_size, 3), dtype=np.uint8)
    hashes: list[str] = [""] * total
    reasons: list[str | None] = [None] * total

    def work(index: int) -> None:
        reasons[index], hashes[index] = _decode_into(items[index], images, index, image_size, max_pixels)

    workers = max(1, min(4, os.cpu_count() or 1))
    _run_with_progress(work, total, workers, show_progress)

    skipped = [(items[i].relpath, reason) for i, reason in enumerate(reasons) if reason is not None]
    if len(skipped) > max_bad_fraction * total:
        raise UserError(
            f"{len(skipped)} of {total} images in {splits.source} could not be used (more than "
            f"{max_bad_fraction:.0%}): {_listing(skipped)}. Fix or remove those files."
        )
    keep = [i for i, reason in enumerate(reasons) if reason is None]
    if len(keep) < total:
        for new, old in enumerate(keep):  # compact in place: new <= old, so nothing is overwritten early
            if new != old:
                images[new] = images[old]
        images = images[: len(keep)]
    labels = np.array([items[i].label for i in keep], dtype=np.int64)
    split_of = [splits.split[i] for i in keep]
    index_arrays = {name: np.array([k for k, s in enumerate(split_of) if s == name], dtype=np.int64) for name in SPLITS}
    _check_coverage(splits, labels, index_arrays, bool(skipped))
    relpaths = tuple(items[i].relpath for i in keep)
    content = tuple(hashes[i] for i in keep)
    return ImageTable(
        images=images,
        labels=labels,
        class_names=splits.class_names,
        relpaths=relpaths,
        splits=index_arrays,
        skipped=skipped,
        manifest_hash=manifest_hash(relpaths, [splits.class_names[int(y)] for y in labels], content),
        content_hashes=content,
    )


def manifest_hash(relpaths: Sequence[str], class_names: Sequence[str], sha1s: Sequence[str]) -> str:
    """sha256 hex of the sorted lines "relpath<TAB>class name<TAB>sha1", joined by newlines."""
    lines = sorted(f"{p}\t{c}\t{h}" for p, c, h in zip(relpaths, class_names, sha1s))
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def describe_skipped(skipped: Sequence[tuple[str, str]]) -> str:
    """A one-line summary of skipped images for a warning; "" when there are none."""
    if not skipped:
        return ""
    noun = "image" if len(skipped) == 1 else "images"
    return f"Skipped {len(skipped)} unusable {noun}: {_listing(skipped)}."


def _listing(skipped: Sequence[tuple[str, str]]) -> str:
    """Up to five "relpath (reason)" entries, then how many more."""
    shown = "; ".join(f"{path} ({reason})" for path, reason in skipped[:_SHOWN])
    rest = len(skipped) - _SHOWN
    return f"{shown}; and {rest} more" if rest > 0 else shown


def _decode_into(item: ImageItem, images: np.ndarray, index: int, image_size: int, max_pixels: int) -> tuple[str | None, str]:
    """Read and decode one file into ``images[index]``; returns (reason it is bad or None, sha1)."""
    try:
        data = item.path.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc.strerror or exc}", ""
    digest = hashlib.sha1(data).hexdigest()
    try:
        images[index] = decode_image(data, image_size, max_pixels)
    except BadImage as exc:
        return str(exc), digest
    return None, digest


def _run_with_progress(work: Callable[[int], None], total: int, workers: int, show_progress: bool) -> None:
    """Call ``work(i)`` for every i in range(total) on a thread pool, with an optional progress bar."""
    from rich.progress import Progress

    with Progress(disable=not show_progress, transient=True) as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task("Decoding images", total=total)
        for _ in pool.map(work, range(total)):
            bar.advance(task)


def _check_coverage(splits: DataSplits, labels: np.ndarray, index_arrays: dict[str, np.ndarray], after_skipping: bool) -> None:
    """Every class needs training images, and validation and test need at least one image."""
    cause = "After skipping unusable images, " if after_skipping else ""
    train_counts = np.bincount(labels[index_arrays["train"]], minlength=len(splits.class_names))
    missing = [splits.class_names[c] for c in range(len(splits.class_names)) if train_counts[c] == 0]
    if missing:
        raise UserError(
            f"{cause}class(es) {', '.join(repr(n) for n in missing)} in {splits.source} have no training "
            f"images. Add more images to those classes (each needs at least 3 to fill train, val and test)."
        )
    for name in ("val", "test"):
        if len(index_arrays[name]) == 0:
            raise UserError(
                f"{cause}the {_SPLIT_WORDS[name]} split of {splits.source} is empty. Add more images: about "
                f"15% of them go to each of validation and test."
            )

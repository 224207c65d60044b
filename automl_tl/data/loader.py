"""A data set's images as an ImageTable backed by the decoded-image store (see image_store.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from automl_tl.data.image_store import read_hashes, stored_images
from automl_tl.data.images import DEFAULT_MAX_PIXELS
from automl_tl.errors import UserError
from automl_tl.types import SPLITS, DataSplits, ImageTable, ResizeRule

_SHOWN = 5  # how many bad files a message lists by name
_SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def load_table(
    splits: DataSplits,
    image_size: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bad_fraction: float = 0.05,
    show_progress: bool = True,
    rule: ResizeRule | None = None,
    store: Path | None = None,
) -> ImageTable:
    """The images of ``splits`` as an ``ImageTable`` whose pixels are a memory map of the decoded-image store.

    Each file is read once to hash it (``content_hashes``); the store (``store``, by default
    ``image_store_dir()``) holds the decoded images under a name made of those hashes, the size and
    the resize ``rule``, so only the first command on a data set decodes. Unreadable or bad images
    are skipped and listed in ``skipped`` as (relpath, reason); more than ``max_bad_fraction`` of
    them, a class left without training images, or an empty validation or test split is a
    ``UserError``. ``manifest_hash`` is the sha256 of the sorted lines "relpath<TAB>class
    name<TAB>sha1" of the kept images, so it changes when any image's bytes, name or class change.
    """
    if image_size < 1:
        raise UserError(f"The image size must be a positive number of pixels, got {image_size}.")
    items = splits.items
    total = len(items)
    if total == 0:
        raise UserError(f"{splits.source} has no images. Add images, or leave DATA out to use the bundled sample.")
    hashes, unreadable = read_hashes(items, show_progress)
    if len(unreadable) > max_bad_fraction * total:
        _too_many_bad(splits, sorted(unreadable.items()), total, max_bad_fraction)
    stored = stored_images(items, hashes, unreadable, image_size, rule or ResizeRule(), max_pixels, store, show_progress)
    skipped = [(items[i].relpath, reason) for i, reason in sorted(stored.reasons.items())]
    if len(skipped) > max_bad_fraction * total:
        _too_many_bad(splits, sorted(stored.reasons.items()), total, max_bad_fraction)
    keep = stored.kept
    labels = np.array([items[i].label for i in keep], dtype=np.int64)
    split_of = [splits.split[i] for i in keep]
    index_arrays = {name: np.array([k for k, s in enumerate(split_of) if s == name], dtype=np.int64) for name in SPLITS}
    _check_coverage(splits, labels, index_arrays, bool(skipped))
    relpaths = tuple(items[i].relpath for i in keep)
    content = tuple(hashes[i] for i in keep)
    return ImageTable(
        images=stored.pixels,
        labels=labels,
        class_names=splits.class_names,
        relpaths=relpaths,
        splits=index_arrays,
        skipped=skipped,
        manifest_hash=manifest_hash(relpaths, [splits.class_names[int(y)] for y in labels], content),
        content_hashes=content,
        decoded_now=stored.decoded_now,
    )


def _too_many_bad(splits: DataSplits, bad: list[tuple[int, str]], total: int, max_bad_fraction: float) -> None:
    listed = [(splits.items[i].relpath, reason) for i, reason in bad]
    raise UserError(
        f"{len(bad)} of {total} images in {splits.source} could not be used (more than "
        f"{max_bad_fraction:.0%}): {_listing(listed)}. Fix or remove those files."
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

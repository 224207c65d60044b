"""Augmentation that keeps the activation cache exact: fixed views, each cached like the original.

Random augmentation would change every image on every epoch, so no frozen-prefix activation
could be reused. automl-tl instead offers a searched choice of label-preserving *fixed* views
(``augment``): with ``hflip``, the mirrored image is a second view whose activations are cached
like the original's (its key differs by the view). With ``views`` (not searched: see
``SEARCHED_AUGMENTATIONS``), ``VIEW_COUNT`` augmented views (random-resized crop, mirror, mild colour
jitter, each fixed by the image's content hash and the view's number: automl_tl/training/augmented_views.py)
join the original. Every training epoch draws, per image, one of the views with equal chance.
Validation and test always see the original. The first trial that uses a view pays one more
forward pass; every later one reads the cache.

Views have global numbers (``view_ids``), which the cost model and the cache state use: 0 the
original, 1 the mirror, ``1 + k`` augmented view ``k``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from automl_tl.training.augmented_views import augmented
from automl_tl.types import ImageTable

AUGMENTATIONS = ("none", "hflip", "views")
# What the search chooses among. ``views`` is left out: on held-out photos at 224 px head-only trials scored the
# same or up to 1.6 points lower with it, never higher, for 2-3x the prefix passes (bench/augmented_views.py;
# docs/decisions.md, issue 24 part 2). A TrialConfig may still ask for it.
SEARCHED_AUGMENTATIONS = ("none", "hflip")
# Augmented views beside the original under ``views``: 4 scored no better than 2, for twice the passes.
VIEW_COUNT = 2
VIEWS_PREFIX = "views"  # "views" is VIEW_COUNT views; "views<K>" (not searched) is K, for benchmarks


def augmented_view_count(augment: str) -> int:
    """How many augmented views ``augment`` adds beside the original (and the mirror): 0 for none and hflip."""
    if augment in ("none", "hflip"):
        return 0
    if augment == VIEWS_PREFIX:
        return VIEW_COUNT
    count = augment[len(VIEWS_PREFIX):]
    if augment.startswith(VIEWS_PREFIX) and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")


def view_ids(augment: str) -> list[int]:
    """The global numbers of the views a trial with ``augment`` trains on, the original (0) first."""
    if augment == "hflip":
        return [0, 1]
    return [0, *range(2, 2 + augmented_view_count(augment))]


def view_table(data: ImageTable, view_id: int) -> ImageTable:
    """The table of view ``view_id`` (``view_ids``): the original, the mirror, or an augmented view."""
    if view_id == 0:
        return data
    return mirrored(data) if view_id == 1 else augmented(data, view_id - 1)


def views(data: ImageTable, augment: str) -> list[ImageTable]:
    """The tables a trial trains on: the original, then one per extra view."""
    return [view_table(data, view_id) for view_id in view_ids(augment)]


def mirrored(data: ImageTable) -> ImageTable:
    """The table with every image mirrored left-right; its content hashes name the view. The images are
    a view of the original's (of its memory map): nothing is copied, each batch is mirrored as it is read."""
    return dataclasses.replace(
        data,
        images=data.images[:, :, ::-1, :],
        content_hashes=tuple(f"{h}|hflip" for h in data.content_hashes),
        manifest_hash=f"{data.manifest_hash}|hflip" if data.manifest_hash else "",
    )


def view_choice(count: int, n_views: int, rng: np.random.Generator) -> np.ndarray:
    """Which view each of ``count`` training rows uses this epoch (all 0 without augmentation)."""
    if n_views == 1:
        return np.zeros(count, dtype=np.int64)
    return rng.integers(0, n_views, size=count)


def mixed_rows(sources: list[np.ndarray], indices: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """Rows ``indices`` as float32, row i taken from ``sources[choice[i]]``."""
    from automl_tl.cache.activations import rows_as_float32

    indices = np.asarray(indices, dtype=np.int64)
    if len(sources) == 1:
        return rows_as_float32(sources[0], indices)
    out = np.empty((len(indices), *sources[0].shape[1:]), dtype=np.float32)
    for view, source in enumerate(sources):
        mask = choice == view
        if mask.any():
            out[mask] = rows_as_float32(source, indices[mask])
    return out

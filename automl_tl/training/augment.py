"""Augmentation that keeps the activation cache exact: fixed views, each cached like the original.

Random augmentation would change every image on every epoch, so no frozen-prefix activation
could be reused. automl-tl instead offers a searched choice of label-preserving *fixed* views
(``augment``): with ``hflip``, the mirrored image is a second view whose activations are cached
like the original's (its key differs by the view), and every training epoch draws, per image,
the original or the mirror with equal chance. Validation and test always see the original. The
first trial that uses a view pays one more forward pass; every later one reads the cache.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from automl_tl.types import ImageTable

AUGMENTATIONS = ("none", "hflip")


def views(data: ImageTable, augment: str) -> list[ImageTable]:
    """The tables a trial trains on: the original, then one per extra view."""
    if augment == "none":
        return [data]
    if augment == "hflip":
        return [data, mirrored(data)]
    raise ValueError(f"unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}")


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

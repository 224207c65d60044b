"""The conformance suite's data: a tiny image table with a signal any backbone can learn."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl_tl.data.images import to_model_input
from automl_tl.types import ImageTable

__all__ = ["reference_inputs", "synthetic_table"]


def synthetic_table(n_per_split: int = 16, size: int = 16, classes: int = 2, seed: int = 0) -> ImageTable:
    """Noise images with a learnable signal (class c has a bright channel c), split evenly into
    train, val and test. The manifest hash names the table, so activation caches may share it."""
    rng = np.random.default_rng(seed)
    n = 3 * n_per_split
    labels = np.arange(n) % classes
    images = rng.integers(0, 128, (n, size, size, 3), dtype=np.uint8)
    for c in range(classes):
        images[labels == c, :, :, c % 3] = 255
    splits = {name: np.arange(i * n_per_split, (i + 1) * n_per_split) for i, name in enumerate(("train", "val", "test"))}
    return ImageTable(images=images, labels=labels, class_names=tuple(f"c{i}" for i in range(classes)),
                      relpaths=tuple(f"{i}.png" for i in range(n)), splits=splits,
                      manifest_hash=f"synthetic-{seed}-{size}-{n_per_split}-{classes}")


def reference_inputs(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """uint8 (N, H, W, 3) images as float32 model input, ``(pixel / 255 - mean) / std``, written out plainly
    (NHWC): what a reference computation feeds the framework's own model, independent of the adapter."""
    pixels = to_model_input(images)
    return ((pixels - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)).astype(np.float32)

"""Stratified K-fold assignment over the training and validation images, and the tables each fold trains on.

A small validation split makes the best of hundreds of trials mostly the luckiest one. Cross-validation
scores a trial on every labelled image outside the test split instead: fold j trains on train and val minus
fold j and is judged on fold j. Every trial of a study uses the same folds, so their scores are comparable.

The assignment depends only on the images' relative paths, their labels and the seed: the same on every
machine and in every run. Within each class the images are ordered by a hash of the seed and their path and
dealt to the folds in turn, so every class with at least K images is in every fold, and the folds' sizes
differ by at most one image. The test split is never part of any fold.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from automl_tl.types import ImageTable

MIN_FOLDS, MAX_FOLDS = 2, 10


def scored_rows(data: ImageTable) -> np.ndarray:
    """The rows cross-validation scores, in table order: the training and validation splits, never the test split."""
    return np.sort(np.concatenate([data.splits["train"], data.splits["val"]]).astype(np.int64))


def _order_key(seed: int, relpath: str) -> bytes:
    return hashlib.sha256(f"{seed}|{relpath}".encode()).digest()


def assign_folds(relpaths: Sequence[str], labels: np.ndarray, rows: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint folds that together hold exactly ``rows`` (indices into ``relpaths`` and ``labels``),
    each sorted. Stratified: class by class, images in the order of ``sha256(seed|relpath)`` are dealt to
    the folds in turn, each class starting where the previous one stopped."""
    if not MIN_FOLDS <= k <= MAX_FOLDS:
        raise ValueError(f"k must be between {MIN_FOLDS} and {MAX_FOLDS}, not {k}")
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) < k:
        raise ValueError(f"{len(rows)} images cannot be split into {k} folds")
    members: list[list[int]] = [[] for _ in range(k)]
    start = 0
    row_labels = np.asarray(labels)[rows]
    for label in np.unique(row_labels):
        in_class = sorted((int(r) for r in rows[row_labels == label]), key=lambda r: _order_key(seed, relpaths[r]))
        for position, row in enumerate(in_class):
            members[(start + position) % k].append(row)
        start = (start + len(in_class)) % k
    return [np.array(sorted(fold), dtype=np.int64) for fold in members]


def fold_table(data: ImageTable, folds: Sequence[np.ndarray], j: int) -> ImageTable:
    """The table fold ``j`` runs on: the same images and labels (so every activation cache entry is shared),
    trained on the other folds, validated on fold ``j``, the test split unchanged."""
    train = np.sort(np.concatenate([fold for i, fold in enumerate(folds) if i != j]))
    return dataclasses.replace(data, splits={"train": train, "val": np.asarray(folds[j], dtype=np.int64),
                                             "test": data.splits["test"]})


def refit_table(data: ImageTable) -> ImageTable:
    """The table of the final refit: trained on the training and validation splits together, no validation
    images left, the test split unchanged."""
    return dataclasses.replace(data, splits={"train": scored_rows(data), "val": np.empty(0, dtype=np.int64),
                                             "test": data.splits["test"]})

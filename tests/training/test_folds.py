"""Fold assignment for --cv: stable, stratified, disjoint, covering train and val, never the test split."""

from __future__ import annotations

import numpy as np
import pytest

from automl_tl.training.folds import assign_folds, fold_table, refit_table, scored_rows
from automl_tl.types import ImageTable


def table(per_class: tuple[int, ...] = (23, 11, 7, 3), test_every: int = 5) -> ImageTable:
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(per_class)]).astype(np.int64)
    relpaths = tuple(f"class{label}/{i:03d}.png" for i, label in enumerate(labels))
    rows = np.arange(len(labels))
    test = rows[rows % test_every == 0]
    val = rows[rows % test_every == 1]
    train = rows[rows % test_every > 1]
    return ImageTable(images=np.zeros((len(labels), 2, 2, 3), np.uint8), labels=labels,
                      class_names=tuple(f"class{c}" for c in range(len(per_class))), relpaths=relpaths,
                      splits={"train": train, "val": val, "test": test})


def test_scored_rows_are_train_and_val_and_never_test():
    data = table()
    rows = scored_rows(data)
    assert set(rows) == set(data.splits["train"]) | set(data.splits["val"])
    assert not set(rows) & set(data.splits["test"])
    assert list(rows) == sorted(rows)


def test_folds_are_disjoint_cover_the_rows_and_have_sizes_within_one():
    data = table()
    rows = scored_rows(data)
    folds = assign_folds(data.relpaths, data.labels, rows, 5, seed=0)
    assert len(folds) == 5
    joined = np.concatenate(folds)
    assert len(joined) == len(set(joined)) == len(rows), "disjoint"
    assert set(joined) == set(rows), "together the folds hold exactly train and val"
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1, sizes


def test_every_class_is_in_every_fold_when_it_has_enough_images():
    data = table()
    rows = scored_rows(data)
    folds = assign_folds(data.relpaths, data.labels, rows, 4, seed=3)
    for label in np.unique(data.labels[rows]):
        in_class = int(np.sum(data.labels[rows] == label))
        per_fold = [int(np.sum(data.labels[f] == label)) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1, (label, per_fold)  # stratified
        if in_class >= 4:
            assert min(per_fold) >= 1, (label, per_fold)


def test_assignment_is_stable_in_any_row_order_and_moves_with_the_seed():
    data = table()
    rows = scored_rows(data)
    first = assign_folds(data.relpaths, data.labels, rows, 5, seed=0)
    shuffled = np.random.default_rng(1).permutation(rows)
    again = assign_folds(data.relpaths, data.labels, shuffled, 5, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    other = assign_folds(data.relpaths, data.labels, rows, 5, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_fold_tables_share_the_images_and_keep_the_test_split():
    data = table()
    folds = assign_folds(data.relpaths, data.labels, scored_rows(data), 3)
    for j in range(3):
        fold = fold_table(data, folds, j)
        assert fold.images is data.images and fold.labels is data.labels and fold.relpaths is data.relpaths
        assert np.array_equal(fold.splits["val"], folds[j])
        assert not set(fold.splits["train"]) & set(fold.splits["val"])
        assert set(fold.splits["train"]) | set(fold.splits["val"]) == set(scored_rows(data))
        assert np.array_equal(fold.splits["test"], data.splits["test"])
    refit = refit_table(data)
    assert np.array_equal(refit.splits["train"], scored_rows(data)) and len(refit.splits["val"]) == 0
    assert np.array_equal(refit.splits["test"], data.splits["test"])


@pytest.mark.parametrize("k", [1, 11])
def test_fold_counts_outside_two_to_ten_are_refused(k):
    data = table()
    with pytest.raises(ValueError, match="between 2 and 10"):
        assign_folds(data.relpaths, data.labels, scored_rows(data), k)

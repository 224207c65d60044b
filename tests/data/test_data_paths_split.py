"""Paths stay under the data root; the split is stable and covers every class."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import pytest

from automl_tl.data.paths import resolve_under
from automl_tl.data.split import stable_split
from automl_tl.errors import UserError


def test_relative_path_inside_root_resolves(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"x")
    assert resolve_under(tmp_path, "a/../a/x.png") == (tmp_path / "a" / "x.png").resolve()


@pytest.mark.parametrize("candidate", ["../outside.png", "a/../../outside.png"])
def test_dotdot_escape_is_refused(tmp_path: Path, candidate: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UserError, match="outside the data folder") as info:
        resolve_under(root, candidate, context="labels.csv line 3")
    assert str(info.value).startswith("labels.csv line 3: ")
    assert str(root.resolve()) in str(info.value)


def test_absolute_path_elsewhere_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(UserError, match="outside the data folder"):
        resolve_under(root, tmp_path / "other.png")
    assert resolve_under(root, root / "in.png") == root.resolve() / "in.png"


def test_symlink_pointing_out_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.png").write_bytes(b"x")
    os.symlink(tmp_path / "secret.png", root / "link.png")
    with pytest.raises(UserError, match="link.png"):
        resolve_under(root, "link.png")


def _paths(n: int, classes: int, prefix: str = "") -> tuple[list[str], list[int]]:
    paths = [f"c{i % classes}/{prefix}{i:05d}.png" for i in range(n)]
    return paths, [i % classes for i in range(n)]


def test_adding_images_never_moves_old_ones() -> None:
    paths, labels = _paths(600, 3)
    before = dict(zip(paths, stable_split(paths, labels)))
    more_paths, more_labels = _paths(300, 3, prefix="new")
    combined_paths, combined_labels = paths + more_paths, labels + more_labels
    after = dict(zip(combined_paths, stable_split(combined_paths, combined_labels)))
    assert all(after[p] == s for p, s in before.items())


def test_split_ignores_input_order_and_is_deterministic() -> None:
    paths, labels = _paths(300, 4)
    first = dict(zip(paths, stable_split(paths, labels)))
    order = list(range(len(paths)))
    random.Random(1).shuffle(order)
    shuffled = stable_split([paths[i] for i in order], [labels[i] for i in order])
    assert {paths[i]: s for i, s in zip(order, shuffled)} == first


def test_fractions_are_roughly_right() -> None:
    paths, labels = _paths(4000, 2)
    counts = Counter(stable_split(paths, labels, val_fraction=0.2, test_fraction=0.1))
    assert abs(counts["val"] / 4000 - 0.2) < 0.03
    assert abs(counts["test"] / 4000 - 0.1) < 0.03


@pytest.mark.parametrize("size", [3, 4, 5, 7, 10])
def test_every_class_with_three_items_gets_train_val_and_test(size: int) -> None:
    for start in range(20):  # many different hash layouts
        paths = [f"k{start}/{i}.png" for i in range(size)] + [f"z{start}/{i}.png" for i in range(size)]
        labels = [0] * size + [1] * size
        split = stable_split(paths, labels)
        for label in (0, 1):
            assert {s for s, y in zip(split, labels) if y == label} == {"train", "val", "test"}


def test_tiny_classes_keep_a_training_item() -> None:
    for start in range(30):
        paths = [f"t{start}/a.png", f"t{start}/b.png", f"u{start}/a.png"]
        split = stable_split(paths, [0, 0, 1])
        assert "train" in split[:2]
        assert split[2] == "train"


def test_zero_fraction_forces_nothing() -> None:
    paths, labels = _paths(50, 5)
    assert set(stable_split(paths, labels, val_fraction=0.0, test_fraction=0.0)) == {"train"}


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.1), (0.5, 0.5), (1.0, 0.0)])
def test_bad_fractions_are_user_errors(val: float, test: float) -> None:
    with pytest.raises(UserError, match="fraction"):
        stable_split(["a.png"], [0], val_fraction=val, test_fraction=test)


def test_mismatched_lengths_are_a_bug() -> None:
    with pytest.raises(ValueError):
        stable_split(["a.png", "b.png"], [0])

"""Decoding a data set into an ImageTable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl.data.folder import FolderDataset
from automl_tl.data.loader import describe_skipped, load_table
from automl_tl.errors import UserError
from automl_tl.types import DataSplits, ImageItem
from tests.support.images import make_class_tree, solid_png, write_image

COUNTS = {"cat": 12, "dog": 10, "owl": 9}


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    return make_class_tree(tmp_path / "data", COUNTS)


def test_table_shapes_labels_and_splits(data: Path) -> None:
    splits = FolderDataset().discover(str(data))
    table = load_table(splits, 16, show_progress=False)
    total = sum(COUNTS.values())
    assert table.images.shape == (total, 16, 16, 3)
    assert table.images.dtype == np.uint8
    assert table.labels.dtype == np.int64
    assert table.class_names == ("cat", "dog", "owl")
    assert table.relpaths == tuple(i.relpath for i in splits.items)
    assert [table.class_names[y] for y in table.labels] == [p.split("/")[0] for p in table.relpaths]
    assert table.skipped == []
    assert len(table.content_hashes) == total and all(len(h) == 40 for h in table.content_hashes)
    indices = np.concatenate([table.splits[s] for s in ("train", "val", "test")])
    assert sorted(indices.tolist()) == list(range(total))
    for name in ("train", "val", "test"):
        assert table.splits[name].dtype == np.int64
        assert [table.relpaths[i] for i in table.splits[name]] == [
            i.relpath for i, s in zip(splits.items, splits.split) if s == name
        ]
    assert set(table.labels[table.splits["train"]].tolist()) == {0, 1, 2}


def test_pixels_are_the_decoded_image(tmp_path: Path) -> None:
    (tmp_path / "red").mkdir()
    (tmp_path / "blue").mkdir()
    for i in range(4):
        (tmp_path / "red" / f"{i}.png").write_bytes(solid_png((255, 0, 0)))
        (tmp_path / "blue" / f"{i}.png").write_bytes(solid_png((0, 0, 255)))
    table = load_table(FolderDataset().discover(str(tmp_path)), 4, show_progress=False)
    for image, label in zip(table.images, table.labels):
        expected = (0, 0, 255) if table.class_names[label] == "blue" else (255, 0, 0)
        assert np.all(image == np.array(expected, dtype=np.uint8))


def test_manifest_hash_is_stable_and_tracks_bytes(data: Path) -> None:
    first = load_table(FolderDataset().discover(str(data)), 8, show_progress=False)
    again = load_table(FolderDataset().discover(str(data)), 8, show_progress=False)
    assert first.manifest_hash == again.manifest_hash
    assert len(first.manifest_hash) == 64
    write_image(data / "cat" / "000.png", seed=999)
    changed = load_table(FolderDataset().discover(str(data)), 8, show_progress=False)
    assert changed.manifest_hash != first.manifest_hash


def test_bad_images_are_skipped_and_listed(data: Path) -> None:
    good = (data / "cat" / "001.png").read_bytes()
    (data / "cat" / "001.png").write_bytes(good[: len(good) // 2])
    splits = FolderDataset().discover(str(data))
    table = load_table(splits, 8, max_bad_fraction=0.1, show_progress=True)
    assert [path for path, _ in table.skipped] == ["cat/001.png"]
    assert "cat/001.png" not in table.relpaths
    assert table.images.shape[0] == len(table.labels) == len(table.relpaths) == sum(COUNTS.values()) - 1
    assert [table.class_names[y] for y in table.labels] == [p.split("/")[0] for p in table.relpaths]
    message = describe_skipped(table.skipped)
    assert message.startswith("Skipped 1 unusable image: cat/001.png (")


def test_too_many_bad_images(data: Path) -> None:
    for i in range(4):
        (data / "dog" / f"00{i}.png").write_bytes(b"garbage")
    (data / "owl" / "000.png").write_bytes(b"")
    (data / "owl" / "001.png").write_bytes(b"also garbage")
    with pytest.raises(UserError, match=r"6 of 31 images in folder .*data could not be used") as info:
        load_table(FolderDataset().discover(str(data)), 8, show_progress=False)
    assert "and 1 more" in str(info.value)
    assert "dog/000.png" in str(info.value)


def test_oversized_image_is_skipped(data: Path) -> None:
    write_image(data / "cat" / "big.png", size=(60, 60))
    table = load_table(FolderDataset().discover(str(data)), 8, max_pixels=1000, show_progress=False)
    assert table.skipped == [("cat/big.png", "60x60 pixels is over the cap of 1,000 pixels")]


def _splits(tmp_path: Path, plan: list[tuple[str, int, str]], names: tuple[str, ...] = ("a", "b")) -> DataSplits:
    items = []
    for rel, label, _ in plan:
        path = write_image(tmp_path / rel, seed=len(items))
        items.append(ImageItem(path=path, relpath=rel, label=label))
    return DataSplits(tmp_path, f"folder {tmp_path}", names, tuple(items), tuple(s for _, _, s in plan))


def test_class_without_training_images_after_skipping(tmp_path: Path) -> None:
    plan = [("a/0.png", 0, "train"), ("a/1.png", 0, "val"), ("a/2.png", 0, "test")]
    plan += [(f"b/{i}.png", 1, "train") for i in range(20)] + [("b/v.png", 1, "val"), ("b/t.png", 1, "test")]
    splits = _splits(tmp_path, plan)
    (tmp_path / "a" / "0.png").write_bytes(b"broken")
    with pytest.raises(UserError, match=r"After skipping unusable images, class\(es\) 'a' in folder .* no training"):
        load_table(splits, 8, show_progress=False)


def test_empty_validation_split(tmp_path: Path) -> None:
    plan = [("a/0.png", 0, "train"), ("b/0.png", 1, "train"), ("b/1.png", 1, "test")]
    with pytest.raises(UserError, match=r"the validation split of folder .* is empty"):
        load_table(_splits(tmp_path, plan), 8, show_progress=False)


def test_no_images(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="has no images"):
        load_table(DataSplits(tmp_path, "csv x.csv", ("a", "b"), (), ()), 8, show_progress=False)


def test_describe_skipped() -> None:
    assert describe_skipped([]) == ""
    many = [(f"x/{i}.png", "corrupt") for i in range(7)]
    text = describe_skipped(many)
    assert text.startswith("Skipped 7 unusable images: x/0.png (corrupt); ")
    assert "x/5.png" not in text and text.endswith("and 2 more.")

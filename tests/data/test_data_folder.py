"""The folder-per-class dataset adapter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from automl_tl.data.folder import FolderDataset
from automl_tl.errors import UserError
from automl_tl.types import DatasetAdapter
from tests.support.images import make_class_tree, write_image


def test_is_a_dataset_adapter() -> None:
    assert isinstance(FolderDataset(), DatasetAdapter)
    assert FolderDataset.name == "folder"


def test_claims_only_existing_folders(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("path,label\n")
    assert FolderDataset().claims(str(tmp_path))
    assert not FolderDataset().claims(str(tmp_path / "f.csv"))
    assert not FolderDataset().claims(str(tmp_path / "missing"))


def test_discovers_classes_and_images(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", {"dog": 3, "cat": 2})
    write_image(root / "cat" / "nested" / "deep" / "x.JPEG")
    write_image(root / "dog" / "UPPER.PNG")
    write_image(root / "loose.png")  # loose files in the root are ignored
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "cat" / ".DS_Store").write_bytes(b"\0")
    write_image(root / "cat" / ".hidden.png")
    write_image(root / "cat" / ".cache" / "y.png")
    write_image(root / ".git" / "z.png")  # hidden folder: not a class

    splits = FolderDataset().discover(str(root))

    assert splits.class_names == ("cat", "dog")
    assert splits.root == root.resolve()
    assert splits.source == f"folder {root}"
    by_class = {name: sorted(i.relpath for i in splits.items if i.label == k) for k, name in enumerate(splits.class_names)}
    assert by_class == {
        "cat": ["cat/000.png", "cat/001.png", "cat/nested/deep/x.JPEG"],
        "dog": ["dog/000.png", "dog/001.png", "dog/002.png", "dog/UPPER.PNG"],
    }
    assert all(item.path == (root / item.relpath).resolve() for item in splits.items)
    assert len(splits.split) == len(splits.items)
    assert set(splits.split) <= {"train", "val", "test"}


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"Data folder .*nope does not exist"):
        FolderDataset().discover(str(tmp_path / "nope"))


def test_a_file_is_not_a_folder(tmp_path: Path) -> None:
    file = write_image(tmp_path / "x.png")
    with pytest.raises(UserError, match=r"x\.png is not a folder"):
        FolderDataset().discover(str(file))


def test_no_class_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "loose.png")
    with pytest.raises(UserError, match="no class sub-folders") as info:
        FolderDataset().discover(str(tmp_path))
    assert f"{tmp_path}/cat/1.jpg" in str(info.value)


def test_class_folders_without_any_images(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("x")
    with pytest.raises(UserError, match="no images in its class sub-folders") as info:
        FolderDataset().discover(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    make_class_tree(tmp_path, {"cat": 3, "dog": 3})
    (tmp_path / "zebra").mkdir()
    with pytest.raises(UserError, match=r"'zebra'.*Add images to them or remove") as info:
        FolderDataset().discover(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_single_class(tmp_path: Path) -> None:
    make_class_tree(tmp_path, {"cat": 3})
    with pytest.raises(UserError, match=r"only one class \('cat'\)") as info:
        FolderDataset().discover(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_symlinked_file_escaping_root_is_refused(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", {"cat": 2, "dog": 2})
    outside = write_image(tmp_path / "secret.png")
    os.symlink(outside, root / "cat" / "sneaky.png")
    with pytest.raises(UserError, match=r"sneaky\.png.*outside the data folder"):
        FolderDataset().discover(str(root))


def test_symlinked_folder_escaping_root_is_refused(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", {"cat": 2, "dog": 2})
    make_class_tree(tmp_path / "elsewhere", {"bird": 2})
    os.symlink(tmp_path / "elsewhere" / "bird", root / "bird")
    with pytest.raises(UserError, match="outside the data folder"):
        FolderDataset().discover(str(root))


def test_symlinks_inside_root_are_followed_once(tmp_path: Path) -> None:
    root = make_class_tree(tmp_path / "data", {"cat": 2, "dog": 3})  # each class needs 3 images to split
    os.symlink(root / "dog" / "000.png", root / "cat" / "alias.png")
    os.symlink(root / "cat", root / "cat" / "loop")  # a loop must not hang discovery
    splits = FolderDataset().discover(str(root))
    relpaths = [i.relpath for i in splits.items]
    assert "cat/alias.png" in relpaths
    assert not [r for r in relpaths if r.startswith("cat/loop/")]

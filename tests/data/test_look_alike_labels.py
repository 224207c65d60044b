"""Class names that print the same ("a" and " a", "é" composed and decomposed) are refused with one
paragraph naming both, wherever class names come from: class folders, CSV labels, any dataset adapter
and an export's labels.json. A name of only spaces is refused too."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from automl_tl.data.csv_manifest import CsvDataset
from automl_tl.data.folder import FolderDataset
from automl_tl.data.split import make_splits
from automl_tl.deploy.model_folder import check_labels
from automl_tl.errors import UserError
from automl_tl.plugin.data_checks import DataSplitsError, check_splits
from automl_tl.types import ImageItem
from tests.support.images import make_class_tree, write_image


def test_class_folders_that_differ_only_by_a_space_are_refused_naming_both(tmp_path):
    root = make_class_tree(tmp_path / "data", {"a": 3, " a": 3, "b": 3})
    with pytest.raises(UserError) as info:
        FolderDataset().discover(str(root))
    assert "Class folders ' a' and 'a'" in str(info.value) and "differ only in spaces" in str(info.value)


def test_class_folders_whose_accent_is_encoded_two_ways_are_refused(tmp_path):
    root = make_class_tree(tmp_path / "data", {"caf\u00e9": 3, "cafe\u0301": 3})
    with pytest.raises(UserError, match="differ only in spaces or in how an accent is encoded"):
        FolderDataset().discover(str(root))


def test_a_class_folder_named_only_spaces_is_refused(tmp_path):
    root = make_class_tree(tmp_path / "data", {"  ": 3, "b": 3, "c": 3})
    with pytest.raises(UserError, match="Class folder '  ' .* has a name of only spaces"):
        FolderDataset().discover(str(root))


def test_distinct_folders_still_pass(tmp_path):
    root = make_class_tree(tmp_path / "data", {"A": 3, "a": 3, "a b": 3})
    assert FolderDataset().discover(str(root)).class_names == ("A", "a", "a b")


def test_csv_labels_that_differ_only_in_inner_spaces_or_composition_are_refused_with_their_lines(tmp_path):
    for name in ("1.png", "2.png", "3.png", "4.png"):
        write_image(tmp_path / name)
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\n1.png,a b\n2.png,a  b\n3.png,x\n4.png,x\n", encoding="utf-8")
    with pytest.raises(UserError) as info:
        CsvDataset().discover(str(manifest))
    assert "the labels 'a  b' (line 3) and 'a b' (line 2)" in str(info.value) or \
        "the labels 'a b' (line 2) and 'a  b' (line 3)" in str(info.value), str(info.value)
    manifest.write_text("path,label\n1.png,caf\u00e9\n2.png,cafe\u0301\n3.png,x\n", encoding="utf-8")
    with pytest.raises(UserError, match="differ only in spaces"):
        CsvDataset().discover(str(manifest))


def test_any_dataset_adapter_returning_look_alike_or_blank_names_is_refused():
    items = tuple(ImageItem(Path(f"/d/{c}/{i}.png"), f"{c}/{i}.png", label) for label, c in enumerate("ab")
                  for i in range(10))
    good = make_splits(Path("/d"), "test data", ("a", "b"), items, 0.2, 0.2)
    for names, says in ((("a", "a "), "'a' and 'a ' differ only in spaces"), (("a", " "), "' ' is only spaces")):
        with pytest.raises(DataSplitsError, match=says):
            check_splits(dataclasses.replace(good, class_names=names), "custom", "my_plugin", "DATA")


@pytest.mark.parametrize("labels", [["a", " a"], ["bear", "bear\u00a0"], ["caf\u00e9", "cafe\u0301"]])
def test_an_export_whose_labels_look_alike_is_refused(tmp_path, labels):
    path = tmp_path / "labels.json"
    with pytest.raises(UserError) as info:
        check_labels(labels, path)
    message = str(info.value)
    assert f"the labels {json.dumps(labels[0])} and {json.dumps(labels[1])}" in message and str(path) in message


def test_an_export_label_of_only_spaces_is_refused(tmp_path):
    with pytest.raises(UserError, match="not only spaces"):
        check_labels(["a", "\u3000"], tmp_path / "labels.json")

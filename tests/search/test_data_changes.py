"""A study refused because its data changed says which classes and how many images changed, and suggests
--warm-start (search/data_changes.py)."""

from __future__ import annotations

import shutil

import pytest
from rich.console import Console

import automl_tl.tuning.data_changes as data_changes
from automl_tl.data import FolderDataset, load_table
from automl_tl.distributed.loop import run_search
from automl_tl.errors import UserError
from automl_tl.tuning.data_changes import data_inventory, describe_data_change
from tests.support.stub_search import stub_settings


def read(folder):
    return load_table(FolderDataset().discover(str(folder)), 16, show_progress=False)


@pytest.fixture
def changed_folder(small_sample, tmp_path):
    """The sample before, and after: class 'yak' added (4 images), 'bird' lost 2 images, one 'cat' image edited."""
    folder = tmp_path / "data"
    shutil.copytree(small_sample, folder)
    before = read(folder)
    (folder / "yak").mkdir()
    for i, image in enumerate(sorted((folder / "bear").iterdir())[:4]):
        shutil.copy(image, folder / "yak" / f"{i}.png")
    for image in sorted((folder / "bird").iterdir())[:2]:
        image.unlink()
    cats = sorted((folder / "cat").iterdir())
    shutil.copy(cats[1], cats[0])
    return folder, before


def test_the_refusal_names_the_added_class_and_the_images_added_removed_or_changed(stub_plugins, changed_folder):
    folder, before = changed_folder
    run_search(stub_settings(folder, "d", 1, 2, smart_start=False), stub_plugins, before, Console(quiet=True))
    with pytest.raises(UserError) as refused:
        run_search(stub_settings(folder, "d", 2, 2, smart_start=False), stub_plugins, read(folder), Console(quiet=True))
    text = str(refused.value)
    assert "class added: 'yak' (4 images)" in text
    assert "'bird': 2 removed (20 -> 18 images)" in text and "'cat': 1 changed (20 -> 20 images)" in text
    assert "'bear'" not in text, "an unchanged class is not named"
    assert "--study NEW_NAME --warm-start d" in text


def test_a_removed_class_and_the_bounded_inventory(changed_folder, monkeypatch):
    folder, before = changed_folder
    shutil.rmtree(folder / "zebra")
    after = read(folder)
    assert "class removed: 'zebra' (20 images)" in describe_data_change(data_inventory(before), after)
    monkeypatch.setattr(data_changes, "INVENTORY_FILES", 10)  # only counts and digests kept
    bounded = data_inventory(before)
    assert all("images" not in entry for entry in bounded.values())
    said = describe_data_change(bounded, after)
    assert "'bird': 20 -> 18 images, and their content changed" in said and "'cat': 20 -> 20 images" in said
    assert describe_data_change(data_inventory(before), before) is None and describe_data_change(None, before) is None


def test_a_malformed_inventory_from_another_study_still_gives_the_refusal_its_sentence(changed_folder):
    folder, before = changed_folder
    after = read(folder)
    recorded = data_inventory(before)
    recorded["bird"], recorded["zebra"], recorded["ghost"] = "not a mapping", None, ["a", "list"]
    said = describe_data_change(recorded, after)
    assert said is not None and "class added: 'yak' (4 images)" in said
    assert "'ghost' (None images)" in said, "a class entry that is not a mapping is one with nothing known of it"
    assert "'bird': None -> 18 images, and their content changed" in said

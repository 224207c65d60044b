"""What any dataset adapter returns is checked before a search trains on it: two classes or more,
non-empty train and validation splits, one split entry per item, labels in range."""

from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path

import pytest

from automl_tl.cli import main
from automl_tl.data.split import make_splits
from automl_tl.hookspecs import hookimpl
from automl_tl.plugin.data_checks import DataSplitsError, check_splits
from automl_tl.plugin.manager import load_plugins
from automl_tl.types import DataSplits, ImageItem

ONE_CLASS_PLUGIN = str(Path(__file__).resolve().parents[1] / "support" / "sample_plugins" / "one_class_dataset.py")


def one_class_listing(small_sample: Path, tmp_path: Path) -> Path:
    listing = tmp_path / "cats.oneclass"
    images = sorted((small_sample / "cat").glob("*.png"))
    listing.write_text("".join(f"{image}\n" for image in images))
    return listing


def test_a_dataset_adapter_that_finds_one_class_is_refused_by_search(small_sample, tmp_path, capsys):
    listing = one_class_listing(small_sample, tmp_path)
    code = main(["search", str(listing), "--plugin", ONE_CLASS_PLUGIN, "--trials", "1", "--epochs", "1",
                 "--image-size", "16", "--study", "one"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2, err
    assert "Dataset adapter 'one_class' (plugin 'file:one_class_dataset.py')" in err
    assert "1 class ('all')" in err and "at least two classes" in err and "Traceback" not in err


def test_plugins_discover_checks_the_adapter_it_used(small_sample, tmp_path):
    plugins = load_plugins(plugin_files=[ONE_CLASS_PLUGIN])
    with pytest.raises(DataSplitsError, match="at least two classes"):
        plugins.discover(str(one_class_listing(small_sample, tmp_path)))
    assert "cat" in plugins.discover(str(small_sample)).class_names  # the built-in adapters pass


def good_splits() -> DataSplits:
    items = tuple(ImageItem(Path(f"/d/{c}/{i}.png"), f"{c}/{i}.png", label) for label, c in enumerate("ab")
                  for i in range(10))
    return make_splits(Path("/d"), "test data", ("a", "b"), items, 0.2, 0.2)


def check(splits: object) -> DataSplits:
    return check_splits(splits, "custom", "my_plugin", "DATA_DIR")


def with_split(splits: DataSplits, value: str, where: str | None = None) -> DataSplits:
    return dataclasses.replace(splits, split=tuple(value if where in (None, s) else s for s in splits.split))


def test_well_formed_splits_pass():
    assert check(good_splits()) == good_splits()


@pytest.mark.parametrize("broken, says", [
    (lambda s: with_split(s, "train", where="val"), r"no image in the 'val' split"),
    (lambda s: with_split(s, "val", where="train"), r"no image in the 'train' split"),
    (lambda s: dataclasses.replace(s, split=s.split[:-1]), r"20 items but 19 split entries"),
    (lambda s: with_split(s, "validation", where="val"), r"split entries 'validation'"),
    (lambda s: dataclasses.replace(s, items=(dataclasses.replace(s.items[0], label=2), *s.items[1:])),
     r"label is not a class index from 0 to 1 \(e.g. 'a/0.png' has label 2\)"),
    (lambda s: dataclasses.replace(s, items=(dataclasses.replace(s.items[0], label=-1), *s.items[1:])), r"label -1"),
    (lambda s: dataclasses.replace(s, class_names=("a", "a")), r"'a' appear more than once"),
    (lambda s: dataclasses.replace(s, class_names=("a", "b", "c")), r"class\(es\) 'c' without a training image"),
    (lambda s: dataclasses.replace(s, items=(*s.items[:-1], {"path": "x"})), r"item 19 is a dict"),
])
def test_each_violation_is_named_with_the_adapter_and_its_plugin(broken, says):
    with pytest.raises(DataSplitsError, match=says) as info:
        check(broken(good_splits()))
    assert "Dataset adapter 'custom' (plugin 'my_plugin')" in str(info.value) and "DATA_DIR" in str(info.value)


def test_an_adapter_that_returns_something_else_is_told_what_to_return():
    with pytest.raises(DataSplitsError, match=r"returned list.*must return an automl_tl.types.DataSplits"):
        check([])


def guide_dataset_example() -> str:
    """The list-file plugin of "Writing a dataset adapter" (docs/plugins/dataset-adapter.md)."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "plugins" / "dataset-adapter.md").read_text()
    section = page[page.index("## An example: list files"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


def test_register_datasets_the_guide_list_file_adapter_works_and_passes_the_checks(small_sample, tmp_path):
    namespace: dict = {}
    exec(compile(guide_dataset_example(), "dataset-adapter.md", "exec"), namespace)
    adapter = namespace["ListFileDataset"]()
    listing = tmp_path / "pets.txt"
    lines = [f"{image} {image.parent.name}" for folder in ("cat", "dog") for image in sorted((small_sample / folder).glob("*.png"))]
    listing.write_text("\n".join(lines) + "\n")
    module = types.SimpleNamespace(register_datasets=hookimpl(lambda register: register(adapter)))
    plugins = load_plugins(extra=[("lists", module)], entry_points=False)
    splits = plugins.discover(str(listing))
    assert splits.class_names == ("cat", "dog") and len(splits.items) == len(lines)
    assert {"train", "val", "test"} == set(splits.split)

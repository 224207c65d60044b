"""The built-in dataset plugin."""

from __future__ import annotations

from pathlib import Path

from automl_tl.data import plugin
from automl_tl.plugin.manager import load_plugins
from automl_tl.types import DatasetAdapter
from tests.support.images import make_class_tree


def test_registers_csv_then_folder() -> None:
    seen: list[DatasetAdapter] = []
    plugin.register_datasets(register=seen.append)
    assert [adapter.name for adapter in seen] == ["csv", "folder"]
    assert all(isinstance(adapter, DatasetAdapter) for adapter in seen)


def test_loads_through_the_plugin_manager(tmp_path: Path) -> None:
    plugins = load_plugins(extra=[("datasets", plugin)], entry_points=False)
    assert plugins.datasets.names() == ["csv", "folder"]
    root = make_class_tree(tmp_path / "d", {"a": 3, "b": 3})
    (tmp_path / "m.csv").write_text("path,label\nd/a/000.png,a\nd/b/000.png,b\n")
    assert plugins.dataset_for(str(root)).name == "folder"
    assert plugins.dataset_for(str(tmp_path / "m.csv")).name == "csv"

"""The plugin author's guide's Keras backbone example (docs/plugins/backbone.md, "A Keras backbone") loads,
its cut points cut its graph, its features have the declared width, and it says its weights are missing when
they are. No weights are downloaded."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.plugin.manager import load_plugins  # noqa: E402
from automl_tl.testing import synthetic_table  # noqa: E402

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "plugins" / "backbone.md").read_text()


def keras_example() -> str:
    section = PAGE[PAGE.index("## A Keras backbone"):]
    return re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)


@pytest.fixture
def spec(tmp_path):
    plugin = tmp_path / "my_keras_backbones.py"
    plugin.write_text(keras_example())
    return load_plugins(plugin_files=[plugin]).backbone("keras_mobilenet_v1")


def test_the_keras_example_declares_cut_points_that_cut_its_graph(spec):
    from automl_tl_keras.adapter import KerasAdapter
    from automl_tl_keras.model import cut_tensors

    assert spec.framework == "keras" and spec.blocks[-1] == "<output>"
    base = spec.factory(False)
    cuts = cut_tensors(base, spec.blocks)
    assert len(cuts) == len(spec.blocks) and cuts[-1].shape[-1] == spec.feature_dim
    scratch = dataclasses.replace(spec, weights=None)  # random weights: nothing to download
    features = KerasAdapter().block_features(scratch, synthetic_table(n_per_split=2, size=32, classes=2), len(spec.blocks))
    assert features.shape == (6, spec.feature_dim)


def test_the_keras_example_says_its_weights_are_missing_when_they_are(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty_keras_home"))
    assert spec.weights_available() is False

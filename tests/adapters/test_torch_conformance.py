"""The PyTorch adapter passes the shared adapter conformance suite, run exactly as the docs show (docs/plugins/conformance.md), on an
inline backbone, the built-in pretrained mobilenet_v2 and the from-scratch small_cnn."""

from __future__ import annotations

import numpy as np
import pytest

from automl_tl.plugin import load_plugins
from automl_tl_torch.testing import TorchBackboneConformance
from tests.support.sample_plugins.torch_inline import tiny_spec


class TestTorchConformance(TorchBackboneConformance):
    def make_spec(self):
        return tiny_spec()


def _mobilenet_v2():
    spec = load_plugins().backbone("mobilenet_v2")
    if not spec.weights_available():
        pytest.skip("torchvision's mobilenet_v2 weights are not here (make setup downloads them)")
    return spec


class TestMobileNetV2Conformance(TorchBackboneConformance):
    def make_spec(self):
        return _mobilenet_v2()


class TestSmallCnnConformance(TorchBackboneConformance):
    def make_spec(self):
        return load_plugins().backbone("small_cnn")


def test_conformance_helpers_make_a_learnable_table():
    from automl_tl.testing import synthetic_table

    table = synthetic_table(classes=3)
    assert table.num_classes == 3 and set(np.unique(table.labels)) == {0, 1, 2}


def test_a_float32_cache_never_serves_what_a_float16_one_rounded(tmp_path):
    """The suite's tolerances assume the cache dtype it asked for: a float32 store in a folder that a float16
    store filled must compute its own entries, not read the rounded ones (the key covers the dtype)."""
    from automl_tl.cache.store import DiskStore
    from automl_tl.testing import reference_inputs, synthetic_table
    from automl_tl_torch.adapter import TorchAdapter
    from automl_tl_torch.cache import PrefixFeatures
    from automl_tl_torch.model import build_block_stack

    spec, data = tiny_spec(), synthetic_table(size=16)
    exact = TestTorchConformance().reference_features(spec, data, [4])[4]
    features, in_memory = {}, {}
    for dtype in ("float16", "float32"):
        adapter = TorchAdapter()
        adapter.cache = DiskStore(tmp_path, 2**30, dtype)
        features[dtype] = adapter.block_features(spec, data, 4)
        # What head-only epochs read: pooled features kept in memory as float32, shared by a process's trials.
        prefix = PrefixFeatures(adapter.cache, spec.name, data, build_block_stack(spec, True), spec.mean, spec.std, adapter.device)
        in_memory[dtype] = prefix.pooled_float32(4)
    scale = float(np.abs(exact).max())
    for read in (features, in_memory):
        error = {dtype: float(np.abs(values - exact).max()) for dtype, values in read.items()}
        assert error["float32"] <= 1e-6 * scale < error["float16"], error  # float16 rounding shows, float32's has none
    assert reference_inputs(data.images[:1], spec.mean, spec.std).dtype == np.float32

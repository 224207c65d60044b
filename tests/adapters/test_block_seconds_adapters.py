"""Both adapters time their blocks (``block_seconds``) and say which prefix activations the cache holds
(``prefix_activations``), which is how the cost model knows a prefix pass is free."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from automl_tl.training.augment import view_table
from automl_tl.tuning.cached_prefixes import AdapterCacheState
from automl_tl.tuning.cost import DataSizes, TrialCostModel
from automl_tl.types import TrialConfig
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec

HEAD_ONLY = TrialConfig(backbone="tiny_cnn", freeze_fraction=1.0, head_units=0, head_dropout=0.0, lr=1e-3,
                        finetune_lr_ratio=1.0, switch_epoch=3, epochs=3, image_size=16)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_torch_times_each_block(own_cache):
    from automl_tl_torch.adapter import TorchAdapter

    for pretrained in (True, False):
        seconds = TorchAdapter().block_seconds(tiny_spec(pretrained=pretrained), 32)
        assert len(seconds) == len(tiny_spec().blocks) and all(np.isfinite(s) and s > 0 for s in seconds)


def test_torch_says_which_prefix_activations_are_stored_and_the_cost_model_uses_it(own_cache):
    from automl_tl_torch.adapter import TorchAdapter

    adapter, spec, table = TorchAdapter(), tiny_spec(), random_table(n_per_split=8)
    state = AdapterCacheState(lambda framework: adapter, table)
    model = TrialCostModel(lambda s, size: (1e-3,) * len(s.blocks), DataSizes.of(table), cache=state)
    cold = model.breakdown(spec, HEAD_ONLY)
    assert state.stored_block(spec, 0, 4) == 0 and not state.pooled_stored(spec, 0, 4)
    adapter.block_features(spec, table, 4)  # one pass stores the pooled features of every depth
    assert all(state.pooled_stored(spec, 0, k) for k in range(1, 5)) and not state.pooled_stored(spec, 1, 4)
    assert state.stored_block(spec, 0, 4) == 0  # pooled features are not block activations
    warm = model.breakdown(spec, HEAD_ONLY)
    assert cold is not None and warm is not None and cold.prefix_s > 0 and warm.prefix_s == 0
    adapter.prefix_activations(spec, table).after_block(2)
    assert state.stored_block(spec, 0, 3) == 2 and state.stored_block(spec, 0, 1) == 0
    assert adapter.prefix_activations(tiny_spec(pretrained=False), table) is None  # never shared: never stored
    scratch = AdapterCacheState(lambda framework: adapter, table)
    assert scratch.stored_block(tiny_spec(pretrained=False), 0, 3) == 0


def test_an_adapter_without_prefix_activations_counts_as_nothing_stored():
    state = AdapterCacheState(lambda framework: object(), random_table())  # type: ignore[arg-type,return-value]
    assert state.stored_block(tiny_spec(), 0, 3) == 0 and not state.pooled_stored(tiny_spec(), 0, 3)


def test_keras_times_each_block_and_says_what_is_stored(own_cache):
    pytest.importorskip("keras")
    from automl_tl_keras.adapter import KerasAdapter
    from tests.support.sample_plugins.keras_inline import tiny_keras_spec

    adapter, spec, table = KerasAdapter(), tiny_keras_spec(), random_table(n_per_split=4)
    seconds = adapter.block_seconds(spec, 16)
    assert len(seconds) == len(spec.blocks) and all(np.isfinite(s) and s > 0 for s in seconds)
    prefix = adapter.prefix_activations(spec, table)
    assert not prefix.pooled_stored(2)
    adapter.block_features(spec, table, 2)
    assert adapter.prefix_activations(spec, table).pooled_stored(2)


def test_the_cache_state_names_each_augmented_view_by_its_own_number(own_cache):
    from automl_tl_torch.adapter import TorchAdapter

    adapter, spec = TorchAdapter(), tiny_spec()
    table = random_table(n_per_split=4)
    table = replace(table, content_hashes=tuple(f"h{i}" for i in range(len(table.labels))))
    state = AdapterCacheState(lambda framework: adapter, table)
    adapter.block_features(spec, view_table(table, 3), 4)  # augmented view 2 (global number 3) only
    assert state.pooled_stored(spec, 3, 4)
    assert not any(state.pooled_stored(spec, view, 4) for view in (0, 1, 2, 4))
    views = replace(HEAD_ONLY, augment="views4")
    priced = TrialCostModel(lambda s, size: (1e-3,) * len(s.blocks), DataSizes.of(table), cache=state).breakdown(spec, views)
    cold = TrialCostModel(lambda s, size: (1e-3,) * len(s.blocks), DataSizes.of(table)).breakdown(spec, views)
    assert priced is not None and cold is not None and 0 < priced.prefix_s < cold.prefix_s, "one view of five is free"

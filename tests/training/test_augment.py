"""Fixed augmentation views: cached like the original, drawn per image and epoch, never stale."""

from __future__ import annotations

import numpy as np
import torch

from automl_tl.cache.activations import table_digest
from automl_tl.cache.store import DiskStore
from automl_tl.training.augment import mirrored, mixed_rows, view_choice, views
from automl_tl.types import Phase
from automl_tl_torch.adapter import TorchAdapter
from tests.adapters.test_torch_adapter import config
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec


def test_the_mirror_is_a_view_with_its_own_cache_key():
    data = random_table()
    flipped = mirrored(data)
    np.testing.assert_array_equal(flipped.images, data.images[:, :, ::-1, :])
    assert table_digest(flipped) != table_digest(data)
    assert views(data, "none") == [data] and len(views(data, "hflip")) == 2


def test_each_row_comes_from_the_view_drawn_for_it():
    original = np.zeros((6, 2), np.float16)
    mirror = np.ones((6, 2), np.float16)
    choice = np.array([0, 1, 1, 0])
    rows = mixed_rows([original, mirror], np.array([5, 0, 3, 2]), choice)
    np.testing.assert_array_equal(rows[:, 0], choice)
    drawn = view_choice(10_000, 2, np.random.default_rng(0))
    assert 0.45 < drawn.mean() < 0.55
    assert not view_choice(5, 1, np.random.default_rng(0)).any()


def test_a_hflip_trial_trains_on_both_cached_views_and_validates_on_the_original(tmp_path):
    adapter = TorchAdapter()
    adapter.cache = DiskStore(tmp_path, 2**30, "float16")
    data = random_table(n_per_split=16)
    session = adapter.start_trial(tiny_spec(), config(freeze=0.5, switch=1, epochs=2, augment="hflip"), data)
    assert len(session.views) == 2
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    session.set_phase(Phase.FINETUNE)
    session.train_epoch()
    probabilities = session.predict_split("val")
    assert probabilities.shape == (len(data.splits["val"]), data.num_classes)
    images = {entry.name for entry in adapter.cache.entries()}
    keys = [v._key("block:2", 2).digest() for v in session.views]
    assert all(f"{key}.npy" in images for key in keys), "both views' activations are cached"
    assert torch.isfinite(torch.from_numpy(probabilities)).all()


def test_mirrored_predictions_come_only_from_trials_that_train_on_the_mirror(tmp_path):
    """``export --flip auto`` decides on them; a trial without the mirror view would pay a second prefix pass."""
    adapter = TorchAdapter()
    adapter.cache = DiskStore(tmp_path, 2**30, "float16")
    data = random_table(n_per_split=16)
    plain = adapter.start_trial(tiny_spec(), config(freeze=0.5, switch=1, epochs=2, augment="none"), data)
    plain.set_phase(Phase.HEAD)
    plain.train_epoch()
    assert plain.predict_mirrored("val") is None
    flipping = adapter.start_trial(tiny_spec(), config(freeze=0.5, switch=1, epochs=2, augment="hflip"), data)
    for phase in (Phase.HEAD, Phase.FINETUNE):  # pooled features on the device, then the fine-tuned blocks
        flipping.set_phase(phase)
        flipping.train_epoch()
        got = flipping.predict_mirrored("val")
        np.testing.assert_allclose(got, flipping._predict(flipping.views[1], "val", None), atol=1e-6)
        assert not np.allclose(got, flipping.predict_split("val"), atol=1e-6)

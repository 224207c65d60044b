"""Augmented views (``augment: views``): fixed by content hash and view number, computed as read, cached like the
original, drawn by training and fitted by the L-BFGS head."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from automl_tl.cache.activations import table_digest
from automl_tl.cache.store import DiskStore
from automl_tl.training import augment
from automl_tl.training.augment import VIEW_COUNT, augmented_view_count, view_choice, view_ids, views
from automl_tl.training.augmented_views import AugmentedImages, augmented, view_name, view_recipe
from automl_tl.training.engine import run_trial
from automl_tl.types import Phase
from automl_tl_torch.adapter import TorchAdapter
from automl_tl_torch.cache import PrefixFeatures
from tests.adapters.test_torch_adapter import config
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec


def hashed_table(n_per_split: int = 8, size: int = 16):
    data = random_table(n_per_split=n_per_split, size=size)
    return dataclasses.replace(data, content_hashes=tuple(f"sha{i:04d}" for i in range(len(data.labels))))


def test_a_view_is_fixed_by_the_image_content_hash_and_the_view_number():
    data = hashed_table(size=32)
    first, again = augmented(data, 2), augmented(data, 2)
    np.testing.assert_array_equal(first.images[:], again.images[:])
    assert first.content_hashes[5] == view_name("sha0005", 2) and first.content_hashes[5].startswith("sha0005|view2")
    assert table_digest(first) not in (table_digest(data), table_digest(augmented(data, 1)))
    # The same image under the same hash, elsewhere in another table, gets the same view: keyed by content, not place.
    order = np.arange(len(data.labels))[::-1]
    shuffled = dataclasses.replace(data, images=data.images[order], content_hashes=tuple(data.content_hashes[i] for i in order))
    np.testing.assert_array_equal(augmented(shuffled, 2).images[len(order) - 1 - 5], first.images[5])
    assert not np.array_equal(augmented(data, 1).images[5], first.images[5]), "another view number is another view"
    assert not np.array_equal(first.images[5], data.images[5]), "a view changes the image"
    recipes = [view_recipe(view_name(f"sha{i}", 1), 224, 224) for i in range(200)]
    areas = [(r.box[2] - r.box[0]) * (r.box[3] - r.box[1]) / 224**2 for r in recipes]
    assert 0.3 < min(areas) < 0.5 and max(areas) > 0.9, "crops span about 0.35 to all of the image"
    assert 0.3 < np.mean([r.flip for r in recipes]) < 0.7


def test_views_are_computed_when_read_never_held():
    data = hashed_table()
    view = augmented(data, 1)
    assert isinstance(view.images, AugmentedImages) and not isinstance(view.images, np.ndarray)
    assert view.images.shape == data.images.shape and view.image_size == data.image_size
    rows = view.images[np.array([3, 1])]
    np.testing.assert_array_equal(rows[1], view.images[1])
    np.testing.assert_array_equal(view.images[2:4], view.images[np.array([2, 3])])
    assert rows.dtype == np.uint8 and rows.shape == (2, *data.images.shape[1:])


def test_the_augment_names_and_their_views():
    assert augmented_view_count("views") == VIEW_COUNT >= 1
    assert view_ids("none") == [0] and view_ids("hflip") == [0, 1]
    assert view_ids("views") == [0, *range(2, 2 + VIEW_COUNT)] and view_ids("views4") == [0, 2, 3, 4, 5]
    data = hashed_table()
    tables = views(data, "views4")
    assert tables[0] is data and [t.content_hashes[0] for t in tables[1:]] == [view_name("sha0000", k) for k in range(1, 5)]
    for bad in ("views0", "view", "crop"):
        with pytest.raises(ValueError, match="unknown augmentation"):
            views(data, bad)


def test_training_draws_every_view():
    drawn = view_choice(6_000, 1 + VIEW_COUNT, np.random.default_rng(0))
    assert set(drawn.tolist()) == set(range(1 + VIEW_COUNT))


def counting_passes(monkeypatch):
    calls = {"pool_along": 0, "run_batch": 0}
    for name in calls:
        original = getattr(PrefixFeatures, name)

        def counted(self, *args, _name=name, _original=original):
            calls[_name] += 1
            return _original(self, *args)
        monkeypatch.setattr(PrefixFeatures, name, counted)
    return calls


def test_each_view_passes_the_prefix_once_and_a_second_trial_reuses_the_cache(tmp_path, monkeypatch):
    adapter = TorchAdapter()
    adapter.cache = DiskStore(tmp_path, 2**30, "float16")
    data = hashed_table()
    head_only = config(freeze=1.0, switch=2, epochs=2, augment="views")
    calls = counting_passes(monkeypatch)
    run_trial(adapter, tiny_spec(), head_only, data)
    assert calls["pool_along"] > 0, "the first trial computes every view's pooled features"
    entries = {entry.name for entry in adapter.cache.entries()}
    calls.update(pool_along=0, run_batch=0)
    run_trial(adapter, tiny_spec(), dataclasses.replace(head_only, seed=5), data)
    assert calls == {"pool_along": 0, "run_batch": 0}, "the second trial reads every view from the cache"
    assert {entry.name for entry in adapter.cache.entries()} == entries


def test_a_head_trial_trains_on_the_augmented_views_and_the_fitted_head_fits_them_all(tmp_path):
    adapter = TorchAdapter()
    adapter.cache = DiskStore(tmp_path, 2**30, "float16")
    data = hashed_table()
    session = adapter.start_trial(tiny_spec(), config(freeze=1.0, switch=2, epochs=2, augment="views"), data)
    assert len(session.views) == 1 + VIEW_COUNT
    session.set_phase(Phase.HEAD)
    assert session._head_inputs.shape[0] == 1 + VIEW_COUNT
    assert not np.allclose(session._inputs[0], session._inputs[1]), "an augmented view's features are its own"
    session.train_epoch()
    features, labels = session.head_training_features()
    train = data.splits["train"]
    assert features.shape[0] == (1 + VIEW_COUNT) * len(train) and len(labels) == len(features)
    np.testing.assert_allclose(features[len(train) : 2 * len(train)], session._inputs[1][train])
    np.testing.assert_array_equal(labels, np.tile(data.labels[train], 1 + VIEW_COUNT))
    probabilities = session.predict_split("val")
    assert probabilities.shape == (len(data.splits["val"]), data.num_classes)


def test_a_fine_tuning_trial_with_views_caches_each_view_at_the_freeze_point(tmp_path, monkeypatch):
    monkeypatch.setattr(augment, "VIEW_COUNT", 1)
    adapter = TorchAdapter()
    adapter.cache = DiskStore(tmp_path, 2**30, "float16")
    data = hashed_table()
    outcome = run_trial(adapter, tiny_spec(), config(freeze=0.5, switch=1, epochs=2, augment="views"), data)
    assert 0.0 <= outcome.test_accuracy <= 1.0
    session = adapter.start_trial(tiny_spec(), config(freeze=0.5, switch=1, epochs=2, augment="views"), data)
    names = {entry.name for entry in adapter.cache.entries()}
    frozen = session.frozen
    assert len(session.views) == 2
    assert all(f"{view._key(f'block:{frozen}', frozen).digest()}.npy" in names for view in session.views)

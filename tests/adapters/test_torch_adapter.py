"""The PyTorch adapter: freeze semantics, BatchNorm modes, the activation cache, save/load, export parity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_tl.cache.activations import normalise_images
from automl_tl.cache.store import DiskStore
from automl_tl.tuning.space import config_from_params
from automl_tl.types import Phase
from automl_tl_torch.adapter import TorchAdapter
from automl_tl_torch.backbones import torchvision_backbones
from automl_tl_torch.cache import PrefixFeatures
from automl_tl_torch.model import build_block_stack
from automl_tl_torch.session import load_trained
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec


def config(freeze=0.5, bn="train", switch=1, epochs=3, head=0, augment="none", cut=1.0):
    return config_from_params(dict(backbone="tiny_cnn", freeze_fraction=freeze, head_units=head, head_dropout=0.0,
                                   lr=1e-2, finetune_lr_ratio=0.5, switch_epoch=switch, unfrozen_bn=bn,
                                   augment=augment, cut_fraction=cut),
                              epochs=epochs, image_size=16, batch_size=8)


def block_state(session, index):
    return {k: v.clone() for k, v in session.model.backbone.blocks[index].state_dict().items()}


def states_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_frozen_blocks_and_their_batchnorm_never_change():
    session = TorchAdapter().start_trial(tiny_spec(), config(freeze=0.5), random_table())
    before = [block_state(session, i) for i in range(4)]
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    assert all(states_equal(before[i], block_state(session, i)) for i in range(4)), "phase 1 trains the head only"
    session.set_phase(Phase.FINETUNE)
    session.train_epoch()
    assert states_equal(before[0], block_state(session, 0)) and states_equal(before[1], block_state(session, 1))
    assert not states_equal(before[3], block_state(session, 3)), "unfrozen blocks learn in phase 2"


def test_unfrozen_batchnorm_can_stay_in_inference_mode():
    session = TorchAdapter().start_trial(tiny_spec(), config(freeze=0.5, bn="frozen"), random_table())
    before = block_state(session, 3)
    session.set_phase(Phase.FINETUNE)
    session.train_epoch()
    after = block_state(session, 3)
    stats = [k for k in before if "running_mean" in k or "running_var" in k]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)
    assert not all(torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))


def test_cached_prefix_equals_direct_computation_and_reuses_the_deepest_block(tmp_path):
    data = random_table()
    spec = tiny_spec()
    stack = build_block_stack(spec, pretrained=True).eval()
    store = DiskStore(tmp_path, 2**30, "float32")
    features = PrefixFeatures(store, spec.name, data, stack, spec.mean, spec.std, torch.device("cpu"))
    images = torch.from_numpy(normalise_images(data.images, spec.mean, spec.std, channels_first=True))
    with torch.no_grad():
        direct = stack.run_blocks(images, 0, 3).numpy()
        pooled = stack.forward(images).numpy()
    after_one = features.after_block(1)
    hits = store.hits
    np.testing.assert_allclose(features.after_block(3), direct, atol=1e-5)
    assert store.hits > hits, "block 3 must start from cached block 1"
    np.testing.assert_allclose(features.pooled(), pooled, atol=1e-5)
    assert after_one.shape[0] == len(data.labels)


def test_changed_torch_weights_give_fresh_activations(tmp_path):
    data = random_table()
    spec = tiny_spec()
    store = DiskStore(tmp_path, 2**30, "float32")
    stack = build_block_stack(spec, pretrained=True).eval()
    before = np.array(PrefixFeatures(store, spec.name, data, stack, spec.mean, spec.std, torch.device("cpu")).pooled())
    with torch.no_grad():
        next(stack.blocks[0].parameters()).mul_(1.5)  # e.g. a new weights file under the same name
    after = PrefixFeatures(store, spec.name, data, stack, spec.mean, spec.std, torch.device("cpu")).pooled()
    with torch.no_grad():
        expected = stack.forward(torch.from_numpy(normalise_images(data.images, spec.mean, spec.std, channels_first=True))).numpy()
    np.testing.assert_allclose(after, expected, atol=1e-5)
    assert not np.allclose(before, after)
    for name in ("running_mean", "running_var"):
        bn = next(m for m in stack.modules() if isinstance(m, torch.nn.BatchNorm2d))
        with torch.no_grad():
            getattr(bn, name).add_(0.5)  # BatchNorm statistics are part of the key too
        refreshed = PrefixFeatures(store, spec.name, data, stack, spec.mean, spec.std, torch.device("cpu")).pooled()
        assert not np.allclose(refreshed, after)
        after = refreshed


def test_training_learns_the_signal():
    session = TorchAdapter().start_trial(tiny_spec(), config(freeze=0.0, switch=1, epochs=4), random_table(n_per_split=32))
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    session.set_phase(Phase.FINETUNE)
    for _ in range(4):
        session.train_epoch()
    probabilities = session.predict_split("val")
    labels = random_table(n_per_split=32).labels[random_table(n_per_split=32).splits["val"]]
    assert np.mean(probabilities.argmax(1) == labels) > 0.8


@pytest.mark.parametrize("touched", [False, True])
def test_save_and_load_round_trip(tmp_path, touched):
    data = random_table()
    adapter = TorchAdapter()
    cfg = config(freeze=0.25, head=16)
    session = adapter.start_trial(tiny_spec(), cfg, data)
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    if touched:
        session.set_phase(Phase.FINETUNE)
        session.train_epoch()
    expected = session.predict_split("test")
    session.save(tmp_path)
    model = load_trained(tiny_spec(), tmp_path, data.num_classes, cfg)
    batch = data.images[data.splits["test"]].astype(np.float32) / 255.0
    got = adapter.predict_loaded(model, tiny_spec().preprocessing(16), batch)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_restoring_a_head_only_snapshot_brings_pretrained_blocks_back():
    data = random_table()
    session = TorchAdapter().start_trial(tiny_spec(), config(freeze=0.0), data)
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    snapshot = session.snapshot()
    expected = session.predict_split("val")
    session.set_phase(Phase.FINETUNE)
    session.train_epoch()
    session.restore(snapshot)
    np.testing.assert_allclose(session.predict_split("val"), expected, atol=1e-5)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_parity(tmp_path, fmt):
    data = random_table()
    adapter = TorchAdapter()
    cfg = config(freeze=0.5)
    session = adapter.start_trial(tiny_spec(), cfg, data)
    session.set_phase(Phase.FINETUNE)
    session.train_epoch()
    session.save(tmp_path / "trial")
    model = load_trained(tiny_spec(), tmp_path / "trial", data.num_classes, cfg)
    pre = tiny_spec().preprocessing(16)
    (tmp_path / "out").mkdir()
    model_file = adapter.export(model, pre, fmt, tmp_path / "out")
    exported = adapter.load_exported(tmp_path / "out", fmt, model_file, trusted=True)
    batch = data.images[:5].astype(np.float32) / 255.0
    np.testing.assert_allclose(exported.predict(batch), adapter.predict_loaded(model, pre, batch), atol=1e-5)


def test_torchvision_specs_declare_blocks_that_exist_with_the_declared_feature_size():
    for spec in torchvision_backbones():
        stack = build_block_stack(spec, pretrained=False).eval()
        assert len(stack.blocks) == len(spec.blocks)
        with torch.no_grad():
            features = stack(torch.zeros(1, 3, 64, 64))
        assert features.shape == (1, spec.feature_dim), spec.name
        assert spec.framework == "torch" and spec.weights is not None


def test_imbalanced_classes_get_a_class_weighted_loss():
    data = random_table()
    data.labels[data.splits["train"][:12]] = 0  # mostly class 0 in training
    session = TorchAdapter().start_trial(tiny_spec(), config(), data)
    weights = session.loss_fn.weight.cpu().numpy()
    np.testing.assert_allclose(weights, data.class_weights())
    assert weights[1] > weights[0]


def test_weights_digest_of_a_new_model_is_never_a_freed_models():
    """Freed models' ids and memory get reused: the digest memo must not serve their digest to new weights."""
    import gc

    from automl_tl_torch.cache import module_digest

    digests = set()
    for seed in range(20):
        torch.manual_seed(seed)
        block = torch.nn.Conv2d(3, 4, 3)
        digests.add(module_digest([block]))
        del block
        gc.collect()
    assert len(digests) == 20
    kept = torch.nn.Conv2d(3, 4, 3)
    assert module_digest([kept]) == module_digest([kept])
    with torch.no_grad():
        kept.weight.add_(1.0)
    assert module_digest([kept]) not in digests

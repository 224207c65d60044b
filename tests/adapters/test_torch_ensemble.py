"""The torch ensemble graph: members of one backbone share its pretrained prefix, computed once."""

from __future__ import annotations

import numpy as np
import torch

from automl_tl.ensemble_types import EnsembleMember
from automl_tl.plugin.manager import load_plugins
from automl_tl.types import TrialConfig


def config(**changes) -> TrialConfig:
    base = dict(backbone="mobilenet_v2", freeze_fraction=1.0, head_units=0, head_dropout=0.0, lr=1e-3,
                finetune_lr_ratio=0.1, switch_epoch=1, epochs=2, image_size=32)
    return TrialConfig(**{**base, **changes})


def trained_like(model, from_block: int, seed: int):
    """``model`` with every block from ``from_block`` on (and the head) moved off its pretrained weights."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.backbone.blocks[from_block:]:
            for parameter in block.parameters():
                parameter.add_(0.01 * torch.randn(parameter.shape, generator=generator))
        for parameter in model.head.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model.eval()


def test_members_share_the_pretrained_prefix_and_the_graph_is_their_weighted_mean():
    from automl_tl_torch.model import build_classifier

    plugins = load_plugins()
    adapter, spec = plugins.framework("torch"), plugins.backbone("mobilenet_v2")
    prototype = adapter.prototype(spec)
    head_only = trained_like(build_classifier(spec, 4, config(), prototype=prototype), 19, 1)  # blocks untouched
    tuned = trained_like(build_classifier(spec, 4, config(freeze_fraction=0.5), prototype=prototype), 9, 2)
    cut = trained_like(build_classifier(spec, 4, config(cut_fraction=0.625), prototype=prototype), 10, 3)
    preprocessing = spec.preprocessing(32)
    members = [EnsembleMember(0, spec, config(), head_only, 2, 19, preprocessing),
               EnsembleMember(1, spec, config(freeze_fraction=0.5), tuned, 1, 9, preprocessing),
               # claims more pristine blocks than it has: the adapter checks and shares only the true ones
               EnsembleMember(2, spec, config(cut_fraction=0.625), cut, 1, 12, preprocessing)]
    ensemble = adapter.combine(members, preprocessing)
    group = ensemble.groups[0]
    assert len(ensemble.groups) == 1 and len(group.trunk) == 19
    assert group.branch_points == [19, 9, 10]
    assert len(group.tails[0].blocks) == 0 and len(group.tails[1].blocks) == 10 and len(group.tails[2].blocks) == 2

    batch = np.random.default_rng(0).random((3, 32, 32, 3), dtype=np.float32)
    got = adapter.predict_loaded(ensemble, preprocessing, batch)
    own = [adapter.predict_loaded(m.model, preprocessing, batch) for m in members]
    expected = (2 * own[0] + own[1] + own[2]) / 4
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_claimed_prefix_that_differs_from_the_pretrained_weights_is_not_shared():
    from automl_tl_torch.ensemble import pristine_block_count
    from automl_tl_torch.model import build_classifier

    plugins = load_plugins()
    adapter, spec = plugins.framework("torch"), plugins.backbone("mobilenet_v2")
    prototype = adapter.prototype(spec)
    model = trained_like(build_classifier(spec, 4, config(), prototype=prototype), 5, 4)
    assert pristine_block_count(model, prototype, 19) == 5
    assert pristine_block_count(model, None, 19) == 0

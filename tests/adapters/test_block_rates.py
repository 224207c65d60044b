"""Per-block fine-tuning rates in both adapters: each trained block learns at finetune_lr * decay ** (blocks above it).

Adam's first step moves every weight by about its rate (the update is rate * g / (|g| + eps)), so after
one fine-tuning step the largest change of a block's weights, divided by finetune_lr, is the block's
effective rate multiplier. Scaling gradients instead of rates would leave it at 1 for every block.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_tl.training.block_rates import block_rate_multipliers, block_rates
from automl_tl.tuning.space import config_from_params
from automl_tl.types import Phase, TrialConfig
from automl_tl_torch.adapter import TorchAdapter
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec

FINETUNE_LR = 1e-3


def finetune_config(decay: float, backbone: str) -> TrialConfig:
    """The tiny backbone's 4 blocks, the first frozen: blocks 1, 2 and 3 fine-tune from the first epoch,
    in one batch per epoch (batch 64 > 16 training images), so one epoch is one Adam step."""
    return config_from_params(dict(backbone=backbone, freeze_fraction=0.25, head_units=0, head_dropout=0.0,
                                   lr=FINETUNE_LR, finetune_lr_ratio=1.0, switch_epoch=0, unfrozen_bn="train",
                                   block_lr_decay=decay), epochs=2, image_size=16, batch_size=64)


def test_the_rates_decay_from_the_top_block_down():
    config = finetune_config(0.5, "any")
    assert block_rate_multipliers(config, 1, 4) == [0.25, 0.5, 1.0]
    assert block_rates(config, 1, 4) == pytest.approx([FINETUNE_LR / 4, FINETUNE_LR / 2, FINETUNE_LR])
    assert block_rate_multipliers(finetune_config(1.0, "any"), 0, 3) == [1.0, 1.0, 1.0], "1 is the single rate"


def largest_step(before: list[np.ndarray], after: list[np.ndarray]) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(before, after, strict=True))


def torch_weights(module: torch.nn.Module) -> list[np.ndarray]:
    return [p.detach().cpu().numpy().copy() for p in module.parameters()]


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_torch_blocks_take_their_own_rate_and_every_rate_anneals(decay):
    session = TorchAdapter().start_trial(tiny_spec(), finetune_config(decay, "tiny_cnn"), random_table())
    session.set_phase(Phase.FINETUNE)
    blocks = session.model.backbone.blocks
    before = [torch_weights(block) for block in blocks] + [torch_weights(session.model.head)]
    base_rates = [group["lr"] for group in session.optimizer.param_groups]
    session.train_epoch()
    after = [torch_weights(block) for block in blocks] + [torch_weights(session.model.head)]
    steps = [largest_step(b, a) / FINETUNE_LR for b, a in zip(before, after, strict=True)]
    assert steps[0] == 0.0, "the frozen block does not move"
    assert steps[1:] == pytest.approx([decay ** 2, decay, 1.0, 1.0], rel=1e-2), steps  # blocks 1-3, then the head
    annealed = [group["lr"] for group in session.optimizer.param_groups]
    factor = annealed[0] / base_rates[0]
    assert 0 < factor < 1 and annealed == pytest.approx([rate * factor for rate in base_rates]), "each group from its own rate"
    session.close()


@pytest.mark.parametrize("decay", [1.0, 0.5])
def test_keras_blocks_take_their_own_rate(decay):
    pytest.importorskip("keras", reason="the keras extra is not installed")
    from automl_tl_keras.adapter import KerasAdapter
    from tests.support.sample_plugins.keras_inline import tiny_keras_spec

    session = KerasAdapter().start_trial(tiny_keras_spec(), finetune_config(decay, "tiny_keras"), random_table())
    session.set_phase(Phase.FINETUNE)
    groups = [[session.base.get_layer(f"b{i}_{kind}") for kind in ("conv", "bn")] for i in range(4)] + [[session.head]]
    weights = lambda layers: [w.numpy().copy() for layer in layers for w in layer.trainable_weights]  # noqa: E731
    before = [weights(layers) for layers in groups]
    session.train_epoch()
    steps = [largest_step(b, weights(layers)) / FINETUNE_LR for b, layers in zip(before, groups, strict=True)]
    assert steps[0] == 0.0, "the frozen block does not move"
    assert steps[1:] == pytest.approx([decay ** 2, decay, 1.0, 1.0], rel=1e-2), steps
    session.close()

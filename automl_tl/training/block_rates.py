"""Per-block fine-tuning rates: the top trained block learns fastest, each block below it slower.

This is Caffe's per-layer ``lr_mult``, fastai's discriminative learning rates and timm's layer
decay: the lower a block, the more general (and the better transferred) its features, so the less
it should move. During fine-tuning the head (and the backbone's post-pool layers) and the top kept
block learn at ``TrialConfig.finetune_lr``, and block ``i`` below it at ``block_lr_decay`` times the
rate of block ``i + 1``:

    rate(i) = finetune_lr * block_lr_decay ** (depth - 1 - i)     for frozen <= i < depth

A decay of 1 is the single fine-tuning rate. Each adapter gives these rates to its framework's own
optimiser (PyTorch: one Adam parameter group per block; Keras: a per-variable rate multiplier), and
the phase's cosine annealing scales every rate alike (see automl_tl/training/schedule.py).
"""

from __future__ import annotations

from automl_tl.types import TrialConfig


def block_rate_multipliers(config: TrialConfig, frozen: int, depth: int) -> list[float]:
    """The rate of each trained block ``frozen .. depth - 1`` as a multiple of ``finetune_lr``, lowest block first."""
    return [config.block_lr_decay ** (depth - 1 - block) for block in range(frozen, depth)]


def block_rates(config: TrialConfig, frozen: int, depth: int) -> list[float]:
    """The fine-tuning learning rate of each trained block ``frozen .. depth - 1``, lowest block first."""
    return [config.finetune_lr * multiplier for multiplier in block_rate_multipliers(config, frozen, depth)]

"""The fine-tuning phase's learning rate: annealed to zero with a half cosine over its steps.

A trial has a few epochs. Fine-tuning at a constant rate ends where the last step happens to
land, and the best epoch then varies a lot with the seed. Annealing the rate over the phase
lets the last epochs settle. On the sample data (48 px, 4 epochs, MobileNetV2 cut at 14 of 19
blocks, 10 of them fine-tuned from epoch 2), annealing from the head's own rate raised the mean
validation accuracy over four seeds from 0.982 to 0.986 and the worst seed from 0.978 to 0.983,
against a constant third of that rate; annealing from the third alone did not help
(bench/schedule.py measures all four combinations).

The head-only phase keeps a constant rate: it prepares the head for the switch, or it is a
whole cached trial, where the extra steps are nearly free. Each adapter uses its framework's own
schedule, stepped once per optimiser step over ``finetune_steps``: ``CosineAnnealingLR`` in PyTorch,
``keras.optimizers.schedules.CosineDecay`` in Keras. Both give the rate
``lr * (1 + cos(pi * min(step, total) / total)) / 2``, so the recipe is the same in both.
"""

from __future__ import annotations

import math

from automl_tl.types import TrialConfig

AUTO_STEPS = 600  # optimiser steps a trial that earns them may take, over both phases
AUTO_EPOCHS_MIN, AUTO_EPOCHS_MAX = 4, 12


def auto_epochs(train_images: int, batch_size: int = 64) -> int:
    """``--epochs auto``: enough epochs for about ``AUTO_STEPS`` optimiser steps, from 4 (large data:
    many steps per epoch) to 12 (small data: a fixed 3 + 10 epoch recipe beat 4-epoch trials on 870
    real colour images). Successive halving judges trials at epochs 1, 3 and 9 and at their switch, so
    only the trials that earn it train the whole budget."""
    steps_per_epoch = max(1, math.ceil(max(train_images, 1) / batch_size))
    return int(min(AUTO_EPOCHS_MAX, max(AUTO_EPOCHS_MIN, math.ceil(AUTO_STEPS / steps_per_epoch))))


def finetune_steps(config: TrialConfig, train_size: int) -> int:
    """Optimiser steps in the fine-tuning phase: one per batch, in every epoch from the switch on."""
    return max(1, (config.epochs - config.switch_epoch) * math.ceil(train_size / config.batch_size))

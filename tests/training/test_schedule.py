"""The fine-tuning phase anneals its learning rate to zero with a half cosine, in both adapters."""

from __future__ import annotations

import math

import pytest

from automl_tl.training.schedule import cosine_factor, finetune_steps
from automl_tl.search.space import config_from_params
from automl_tl.types import Phase

from tests.plugins.torch_inline import random_table, tiny_spec


def config(epochs=3, switch=1, framework_backbone="tiny_cnn"):
    return config_from_params(dict(backbone=framework_backbone, freeze_fraction=0.5, head_units=0, head_dropout=0.0,
                                   lr=1e-2, finetune_lr_ratio=0.5, switch_epoch=switch, unfrozen_bn="train"),
                              epochs=epochs, image_size=16, batch_size=8)


def test_cosine_factor_falls_from_one_to_zero_and_stays_there():
    assert cosine_factor(0, 10) == 1.0
    assert cosine_factor(5, 10) == pytest.approx(0.5)
    assert cosine_factor(10, 10) == pytest.approx(0.0)
    assert cosine_factor(25, 10) == pytest.approx(0.0)
    values = [cosine_factor(step, 10) for step in range(11)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_finetune_steps_count_every_batch_after_the_switch():
    assert finetune_steps(config(epochs=4, switch=1), train_size=30) == 3 * 4  # 30 images in batches of 8: 4 steps
    assert finetune_steps(config(epochs=4, switch=1).from_scratch(), train_size=32) == 4 * 4


def expected_lr(cfg, steps_done, total):
    return cfg.finetune_lr * 0.5 * (1 + math.cos(math.pi * min(steps_done, total) / total))


def test_torch_finetuning_anneals_and_the_head_phase_does_not():
    from automl_tl_torch.adapter import TorchAdapter

    cfg, table = config(epochs=3, switch=1), random_table(n_per_split=8)
    per_epoch = math.ceil(len(table.splits["train"]) / cfg.batch_size)
    total = finetune_steps(cfg, len(table.splits["train"]))
    session = TorchAdapter().start_trial(tiny_spec(), cfg, table)
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    assert session.optimizer.param_groups[0]["lr"] == cfg.lr
    session.set_phase(Phase.FINETUNE)
    assert session.optimizer.param_groups[0]["lr"] == pytest.approx(cfg.finetune_lr)
    session.train_epoch()
    assert session.optimizer.param_groups[0]["lr"] == pytest.approx(expected_lr(cfg, per_epoch, total))
    session.train_epoch()
    assert session.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    session.close()

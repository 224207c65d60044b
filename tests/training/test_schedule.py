"""The fine-tuning phase anneals its learning rate to zero with a half cosine (torch's CosineAnnealingLR)."""

from __future__ import annotations

import math

import pytest

from automl_tl.training.schedule import finetune_steps
from automl_tl.tuning.space import config_from_params
from automl_tl.types import Phase
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec


def config(epochs=3, switch=1, framework_backbone="tiny_cnn"):
    return config_from_params(dict(backbone=framework_backbone, freeze_fraction=0.5, head_units=0, head_dropout=0.0,
                                   lr=1e-2, finetune_lr_ratio=0.5, switch_epoch=switch, unfrozen_bn="train"),
                              epochs=epochs, image_size=16, batch_size=8)


def cosine_factor(step, total):
    """The curve the hand-written LambdaLR gave before CosineAnnealingLR: 1, a half cosine, then 0 from ``total`` on."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(step, 0), total) / max(total, 1)))


@pytest.mark.parametrize("total", [1, 2, 7, 600, 5000])
def test_cosine_annealing_lr_gives_the_old_curve_step_for_step(total):
    import torch

    from automl_tl_torch.session import anneal

    base = 3e-3
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base)
    scheduler = anneal(optimizer, total)
    for step in range(total + 1):
        assert abs(optimizer.param_groups[0]["lr"] - base * cosine_factor(step, total)) <= 1e-9 * base, step
        if step < total:
            optimizer.step()
            scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-15)


def test_finetune_steps_count_every_batch_after_the_switch():
    assert finetune_steps(config(epochs=4, switch=1), train_size=30) == 3 * 4  # 30 images in batches of 8: 4 steps
    assert finetune_steps(config(epochs=4, switch=1).from_scratch(), train_size=32) == 4 * 4


def test_torch_finetuning_anneals_and_the_head_phase_does_not():
    from automl_tl_torch.adapter import TorchAdapter

    cfg, table = config(epochs=3, switch=1), random_table(n_per_split=8)
    total = finetune_steps(cfg, len(table.splits["train"]))
    session = TorchAdapter().start_trial(tiny_spec(), cfg, table)
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    assert session.optimizer.param_groups[0]["lr"] == cfg.lr
    session.set_phase(Phase.FINETUNE)
    used: list[float] = []  # the rate of every optimiser step the session takes
    session.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: used.append(optimizer.param_groups[0]["lr"]))
    for _ in range(3):  # the phase's two epochs, and one more: the rate stays at zero instead of climbing again
        session.train_epoch()
    assert len(used) == total + total // 2
    for index, lr in enumerate(used):
        assert abs(lr - cfg.finetune_lr * cosine_factor(index, total)) <= 1e-9 * cfg.finetune_lr, index
    assert session.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    session.close()

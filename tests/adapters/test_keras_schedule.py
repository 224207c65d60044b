"""The Keras adapter anneals fine-tuning with Keras' CosineDecay: the same half cosine as PyTorch's CosineAnnealingLR."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.training.schedule import finetune_steps  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl.types import Phase  # noqa: E402
from automl_tl_keras.adapter import KerasAdapter  # noqa: E402
from tests.support.sample_plugins.keras_inline import tiny_keras_spec  # noqa: E402
from tests.support.sample_plugins.torch_inline import random_table  # noqa: E402


def cosine_factor(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def current_lr(session) -> float:
    return float(session.trainer.optimizer.learning_rate)


def test_keras_finetuning_anneals_and_the_head_phase_does_not():
    cfg = config_from_params(dict(backbone="tiny_keras", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-2,
                                  finetune_lr_ratio=0.5, switch_epoch=1, unfrozen_bn="train"),
                             epochs=3, image_size=16, batch_size=8)
    table = random_table(n_per_split=8)
    per_epoch = math.ceil(len(table.splits["train"]) / cfg.batch_size)
    total = finetune_steps(cfg, len(table.splits["train"]))
    session = KerasAdapter().start_trial(tiny_keras_spec(), cfg, table)
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    assert current_lr(session) == pytest.approx(cfg.lr)
    session.set_phase(Phase.FINETUNE)
    assert current_lr(session) == pytest.approx(cfg.finetune_lr)
    session.train_epoch()
    assert current_lr(session) == pytest.approx(cfg.finetune_lr * cosine_factor(per_epoch, total), rel=1e-5)
    session.train_epoch()
    assert current_lr(session) == pytest.approx(0.0, abs=1e-9)
    session.close()

"""A Keras trial stopped after an epoch and run again goes on from its saved state (``ResumableSession``) as the
uninterrupted trial would have."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

import automl_tl.training.engine as engine  # noqa: E402
import automl_tl.training.resume as resume_module  # noqa: E402
from automl_tl.capabilities import ResumableSession  # noqa: E402
from automl_tl.training.resume import TrialResume  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl_keras.adapter import KerasAdapter  # noqa: E402
from tests.support.sample_plugins.keras_inline import tiny_keras_spec  # noqa: E402
from tests.support.sample_plugins.torch_inline import random_table  # noqa: E402


def test_a_keras_trial_resumed_after_epoch_3_ends_as_the_uninterrupted_one(tmp_path, monkeypatch):
    monkeypatch.setattr(resume_module, "SAVE_SHARE", math.inf)  # every epoch saved, whatever the save costs here
    cfg = config_from_params(dict(backbone="tiny_keras", freeze_fraction=0.5, head_units=8, head_dropout=0.3, lr=1e-2,
                                  finetune_lr_ratio=0.5, switch_epoch=2, unfrozen_bn="train"),
                             epochs=5, image_size=16, batch_size=8)
    table, spec, adapter = random_table(n_per_split=12), tiny_keras_spec(), KerasAdapter()
    assert isinstance(adapter.start_trial(spec, cfg, table), ResumableSession)
    straight = engine.run_trial(adapter, spec, cfg, table)

    def stop_in_epoch_4(result):
        if result.epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.run_trial(adapter, spec, cfg, table, on_epoch=stop_in_epoch_4, resume=TrialResume(tmp_path, {"t": 1}))
    again = TrialResume(tmp_path, {"t": 1})
    resumed = engine.run_trial(adapter, spec, cfg, table, resume=again)
    assert again.resumed_epochs == 3 and len(resumed.history) == 5
    assert [r.train_loss for r in resumed.history] == pytest.approx([r.train_loss for r in straight.history], rel=1e-4)
    assert np.allclose(resumed.test_probabilities, straight.test_probabilities, atol=1e-5)

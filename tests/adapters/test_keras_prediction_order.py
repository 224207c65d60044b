"""A Keras session predicts a split in the split's own order, so predictions line up with labels."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl.types import Phase  # noqa: E402
from automl_tl_keras.adapter import KerasAdapter  # noqa: E402
from tests.support.sample_plugins.keras_inline import tiny_keras_spec  # noqa: E402
from tests.support.sample_plugins.torch_inline import random_table  # noqa: E402


def test_training_split_predictions_after_fine_tuning_are_in_the_splits_order():
    cfg = config_from_params(dict(backbone="tiny_keras", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-2,
                                  finetune_lr_ratio=0.5, switch_epoch=1, unfrozen_bn="train"),
                             epochs=2, image_size=16, batch_size=8)
    session = KerasAdapter().start_trial(tiny_keras_spec(), cfg, random_table(n_per_split=12))
    session.set_phase(Phase.HEAD)
    session.train_epoch()
    session.set_phase(Phase.FINETUNE)
    session.train_epoch()  # activations now stream from the freeze point
    first, second = session.predict_split("train"), session.predict_split("train")
    np.testing.assert_allclose(first, second, atol=1e-6, err_msg="two predictions of the same split differ: rows reordered")

"""The Keras adapter gives its training features to the engine's L-BFGS fit and predicts with the head it set."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

from automl_tl.training.engine import effective_config, run_trial  # noqa: E402
from automl_tl.training.linear_head import fit_logistic_head  # noqa: E402
from automl_tl.tuning.space import config_from_params  # noqa: E402
from automl_tl.types import Phase  # noqa: E402
from automl_tl_keras.adapter import KerasAdapter  # noqa: E402
from tests.support.sample_plugins.keras_inline import tiny_keras_spec  # noqa: E402
from tests.support.sample_plugins.torch_inline import random_table  # noqa: E402


def test_a_keras_trial_with_a_fitted_head_predicts_with_the_fitted_weights():
    spec, table, adapter = tiny_keras_spec(), random_table(n_per_split=12, classes=3), KerasAdapter()
    config = config_from_params(dict(backbone="tiny_keras", head_fit="lbfgs", head_l2=0.05, freeze_fraction=1.0,
                                     augment="none"), epochs=3, image_size=16, batch_size=8)
    outcome = run_trial(adapter, spec, config, table)
    assert outcome.epochs_run == 1
    session = adapter.start_trial(spec, effective_config(spec, config), table)
    session.set_phase(Phase.HEAD)
    features, labels = session.head_training_features()
    session.close()
    head = fit_logistic_head(features, labels, 3, 0.05, table.class_weights())
    logits = adapter.block_features(spec, table, len(spec.blocks))[table.splits["val"]] @ head.weights + head.bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(outcome.val_probabilities, expected / expected.sum(1, keepdims=True), atol=1e-4)


def test_a_keras_trial_trains_and_fits_on_augmented_views():
    import dataclasses

    from automl_tl.training.augment import VIEW_COUNT

    spec, adapter = tiny_keras_spec(), KerasAdapter()
    table = random_table(n_per_split=8, classes=3)
    table = dataclasses.replace(table, content_hashes=tuple(f"k{i}" for i in range(len(table.labels))))
    for head in (dict(head_fit="lbfgs", head_l2=0.05), dict(head_fit="adam", head_units=0, lr=1e-2)):
        config = config_from_params(dict(backbone="tiny_keras", freeze_fraction=1.0, augment="views", **head), epochs=2,
                                    image_size=16, batch_size=8)
        assert 0.0 <= run_trial(adapter, spec, config, table).val_accuracy <= 1.0
    session = adapter.start_trial(spec, effective_config(spec, config), table)
    assert len(session.views) == 1 + VIEW_COUNT
    session.set_phase(Phase.HEAD)
    features, labels = session.head_training_features()
    session.close()
    assert len(features) == len(labels) == (1 + VIEW_COUNT) * len(table.splits["train"])
    assert not np.allclose(features[: len(table.splits["train"])], features[len(table.splits["train"]) :][: len(table.splits["train"])])

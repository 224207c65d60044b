"""The fitted linear head: the L-BFGS solve reaches the penalised optimum, reads raw features, and trials use it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from automl_tl.errors import TrialFailure
from automl_tl.training.engine import effective_config, run_trial
from automl_tl.training.linear_head import fit_logistic_head, fit_session_head
from automl_tl.tuning.space import config_from_params
from automl_tl.types import Phase
from automl_tl_torch.adapter import TorchAdapter
from tests.support.sample_plugins.torch_inline import random_table, tiny_spec


def torch_reference(features: np.ndarray, labels: np.ndarray, classes: int, l2: float) -> np.ndarray:
    """The same objective solved independently (torch's L-BFGS, all features' coordinates): its raw-feature logits."""
    x = torch.from_numpy(features.astype(np.float64))
    mean, scale = x.mean(0), x.std(0, unbiased=False) + 1e-6
    z, y = (x - mean) / scale, torch.from_numpy(labels)
    w = torch.zeros(x.shape[1], classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w, b], max_iter=2000, tolerance_grad=1e-10, tolerance_change=1e-14,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(z @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return ((z @ w + b).detach()).numpy()


@pytest.mark.parametrize("rows", [40, 300])  # fewer rows than features (solved in the rows' span), and more
def test_the_fit_is_the_penalised_optimum_on_raw_features(rows):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, rows)
    features = (rng.normal(size=(rows, 64)) * rng.uniform(0.1, 20, 64) + labels[:, None] * 0.3 + 5).astype(np.float32)
    head = fit_logistic_head(features, labels, 3, l2=0.05)
    logits = features.astype(np.float64) @ head.weights + head.bias
    reference = torch_reference(features, labels, 3, 0.05)
    assert np.allclose(logits, reference, atol=2e-3), np.abs(logits - reference).max()
    assert head.weights.shape == (64, 3) and head.weights.dtype == np.float32 and head.iterations > 0


def test_class_weights_weigh_the_rows():
    rng = np.random.default_rng(1)
    labels = np.array([0] * 90 + [1] * 10)
    features = (rng.normal(size=(100, 8)) + labels[:, None] * 0.5).astype(np.float32)
    plain = fit_logistic_head(features, labels, 2, l2=0.1)
    balanced = fit_logistic_head(features, labels, 2, l2=0.1, class_weights=np.array([1 / 90, 1 / 10]))
    predicted = lambda head: ((features @ head.weights + head.bias).argmax(1) == 1).sum()  # noqa: E731
    assert predicted(balanced) > predicted(plain), "the rare class counts as much as the common one"


def lbfgs_config(freeze_fraction: float = 1.0, epochs: int = 3):
    return config_from_params(dict(backbone="tiny_cnn", head_fit="lbfgs", head_l2=0.02, freeze_fraction=freeze_fraction,
                                   lr=1e-3, finetune_lr_ratio=0.5, switch_epoch=2, augment="hflip"),
                              epochs=epochs, image_size=16, batch_size=8)


def test_a_fitted_head_is_one_head_epoch_and_keeps_the_fine_tuning_epochs_asked():
    spec = tiny_spec()
    head_only = effective_config(spec, lbfgs_config())
    assert (head_only.epochs, head_only.switch_epoch, head_only.head_units) == (1, 1, 0)
    tuned = effective_config(spec, lbfgs_config(freeze_fraction=0.5, epochs=5))
    assert (tuned.epochs, tuned.switch_epoch) == (4, 1), "3 fine-tuning epochs after switch_epoch 2 of 5, as asked"
    assert effective_config(spec, tuned) == tuned


def test_a_torch_trial_fits_its_head_on_every_view_and_the_model_predicts_with_it():
    spec, table = tiny_spec(), random_table(n_per_split=12, classes=3)
    adapter = TorchAdapter()
    outcome = run_trial(adapter, spec, lbfgs_config(), table)
    assert outcome.epochs_run == 1 and [r.phase for r in outcome.history] == [Phase.HEAD]
    session = adapter.start_trial(spec, effective_config(spec, lbfgs_config()), table)
    session.set_phase(Phase.HEAD)
    features, labels = session.head_training_features()
    train = table.splits["train"]
    assert len(features) == 2 * len(train) and (labels == np.tile(table.labels[train], 2)).all(), "plain and mirrored"
    head = fit_logistic_head(features, labels, 3, 0.02, table.class_weights())
    logits = adapter.block_features(spec, table, len(spec.blocks))[table.splits["val"]] @ head.weights + head.bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(outcome.val_probabilities, expected / expected.sum(1, keepdims=True), atol=1e-4)
    session.close()


def test_fine_tuning_starts_from_the_fitted_head():
    spec, table = tiny_spec(), random_table(n_per_split=12, classes=3)
    outcome = run_trial(TorchAdapter(), spec, lbfgs_config(freeze_fraction=0.5, epochs=4), table)
    assert [r.phase for r in outcome.history] == [Phase.HEAD, Phase.FINETUNE, Phase.FINETUNE]


def test_a_session_that_cannot_fit_a_head_fails_the_trial_by_name():
    class EpochsOnly:
        def train_epoch(self):
            return 0.0

    with pytest.raises(TrialFailure, match="the 'mine' framework adapter cannot fit a linear head"):
        fit_session_head(EpochsOnly(), 2, np.ones(2), 0.01, "the 'mine' framework adapter")

"""``auto`` exports an ensemble only when it beats the best single trial on rows it was not chosen on
(cross-fitting), and its library puts different kinds of trials before near-copies of the best."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from automl_tl.storage.artifacts import trial_dir
from automl_tl.storage.predictions import SplitPredictions, save_predictions
from automl_tl.tuning.ensemble import Candidate, candidates, decision_text, select_ensemble
from automl_tl.tuning.ensemble_crossfit import MIN_ROWS, CrossFit, stratified_folds
from automl_tl.tuning.ensemble_library import diverse_order, diversity_group

CLASSES = 4


def predicted(labels: np.ndarray, guess: np.ndarray, confidence: np.ndarray | float) -> np.ndarray:
    """Probabilities that put ``confidence`` on the class ``guess`` of each row and share the rest."""
    confidence = np.broadcast_to(np.asarray(confidence, dtype=np.float64), labels.shape)
    probabilities = np.repeat(((1 - confidence) / (CLASSES - 1))[:, None], CLASSES, axis=1)
    probabilities[np.arange(len(labels)), guess] = confidence
    return probabilities


def library(probabilities: list[np.ndarray], labels: np.ndarray) -> list[Candidate]:
    index = np.arange(len(labels))
    return [Candidate(i, "torch", SplitPredictions(p.astype(np.float32), index, labels), None, rank=i)
            for i, p in enumerate(probabilities)]


def near_copies_of_the_best(rows: int = 240, copies: int = 15, seed: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """The best trial right on 70 % of the rows; each other trial repeats its guesses less surely, but on a random
    tenth of the rows it guesses a random class, confidently. The copies know nothing the best trial does not:
    whatever rows an average of them fixes, it fixes by luck, so an ensemble of them can only fit the rows that
    select it."""
    rng = np.random.default_rng(seed)
    labels = np.arange(rows) % CLASSES
    guess = np.where(rng.random(rows) < 0.7, labels, (labels + 1 + rng.integers(0, CLASSES - 1, rows)) % CLASSES)
    others = []
    for _ in range(copies):
        noisy = rng.random(rows) < 0.1
        others.append(predicted(labels, np.where(noisy, rng.integers(0, CLASSES, rows), guess), np.where(noisy, 0.9, 0.5)))
    return labels, [predicted(labels, guess, 0.55), *others]


def complementary_experts(rows: int = 240) -> tuple[np.ndarray, list[np.ndarray]]:
    """Three trials, each wrong on a different third of the rows (one class further): the average of the three
    is right everywhere, on any half of the rows, while each alone scores 2/3."""
    labels = np.arange(rows) % CLASSES
    third = (np.arange(rows) * 7919 % rows) % 3  # a third of each class in each part
    return labels, [predicted(labels, np.where(third == k, (labels + 1) % CLASSES, labels), 0.6) for k in range(3)]


def test_an_ensemble_that_only_fits_the_selection_rows_is_refused_by_auto():
    labels, probabilities = near_copies_of_the_best()
    found = library(probabilities, labels)
    chosen = select_ensemble(found, "auto")
    proposed = chosen.proposed
    assert proposed is not None and proposed.size > 1
    assert proposed.val_accuracy > chosen.best_single_val_accuracy  # it looks better on the rows that chose it ...
    decision = chosen.decision
    assert decision is not None and not decision.pays  # ... but not on rows it was not chosen on
    assert chosen.members == (0,) and chosen.weights == (1,)
    assert chosen.val_accuracy == pytest.approx(found[0].val.accuracy())
    text = decision_text(chosen)
    assert "trial 0 is exported alone" in text and f"{decision.ensemble_accuracy:.4f}" in text
    assert f"{decision.single_accuracy:.4f}" in text
    assert chosen.to_dict()["refused"]["members"] == list(proposed.members)


def test_complementary_members_are_accepted_by_auto():
    labels, probabilities = complementary_experts()
    chosen = select_ensemble(library(probabilities, labels), "auto")
    assert chosen.proposed is None and sorted(chosen.members) == [0, 1, 2]
    assert chosen.decision is not None and chosen.decision.pays
    assert chosen.decision.ensemble_accuracy == 1.0 and chosen.decision.single_accuracy < 0.7
    assert "so the ensemble is exported" in decision_text(chosen)
    assert chosen.to_dict()["cross_fitted"]["pays"] is True


def test_an_explicit_number_of_rounds_exports_what_was_asked_and_reports_the_check():
    labels, probabilities = near_copies_of_the_best()
    chosen = select_ensemble(library(probabilities, labels), 6)
    assert sum(chosen.weights) == 6 and chosen.size > 1 and chosen.proposed is None
    assert chosen.decision is not None
    assert "Exported as asked (--ensemble 6)" in decision_text(chosen, 6)


def test_too_few_rows_keep_the_single_trial():
    labels, probabilities = complementary_experts(rows=MIN_ROWS - 4)
    chosen = select_ensemble(library(probabilities, labels), "auto")
    assert chosen.decision is None and chosen.members == (0,)
    assert chosen.proposed is not None and chosen.proposed.size > 1
    assert f"Fewer than {MIN_ROWS} scored images" in decision_text(chosen)


def test_a_tie_on_the_held_halves_goes_to_the_single_trial():
    assert not CrossFit(rows=100, ensemble_correct=80, single_correct=80, ensemble_log_loss=0.4, single_log_loss=0.9).pays
    assert CrossFit(rows=100, ensemble_correct=81, single_correct=80, ensemble_log_loss=0.9, single_log_loss=0.4).pays


@pytest.mark.parametrize("folds", [2, 5])
def test_the_folds_are_stratified_balanced_and_fixed(folds):
    labels = np.array([0] * 7 + [1] * 7 + [2] * 4 + [3] * 13)
    assignment = stratified_folds(labels, folds, seed=3)
    for label in range(4):
        counts = np.bincount(assignment[labels == label], minlength=folds)
        assert counts.max() - counts.min() <= 1
    sizes = np.bincount(assignment, minlength=folds)
    assert sizes.max() - sizes.min() <= 1  # each class starts where the last one stopped
    assert np.array_equal(assignment, stratified_folds(labels, folds, seed=3))
    assert not np.array_equal(assignment, stratified_folds(labels, folds, seed=4))  # another deal


def test_the_library_puts_each_groups_best_first_and_caps_near_copies():
    ranked = ["a1", "a2", "a3", "a4", "a5", "b1", "c1", "b2"]
    order = diverse_order(ranked, lambda name: name[0], limit=None, per_group=2)
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3", "a4", "a5"]
    assert diverse_order(ranked, lambda name: name[0], limit=4, per_group=2) == ["a1", "b1", "c1", "a2"]
    assert diverse_order(["a1", "a2", "a3"], lambda name: name[0], limit=3, per_group=1) == ["a1", "a2", "a3"]  # fills


def test_trials_group_by_backbone_cut_head_kind_and_fine_tuning():
    base = {"backbone": "mobilenet_v2", "head_fit": "adam", "head_units": 256, "cut_fraction": 1.0}
    groups = {diversity_group(base), diversity_group({**base, "lr": 0.01, "head_dropout": 0.3})}
    assert len(groups) == 1  # another rate or dropout is a near-copy
    others = [{**base, "backbone": "efficientnet_lite0"}, {**base, "cut_fraction": 0.75}, {**base, "head_units": 0},
              {**base, "head_fit": "lbfgs"}, {**base, "freeze_fraction": 0.5}]
    assert len({diversity_group(p) for p in others} | groups) == 6


def test_candidates_from_a_study_put_other_kinds_before_near_copies(tmp_path):
    labels = np.arange(40) % CLASSES
    study = optuna.create_study(direction="maximize")
    space = {"backbone": optuna.distributions.CategoricalDistribution(["mobilenet_v2", "efficientnet_lite0"]),
             "lr": optuna.distributions.FloatDistribution(1e-4, 1.0)}
    kinds = ["mobilenet_v2"] * 5 + ["efficientnet_lite0"]
    for number, backbone in enumerate(kinds):
        study.add_trial(optuna.trial.create_trial(params={"backbone": backbone, "lr": 0.1 + number / 100},
                                                  distributions=space, value=0.9 - number / 100,
                                                  user_attrs={"framework": "torch"}))
        guess = predicted(labels, labels, 0.5).astype(np.float32)
        save_predictions(trial_dir(tmp_path, number), {"val": SplitPredictions(guess, np.arange(40), labels)})
    assert [c.trial for c in candidates(study, tmp_path, limit=3)] == [0, 5, 1]
    assert [c.trial for c in candidates(study, tmp_path, limit=3, diverse=False)] == [0, 1, 2]
    assert [c.rank for c in candidates(study, tmp_path, limit=None)] == [0, 5, 1, 2, 3, 4]

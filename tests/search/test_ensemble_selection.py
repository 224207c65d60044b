"""Greedy forward selection with replacement (Caruana et al. 2004) on kept validation probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from automl_tl.errors import UserError
from automl_tl.storage.predictions import SplitPredictions
from automl_tl.tuning.ensemble import Candidate, greedy_selection, score, select_ensemble


def one_hot_guess(labels: np.ndarray, right: np.ndarray, classes: int, confidence: float = 0.7) -> np.ndarray:
    """Probabilities that put ``confidence`` on the true class where ``right``, else on the next class."""
    guess = np.where(right, labels, (labels + 1) % classes)
    probabilities = np.full((len(labels), classes), (1 - confidence) / (classes - 1))
    probabilities[np.arange(len(labels)), guess] = confidence
    return probabilities


def candidate(trial: int, probabilities: np.ndarray, labels: np.ndarray, test: np.ndarray | None = None) -> Candidate:
    index = np.arange(len(labels))
    kept_test = SplitPredictions(test, index, labels) if test is not None else None
    return Candidate(trial, "torch", SplitPredictions(probabilities, index, labels), kept_test)


def three_experts(n: int = 90, classes: int = 3):
    """Three models, each right on two thirds of the images, wrong on a different third: any two of
    them outvote the third's mistakes only with the third's help, so the average of all three is right
    everywhere while each alone scores 2/3."""
    labels = np.arange(n) % classes
    thirds = np.arange(n) // (n // 3)
    return labels, [one_hot_guess(labels, thirds != k, classes) for k in range(3)]


def test_selection_of_complementary_models_beats_each_of_them():
    labels, experts = three_experts()
    picks, _ = greedy_selection(experts, labels, rounds=10)
    assert sorted(set(picks)) == [0, 1, 2]
    averaged = sum(experts[i] for i in picks) / len(picks)
    assert score(averaged, labels)[0] == 1.0
    assert all(score(e, labels)[0] < 0.7 for e in experts)


def test_a_useless_model_is_never_picked_and_weights_count_rounds():
    labels, experts = three_experts()
    wrong = one_hot_guess(labels, np.zeros(len(labels), bool), 3, 0.9)  # confidently wrong everywhere
    found = [candidate(i, p, labels) for i, p in enumerate([*experts, wrong])]
    ensemble = select_ensemble(found, rounds=12)
    assert 3 not in ensemble.members
    assert sum(ensemble.weights) == 12  # K rounds: exactly K picks, repeats counted as weight
    assert ensemble.val_accuracy == 1.0 and ensemble.best_single_val_accuracy < 0.7


def test_auto_keeps_the_best_prefix_and_is_never_worse_than_the_best_single_trial():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 200)
    found = []
    for trial in range(8):
        right = rng.random(200) < 0.6 + 0.03 * trial
        found.append(candidate(trial, one_hot_guess(labels, right, 4, 0.4 + 0.5 * rng.random()), labels))
    found.sort(key=lambda c: -c.val.accuracy())
    ensemble = select_ensemble(found, "auto")
    assert ensemble.val_accuracy >= ensemble.best_single_val_accuracy
    assert ensemble.rounds == 25 and sum(ensemble.weights) <= 25


def test_one_dominant_model_is_kept_alone():
    labels = np.arange(60) % 3
    best = one_hot_guess(labels, np.ones(60, bool), 3, 0.9)
    worse = one_hot_guess(labels, np.arange(60) % 2 == 0, 3, 0.9)
    ensemble = select_ensemble([candidate(0, best, labels), candidate(1, worse, labels)], "auto")
    assert ensemble.members == (0,) and ensemble.weights == (1,)


def test_the_ensembles_test_accuracy_comes_from_its_members_kept_test_probabilities():
    labels, experts = three_experts()
    found = [candidate(i, p, labels, test=p) for i, p in enumerate(experts)]
    ensemble = select_ensemble(found, rounds=3)
    assert ensemble.test_accuracy == 1.0
    assert ensemble.best_single_test_accuracy == pytest.approx(2 / 3)


@pytest.mark.parametrize("rounds", [0, -1, 1000])
def test_a_bad_round_count_is_a_user_error(rounds):
    labels, experts = three_experts()
    with pytest.raises(UserError, match="--ensemble"):
        select_ensemble([candidate(0, experts[0], labels)], rounds)


def test_no_candidates_is_a_user_error():
    with pytest.raises(UserError, match="validation probabilities"):
        select_ensemble([], "auto")

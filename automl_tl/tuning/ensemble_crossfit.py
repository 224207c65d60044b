"""Whether an ensemble is expected to beat the best single trial, judged on rows that did not choose it.

The ensemble and the best single trial are both chosen on the same rows (the validation split, or the
out-of-fold predictions under cross-validation), so their scores there are optimistic, and the ensemble's
more so: greedy selection picks among many averages. Cross-fitting judges the *procedure* instead: the rows
are dealt into ``FOLDS`` class-stratified folds with a fixed seed; for each fold the ensemble is selected
as ``auto`` selects it, and the best single trial chosen as the study chooses it (accuracy, then rank), on
the other folds, and both are scored on the fold. Every row is scored once per deal, by choices that never
saw it; ``REPEATS`` deals are summed. The ensemble pays when it is right on more of those rows than the
single trial; a tie goes to the single trial.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from automl_tl.tuning.greedy_selection import greedy_selection, weighted_mean

FIRST_SEED = 0  # the first deal of the folds; the deals are the same on every run: the decision does not change by chance
FOLDS = 5  # each choice is made on 4/5 of the rows: close to the whole split that the real choice reads
REPEATS = 10  # ten deals of the folds: the decision does not hang on one arbitrary split of a few dozen rows ...
ROWS_FOR_REPEATS = 5000  # ... while the rows are few: a deal scores at least this many rows in all (one deal of more)
MIN_ROWS = 20  # below this, a fold is too small to judge anything: no ensemble is expected to pay


@dataclass(frozen=True)
class CrossFit:
    """The ensemble procedure against the single-trial procedure on rows neither was chosen on."""

    rows: int
    ensemble_correct: int
    single_correct: int
    ensemble_log_loss: float
    single_log_loss: float
    out_of_fold: bool = False  # the rows are cross-validation's out-of-fold predictions, not the validation split
    folds: int = FOLDS
    repeats: int = 1  # each row is scored once per repeat (another deal of the folds); the counts sum them

    @property
    def scored(self) -> int:
        return self.rows * self.repeats

    @property
    def ensemble_accuracy(self) -> float:
        return self.ensemble_correct / self.scored if self.rows else 0.0

    @property
    def single_accuracy(self) -> float:
        return self.single_correct / self.scored if self.rows else 0.0

    @property
    def pays(self) -> bool:
        """Right on more held-out rows than the single trial (a tie does not pay: the single model is cheaper)."""
        return self.ensemble_correct > self.single_correct

    def rows_name(self) -> str:
        return "out-of-fold rows" if self.out_of_fold else "validation rows"

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "out_of_fold": self.out_of_fold, "ensemble_accuracy": self.ensemble_accuracy,
                "single_accuracy": self.single_accuracy, "ensemble_log_loss": self.ensemble_log_loss,
                "single_log_loss": self.single_log_loss, "pays": self.pays}


def stratified_folds(labels: np.ndarray, folds: int, seed: int = FIRST_SEED) -> np.ndarray:
    """Each row's fold (0 .. ``folds`` - 1): every class dealt round the folds in an order drawn with a fixed
    ``seed``, each class starting one fold further, so the folds differ in size by one row at most."""
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(labels), dtype=np.int64)
    dealt = 0
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        assignment[rows] = (dealt + np.arange(len(rows))) % folds
        dealt += len(rows)
    return assignment


def best_single(probabilities: Sequence[np.ndarray], labels: np.ndarray, rank: Sequence[int]) -> int:
    """The candidate the study would choose on these rows: the highest accuracy, the better ``rank`` on a tie."""
    accuracies = [float(np.mean(p.argmax(axis=1) == labels)) for p in probabilities]
    return max(range(len(probabilities)), key=lambda i: (accuracies[i], -rank[i]))


def _right_and_loss(probabilities: np.ndarray, labels: np.ndarray) -> tuple[int, float]:
    picked = probabilities[np.arange(len(labels)), labels]
    return int(np.sum(probabilities.argmax(axis=1) == labels)), float(-np.sum(np.log(np.clip(picked, 1e-12, 1.0))))


def cross_fit(probabilities: Sequence[np.ndarray], labels: np.ndarray, rounds: int, keep_best_prefix: bool = True,
              rank: Sequence[int] | None = None, costs: Sequence[float] | None = None, budget: float | None = None,
              out_of_fold: bool = False, folds: int = FOLDS, repeats: int | None = None) -> CrossFit | None:
    """Cross-fit the ensemble selection (``greedy_selection`` with these settings) against the best single
    candidate over the candidates' (N, classes) ``probabilities`` of ``labels``. ``rank``: each candidate's
    place in the study's ranking (default: its position); ``repeats``: deals of the folds (default: ``REPEATS``,
    fewer for many rows). None when there are fewer than ``MIN_ROWS`` rows."""
    if len(labels) < MIN_ROWS or not probabilities:
        return None
    if repeats is None:
        repeats = max(1, min(REPEATS, ROWS_FOR_REPEATS // len(labels)))
    order_rank = list(rank) if rank is not None else list(range(len(probabilities)))
    right = {"ensemble": 0, "single": 0}
    loss = {"ensemble": 0.0, "single": 0.0}
    splits = [(seed, fold) for seed in range(FIRST_SEED, FIRST_SEED + repeats) for fold in range(folds)]
    for seed, fold in splits:
        assignment = stratified_folds(labels, folds, seed)
        chooser, judged = np.flatnonzero(assignment != fold), np.flatnonzero(assignment == fold)
        on_chooser = [np.asarray(p, dtype=np.float64)[chooser] for p in probabilities]
        picks, _ = greedy_selection(on_chooser, labels[chooser], rounds, keep_best_prefix, costs, budget)
        members = sorted(set(picks), key=picks.index)
        chosen = {
            "ensemble": weighted_mean([np.asarray(probabilities[i])[judged] for i in members], [picks.count(i) for i in members]),
            "single": np.asarray(probabilities[best_single(on_chooser, labels[chooser], order_rank)], dtype=np.float64)[judged],
        }
        for name, averaged in chosen.items():
            correct, summed = _right_and_loss(averaged, labels[judged])
            right[name] += correct
            loss[name] += summed
    scored = len(labels) * repeats
    return CrossFit(len(labels), right["ensemble"], right["single"], loss["ensemble"] / scored, loss["single"] / scored,
                    out_of_fold, folds, repeats)

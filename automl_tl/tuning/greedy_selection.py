"""Caruana's greedy forward selection with replacement on candidates' class probabilities, and its score.

Caruana et al. (2004), "Ensemble selection from libraries of models", as AutoGluon's weighted ensemble
does it: start from nothing, and in each round add the candidate (again, if it is already in) whose
addition gives the averaged probabilities the best score. A member's weight is the number of rounds that
picked it. The score is accuracy, ties broken by the lower log loss: accuracy on a few hundred images moves
in coarse steps, and without a finer tie-break the first rounds would pick at random among equals.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def score(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean log loss) of averaged probabilities; larger accuracy, then smaller loss, is better."""
    if not len(labels):
        return 0.0, 0.0
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    picked = probabilities[np.arange(len(labels)), labels]
    return accuracy, float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def weighted_mean(probabilities: list[np.ndarray], weights: list[int]) -> np.ndarray:
    """The members' probabilities averaged with their weights (selection rounds won)."""
    total = np.zeros_like(probabilities[0], dtype=np.float64)
    for array, weight in zip(probabilities, weights):
        total += weight * np.asarray(array, dtype=np.float64)
    return total / float(sum(weights))


def greedy_selection(probabilities: list[np.ndarray], labels: np.ndarray, rounds: int,
                     keep_best_prefix: bool = True, costs: Sequence[float] | None = None,
                     budget: float | None = None) -> tuple[list[int], int]:
    """Caruana's selection with replacement over candidates' (N, classes) ``probabilities`` of ``labels``.

    Returns the picks (candidate indices, one per round, repeats allowed) of the kept prefix and the
    number of rounds run. With ``keep_best_prefix`` the kept prefix is the best-scoring one (the earliest
    among equals); without, all ``rounds`` picks are kept (``--ensemble K`` asks for exactly K). With
    ``costs`` and ``budget``, a candidate joins only while the distinct members' costs sum to at most the
    budget (a repeat costs nothing: it only changes a weight)."""
    if not probabilities:
        raise ValueError("no candidates")
    spent: set[int] = set()
    total = np.zeros_like(probabilities[0], dtype=np.float64)
    picks: list[int] = []
    best_key: tuple[float, float] | None = None
    best_length = 0
    for round_number in range(1, rounds + 1):
        keys: dict[int, tuple[float, float]] = {}
        for index, candidate in enumerate(probabilities):
            if costs is not None and budget is not None and index not in spent and \
                    sum(costs[i] for i in spent) + costs[index] > budget:
                continue
            accuracy, loss = score((total + candidate) / round_number, labels)
            keys[index] = (accuracy, -round(loss, 9))  # rounding: the same average, summed in another order, is no gain
        if not keys:
            break
        chosen = max(keys, key=lambda i: (keys[i], -i))  # the earlier (better-ranked) candidate on a tie
        picks.append(chosen)
        spent.add(chosen)
        total += probabilities[chosen]
        if best_key is None or keys[chosen] > best_key:
            best_key, best_length = keys[chosen], round_number
    return (picks[:best_length] if keep_best_prefix else picks), len(picks)

"""Ensembles of a study's trials: greedy forward selection with replacement on their validation probabilities.

Caruana et al. (2004), "Ensemble selection from libraries of models", as AutoGluon's weighted ensemble
does it: start from nothing, and in each round add the candidate (again, if it is already in) whose
addition gives the averaged probabilities the best validation score. A member's weight is the number of
rounds that picked it. The score is accuracy, ties broken by the lower log loss: accuracy on a few
hundred images moves in coarse steps, and without a finer tie-break the first rounds would pick at
random among equals. The ensemble kept is the best-scoring prefix of the rounds (Caruana's "select the
best ensemble seen"), so ``auto`` never ends worse on validation than the best single trial.

Only trials of one framework, of one image size and with the same validation rows can be averaged in
one exported graph; the candidates are the ``LIBRARY_SIZE`` best of those by validation accuracy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna

from automl_tl.errors import UserError
from automl_tl.search.budget import ranked_trials
from automl_tl.storage.artifacts import trial_dir
from automl_tl.storage.predictions import SplitPredictions, load_predictions

AUTO_ROUNDS = 25  # AutoGluon's ensemble_size of old: enough rounds for weights in steps of 4 %
LIBRARY_SIZE = 20  # the candidates: the best trials by validation accuracy
MAX_ROUNDS = 200


@dataclass(frozen=True)
class Candidate:
    """A completed trial that can join an ensemble, with its kept validation and test probabilities."""

    trial: int
    framework: str
    val: SplitPredictions
    test: SplitPredictions | None


@dataclass(frozen=True)
class Ensemble:
    """The chosen members (trial numbers) and their weights (rounds won), with the scores of their average."""

    members: tuple[int, ...]
    weights: tuple[int, ...]
    val_accuracy: float
    val_log_loss: float
    test_accuracy: float | None
    best_single: int  # the best candidate alone, the ensemble's baseline
    best_single_val_accuracy: float
    best_single_test_accuracy: float | None
    rounds: int
    latency_bound_ms: float | None = None  # the members' batch-1 latencies summed, when a limit applied

    @property
    def size(self) -> int:
        return len(self.members)

    def describe(self) -> str:
        parts = ", ".join(f"trial {m} x{w}" for m, w in zip(self.members, self.weights))
        return f"{self.size} trial(s) from {self.rounds} selection rounds: {parts}"

    def to_dict(self) -> dict[str, object]:
        return {"members": list(self.members), "weights": list(self.weights), "val_accuracy": self.val_accuracy,
                "val_log_loss": self.val_log_loss, "test_accuracy": self.test_accuracy, "rounds": self.rounds,
                "best_single_trial": self.best_single, "best_single_val_accuracy": self.best_single_val_accuracy,
                "best_single_test_accuracy": self.best_single_test_accuracy}


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
    """Caruana's selection with replacement over candidates' (N, classes) validation ``probabilities``.

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
        chosen = max(keys, key=lambda i: (keys[i], -i))  # the earlier (better-ranked) trial on a tie
        picks.append(chosen)
        spent.add(chosen)
        total += probabilities[chosen]
        if best_key is None or keys[chosen] > best_key:
            best_key, best_length = keys[chosen], round_number
    return (picks[:best_length] if keep_best_prefix else picks), len(picks)


def candidates(study: optuna.Study, artifacts: Path, limit: int | None = LIBRARY_SIZE) -> list[Candidate]:
    """The study's best completed trials (``limit`` of them; None: all) that kept their predictions,
    compatible with the best of them: the same framework and the same validation rows (so one graph can
    average them)."""
    found: list[Candidate] = []
    for trial in ranked_trials(study):
        kept = load_predictions(trial_dir(artifacts, trial.number))
        if not kept or "val" not in kept:
            continue
        framework = str(trial.user_attrs.get("framework", ""))
        if found and (framework != found[0].framework or not np.array_equal(kept["val"].index, found[0].val.index)):
            continue
        found.append(Candidate(trial.number, framework, kept["val"], kept.get("test")))
        if len(found) == limit:
            break
    return found


def select_ensemble(found: list[Candidate], rounds: int | str = "auto", latency_ms: Mapping[int, float] | None = None,
                    max_latency_ms: float | None = None) -> Ensemble:
    """Select an ensemble from ``found`` (best first): ``auto`` runs ``AUTO_ROUNDS`` rounds and keeps the
    best prefix; a number runs exactly that many rounds. With ``max_latency_ms``, only trials with a
    measured batch-1 latency (``latency_ms``, by trial) take part, and the members' latencies may sum to
    at most the limit: an upper bound of the ensemble's, whose shared pretrained prefix runs once."""
    if not found:
        raise UserError("No completed trial of this study kept its validation probabilities (trials keep them "
                        "since automl-tl 0.1 issue 16), so no ensemble can be selected. Run more trials with "
                        "`automl-tl search`, or export a single trial.")
    if rounds != "auto" and not (isinstance(rounds, int) and 1 <= rounds <= MAX_ROUNDS):
        raise UserError(f"--ensemble {rounds}: give auto, or a number of selection rounds from 1 to {MAX_ROUNDS}.")
    costs = None
    if max_latency_ms is not None:
        timed = latency_ms or {}
        found = [c for c in found if c.trial in timed and timed[c.trial] <= max_latency_ms][:LIBRARY_SIZE]
        if not found:
            raise UserError(f"--max-latency-ms {max_latency_ms:g}: no completed trial with kept validation probabilities "
                            f"runs within it at batch 1 (see the ms column of `automl-tl show`). Raise the limit, or "
                            f"search again with --max-latency-ms.")
        costs = [timed[c.trial] for c in found]
    labels = found[0].val.labels
    count = AUTO_ROUNDS if rounds == "auto" else int(rounds)
    picks, ran = greedy_selection([c.val.probabilities for c in found], labels, count, keep_best_prefix=rounds == "auto",
                                  costs=costs, budget=max_latency_ms)
    order = sorted(set(picks), key=picks.index)
    weights = [picks.count(i) for i in order]
    val = weighted_mean([found[i].val.probabilities for i in order], weights)
    val_accuracy, val_loss = score(val, labels)
    tests = [found[i].test for i in order]
    test_accuracy = None
    if all(t is not None for t in tests) and found[0].test is not None:
        averaged = weighted_mean([t.probabilities for t in tests if t is not None], weights)
        test_accuracy = score(averaged, found[0].test.labels)[0]
    best = found[0]
    return Ensemble(
        members=tuple(found[i].trial for i in order), weights=tuple(weights), val_accuracy=val_accuracy,
        val_log_loss=val_loss, test_accuracy=test_accuracy, best_single=best.trial,
        best_single_val_accuracy=best.val.accuracy(), best_single_test_accuracy=best.test.accuracy() if best.test else None,
        rounds=ran,
        latency_bound_ms=sum(costs[i] for i in order) if costs is not None else None,
    )

"""Ensembles of a study's trials: greedy forward selection with replacement on their kept probabilities.

Members are selected by Caruana's greedy selection (``greedy_selection``) on the rows every candidate
predicted without training on them: the validation split, or under cross-validation the out-of-fold
predictions over every train and val row. The ensemble kept by ``auto`` is the best-scoring prefix of the
rounds ("select the best ensemble seen"), so on those rows it never looks worse than the best single
trial, which is exactly why that look cannot decide whether it pays. ``auto`` exports the ensemble only
when the cross-fitted check (``ensemble_crossfit``: chosen on 4/5 of the rows, scored on the rest)
finds it right on more rows than the single trial chosen the same way; otherwise the single trial.

Only trials of one framework, of one image size and with the same rows can be averaged in one exported
graph; the candidates are ``LIBRARY_SIZE`` of those, the best of each kind first (``ensemble_library``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import optuna

from automl_tl.errors import UserError
from automl_tl.storage.artifacts import trial_dir
from automl_tl.storage.predictions import SplitPredictions, load_predictions
from automl_tl.study_record import FRAMEWORK_ATTR, study_cv_folds
from automl_tl.tuning.budget import ranked_trials
from automl_tl.tuning.ensemble_crossfit import MIN_ROWS, CrossFit, cross_fit
from automl_tl.tuning.ensemble_library import diverse_order, diversity_group
from automl_tl.tuning.greedy_selection import greedy_selection, score, weighted_mean
from automl_tl.tuning.scoring import MIN_FOLDS

__all__ = ["AUTO_ROUNDS", "LIBRARY_SIZE", "MAX_ROUNDS", "Candidate", "CrossFit", "Ensemble", "candidates",
           "decision_text", "greedy_selection", "score", "select_ensemble", "weighted_mean"]

AUTO_ROUNDS = 25  # AutoGluon's ensemble_size of old: enough rounds for weights in steps of 4 %
LIBRARY_SIZE = 20  # the candidates
MAX_ROUNDS = 200


@dataclass(frozen=True)
class Candidate:
    """A completed trial that can join an ensemble, with its kept validation and test probabilities."""

    trial: int
    framework: str
    val: SplitPredictions
    test: SplitPredictions | None
    rank: int = 0  # its place in the study's ranking (0: the best trial)
    group: tuple[object, ...] = ()  # backbone, cut, head kind, fine-tuned (``diversity_group``)
    out_of_fold: bool = False  # ``val`` holds cross-validation's out-of-fold predictions


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
    decision: CrossFit | None = None  # the cross-fitted check of the selection against the single trial
    proposed: Ensemble | None = None  # the ensemble ``auto`` selected but did not keep, as the check refused it

    @property
    def size(self) -> int:
        return len(self.members)

    def describe(self) -> str:
        parts = ", ".join(f"trial {m} x{w}" for m, w in zip(self.members, self.weights))
        return f"{self.size} trial(s) from {self.rounds} selection rounds: {parts}"

    def to_dict(self) -> dict[str, object]:
        result: dict[str, object] = {
            "members": list(self.members), "weights": list(self.weights), "val_accuracy": self.val_accuracy,
            "val_log_loss": self.val_log_loss, "test_accuracy": self.test_accuracy, "rounds": self.rounds,
            "best_single_trial": self.best_single, "best_single_val_accuracy": self.best_single_val_accuracy,
            "best_single_test_accuracy": self.best_single_test_accuracy}
        if self.decision is not None:
            result["cross_fitted"] = self.decision.to_dict()
        if self.proposed is not None:
            result["refused"] = {key: value for key, value in self.proposed.to_dict().items() if key != "cross_fitted"}
        return result


def candidates(study: optuna.Study, artifacts: Path, limit: int | None = LIBRARY_SIZE,
               diverse: bool = True) -> list[Candidate]:
    """The library: ``limit`` (None: all) of the study's completed trials that kept their predictions and are
    compatible with the best of them (the same framework and rows, so one graph can average them), the best
    trial first. ``diverse``: each group's best before near-copies (``diverse_order``); else by rank alone."""
    out_of_fold = study_cv_folds(study.user_attrs) >= MIN_FOLDS
    found: list[Candidate] = []
    for rank, trial in enumerate(ranked_trials(study)):
        kept = load_predictions(trial_dir(artifacts, trial.number))
        if not kept or "val" not in kept:
            continue
        framework = str(trial.user_attrs.get(FRAMEWORK_ATTR, ""))
        if found and (framework != found[0].framework or not np.array_equal(kept["val"].index, found[0].val.index)):
            continue
        found.append(Candidate(trial.number, framework, kept["val"], kept.get("test"), rank,
                               diversity_group(trial.params), out_of_fold))
        if not diverse and len(found) == limit:
            break
    return diverse_order(found, lambda c: c.group, limit) if diverse else found


def _ensemble(found: list[Candidate], picks: list[int], ran: int, costs: list[float] | None) -> Ensemble:
    order = sorted(set(picks), key=picks.index)
    weights = [picks.count(i) for i in order]
    labels = found[0].val.labels
    val_accuracy, val_loss = score(weighted_mean([found[i].val.probabilities for i in order], weights), labels)
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
        rounds=ran, latency_bound_ms=sum(costs[i] for i in order) if costs is not None else None,
    )


def select_ensemble(found: list[Candidate], rounds: int | str = "auto", latency_ms: Mapping[int, float] | None = None,
                    max_latency_ms: float | None = None, decide: bool = True) -> Ensemble:
    """Select an ensemble from ``found`` (the best trial first): ``auto`` runs ``AUTO_ROUNDS`` rounds and keeps
    the best prefix, and (with ``decide``) keeps the best trial alone unless the cross-fitted check says the
    ensemble pays; a number runs exactly that many rounds and keeps them (the check is only reported). With
    ``max_latency_ms``, only trials with a measured batch-1 latency (``latency_ms``, by trial) take part, and
    the members' latencies may sum to at most the limit: an upper bound of the ensemble's, whose shared
    pretrained prefix runs once."""
    if not found:
        raise UserError("No completed trial of this study kept its validation probabilities (trials run by an older "
                        "automl-tl have none), so no ensemble can be selected. Run more trials with `automl-tl search`, "
                        "or export a single trial without --ensemble.")
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
    probabilities = [c.val.probabilities for c in found]
    picks, ran = greedy_selection(probabilities, labels, count, keep_best_prefix=rounds == "auto", costs=costs,
                                  budget=max_latency_ms)
    chosen = _ensemble(found, picks, ran, costs)
    if not decide:
        return chosen
    check = cross_fit(probabilities, labels, count, rounds == "auto", [c.rank for c in found], costs, max_latency_ms,
                      found[0].out_of_fold)
    chosen = replace(chosen, decision=check)
    if rounds == "auto" and chosen.size > 1 and not (check is not None and check.pays):
        return replace(_ensemble(found, [0], ran, costs), decision=check, proposed=chosen)
    return chosen


def decision_text(ensemble: Ensemble, asked: int | str = "auto") -> str:
    """Why ``export --ensemble`` (``asked``: auto or K) exports what it exports, with the cross-fitted figures."""
    check = ensemble.decision
    single = f"trial {ensemble.best_single}"
    if check is None:
        few = f"Fewer than {MIN_ROWS} scored images: too few to check an ensemble on rows it was not chosen on"
        return f"{few}, so `auto` keeps {single} alone." if asked == "auto" else f"{few}. Exported as asked (--ensemble {asked})."
    figures = (f"on {check.rows} {check.rows_name()} it was not chosen on (chosen on {check.folds - 1}/{check.folds} of them "
               f"and scored on the rest, class-stratified, every row scored in {check.repeats} deals), the ensemble "
               f"procedure scored {check.ensemble_accuracy:.4f} (log loss "
               f"{check.ensemble_log_loss:.3f}) against {check.single_accuracy:.4f} ({check.single_log_loss:.3f}) for "
               f"the best single trial chosen the same way ({single} on all rows)")
    if asked != "auto":
        verdict = "would export the ensemble" if check.pays else f"would export {single} alone"
        return f"Cross-fitted check: {figures}; `--ensemble auto` {verdict}. Exported as asked (--ensemble {asked})."
    if ensemble.size > 1:
        return f"Cross-fitted check: {figures}, so the ensemble is exported."
    if ensemble.proposed is None:
        return f"Cross-fitted check: {figures}. Selection on all rows keeps {single} alone, so it is exported alone."
    return (f"Cross-fitted check: {figures}, so {single} is exported alone: the ensemble must be right on more of "
            f"these rows than the single trial to be expected to pay (a tie goes to the single trial, the smaller "
            f"and faster model; accuracy decides, as it ranks the trials).")

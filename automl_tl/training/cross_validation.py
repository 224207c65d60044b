"""One trial scored by K-fold cross-validation over train and val, then refit on all of them.

Each fold runs the whole trial (``run_trial``) on ``fold_table``: trained on the other folds, validated
on its own. Every fold's validation probabilities are kept for every epoch, so the out-of-fold (OOF)
predictions exist for each epoch count: each train or val image predicted by the one model that never
saw it. The trial's value is the OOF accuracy of the best epoch count, one number chosen on all those
images at once, not K maxima each chosen on a fold of them (which would pick noise again, at a smaller
scale). The refit then trains the same recipe on train and val together for exactly that many epochs,
so the saved model is the recipe the score describes, trained on every labelled image; the test split
is never used to score or choose anything. docs/decisions.md ("Honest selection on small data") has the
figures.

The folds' tables hold the same images as the study's, so frozen-prefix activations are read from the
cache in every fold after the first. Only fold 0 is reported to the pruner, exactly as a trial without
cross-validation is; a trial that survives it runs the other folds unpruned.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from automl_tl.training.engine import (
    EpochCallback,
    ProbabilitiesCallback,
    PruneCheck,
    StartCallback,
    TrialOutcome,
    checked_loss,
    effective_config,
    phase_schedule,
    run_trial,
)
from automl_tl.training.folds import assign_folds, fold_table, refit_table, scored_rows
from automl_tl.training.metrics import accuracy, balanced_accuracy
from automl_tl.types import BackboneSpec, EpochResult, FrameworkAdapter, ImageTable, Phase, TrialConfig

EpochScores = Callable[[int], float]


def out_of_fold(per_fold: list[list[np.ndarray]], folds: list[np.ndarray], rows: np.ndarray,
                num_classes: int) -> list[np.ndarray]:
    """For each epoch, the probabilities of ``rows`` (in that order), each row from the fold that held it
    out. ``per_fold[j][e]`` holds fold ``j``'s validation probabilities after epoch ``e``, row for row with
    ``folds[j]``."""
    position = {int(row): i for i, row in enumerate(rows)}
    epochs = min(len(epochs_seen) for epochs_seen in per_fold)
    pooled = []
    for epoch in range(epochs):
        oof = np.zeros((len(rows), num_classes), dtype=np.float32)
        for fold, seen in zip(folds, per_fold, strict=True):
            oof[[position[int(r)] for r in fold]] = seen[epoch]
        pooled.append(oof)
    return pooled


def keep_into(seen: list[np.ndarray]) -> ProbabilitiesCallback:
    """A callback for ``run_trial`` that appends every epoch's validation probabilities to ``seen``."""
    def keep(_result: EpochResult, probabilities: np.ndarray) -> None:
        seen.append(np.asarray(probabilities, dtype=np.float32))
    return keep


def train_for_epochs(adapter: FrameworkAdapter, spec: BackboneSpec, config: TrialConfig, data: ImageTable,
                     epochs: int, on_epoch: EpochCallback | None = None, save_to: Path | None = None,
                     reported: EpochScores | None = None) -> np.ndarray:
    """Train ``config`` on ``data``'s training split for its first ``epochs`` epochs, with no validation,
    and return the test split's probabilities; the weights go to ``save_to``. The schedule is the trial's
    own, cut short, so the refit's rates match the folds' epoch for epoch. ``on_epoch`` gets each epoch
    with ``reported(epoch)`` (the cross-validated accuracy of stopping there) as its accuracy."""
    session = adapter.start_trial(spec, config, data)
    try:
        current: Phase | None = None
        for epoch, phase in enumerate(phase_schedule(config, len(spec.blocks))[:epochs]):
            if phase is not current:
                session.set_phase(phase)
                current = phase
            epoch_start = time.perf_counter()
            loss = checked_loss(session.train_epoch(), epoch, phase)
            if on_epoch is not None:
                score = reported(epoch) if reported is not None else float("nan")
                on_epoch(EpochResult(epoch=epoch, phase=phase, train_loss=loss, val_accuracy=score,
                                     val_balanced_accuracy=score, seconds=time.perf_counter() - epoch_start))
        probabilities = np.asarray(session.predict_split("test"), dtype=np.float32)
        if save_to is not None:
            session.save(save_to)
        return probabilities
    finally:
        session.close()


def run_trial_scored(
    adapter: FrameworkAdapter,
    spec: BackboneSpec,
    config: TrialConfig,
    data: ImageTable,
    folds: int,
    on_epoch: EpochCallback | None = None,
    should_prune: PruneCheck | None = None,
    save_to: Path | None = None,
    on_start: StartCallback | None = None,
    *,
    seed: int = 0,
    refit: bool = True,
) -> TrialOutcome:
    """``run_trial`` scored by ``folds``-fold cross-validation over ``data``'s train and val splits.

    The outcome's value is the out-of-fold accuracy of the best epoch count, and its ``val_probabilities``
    the out-of-fold predictions of that epoch count over ``val_index`` (every train and val row). With
    ``refit`` the saved weights and the test scores are a model trained on train and val for that many
    epochs; without it, fold 0's model at its own best epoch (kept to measure one against the other).
    ``seed`` fixes the folds: pass the study's, so every trial is scored on the same folds."""
    started = time.perf_counter()
    rows = scored_rows(data)
    assignment = assign_folds(data.relpaths, data.labels, rows, folds, seed)
    per_fold: list[list[np.ndarray]] = []
    fold_outcomes: list[TrialOutcome] = []
    fold_seconds: list[float] = []
    for j in range(folds):
        seen: list[np.ndarray] = []
        fold_start = time.perf_counter()
        fold_outcomes.append(run_trial(
            adapter, spec, config, fold_table(data, assignment, j), on_epoch,
            should_prune if j == 0 else None,  # later folds run unpruned: see the module's docstring
            save_to=save_to if (j == 0 and not refit) else None,
            on_start=on_start if j == 0 else None,
            on_val_probabilities=keep_into(seen),
        ))
        per_fold.append(seen)
        fold_seconds.append(time.perf_counter() - fold_start)
    effective = effective_config(spec, config)
    labels = data.labels[rows]
    pooled = out_of_fold(per_fold, assignment, rows, data.num_classes)
    by_epoch = [accuracy(probabilities, labels) for probabilities in pooled]
    best = int(np.argmax(by_epoch))  # the first maximum: the fewest epochs among equal scores
    refit_seconds = 0.0
    if refit:
        refit_start = time.perf_counter()
        test_probabilities = train_for_epochs(adapter, spec, effective, refit_table(data), best + 1, on_epoch,
                                              save_to, reported=lambda epoch: by_epoch[epoch])
        refit_seconds = time.perf_counter() - refit_start
    else:
        test_probabilities = np.asarray(fold_outcomes[0].test_probabilities, dtype=np.float32)
    test_labels = data.labels[data.splits["test"]]
    folds_at_best = [accuracy(per_fold[j][best], data.labels[assignment[j]]) for j in range(folds)]
    return TrialOutcome(
        val_accuracy=by_epoch[best],
        val_balanced_accuracy=balanced_accuracy(pooled[best], labels),
        best_epoch=best,
        best_phase=phase_schedule(effective, len(spec.blocks))[best],
        test_accuracy=accuracy(test_probabilities, test_labels),
        test_balanced_accuracy=balanced_accuracy(test_probabilities, test_labels),
        config=effective,
        history=fold_outcomes[0].history,
        seconds=time.perf_counter() - started,
        val_probabilities=pooled[best],
        test_probabilities=test_probabilities,
        val_index=rows,
        scoring={
            "scoring": f"{folds}-fold cross-validation",
            "cv_folds": folds,
            "cv_refit": refit,
            "cv_fold_accuracies": [round(a, 4) for a in folds_at_best],
            "cv_epoch_accuracies": [round(a, 4) for a in by_epoch],
            "cv_fold_seconds": [round(s, 2) for s in fold_seconds],
            "cv_refit_seconds": round(refit_seconds, 2),
        },
    )

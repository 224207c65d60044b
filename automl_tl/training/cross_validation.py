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
cross-validation is; a trial that survives it runs the other folds unpruned. ``after_fold`` may stop the
remaining folds after any fold (the trial is then pruned).

Under a deadline, fold 0's model is always saved, so a deadline in a later fold or in the refit leaves a
usable model: the value is then the out-of-fold accuracy over the completed folds' rows, without a refit
(``cv_folds_done`` says how many folds it stands on). A deadline inside fold 0 raises ``DeadlineReached``.

Each completed fold can be kept (automl_tl/training/fold_resume.py), so that a retry after an interrupt reads the
finished folds back, tells their hooks again, and trains from the first fold not kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from automl_tl.runtime.deadline import Deadline, DeadlineReached, running_under
from automl_tl.study_record import (
    CV_EPOCH_ACCURACIES_ATTR,
    CV_FOLD_ACCURACIES_ATTR,
    CV_FOLD_SECONDS_ATTR,
    CV_FOLDS_ATTR,
    CV_FOLDS_DONE_ATTR,
    CV_REFIT_ATTR,
    CV_REFIT_SECONDS_ATTR,
    CV_SCORED_IMAGES_ATTR,
    SCORING_ATTR,
)
from automl_tl.training.engine import (
    DEADLINE,
    EpochCallback,
    EpochDriver,
    PauseDue,
    ProbabilitiesCallback,
    PruneCheck,
    PruneTrial,
    StartCallback,
    TrialOutcome,
    effective_config,
    head_fitter,
    phase_schedule,
    predict_mirrored,
    run_trial,
)
from automl_tl.training.fold_resume import FinishedFold, FoldResume
from automl_tl.training.folds import assign_folds, fold_table, refit_table, scored_rows
from automl_tl.training.metrics import accuracy, balanced_accuracy
from automl_tl.types import BackboneSpec, EpochResult, FrameworkAdapter, ImageTable, TrialConfig

EpochScores = Callable[[int], float]
FoldCheck = Callable[[int, float], bool]  # (fold index, that fold's best accuracy): False stops the remaining folds


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
                     reported: EpochScores | None = None, deadline: Deadline | None = None,
                     mirrored_test: list[np.ndarray] | None = None) -> np.ndarray:
    """Train ``config`` on ``data``'s training split for its first ``epochs`` epochs, with no validation,
    and return the test split's probabilities; the weights go to ``save_to``. The schedule is the trial's
    own, cut short, so the refit's rates match the folds' epoch for epoch. ``on_epoch`` gets each epoch
    with ``reported(epoch)`` (the cross-validated accuracy of stopping there) as its accuracy. A
    ``deadline`` that passes before the last epoch ends raises ``DeadlineReached``; nothing is saved. The test
    split's probabilities on the mirrored images go into ``mirrored_test``, where the session can mirror."""
    session = adapter.start_trial(spec, config, data)
    try:
        driver = EpochDriver(session, np.zeros(0, np.int64), deadline, fit_head=head_fitter(session, spec, config, data))
        for epoch, phase in enumerate(phase_schedule(config, len(spec.blocks))[:epochs]):
            epoch_start = driver.clock.spent
            loss = driver.run_epoch(epoch, phase, between="during the refit", inside="during the refit")
            if on_epoch is not None:
                score = reported(epoch) if reported is not None else float("nan")
                on_epoch(EpochResult(epoch=epoch, phase=phase, train_loss=loss, val_accuracy=score,
                                     val_balanced_accuracy=score, seconds=driver.clock.spent - epoch_start,
                                     spent=driver.clock.spent))
        with running_under(None):  # the finished refit is always kept
            probabilities = np.asarray(session.predict_split("test"), dtype=np.float32)
            flipped = predict_mirrored(session, "test")
            if mirrored_test is not None and flipped is not None:
                mirrored_test.append(flipped)
            if save_to is not None:
                session.save(save_to)
        return probabilities
    finally:
        session.close()


@dataclass
class FoldHooks:
    """What a cross-validated trial tells as its folds run (``run_trial_scored`` says when each is called)."""

    on_epoch: EpochCallback | None = None
    should_prune: PruneCheck | None = None
    on_start: StartCallback | None = None
    pause_due: PauseDue | None = None
    after_fold: FoldCheck | None = None
    on_fold: Callable[[int], None] | None = None


def restored_folds(resume: FoldResume | None, spec: BackboneSpec, config: TrialConfig, save_to: Path | None,
                   hooks: FoldHooks) -> list[FinishedFold]:
    """The folds a retry reads back from ``resume`` instead of training them (fold 0's model into ``save_to`` when
    given), told to ``hooks`` as when they ran: fold 0's epochs to ``on_epoch`` and ``should_prune`` (the trial's
    curve stays whole and its pruner checks are rebuilt), each fold's accuracy to ``after_fold``; a check that
    prunes the trial prunes it again (``PruneTrial``)."""
    effective = effective_config(spec, config)
    folds = resume.load(effective, save_to) if resume is not None else []
    if folds and hooks.on_start is not None:
        hooks.on_start(effective)
    for j, fold in enumerate(folds):
        if hooks.on_fold is not None:
            hooks.on_fold(j)
        history = fold.outcome.history
        for done, result in enumerate(history if j == 0 else []):  # only fold 0 is reported, as when it ran
            if hooks.on_epoch is not None:
                hooks.on_epoch(result)
            if hooks.should_prune is not None and hooks.should_prune(result):
                raise PruneTrial(history[: done + 1])
        if hooks.after_fold is not None and not hooks.after_fold(j, fold.outcome.val_accuracy):
            raise PruneTrial(folds[0].outcome.history, fold=j)
    return folds


def train_fold(adapter: FrameworkAdapter, spec: BackboneSpec, config: TrialConfig, data: ImageTable,
               assignment: list[np.ndarray], j: int, hooks: FoldHooks, save_to: Path | None,
               deadline: Deadline | None) -> FinishedFold | None:
    """Fold ``j`` trained (``run_trial`` on ``fold_table``; only fold 0 is told to the pruner and saved to
    ``save_to``), with every epoch's validation probabilities; None when the deadline cut it short, which in
    fold 0 raises ``DeadlineReached``."""
    seen: list[np.ndarray] = []
    seen_mirrored: list[np.ndarray] = []  # the same on the mirrored images, where the session can mirror
    fold_start = time.perf_counter()
    if hooks.on_fold is not None:
        hooks.on_fold(j)
    try:
        outcome = run_trial(
            adapter, spec, config, fold_table(data, assignment, j), hooks.on_epoch,
            hooks.should_prune if j == 0 else None,  # later folds run unpruned: see the module's docstring
            save_to=save_to, on_start=hooks.on_start if j == 0 else None, on_val_probabilities=keep_into(seen),
            deadline=deadline, on_val_mirrored=keep_into(seen_mirrored), pause_due=hooks.pause_due if j == 0 else None,
        )
    except DeadlineReached:
        if j == 0:
            raise
        return None
    if outcome.stopped_by == DEADLINE:  # a fold cut short is not a completed fold
        if j == 0:
            raise DeadlineReached(f"the --timeout passed during fold 1 of {len(assignment)}, after {outcome.epochs_run} "
                                  f"of its {len(phase_schedule(effective_config(spec, config), len(spec.blocks)))} epochs")
        return None
    return FinishedFold(outcome, seen, seen_mirrored, time.perf_counter() - fold_start)


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
    deadline: Deadline | None = None,
    pause_due: PauseDue | None = None,
    after_fold: FoldCheck | None = None,
    on_fold: Callable[[int], None] | None = None,
    on_refit: Callable[[int], None] | None = None,
    resume: FoldResume | None = None,
) -> TrialOutcome:
    """``run_trial`` scored by ``folds``-fold cross-validation over ``data``'s train and val splits.

    The outcome's value is the out-of-fold accuracy of the best epoch count, and its ``val_probabilities``
    the out-of-fold predictions of that epoch count over ``val_index`` (every train and val row). With
    ``refit`` the saved weights and the test scores are a model trained on train and val for that many
    epochs; without it, fold 0's model at its own best epoch (kept to measure one against the other).
    ``seed`` fixes the folds: pass the study's, so every trial is scored on the same folds.

    ``pause_due`` applies to fold 0 (the one the pruner sees), ``deadline`` to every fold and the refit (see
    the module's docstring). ``after_fold(j, accuracy)`` is called after each completed fold with its best
    accuracy; False prunes the trial there (``PruneTrial`` with ``fold=j``). ``on_fold(j)`` is called as fold
    ``j`` starts, ``on_refit(epochs)`` as the refit does (for a progress display).

    ``resume``: where each completed fold is kept, and read back when the trial starts (automl_tl/training/
    fold_resume.py): the folds read back are told to the hooks again (``restored_folds``), and training starts at
    the first fold not kept."""
    started = time.perf_counter()
    rows = scored_rows(data)
    assignment = assign_folds(data.relpaths, data.labels, rows, folds, seed)
    keep_fold_zero = not refit or deadline is not None  # a deadline later on leaves fold 0's model
    fold_zero_to = save_to if keep_fold_zero else None
    hooks = FoldHooks(on_epoch, should_prune, on_start, pause_due, after_fold, on_fold)
    if resume is not None:
        resume.bind(assignment)
    finished = restored_folds(resume, spec, config, fold_zero_to, hooks)  # a retry's folds done before
    for j in range(len(finished), folds):
        if j > 0 and deadline is not None and deadline.passed():
            break
        fold = train_fold(adapter, spec, config, data, assignment, j, hooks, fold_zero_to if j == 0 else None, deadline)
        if fold is None:  # the deadline cut it short: a fold cut short is not a completed fold
            break
        finished.append(fold)
        if after_fold is not None and not after_fold(j, fold.outcome.val_accuracy):
            raise PruneTrial(finished[0].outcome.history, fold=j)
        if resume is not None:  # after the fold was told: an interrupt in after_fold repeats it
            resume.save(j, fold, fold_zero_to if j == 0 else None)
    per_fold = [fold.seen for fold in finished]
    mirrored_per_fold = [fold.mirrored for fold in finished]
    fold_outcomes = [fold.outcome for fold in finished]
    fold_seconds = [fold.seconds for fold in finished]
    done = len(per_fold)
    effective = effective_config(spec, config)
    scored_here = np.isin(rows, np.concatenate(assignment[:done])) if done < folds else np.ones(len(rows), bool)
    rows_done = rows[scored_here]
    labels = data.labels[rows_done]
    pooled = out_of_fold(per_fold, assignment[:done], rows_done, data.num_classes)
    by_epoch = [accuracy(probabilities, labels) for probabilities in pooled]
    best = int(np.argmax(by_epoch))  # the first maximum: the fewest epochs among equal scores
    mirrored_pooled = (out_of_fold(mirrored_per_fold, assignment[:done], rows_done, data.num_classes)
                       if all(len(m) == len(s) for m, s in zip(mirrored_per_fold, per_fold)) else [])
    refit_seconds, refitted = 0.0, False
    refit_mirrored: list[np.ndarray] = []
    if refit and done == folds and not (deadline is not None and deadline.passed()):
        refit_start = time.perf_counter()
        if on_refit is not None:
            on_refit(best + 1)
        try:
            test_probabilities = train_for_epochs(adapter, spec, effective, refit_table(data), best + 1, on_epoch,
                                                  save_to, reported=lambda epoch: by_epoch[epoch], deadline=deadline,
                                                  mirrored_test=refit_mirrored)
            refitted = True
        except DeadlineReached:
            pass  # fold 0's model, saved above, stays the trial's
        refit_seconds = time.perf_counter() - refit_start
    if not refitted:
        test_probabilities = np.asarray(fold_outcomes[0].test_probabilities, dtype=np.float32)
        refit_mirrored = [] if fold_outcomes[0].test_flip_probabilities is None else [fold_outcomes[0].test_flip_probabilities]
    cut_short = done < folds or (refit and not refitted)
    test_labels = data.labels[data.splits["test"]]
    folds_at_best = [accuracy(per_fold[j][best], data.labels[assignment[j]]) for j in range(done)]
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
        val_index=rows_done,
        val_flip_probabilities=mirrored_pooled[best] if len(mirrored_pooled) > best else None,
        test_flip_probabilities=refit_mirrored[0] if refit_mirrored else None,
        mirror_seconds=sum(o.mirror_seconds for o in fold_outcomes),
        scoring={
            SCORING_ATTR: f"{folds}-fold cross-validation" + (f", {done} folds done" if done < folds else ""),
            CV_FOLDS_ATTR: folds,
            CV_FOLDS_DONE_ATTR: done,
            CV_SCORED_IMAGES_ATTR: int(len(rows_done)),  # the out-of-fold predictions the score stands on
            CV_REFIT_ATTR: refitted,
            CV_FOLD_ACCURACIES_ATTR: [round(a, 4) for a in folds_at_best],
            CV_EPOCH_ACCURACIES_ATTR: [round(a, 4) for a in by_epoch],
            CV_FOLD_SECONDS_ATTR: [round(s, 2) for s in fold_seconds],
            CV_REFIT_SECONDS_ATTR: round(refit_seconds, 2),
        },
        stopped_by=DEADLINE if cut_short else None,
        epochs_run=len(by_epoch),
    )

"""A trial's saved training state, from the study's side: which folder is its own (every retry of a trial shares
its first attempt's, a continuation the stopped trial's), what it was saved with, when it is kept and when
removed (automl_tl/training/resume.py has how it is saved and proven; automl_tl/training/fold_resume.py, the finished
folds a cross-validated trial keeps instead)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import optuna
from optuna.trial import FrozenTrial

from automl_tl.runtime.deadline import DeadlineReached
from automl_tl.runtime.interrupts import storage_write
from automl_tl.storage.artifacts import resume_dir
from automl_tl.study_record import (
    RESUME_NOTE_ATTR,
    RESUMED_FOLDS_ATTR,
    RESUMED_FROM_ATTR,
    ContinuationOf,
    retry_history,
)
from automl_tl.training.engine import DEADLINE, TrialOutcome
from automl_tl.training.fold_resume import FoldResume
from automl_tl.training.resume import TrialResume
from automl_tl.types import TrialConfig


def state_owner(trial: FrozenTrial) -> int:
    """The trial whose folder holds ``trial``'s saved training state: the one its continuation record names
    (``ContinuationOf``), else its first attempt (every retry shares it)."""
    continues = ContinuationOf.from_attrs(trial.user_attrs)
    if continues is not None:
        return continues.state_of
    return (retry_history(trial.system_attrs) or [trial.number])[0]


def trial_resume(study: optuna.Study, base: Path, trial: optuna.Trial, config: TrialConfig) -> TrialResume:
    """The trial's saved training state (``resume_dir`` of ``state_owner``), for its parameters and ``config``."""
    # Not the seed: each attempt draws its own (seed + trial number), and a resumed one goes on with the saved
    # generators of the attempt it continues.
    identity = {"params": dict(trial.params), "config": {k: getattr(config, k) for k in config.__dataclass_fields__ if k != "seed"}}
    return TrialResume(resume_dir(base, state_owner(study._storage.get_trial(trial._trial_id))), identity)


def saved_state(study: optuna.Study, base: Path, trial: optuna.Trial, config: TrialConfig,
                folds: int) -> TrialResume | FoldResume:
    """What the trial keeps in its state folder: its saved epochs (``trial_resume``) or, scored by ``folds``-fold
    cross-validation, its finished folds (for the same identity; tied to the folds' rows as the trial starts)."""
    plain = trial_resume(study, base, trial, config)
    return FoldResume(plain.folder, plain.identity) if folds > 1 else plain


def resumed(study: optuna.Study, base: Path, trial: optuna.Trial, config: TrialConfig,
            run: Callable[[TrialResume], TrialOutcome]) -> TrialOutcome:
    """``run(resume)``, ``resume`` being the trial's saved training state (``trial_resume``; proven to be saved
    with its parameters and ``config`` before use). Kept when a Ctrl-C, SIGTERM or the deadline stops the trial (its
    retry goes on from it), and when the deadline stopped it before its last epoch (its continuation goes on from
    it: automl_tl/tuning/continuation.py); however else the trial ends, removed. Either way what it did for the
    trial is recorded on it (``RESUMED_FROM_ATTR``, ``RESUME_NOTE_ATTR``)."""
    resume = trial_resume(study, base, trial, config)
    return _run_keeping(trial, resume, run, lambda result: result.epochs_run < result.config.epochs)


def folds_resumed(study: optuna.Study, base: Path, trial: optuna.Trial, config: TrialConfig,
                  run: Callable[[FoldResume], TrialOutcome]) -> TrialOutcome:
    """``run(resume)`` for a trial scored by cross-validation, ``resume`` being its finished folds, kept in the
    folder ``trial_resume`` names and proven against the same identity (and the folds' rows). Kept when a Ctrl-C,
    SIGTERM or the deadline raises out of the trial (its retry goes on from its first unfinished fold), and when the
    deadline stopped it after some folds or in its refit (it completes on the folds done, and its continuation
    restores them: automl_tl/tuning/continuation.py); however else it ends, removed. What they did for the trial is
    recorded on it (``RESUMED_FOLDS_ATTR``, ``RESUME_NOTE_ATTR``)."""
    plain = trial_resume(study, base, trial, config)
    resume = FoldResume(plain.folder, plain.identity)
    return _run_keeping(trial, resume, run, lambda result: resume.kept_folds > 0)


State = TypeVar("State", TrialResume, FoldResume)


def _run_keeping(trial: optuna.Trial, resume: State, run: Callable[[State], TrialOutcome],
                 unfinished: Callable[[TrialOutcome], bool]) -> TrialOutcome:
    """``run(resume)``; the state is kept when an interrupt or the deadline raises out of it, and when the deadline
    stopped it with ``unfinished(result)`` (something its continuation goes on from); else removed."""
    try:
        result = run(resume)
    except (KeyboardInterrupt, DeadlineReached):
        raise  # the retry goes on from what was saved
    except BaseException:
        _end(trial, resume, keep=False)
        raise
    _end(trial, resume, keep=result.stopped_by == DEADLINE and unfinished(result))
    return result


def _end(trial: optuna.Trial, resume: TrialResume | FoldResume, keep: bool) -> None:
    """Record what the trial's saved state did for it (the epochs or folds read back, the note on why it was not
    used), and remove the state unless ``keep``."""
    if not keep:
        resume.discard()
    if isinstance(resume, TrialResume):
        attr, read_back = RESUMED_FROM_ATTR, resume.resumed_epochs
    else:
        attr, read_back = RESUMED_FOLDS_ATTR, resume.resumed_folds
    with storage_write():
        if read_back:
            trial.set_user_attr(attr, read_back)
        if resume.note:
            trial.set_user_attr(RESUME_NOTE_ATTR, resume.note)

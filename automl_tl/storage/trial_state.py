"""A trial's saved training state, from the study's side: which folder is its own (every retry of a trial shares
its first attempt's), what it was saved with, when it is kept and when removed (automl_tl/training/resume.py has
how it is saved and proven)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import optuna

from automl_tl.runtime.deadline import DeadlineReached
from automl_tl.runtime.interrupts import storage_write
from automl_tl.storage.artifacts import resume_dir
from automl_tl.study_record import RESUME_NOTE_ATTR, RESUMED_FROM_ATTR, retry_history
from automl_tl.training.resume import TrialResume
from automl_tl.types import TrialConfig

T = TypeVar("T")


def resumed(study: optuna.Study, base: Path, trial: optuna.Trial, config: TrialConfig, run: Callable[[TrialResume], T]) -> T:
    """``run(resume)``, ``resume`` being the trial's saved training state (``resume_dir`` of its first attempt,
    proven to be saved with its parameters and ``config``). Kept when a Ctrl-C, SIGTERM or the deadline stops
    the trial (its retry goes on from it); however else the trial ends, recorded on it (``RESUMED_FROM_ATTR``,
    ``RESUME_NOTE_ATTR``) and removed."""
    first = (retry_history(study._storage.get_trial(trial._trial_id).system_attrs) or [trial.number])[0]
    # Not the seed: each attempt draws its own (seed + trial number), and a resumed one goes on with the saved
    # generators of the attempt it continues.
    identity = {"params": dict(trial.params), "config": {k: getattr(config, k) for k in config.__dataclass_fields__ if k != "seed"}}
    resume = TrialResume(resume_dir(base, first), identity)
    try:
        result = run(resume)
    except (KeyboardInterrupt, DeadlineReached):
        raise  # the retry goes on from the last saved epoch
    except BaseException:
        _end_resume(trial, resume)
        raise
    _end_resume(trial, resume)
    return result


def _end_resume(trial: optuna.Trial, resume: TrialResume) -> None:
    """Record what the trial's saved state did for it, and remove the state."""
    resume.discard()
    with storage_write():
        if resume.resumed_epochs:
            trial.set_user_attr(RESUMED_FROM_ATTR, resume.resumed_epochs)
        if resume.note:
            trial.set_user_attr(RESUME_NOTE_ATTR, resume.note)

"""A trial that goes on from its saved training state (automl_tl/storage/trial_state.py): priced at the epochs it
has left, and, when the --timeout stopped it before its last epoch, queued to go on in the next run.

A trial the deadline stops after some whole epochs keeps them: it is COMPLETE with the score of its best epoch, as
before, and ranked as what it is. Its saved state is kept, and a continuation is queued: a new trial with the same
parameters (``ContinuationOf`` says which trial it continues, after how many epochs, and whose state it reads). The
next run of the search takes it first; it reads the state, tells the pruner and the display the epochs trained
before, and trains only the rest. It is a trial of its own on the leaderboard, next to the shorter one.

A cross-validated trial (--cv) keeps whole folds instead of epochs (automl_tl/training/fold_resume.py). One the
deadline stops after some folds, or in its refit once every fold is done, completes on the folds done (its score
says how many) and keeps them; its continuation restores them and trains the folds left, then the refit. It is
priced at the runs it has left (the folds left and the refit, each counted as one K+1-th of the whole prediction)
and run with the folds the kept ones were planned with, never shrunk.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_tl.storage.trial_state import state_owner
from automl_tl.study_record import (
    CV_FOLDS_DONE_ATTR,
    PREDICTED_ATTR,
    PREDICTED_RAW_ATTR,
    RESUMED_FOLDS_ATTR,
    RESUMED_FROM_ATTR,
    ContinuationOf,
)
from automl_tl.training.engine import DEADLINE, TrialOutcome, effective_config
from automl_tl.training.fold_resume import FoldResume
from automl_tl.training.resume import TrialResume
from automl_tl.tuning.cost import FitPlan
from automl_tl.tuning.retries import CARRIED_USER_ATTRS
from automl_tl.tuning.search_costs import SearchCosts
from automl_tl.types import BackboneSpec, TrialConfig

SHRUNK_FIELDS = ("epochs", "switch_epoch", "freeze_fraction")  # what fitting a trial to the time left may change


def resumed_config(resume: TrialResume | FoldResume, config: TrialConfig) -> tuple[TrialConfig, int]:
    """The configuration a trial with a saved state runs, and the whole epochs (or, for ``FoldResume``, the
    finished folds) saved (0: none it can use): the
    asked ``config``; or, where the state was saved by this trial shrunk to fit the time left (the same
    parameters; only ``SHRUNK_FIELDS`` differ, with no more epochs), that shrunk configuration, so that the
    retry goes on from the state rather than starting again at another size."""
    saved = resume.saved_identity()
    if saved is None:
        return config, 0
    epochs, identity = saved
    asked, found = resume.identity, identity.get("config")
    if identity == asked:
        return config, epochs
    if identity.get("params") != asked.get("params") or not isinstance(found, dict) or found.keys() != asked["config"].keys():
        return config, 0
    if any(found[k] != v for k, v in asked["config"].items() if k not in SHRUNK_FIELDS):
        return config, 0
    try:
        shrunk = replace(config, **{k: type(getattr(config, k))(found[k]) for k in SHRUNK_FIELDS})
    except (TypeError, ValueError):
        return config, 0
    return (shrunk, epochs) if shrunk.epochs <= config.epochs else (config, 0)


def resumed_plan(costs: SearchCosts, spec: BackboneSpec, config: TrialConfig, done: int,
                 folds: int = 0) -> tuple[FitPlan | None, float]:
    """The plan of a trial with ``done`` whole epochs saved (or, scored by ``folds``-fold cross-validation, ``done``
    folds kept): as asked, never shrunk (a shrunk trial is another trial, and could not use the state; the folds are
    those the kept ones were planned with), priced at the epochs (or the folds and the refit) it has left; None when
    not even its next epoch (or fold) is predicted to fit in the time left. With it, the share of the whole trial's
    prediction that is left to run."""
    folds = folds if folds > 1 else costs.model.folds
    units = folds + 1 if folds > 1 else max(effective_config(spec, config).epochs, 1)  # K folds and the refit
    share = max(units - done, 0) / units
    try:
        whole = costs.model.predict(spec, config, folds)
    except Exception:  # a prediction is advice: should the model fail, the trial runs as asked
        whole = None
    left = costs.seconds_left()
    if whole is None:
        return FitPlan(config, folds, None), share
    if left is not None and share > 0 and whole.seconds / units > left:
        return None, share
    return FitPlan(config, folds, whole.seconds * share), share


def planned_resume(costs: SearchCosts, state: TrialResume | FoldResume, spec: BackboneSpec,
                   config: TrialConfig) -> tuple[FitPlan | None, float, str]:
    """The plan of a trial (``SearchCosts.plan``), or, with epochs or folds kept in ``state`` (a retry, a
    continuation), ``resumed_plan``'s; with the share of the whole prediction left to run and, when not even the
    next epoch or fold of the kept ones' trial fits, why it waits."""
    config, done = resumed_config(state, config)
    if not done:
        return costs.plan(spec, config), 1.0, ""
    folds = saved_folds(state)
    plan, share = resumed_plan(costs, spec, config, done, folds)
    unit = "fold" if folds else "epoch"
    return plan, share, "" if plan is not None else f"not even its next {unit} (after the {done} kept) fits in the time left"


def continued_after(state: TrialResume | FoldResume, outcome: TrialOutcome, folds: int) -> tuple[int, int] | None:
    """For a trial that ended with ``outcome`` (planned with ``folds``) and keeps ``state``: the epochs and the folds
    its continuation goes on after (``to_continue``, with something kept); None when it gets none."""
    if not to_continue(outcome, folds) or kept_progress(state) <= 0:
        return None
    return outcome.epochs_run, folds_done(outcome)


def saved_folds(state: TrialResume | FoldResume) -> int:
    """The folds a trial's kept folds were planned with (0: not cross-validated, or not recorded)."""
    return state.saved_planned() if isinstance(state, FoldResume) else 0


def kept_progress(state: TrialResume | FoldResume) -> int:
    """The whole epochs (or folds) kept for this trial's identity, read without proving them (0: none)."""
    saved = state.saved_identity()
    return saved[0] if saved is not None and saved[1] == state.identity else 0


def priced_attrs(attrs: dict[str, Any], share: float) -> dict[str, Any]:
    """The plan's recorded predictions for the share of the trial left to run (what its seconds will measure:
    calibration compares the two)."""
    scaled = dict(attrs)
    for key, digits in ((PREDICTED_ATTR, 2), (PREDICTED_RAW_ATTR, 3)):
        if isinstance(scaled.get(key), (int, float)):
            scaled[key] = round(float(scaled[key]) * share, digits)
    return scaled


def to_continue(outcome: TrialOutcome, folds: int) -> bool:
    """Whether a finished trial was stopped by the deadline before its last epoch, or, scored by ``folds``-fold
    cross-validation, before its last fold or in its refit: with a state kept (the caller checks), a continuation
    goes on from it."""
    return outcome.stopped_by == DEADLINE and (folds > 1 or outcome.epochs_run < outcome.config.epochs)


def folds_done(outcome: TrialOutcome) -> int:
    """The folds a cross-validated trial's score stands on (0: not cross-validated)."""
    return int(outcome.scoring.get(CV_FOLDS_DONE_ATTR) or 0)


def stopped_note(outcome: TrialOutcome, goes_on: bool) -> str:
    """What the search says of a trial the deadline stopped ("" for one it did not), and of its continuation."""
    if outcome.stopped_by != DEADLINE:
        return ""
    done = folds_done(outcome)
    where = f"after {done} fold(s)" if done else f"after {outcome.epochs_run} epoch(s)"
    return f"  [yellow]stopped by --timeout {where}[/]" + ("; queued to go on from there in the next run" if goes_on else "")


def queue_continuation(study: optuna.Study, trial: FrozenTrial, epochs: int, folds: int = 0) -> ContinuationOf:
    """Queue the continuation of ``trial`` (stopped after ``epochs`` whole epochs, or cross-validated, with ``folds``
    folds done): a WAITING trial with its parameters that reads the state ``trial`` read and saved. Queued once,
    however often this is called."""
    continuation = ContinuationOf(trial.number, epochs, state_owner(trial), folds)
    for other in study.get_trials(deepcopy=False):
        if ContinuationOf.from_attrs(other.user_attrs) == continuation:
            return continuation
    carried = {k: v for k, v in trial.user_attrs.items() if k in CARRIED_USER_ATTRS}
    study.add_trial(optuna.trial.create_trial(
        state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
        user_attrs={**carried, **continuation.user_attrs()}))
    return continuation


def resumed_note(user_attrs: dict[str, Any]) -> str:
    """What the search says of a trial that went on from a saved state: a continuation of a trial the deadline
    stopped, or a retry of one Ctrl-C stopped ("" for a trial that started afresh as planned)."""
    continues = ContinuationOf.from_attrs(user_attrs)
    resumed = int(user_attrs.get(RESUMED_FROM_ATTR) or 0)
    folds = int(user_attrs.get(RESUMED_FOLDS_ATTR) or 0)
    if continues is not None and continues.folds:
        if not folds:
            return f"  continues trial {continues.number}, from fold 1: its kept folds were not used"
        return f"  continues trial {continues.number} after its {folds} kept fold(s)"
    if continues is not None:
        if not resumed:
            return f"  continues trial {continues.number}, from epoch 1: its saved state was not used"
        return f"  continues trial {continues.number} from epoch {resumed + 1}"
    if resumed:
        return f"  went on from epoch {resumed + 1}: epochs 1-{resumed} of the stopped attempt were kept"
    if folds:
        return f"  went on from fold {folds + 1}: folds 1-{folds} of the stopped attempt were kept"
    return ""

"""A trial that goes on from its saved training state (automl_tl/storage/trial_state.py): priced at the epochs it
has left, and, when the --timeout stopped it before its last epoch, queued to go on in the next run.

A trial the deadline stops after some whole epochs keeps them: it is COMPLETE with the score of its best epoch, as
before, and ranked as what it is. Its saved state is kept, and a continuation is queued: a new trial with the same
parameters (``ContinuationOf`` says which trial it continues, after how many epochs, and whose state it reads). The
next run of the search takes it first; it reads the state, tells the pruner and the display the epochs trained
before, and trains only the rest. It is a trial of its own on the leaderboard, next to the shorter one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_tl.storage.trial_state import state_owner
from automl_tl.study_record import (
    PREDICTED_ATTR,
    PREDICTED_RAW_ATTR,
    RESUMED_FOLDS_ATTR,
    RESUMED_FROM_ATTR,
    ContinuationOf,
)
from automl_tl.training.engine import DEADLINE, TrialOutcome, effective_config
from automl_tl.training.resume import TrialResume
from automl_tl.tuning.cost import FitPlan
from automl_tl.tuning.retries import CARRIED_USER_ATTRS
from automl_tl.tuning.search_costs import SearchCosts
from automl_tl.types import BackboneSpec, TrialConfig

SHRUNK_FIELDS = ("epochs", "switch_epoch", "freeze_fraction")  # what fitting a trial to the time left may change


def resumed_config(resume: TrialResume, config: TrialConfig) -> tuple[TrialConfig, int]:
    """The configuration a trial with a saved state runs, and the whole epochs saved (0: none it can use): the
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


def resumed_plan(costs: SearchCosts, spec: BackboneSpec, config: TrialConfig, done: int) -> tuple[FitPlan | None, float]:
    """The plan of a trial with ``done`` whole epochs saved: as asked, never shrunk (a shrunk trial is another
    trial, and could not use the state), priced at the epochs it has left; None when not even its next epoch is
    predicted to fit in the time left. With it, the share of the whole trial's prediction that is left to run."""
    epochs = max(effective_config(spec, config).epochs, 1)
    share = max(epochs - done, 0) / epochs
    try:
        whole = costs.model.predict(spec, config, costs.model.folds)
    except Exception:  # a prediction is advice: should the model fail, the trial runs as asked
        whole = None
    left = costs.seconds_left()
    if whole is None:
        return FitPlan(config, costs.model.folds, None), share
    if left is not None and share > 0 and whole.seconds / epochs > left:
        return None, share
    return FitPlan(config, costs.model.folds, whole.seconds * share), share


def priced_attrs(attrs: dict[str, Any], share: float) -> dict[str, Any]:
    """The plan's recorded predictions for the share of the trial left to run (what its seconds will measure:
    calibration compares the two)."""
    scaled = dict(attrs)
    for key, digits in ((PREDICTED_ATTR, 2), (PREDICTED_RAW_ATTR, 3)):
        if isinstance(scaled.get(key), (int, float)):
            scaled[key] = round(float(scaled[key]) * share, digits)
    return scaled


def to_continue(outcome: TrialOutcome, folds: int) -> bool:
    """Whether a finished trial stopped by the deadline before its last epoch, not scored by cross-validation
    (those save no state): with a state saved (the caller checks), a continuation goes on from it."""
    return outcome.stopped_by == DEADLINE and folds <= 1 and outcome.epochs_run < outcome.config.epochs


def queue_continuation(study: optuna.Study, trial: FrozenTrial, epochs: int) -> ContinuationOf:
    """Queue the continuation of ``trial`` (stopped after ``epochs`` whole epochs): a WAITING trial with its
    parameters that reads the state ``trial`` read and saved. Queued once, however often this is called."""
    continuation = ContinuationOf(trial.number, epochs, state_owner(trial))
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
    if continues is not None:
        if not resumed:
            return f"  continues trial {continues.number}, from epoch 1: its saved state was not used"
        return f"  continues trial {continues.number} from epoch {resumed + 1}"
    if resumed:
        return f"  went on from epoch {resumed + 1}: epochs 1-{resumed} of the stopped attempt were kept"
    folds = int(user_attrs.get(RESUMED_FOLDS_ATTR) or 0)
    if folds:
        return f"  went on from fold {folds + 1}: folds 1-{folds} of the stopped attempt were kept"
    return ""

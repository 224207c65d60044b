"""A study's budget (the number of finished, COMPLETE + PRUNED, trials it should end with) and its finished trials.

A study searched with ``--timeout`` and no ``--trials`` has no count: its budget is recorded as null
(``None``), and it runs until the deadline of each command or worker that works on it."""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_tl.study_record import BUDGET_ATTR, CV_FOLDS_ATTR, CV_REFIT_ATTR, CV_SCORED_IMAGES_ATTR, STOPPED_BY_ATTR

FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def study_budget(study: optuna.Study, fallback: int | None) -> int | None:
    """The budget recorded with the study (None: unbounded), or ``fallback`` for a study from before budgets."""
    if BUDGET_ATTR not in study.user_attrs:
        return fallback
    recorded = study.user_attrs[BUDGET_ATTR]
    return None if recorded is None else int(recorded)


def describe_budget(budget: int | None) -> str:
    """A budget as messages say it."""
    return "no count (until --timeout)" if budget is None else str(budget)


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def without_its_refit(trial: FrozenTrial) -> bool:
    """Whether the deadline cut a cross-validated trial short before its refit: its saved model is then fold 0's,
    trained on (K-1)/K of the images, not the recipe retrained on all of them that its score describes."""
    attrs = trial.user_attrs
    return attrs.get(STOPPED_BY_ATTR) == "deadline" and int(attrs.get(CV_FOLDS_ATTR) or 1) > 1 and not attrs.get(CV_REFIT_ATTR)


def selection_score(trial: FrozenTrial) -> float:
    """The score a trial is ranked by: its value, less one standard error (sqrt(p(1-p)/n) over the n images it was
    scored on) for a trial ``without_its_refit``, whose model is weaker than its score says: it takes the lead only
    by more than the score's own noise. On the stamps at --timeout 600 such a trial, a head-only one whose refit the
    deadline cut, led a fine-tuned one by 0.001 and scored 0.880 held out against its 0.900."""
    value = float(trial.value or 0.0)
    scored = int(trial.user_attrs.get(CV_SCORED_IMAGES_ATTR) or 0)
    if not without_its_refit(trial) or scored <= 0:
        return value
    return value - math.sqrt(max(value * (1.0 - value), 0.0) / scored)


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best ``selection_score`` first (the score itself, but for a cross-validated trial that
    the deadline left without its refit); ties go to the earlier trial."""
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(completed, key=lambda t: (-selection_score(t), t.number))

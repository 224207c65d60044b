"""A study's budget (the number of finished, COMPLETE + PRUNED, trials it should end with) and its finished trials."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

BUDGET_ATTR = "budget"
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)


def study_budget(study: optuna.Study, fallback: int) -> int:
    """The budget recorded with the study, or ``fallback`` for a study from before budgets."""
    return int(study.user_attrs.get(BUDGET_ATTR, fallback))


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED_STATES))


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best validation score first; ties go to the earlier trial."""
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(completed, key=lambda t: (-(t.value or 0.0), t.number))

"""A study's budget (the number of finished, COMPLETE + PRUNED, trials it should end with) and its finished trials.

A study searched with ``--timeout`` and no ``--trials`` has no count: its budget is recorded as null
(``None``), and it runs until the deadline of each command or worker that works on it."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

BUDGET_ATTR = "budget"
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


def ranked_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials, best validation score first; ties go to the earlier trial."""
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(completed, key=lambda t: (-(t.value or 0.0), t.number))

"""A trial is queued again at most MAX_RETRIES times, and what a not-started trial records says whether it was."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from automl_tl.study_record import RetryOf
from automl_tl.tuning.retries import MAX_RETRIES, can_requeue, requeue


def failed_trial(history: list[int]) -> optuna.trial.FrozenTrial:
    system = RetryOf(history[-1], "killed", history).system_attrs() if history else {}
    return optuna.trial.create_trial(state=TrialState.FAIL, params={"lr": 0.1}, distributions={"lr": FloatDistribution(0.01, 1)},
                                     system_attrs=system)


def test_can_requeue_is_the_rule_requeue_follows():
    study = optuna.create_study()
    for runs in range(1, MAX_RETRIES + 2):
        trial = failed_trial(list(range(runs - 1)))
        assert can_requeue(trial) == (runs <= MAX_RETRIES)
        assert requeue(study, trial, "killed") == can_requeue(trial)

"""Trials that could not finish through no fault of their own are queued again with the same parameters.

A worker killed mid-trial (found by its stale heartbeat), a trial stopped by Ctrl-C or SIGTERM, and
a trial left running by a killed single-process search all come back as a WAITING trial that the
next free worker picks up first. The retry records where it came from in the same system attributes
Optuna's own retry callback uses (``failed_trial``, ``retry_history``), so Optuna's tools read it too.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from automl_tl.study_record import CONTINUES_ATTR, SMART_START_ATTR, WARM_START_ATTR, Failure, RetryOf
from automl_tl.study_record import retry_history as recorded_history

MAX_RETRIES = 3  # a trial that kills its worker every time (out of memory, say) is given up after this
STALE_REASON = "its worker stopped sending heartbeats (killed, or cut off from the database)"
# why smart start (or --warm-start) chose it; the stopped trial it continues, and whose saved state it goes on from
CARRIED_USER_ATTRS = (SMART_START_ATTR, WARM_START_ATTR, CONTINUES_ATTR)
NOT_STARTED = "not started"  # how the reason of a trial too big for the time left begins (failed untrained, queued again)


def retry_history(trial: FrozenTrial) -> list[int]:
    """Numbers of the earlier attempts of this trial, oldest first; empty for a first attempt."""
    return recorded_history(trial.system_attrs)


def can_requeue(trial: FrozenTrial) -> bool:
    """Whether ``trial``, once failed, may be queued again: its parameters ran at most ``MAX_RETRIES`` times."""
    return len(retry_history(trial)) + 1 <= MAX_RETRIES


def requeue(study: optuna.Study, trial: FrozenTrial, reason: str) -> bool:
    """Queue a WAITING copy of a finished-as-failed ``trial``. False when it has been retried enough."""
    if not can_requeue(trial):
        return False
    history = retry_history(trial) + [trial.number]
    retry = RetryOf(trial.number, reason, history)
    user_attrs: dict[str, Any] = {k: v for k, v in trial.user_attrs.items() if k in CARRIED_USER_ATTRS}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={**user_attrs, **retry.user_attrs()},
            system_attrs=retry.system_attrs(),
        )
    )
    return True


def has_retry(study: optuna.Study, number: int) -> bool:
    """Whether some trial is already the retry of trial ``number``."""
    return any(retry_history(t)[-1:] == [number] for t in study.get_trials(deepcopy=False))


def fail_and_requeue(study: optuna.Study, trial_id: int, reason: str) -> Failure:
    """Queue the retry first, then fail the trial, so a process killed between the two steps leaves a
    RUNNING trial that the next check handles again (and ``has_retry`` keeps it to one retry),
    never a failed trial without a retry.

    Returns the failure as recorded: its reason, which says whether the trial was queued again or given up
    (after ``MAX_RETRIES`` retries of the same parameters), and that fact itself (``requeued``)."""
    storage = study._storage
    frozen = storage.get_trial(trial_id)
    attempt = len(retry_history(frozen)) + 1
    if has_retry(study, frozen.number) or requeue(study, frozen, reason):
        recorded = Failure(f"{reason}; queued again (retry {attempt} of {MAX_RETRIES})", requeued=True)
    else:
        recorded = Failure(f"{reason}; not queued again: these parameters were tried {attempt} times, and a trial "
                           f"is retried at most {MAX_RETRIES} times", requeued=False)
    try:
        for key, value in recorded.to_attrs().items():
            storage.set_trial_user_attr(trial_id, key, value)
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # its worker finished it after all; the retry runs as one extra attempt of the same parameters
    return recorded

"""A trained trial's figures, as the user attributes it is recorded with."""

from __future__ import annotations

from typing import Any

from automl_tl.runtime.memory import resident_mb
from automl_tl.study_record import (
    BEST_EPOCH_ATTR,
    BEST_PHASE_ATTR,
    EPOCHS_RUN_ATTR,
    MIRROR_SECONDS_ATTR,
    RSS_MB_ATTR,
    SECONDS_ATTR,
    STOPPED_BY_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_BALANCED_ATTR,
    VAL_ACCURACY_ATTR,
    VAL_BALANCED_ATTR,
)
from automl_tl.training.engine import TrialOutcome


def outcome_attrs(outcome: TrialOutcome) -> dict[str, Any]:
    """A trained trial's figures, as its user attributes."""
    stopped = {STOPPED_BY_ATTR: outcome.stopped_by} if outcome.stopped_by else {}
    return {
        VAL_ACCURACY_ATTR: outcome.val_accuracy,
        VAL_BALANCED_ATTR: outcome.val_balanced_accuracy,
        TEST_ACCURACY_ATTR: outcome.test_accuracy,
        TEST_BALANCED_ATTR: outcome.test_balanced_accuracy,
        BEST_EPOCH_ATTR: outcome.best_epoch,
        BEST_PHASE_ATTR: outcome.best_phase.value,
        SECONDS_ATTR: round(outcome.seconds, 2),
        EPOCHS_RUN_ATTR: outcome.epochs_run,
        MIRROR_SECONDS_ATTR: round(outcome.mirror_seconds, 2),  # the kept weights scored on mirrored images (--flip)
        **stopped,  # "deadline": the --timeout cut it short; it kept its best whole epoch
        RSS_MB_ATTR: round(resident_mb(), 1),  # after the trial: growth from trial to trial is a leak
        **outcome.scoring,  # under --cv: the folds, each fold's accuracy and seconds, the refit
    }

"""A study scored by K-fold cross-validation (search --cv): values, kept predictions, recorded scoring, resume."""

from __future__ import annotations

import numpy as np
import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.distributed.loop import run_search
from automl_tl.distributed.workers import read_stored_study, worker_settings
from automl_tl.errors import UserError
from automl_tl.storage.artifacts import study_folder, study_key, trial_dir
from automl_tl.storage.predictions import load_predictions
from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.study_record import SETTINGS_ATTR
from automl_tl.training.folds import scored_rows
from tests.support.stub_search import stub_settings


def settings(data, trials=3, cv_folds=3, **changes):
    return stub_settings(data, "cv", trials, 3, cv_folds=cv_folds, **changes)


def test_trials_are_scored_by_out_of_fold_accuracy_and_keep_those_predictions(stub_plugins, table, small_sample):
    result = run_search(settings(small_sample), stub_plugins, table, Console(quiet=True))
    completed = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert completed
    folder = study_folder(artifacts_dir("cv"), study_key(result.study))
    rows = scored_rows(table)
    for trial in completed:
        kept = load_predictions(trial_dir(folder, trial.number))
        assert kept is not None
        assert np.array_equal(kept["val"].index, rows), "'val' holds the out-of-fold rows: every train and val image"
        assert np.array_equal(kept["val"].labels, table.labels[rows])
        assert trial.value == pytest.approx(kept["val"].accuracy())
        assert np.array_equal(kept["test"].index, table.splits["test"])
        assert trial.user_attrs["cv_folds"] == 3 and len(trial.user_attrs["cv_fold_accuracies"]) == 3
        assert trial.user_attrs["cv_refit"] is True
    assert result.study.user_attrs[SETTINGS_ATTR]["cv_folds"] == 3
    assert result.study.user_attrs["fingerprint"]["cv_folds"] == 3


def test_resuming_with_other_scoring_is_refused_and_workers_score_as_the_study_does(stub_plugins, table, small_sample):
    run_search(settings(small_sample, trials=1), stub_plugins, table, Console(quiet=True))
    with pytest.raises(UserError, match="--cv changed from 3 folds to off"):
        run_search(settings(small_sample, trials=2, cv_folds=0), stub_plugins, table, Console(quiet=True))
    stored = read_stored_study("cv", storage_url("cv", None))
    assert worker_settings(stored, stub_plugins, str(small_sample), artifacts_dir("cv")).cv_folds == 3

"""Pruning by seconds in a real search (stub framework): a trial whose one epoch costs 125x its peers' is judged
when it has spent the rung's seconds, inside that epoch; under --cv, fold 0 decides whether the other folds run."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState, create_trial
from rich.console import Console

from automl_tl.distributed.loop import run_search
from automl_tl.study_record import CHECKS_ATTR, FIRST_RUNG_ATTR, FOLD_ZERO_ATTR
from automl_tl.tuning.fold_halving import fold_zero_record, runs_other_folds
from tests.support.stub_search import stub_settings

GOOD = {"lr": 10 ** -2.5, "head_dropout": 0.0}  # the stub's best quality
BAD = {"lr": 1e-4, "head_dropout": 0.5}  # its worst


def settings(data, trials, pruner, study_name="sec", **changes):
    return stub_settings(data, study_name, trials, 4, **{"pruner": pruner, "smart_start": False, **changes})


def enqueue(params, count=1, first_rung=None):
    def on_ready(study, finished):
        for _ in range(count):
            study.enqueue_trial(params)
        if first_rung is not None:
            study.set_user_attr(FIRST_RUNG_ATTR, first_rung)
    return on_ready


def test_a_trial_with_one_long_epoch_is_pruned_at_the_rung_seconds_inside_it(stub_plugins, table, small_sample,
                                                                             monkeypatch):
    monkeypatch.setenv("STUB_BATCHES", "4")
    monkeypatch.setenv("STUB_BATCH_SECONDS", "0.01")  # peers: epochs of about 0.04 s
    run_search(settings(small_sample, 5, "none"), stub_plugins, table, Console(quiet=True), on_ready=enqueue(GOOD, 5))
    monkeypatch.setenv("STUB_BATCHES", "100")
    monkeypatch.setenv("STUB_BATCH_SECONDS", "0.05")  # this one: an epoch of 5 s, 125x its peers'
    result = run_search(settings(small_sample, 6, "halving"), stub_plugins, table, Console(quiet=True),
                        on_ready=enqueue(BAD, first_rung=0.1))
    slow = result.study.get_trials(deepcopy=False)[-1]
    assert slow.state == TrialState.PRUNED
    seconds, _, epochs, _ = slow.user_attrs[CHECKS_ATTR][-1]
    assert epochs < 0.5, "pruned inside its first epoch, at a check the rung asked for"
    assert 0.1 <= seconds < 1.0, "judged once it had spent the first rung's 0.1 s, not after its 5-second epoch"
    assert slow.user_attrs["seconds"] < 4.0, "its whole time, set-up included, is under one epoch's"
    assert not slow.intermediate_values, "Optuna's steps stay whole epochs"


def count_sessions(plugins, monkeypatch):
    adapter = plugins.framework("stub")
    started = []
    original = adapter.start_trial

    def start_trial(spec, config, data):
        started.append(config.lr)
        return original(spec, config, data)

    monkeypatch.setattr(adapter, "start_trial", start_trial)
    return started


FINE_TUNE = {"freeze_fraction": 0.5, "switch_epoch": 2, "cut_fraction": 1.0}


def fold_zero_peers_then(params, accuracy):
    """Five finished peers whose fold 0 scored ``accuracy`` on 3 folds (they have no checks, so only the fold rule
    can judge), then a fine-tuning trial with ``params``."""
    def on_ready(study, finished):
        for _ in range(5):
            study.add_trial(create_trial(value=accuracy, user_attrs={FOLD_ZERO_ATTR: fold_zero_record(3, accuracy)}))
        study.enqueue_trial({**params, **FINE_TUNE})
    return on_ready


def test_under_cv_a_fine_tuning_trial_behind_after_fold_0_runs_no_other_fold(stub_plugins, table, small_sample,
                                                                             monkeypatch):
    started = count_sessions(stub_plugins, monkeypatch)
    behind = last_trial_behind_peers(stub_plugins, table, small_sample, BAD, 0.9)
    assert behind.user_attrs["kind"] == "fine-tune" and behind.state == TrialState.PRUNED
    assert len(started) == 1, "fold 0 only: no other fold and no refit"
    assert behind.user_attrs[FOLD_ZERO_ATTR]["folds"] == 3 and behind.user_attrs[FOLD_ZERO_ATTR]["accuracy"] < 0.9


def test_a_trial_ahead_after_fold_0_or_under_another_pruner_runs_every_fold(stub_plugins, table, small_sample,
                                                                            monkeypatch):
    started = count_sessions(stub_plugins, monkeypatch)
    ahead = last_trial_behind_peers(stub_plugins, table, small_sample, GOOD, 0.2)
    assert ahead.state == TrialState.COMPLETE and ahead.user_attrs["cv_folds_done"] == 3 and len(started) == 4
    started.clear()
    other = last_trial_behind_peers(stub_plugins, table, small_sample, BAD, 0.9, pruner="median", study_name="median")
    assert other.state == TrialState.COMPLETE and len(started) == 4


def last_trial_behind_peers(stub_plugins, table, small_sample, params, peer_accuracy, pruner="halving", **changes):
    """A 3-fold search whose last trial (``params``, fine-tuning) follows five peers of fold-0 ``peer_accuracy``."""
    result = run_search(settings(small_sample, 6, pruner, cv_folds=3, **changes), stub_plugins, table,
                        Console(quiet=True), on_ready=fold_zero_peers_then(params, peer_accuracy))
    return result.study.get_trials(deepcopy=False)[-1]


def peer_study(accuracies, folds=5):
    study = optuna.create_study(direction="maximize")
    for accuracy in accuracies:
        study.add_trial(create_trial(value=accuracy, user_attrs={FOLD_ZERO_ATTR: fold_zero_record(folds, accuracy)}))
    return study


def test_head_only_trials_always_run_every_fold_and_peers_are_on_the_same_folds():
    study = peer_study([0.8, 0.82, 0.84, 0.86, 0.88])
    assert not runs_other_folds(study, 99, "fine-tune", 5, 0.5)
    assert runs_other_folds(study, 99, "head-only", 5, 0.5), "its other folds read cached features: cheap"
    assert runs_other_folds(study, 99, "fine-tune", 5, 0.87), "in the top third"
    assert runs_other_folds(study, 99, "fine-tune", 3, 0.5), "no peer on 3 folds: nothing to compare with"
    assert runs_other_folds(peer_study([0.8, 0.9, 0.9]), 99, "fine-tune", 5, 0.5), "fewer than 4 peers"


def test_a_fold_0_accuracy_equal_to_a_peers_is_a_tie_not_a_loss():
    study = peer_study([0.9, 42 / 59, 0.5, 0.5])  # kept rounded to 4 places: 0.7119
    assert runs_other_folds(study, 99, "fine-tune", 5, 42 / 59), "42 of 59 right is 42 of 59 right, however kept"

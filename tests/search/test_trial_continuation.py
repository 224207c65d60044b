"""A trial the --timeout stops before its last epoch keeps its score, and the next run of the search continues it
from its saved state (automl_tl/tuning/continuation.py): priced at the epochs it has left, never shrunk."""

from __future__ import annotations

import dataclasses
import io
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

import automl_tl.training.engine as engine
from automl_tl.distributed.loop import run_search
from automl_tl.runtime.deadline import Deadline, running_under
from automl_tl.storage.artifacts import resume_dir, study_folder, study_key
from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.study_record import CONTINUES_ATTR, PREDICTED_ATTR, RESUMED_FROM_ATTR, ContinuationOf
from automl_tl.training.resume import MANIFEST
from automl_tl.tuning.continuation import priced_attrs, resumed_plan
from automl_tl.tuning.search_costs import SearchCosts
from tests.search.test_trial_resume import every_epoch_saved, resumable_plugins, twelve_epochs  # noqa: F401 (fixtures)
from tests.support.stub_search import stub_settings
from tests.training.test_engine import config as trial_config


@pytest.fixture
def deadline_in_epoch_9(monkeypatch):
    """The epochs (0-based) the engine trains; the first search's deadline passes inside epoch 9 (0-based 8)."""
    seen, deadline = [], Deadline.after(3600.0)
    train = engine.EpochDriver.train

    def counted(self, epoch, phase, on_check=None):
        if epoch == 8 and self.deadline is deadline:
            object.__setattr__(deadline, "seconds", 0.0)  # the --timeout passes inside the epoch
            return None
        seen.append(epoch)
        return train(self, epoch, phase, on_check)

    monkeypatch.setattr(engine.EpochDriver, "train", counted)
    return seen, deadline


def search(data, plugins, table, trials, console=None):
    settings = stub_settings(data, "c", trials, 12, smart_start=False)
    return run_search(settings, plugins, table, console or Console(quiet=True))


def stopped_after_epoch_8(small_sample, table, plugins, deadline_in_epoch_9):
    seen, deadline = deadline_in_epoch_9
    with running_under(deadline):
        first = search(small_sample, plugins, table, 1)
    assert first.stopped_by == "timeout" and seen == list(range(8))
    seen.clear()
    return first.study


def test_a_trial_the_deadline_stopped_after_epoch_8_of_12_is_continued_with_only_epochs_9_to_12(
        small_sample, table, resumable_plugins, deadline_in_epoch_9):  # noqa: F811
    study = stopped_after_epoch_8(small_sample, table, resumable_plugins, deadline_in_epoch_9)
    stopped, waiting = study.get_trials()
    assert stopped.state == TrialState.COMPLETE and stopped.user_attrs["stopped_by"] == "deadline"
    assert stopped.user_attrs["epochs_run"] == 8 and sorted(stopped.intermediate_values) == list(range(1, 9))
    assert waiting.state == TrialState.WAITING and waiting.params == stopped.params
    assert ContinuationOf.from_attrs(waiting.user_attrs) == ContinuationOf(0, 8, 0)
    assert (resume_dir(study_folder(artifacts_dir("c"), study_key(study)), 0) / MANIFEST).is_file(), "its state is kept"

    shown = io.StringIO()
    again = search(small_sample, resumable_plugins, table, 2, Console(file=shown, width=300))
    seen, _ = deadline_in_epoch_9
    assert seen == [8, 9, 10, 11], "only the epochs after the stopped trial's last one are trained"
    first, continued = again.study.get_trials()
    assert first.state == TrialState.COMPLETE and first.value == stopped.value, "the stopped trial keeps its own score"
    assert continued.state == TrialState.COMPLETE and continued.user_attrs[RESUMED_FROM_ATTR] == 8
    assert continued.user_attrs["epochs_run"] == 12 and "stopped_by" not in continued.user_attrs
    assert [continued.intermediate_values[step] for step in range(1, 9)] == [first.intermediate_values[s] for s in range(1, 9)]
    assert sorted(continued.intermediate_values) == list(range(1, 13))
    assert "continues trial 0 from epoch 9" in shown.getvalue()
    assert not resume_dir(study_folder(artifacts_dir("c"), study_key(study)), 0).exists(), "removed once it completes"


def test_the_continuation_is_never_shrunk_to_fit_the_time_left(small_sample, table, resumable_plugins,  # noqa: F811
                                                               deadline_in_epoch_9, monkeypatch):
    stopped_after_epoch_8(small_sample, table, resumable_plugins, deadline_in_epoch_9)

    def six_epochs(self, spec, config):  # what pricing the whole trial against the time left would have made of it
        from automl_tl.tuning.cost import FitPlan
        return FitPlan(dataclasses.replace(config, epochs=6, switch_epoch=3), self.model.folds, 1.0, "fewer epochs")

    monkeypatch.setattr(SearchCosts, "plan", six_epochs)
    again = search(small_sample, resumable_plugins, table, 2)
    seen, _ = deadline_in_epoch_9
    assert seen == [8, 9, 10, 11]
    continued = again.study.get_trials()[-1]
    assert continued.user_attrs[RESUMED_FROM_ATTR] == 8 and "shrunk" not in continued.user_attrs
    assert CONTINUES_ATTR in continued.user_attrs


def costs_predicting(seconds, left):
    prediction = SimpleNamespace(seconds=seconds)
    model = SimpleNamespace(folds=0, predict=lambda spec, config, folds: prediction)
    return SimpleNamespace(model=model, seconds_left=lambda: left)


def test_a_resumed_trial_is_priced_at_the_epochs_it_has_left():
    from tests.support.sample_plugins.stub_plugin import stub_spec

    spec, config = stub_spec(), dataclasses.replace(trial_config(), epochs=12, switch_epoch=6, head_fit="adam")
    plan, share = resumed_plan(costs_predicting(120.0, 45.0), spec, config, done=8)
    assert plan is not None and plan.config == config and not plan.shrunk
    assert share == pytest.approx(4 / 12) and plan.predicted_seconds == pytest.approx(40.0)
    assert resumed_plan(costs_predicting(120.0, 5.0), spec, config, done=8)[0] is None, "not even epoch 9 fits"
    assert priced_attrs({PREDICTED_ATTR: 120.0, "kind": "fine-tune"}, share) == {PREDICTED_ATTR: 40.0, "kind": "fine-tune"}


def test_the_continuation_is_queued_once_and_carried_by_its_retry(small_sample, table, resumable_plugins,  # noqa: F811
                                                                  deadline_in_epoch_9):
    from automl_tl.tuning.continuation import queue_continuation
    from automl_tl.tuning.retries import requeue

    study = stopped_after_epoch_8(small_sample, table, resumable_plugins, deadline_in_epoch_9)
    study = optuna.load_study(study_name="c", storage=storage_url("c", None))
    queue_continuation(study, study.get_trials()[0], 8)
    assert len(study.get_trials()) == 2, "queued once"
    waiting = study.get_trials()[1]
    study._storage.set_trial_state_values(waiting._trial_id, TrialState.FAIL)
    requeue(study, study.get_trials()[1], "interrupted")
    retry = study.get_trials()[2]
    assert ContinuationOf.from_attrs(retry.user_attrs) == ContinuationOf(0, 8, 0), "its retry reads the same state"


def test_a_framework_that_cannot_resume_gets_no_continuation(small_sample, table, stub_plugins, deadline_in_epoch_9):
    study = stopped_after_epoch_8(small_sample, table, stub_plugins, deadline_in_epoch_9)
    [stopped] = study.get_trials()
    assert stopped.state == TrialState.COMPLETE and stopped.user_attrs["stopped_by"] == "deadline"


def test_a_trial_shrunk_to_fit_is_continued_at_the_size_it_was_saved_with(small_sample, table, resumable_plugins,  # noqa: F811
                                                                          deadline_in_epoch_9, monkeypatch):
    def ten_epochs(self, spec, config):  # the first run fits the trial to its time left: 10 epochs, switch after 5
        from automl_tl.tuning.cost import FitPlan
        return FitPlan(dataclasses.replace(config, epochs=10, switch_epoch=5), self.model.folds, 1.0, "fewer epochs")

    with monkeypatch.context() as patched:
        patched.setattr(SearchCosts, "plan", ten_epochs)
        study = stopped_after_epoch_8(small_sample, table, resumable_plugins, deadline_in_epoch_9)
    assert study.get_trials()[0].user_attrs["shrunk"] == "fewer epochs"
    again = search(small_sample, resumable_plugins, table, 2)
    seen, _ = deadline_in_epoch_9
    assert seen == [8, 9], "the continuation runs the 10-epoch version its state was saved with"
    continued = again.study.get_trials()[-1]
    assert continued.user_attrs[RESUMED_FROM_ATTR] == 8 and continued.user_attrs["epochs_run"] == 10


def test_a_state_of_other_parameters_or_settings_is_not_adopted(tmp_path):
    from automl_tl.training.resume import TrialResume
    from automl_tl.tuning.continuation import resumed_config

    asked = dataclasses.replace(trial_config(), epochs=12, switch_epoch=6)
    fields = {k: getattr(asked, k) for k in asked.__dataclass_fields__ if k != "seed"}
    (tmp_path / MANIFEST).write_text(__import__("json").dumps({"format": 1, "history": [{}] * 3, "identity": {
        "params": {"lr": 1}, "config": {**fields, "epochs": 8, "switch_epoch": 4}}}))
    shrunk, done = resumed_config(TrialResume(tmp_path, {"params": {"lr": 1}, "config": fields}), asked)
    assert (shrunk.epochs, shrunk.switch_epoch, done) == (8, 4, 3) and shrunk.lr == asked.lr
    assert resumed_config(TrialResume(tmp_path, {"params": {"lr": 2}, "config": fields}), asked) == (asked, 0)
    other_size = {**fields, "image_size": fields["image_size"] * 2}
    assert resumed_config(TrialResume(tmp_path, {"params": {"lr": 1}, "config": other_size}), asked) == (asked, 0)
    longer = dataclasses.replace(asked, epochs=6, switch_epoch=3)
    assert resumed_config(TrialResume(tmp_path, {"params": {"lr": 1}, "config": {**fields, "epochs": 6, "switch_epoch": 3}}),
                          longer) == (longer, 0), "a state of more epochs than asked is not adopted"


def test_a_continuation_the_deadline_stops_before_a_new_epoch_is_queued_again_with_its_state(
        small_sample, table, resumable_plugins, deadline_in_epoch_9):  # noqa: F811
    stopped_after_epoch_8(small_sample, table, resumable_plugins, deadline_in_epoch_9)
    seen, deadline = deadline_in_epoch_9
    object.__setattr__(deadline, "seconds", 3600.0)  # a new run whose deadline again passes inside epoch 9
    with running_under(deadline):
        second = search(small_sample, resumable_plugins, table, 2)
    assert seen == []
    _, continuation, retry = second.study.get_trials()
    assert continuation.state == TrialState.FAIL and "stopped by --timeout" in continuation.user_attrs["fail_reason"]
    assert RESUMED_FROM_ATTR not in continuation.user_attrs or continuation.user_attrs[RESUMED_FROM_ATTR] == 8
    assert retry.state == TrialState.WAITING and ContinuationOf.from_attrs(retry.user_attrs) == ContinuationOf(0, 8, 0)
    assert (resume_dir(study_folder(artifacts_dir("c"), study_key(second.study)), 0) / MANIFEST).is_file()
    third = search(small_sample, resumable_plugins, table, 2)
    assert seen == [8, 9, 10, 11] and third.study.get_trials()[-1].state == TrialState.COMPLETE

"""A cross-validated trial the --timeout stops after some folds completes on them, keeps them, and the next run of
the search continues it (automl_tl/tuning/continuation.py): the folds done are read back, not trained again."""

from __future__ import annotations

import dataclasses
import io
from types import SimpleNamespace

import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.distributed.loop import run_search
from automl_tl.runtime.deadline import Deadline, running_under
from automl_tl.storage.artifacts import resume_dir, study_folder, study_key
from automl_tl.storage.urls import artifacts_dir
from automl_tl.study_record import CV_FOLDS_DONE_ATTR, CV_REFIT_ATTR, RESUMED_FOLDS_ATTR, SCORING_ATTR, ContinuationOf
from automl_tl.training.fold_resume import FOLDS_MANIFEST
from automl_tl.tuning.continuation import resumed_plan
from tests.support.stub_search import epochs_by_fold, stub_settings, train_every_epoch_by_steps

EPOCHS = 4
FULL = list(range(EPOCHS))


@pytest.fixture(autouse=True)
def trained_by_steps(monkeypatch):
    """Every epoch is minibatch steps, 2 head-only, then 2 fine-tuning."""
    train_every_epoch_by_steps(monkeypatch)


@pytest.fixture
def deadline_in_fold_2(monkeypatch):
    """The epochs trained, by fold index (or "refit"), the first search's deadline, which passes as fold 2 (index 1)
    starts its first epoch, and where it passes (``stop["at"]``: (fold, epoch), which a test may change)."""
    stop: dict[str, object] = {"at": (1, 0)}
    deadline = Deadline.after(3600.0)

    def deadline_passes(driver, fold, epoch):
        if (fold, epoch) == stop["at"] and driver.deadline is deadline:
            object.__setattr__(deadline, "seconds", 0.0)  # the --timeout passes inside the epoch
            return True
        return False

    seen = epochs_by_fold(monkeypatch, deadline_passes)
    return seen, deadline, stop


def search(data, plugins, table, name, trials, console=None):
    settings = stub_settings(data, name, trials, EPOCHS, cv_folds=3, smart_start=False)
    return run_search(settings, plugins, table, console or Console(quiet=True))


def test_a_cv_trial_the_deadline_stopped_after_fold_1_is_continued_with_only_folds_2_and_3_and_the_refit(
        small_sample, table, stub_plugins, deadline_in_fold_2):
    seen, deadline, _ = deadline_in_fold_2
    straight = search(small_sample, stub_plugins, table, "cvs", 1).study.get_trials()[0]
    assert straight.state == TrialState.COMPLETE and seen == {0: FULL, 1: FULL, 2: FULL, "refit": seen["refit"]}
    seen.clear()

    with running_under(deadline):
        first = search(small_sample, stub_plugins, table, "cvd", 1)
    assert first.stopped_by == "timeout" and seen == {0: FULL}
    seen.clear()
    stopped, waiting = first.study.get_trials()
    assert stopped.state == TrialState.COMPLETE and stopped.user_attrs["stopped_by"] == "deadline"
    assert stopped.user_attrs[CV_FOLDS_DONE_ATTR] == 1 and "1 folds done" in stopped.user_attrs[SCORING_ATTR]
    assert waiting.state == TrialState.WAITING and waiting.params == stopped.params
    assert ContinuationOf.from_attrs(waiting.user_attrs) == ContinuationOf(0, EPOCHS, 0, 1)
    kept = resume_dir(study_folder(artifacts_dir("cvd"), study_key(first.study)), 0)
    assert (kept / FOLDS_MANIFEST).is_file() and (kept / "fold-0000").is_dir() and not (kept / "fold-0001").exists()

    shown = io.StringIO()
    again = search(small_sample, stub_plugins, table, "cvd", 2, Console(file=shown, width=300))
    assert 0 not in seen, "fold 1 is read back, not trained again"
    assert seen[1] == FULL and seen[2] == FULL and "refit" in seen
    partial, continued = again.study.get_trials()
    assert partial.state == TrialState.COMPLETE and partial.value == stopped.value, "the stopped trial keeps its score"
    assert continued.state == TrialState.COMPLETE and continued.user_attrs[RESUMED_FOLDS_ATTR] == 1
    assert continued.user_attrs[CV_FOLDS_DONE_ATTR] == 3 and "stopped_by" not in continued.user_attrs
    assert continued.value == straight.value
    assert continued.user_attrs["cv_fold_accuracies"] == straight.user_attrs["cv_fold_accuracies"]
    assert continued.intermediate_values == straight.intermediate_values, "fold 1's curve is reported whole again"
    assert "continues trial 0 after its 1 kept fold(s)" in shown.getvalue()
    assert not kept.exists(), "the kept folds are removed once the continuation completes"


def test_a_cv_trial_the_deadline_stopped_in_its_refit_is_continued_with_the_refit_alone(
        small_sample, table, stub_plugins, deadline_in_fold_2):
    seen, deadline, stop = deadline_in_fold_2
    stop["at"] = ("refit", 0)
    with running_under(deadline):
        first = search(small_sample, stub_plugins, table, "cvf", 1)
    assert seen == {0: FULL, 1: FULL, 2: FULL}
    seen.clear()
    stopped, waiting = first.study.get_trials()
    assert stopped.user_attrs[CV_FOLDS_DONE_ATTR] == 3 and stopped.user_attrs[CV_REFIT_ATTR] is False
    assert ContinuationOf.from_attrs(waiting.user_attrs) == ContinuationOf(0, EPOCHS, 0, 3)
    continued = search(small_sample, stub_plugins, table, "cvf", 2).study.get_trials()[-1]
    assert list(seen) == ["refit"], "every fold is read back; only the refit is trained"
    assert continued.state == TrialState.COMPLETE and continued.user_attrs[CV_REFIT_ATTR] is True
    assert continued.user_attrs[RESUMED_FOLDS_ATTR] == 3 and continued.value == stopped.value


def costs_predicting(seconds, left):
    prediction = SimpleNamespace(seconds=seconds)
    asked = []
    model = SimpleNamespace(folds=2, predict=lambda spec, config, folds: asked.append(folds) or prediction)
    return SimpleNamespace(model=model, seconds_left=lambda: left), asked


def test_a_cv_continuation_is_priced_at_its_folds_left_and_the_refit_with_the_folds_it_kept():
    from tests.support.sample_plugins.stub_plugin import stub_spec
    from tests.training.test_engine import config as trial_config

    spec, config = stub_spec(), dataclasses.replace(trial_config(), epochs=12, switch_epoch=6, head_fit="adam")
    costs, asked = costs_predicting(120.0, 100.0)
    plan, share = resumed_plan(costs, spec, config, done=1, folds=3)
    assert plan is not None and plan.config == config and not plan.shrunk and plan.folds == 3 and asked == [3]
    assert share == pytest.approx(3 / 4) and plan.predicted_seconds == pytest.approx(90.0)
    assert resumed_plan(costs_predicting(120.0, 20.0)[0], spec, config, done=1, folds=3)[0] is None, "no fold fits"

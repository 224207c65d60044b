"""The cost model in the search loop: a trial that would cost more than the time left is never started at full
size (shrunk; or, when nothing of it fits, not started and queued for the next run while the search goes on), and
every search samples with the cost-aware TPE, which falls back to plain TPE when its cost function fails."""

from __future__ import annotations

import io
import json
import time

import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.distributed.loop import MAX_NOT_STARTED, run_search
from automl_tl.distributed.workers import run_worker
from automl_tl.runtime.deadline import Deadline, running_under
from automl_tl.storage.artifacts import study_folder, study_key, trial_dir
from automl_tl.storage.urls import artifacts_dir
from automl_tl.tuning import search_costs
from automl_tl.tuning.cost_aware_sampler import CostAwareTPESampler
from tests.support.stub_search import stub_settings

FINE_TUNE = {"backbone": "stub_net", "head_fit": "adam", "head_units": 0, "head_dropout": 0.0, "lr": 3e-3, "augment": "none",
             "cut_fraction": 1.0, "freeze_fraction": 0.0, "switch_epoch": 1, "finetune_lr_ratio": 0.1,
             "unfrozen_bn": "train", "block_lr_decay": 1.0}


def settings(data, trials=1, epochs=20, **changes):
    return stub_settings(data, "c", trials, epochs, **{"pruner": "none", "smart_start": False, "show_bars": False,
                                                        **changes})


@pytest.fixture
def timed_stub(monkeypatch, tmp_path):
    """The stub's blocks priced at ``seconds`` per image each (in a cache folder of the test's own)."""
    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "cache"))

    def price(seconds: float) -> None:
        monkeypatch.setenv("STUB_BLOCK_SECONDS", str(seconds))

    return price


def search(stub_plugins, table, search_settings, seconds=None, params=None, ready=None):
    """``run_search`` with ``params`` queued first (or ``ready`` called), under a deadline of ``seconds`` counted
    from when the study is ready (None: no deadline); (result, what it printed)."""
    deadline = Deadline.after(3600.0) if seconds is not None else None
    out = io.StringIO()

    def armed(study, finished):
        if params is not None:
            study.enqueue_trial(params)
        if ready is not None:
            ready(study, finished)
        if deadline is not None:
            object.__setattr__(deadline, "started", time.monotonic())
            object.__setattr__(deadline, "seconds", seconds)

    with running_under(deadline):
        result = run_search(search_settings, stub_plugins, table, Console(file=out, width=300), on_ready=armed)
    return result, out.getvalue()


def test_a_trial_that_would_cost_more_than_the_time_left_is_never_started_at_full_size(
        stub_plugins, table, small_sample, timed_stub, monkeypatch):
    timed_stub(0.0005)  # a fine-tuning epoch predicted at about a second
    monkeypatch.setenv("STUB_BATCHES", "4")
    monkeypatch.setenv("STUB_BATCH_SECONDS", "0.1")  # and really 0.4 s: 20 epochs (8 s) do not fit in 6 s
    result, printed = search(stub_plugins, table, settings(small_sample), seconds=6.0, params=FINE_TUNE)
    [trial] = result.study.get_trials(deepcopy=False)
    attrs = trial.user_attrs
    assert trial.state == TrialState.COMPLETE and result.ran == 1
    assert attrs["shrunk"].startswith("shrunk to fit the") and "of 20 epochs" in attrs["shrunk"]
    assert 0 < attrs["predicted_seconds"] <= 6.0 and attrs["kind"] == "fine-tune"
    assert "stopped_by" not in attrs, "the shrunk trial finished before the deadline: it was never cut"
    folder = trial_dir(study_folder(artifacts_dir("c"), study_key(result.study)), trial.number)
    ran = json.loads((folder / "trial.json").read_text())["config"]
    assert 2 <= ran["epochs"] < 20 and attrs["epochs_run"] == ran["epochs"] and 1 <= ran["switch_epoch"] < ran["epochs"]
    assert "shrunk to fit the" in printed, "the trial's line says it was shrunk"


HEAD_ONLY = {"backbone": "stub_net", "head_fit": "adam", "head_units": 0, "head_dropout": 0.0, "lr": 3e-3, "augment": "none",
             "cut_fraction": 1.0, "freeze_fraction": 1.0}


def test_a_trial_too_big_for_the_time_left_is_not_started_and_the_search_goes_on_with_one_that_fits(
        stub_plugins, table, small_sample, timed_stub):
    timed_stub(0.01)  # a pass over the 200 images to the last of 4 blocks: 8 s; to the middle one: 4 s
    search_settings = settings(small_sample, trials=1, epochs=4)
    cut = {**HEAD_ONLY, "cut_fraction": 0.5}

    def ready(study, finished):  # the whole backbone first, which cannot fit in 6 s, then the cut one, which can
        study.enqueue_trial(HEAD_ONLY)
        study.enqueue_trial(cut)

    result, printed = search(stub_plugins, table, search_settings, seconds=6.0, params=None, ready=ready)
    assert result.stopped_by == "budget" and result.ran == 1
    not_started, ran, queued = result.study.get_trials(deepcopy=False)
    assert not_started.state == TrialState.FAIL and not_started.user_attrs["fail_reason"].startswith("not started: ")
    assert "more than the" in not_started.user_attrs["fail_reason"] and "epochs_run" not in not_started.user_attrs
    assert ran.state == TrialState.COMPLETE and ran.params == cut and ran.user_attrs["predicted_seconds"] <= 6.0
    assert queued.state == TrialState.WAITING and queued.params == HEAD_ONLY, "queued again when the run ended"
    assert not trial_dir(study_folder(artifacts_dir("c"), study_key(result.study)), not_started.number).exists()
    assert "not started" in printed


def test_when_nothing_fits_the_search_ends_and_the_next_run_starts_with_what_it_did_not_start(
        stub_plugins, table, small_sample, timed_stub):
    timed_stub(0.05)  # even one head epoch's prefix pass is predicted at many seconds
    result, printed = search(stub_plugins, table, settings(small_sample, trials=None, epochs=4), seconds=5.0,
                             params=FINE_TUNE)
    assert result.stopped_by == "nothing fits" and result.ran == 0
    trials = result.study.get_trials(deepcopy=False)
    not_started = [t for t in trials if t.state == TrialState.FAIL]
    assert len(not_started) == MAX_NOT_STARTED and len(trials) == 2 * MAX_NOT_STARTED, "then one line ends it"
    assert "the head only" in not_started[0].user_attrs["fail_reason"], "it says what its smallest version was"
    assert [t.params for t in trials if t.state == TrialState.WAITING] == [t.params for t in not_started]
    assert printed.count("not started") == MAX_NOT_STARTED
    again, _ = search(stub_plugins, table, settings(small_sample, trials=1, epochs=4))  # time enough: it runs first
    finished = again.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [t.params for t in finished] == [FINE_TUNE] and "shrunk" not in finished[0].user_attrs


def test_new_and_resumed_searches_and_workers_sample_with_the_cost_aware_sampler(stub_plugins, table, small_sample,
                                                                                   timed_stub):
    timed_stub(0.0005)
    result, _ = search(stub_plugins, table, settings(small_sample, trials=10, epochs=2))
    sampler = result.study.sampler
    assert isinstance(sampler, CostAwareTPESampler) and sampler.adjusted_calls > 0 and sampler.fallbacks == 0
    predicted = [t.user_attrs.get("predicted_seconds") for t in result.study.get_trials(deepcopy=False)]
    assert all(isinstance(p, float) and p > 0 for p in predicted), "every trial records its prediction"
    resumed, _ = search(stub_plugins, table, settings(small_sample, trials=12, epochs=2))
    assert isinstance(resumed.study.sampler, CostAwareTPESampler) and resumed.study.sampler.adjusted_calls > 0
    worker = settings(small_sample, trials=0, epochs=2)
    joined = run_worker(worker, stub_plugins, table, Console(file=io.StringIO()))
    assert isinstance(joined.study.sampler, CostAwareTPESampler)


def test_a_failing_cost_function_leaves_the_search_to_plain_tpe(stub_plugins, table, small_sample, timed_stub,
                                                                monkeypatch):
    timed_stub(0.0005)

    def broken(*args, **kwargs):
        def seconds_of(params):
            raise RuntimeError("the cost model broke")
        return seconds_of

    monkeypatch.setattr(search_costs, "params_seconds", broken)
    result, _ = search(stub_plugins, table, settings(small_sample, trials=10, epochs=2))
    sampler = result.study.sampler
    assert isinstance(sampler, CostAwareTPESampler) and sampler.fallbacks > 0 and sampler.adjusted_calls == 0
    assert all(t.state == TrialState.COMPLETE for t in result.study.get_trials(deepcopy=False))

"""Studies: budget counted as the study's total, resume, fingerprint refusal, failures, interrupts."""

from __future__ import annotations

import sys

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.data import FolderDataset, load_table
from automl_tl.distributed.loop import run_search
from automl_tl.errors import UserError
from automl_tl.storage.artifacts import study_folder, study_key, trial_dir
from automl_tl.storage.urls import artifacts_dir, storage_url
from tests.support.stub_search import stub_settings


def settings(data, name="s", trials=4, epochs=3, **changes):
    return stub_settings(data, name, trials, epochs, **changes)


def states(study):
    return [t.state for t in study.get_trials(deepcopy=False)]


def test_trials_is_the_studys_total_and_resume_adds_only_the_missing(stub_plugins, table, small_sample):
    quiet = Console(quiet=True)
    first = run_search(settings(small_sample, trials=3), stub_plugins, table, quiet)
    assert first.ran == 3
    second = run_search(settings(small_sample, trials=5), stub_plugins, table, quiet)
    assert second.ran == 2
    finished = [s for s in states(second.study) if s in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 5
    again = run_search(settings(small_sample, trials=5), stub_plugins, table, quiet)
    assert again.ran == 0 and "nothing to run" in again.notes[0]


def test_completed_trials_keep_artifacts_and_metrics(stub_plugins, table, small_sample):
    result = run_search(settings(small_sample, trials=2), stub_plugins, table, Console(quiet=True))
    for trial in result.study.get_trials(states=(TrialState.COMPLETE,)):
        assert (trial_dir(study_folder(artifacts_dir("s"), study_key(result.study)), trial.number) / "trial.json").is_file()
        assert trial.value == trial.user_attrs["val_accuracy"]
        assert {"test_accuracy", "val_balanced_accuracy", "best_epoch", "framework"} <= set(trial.user_attrs)
    assert result.study.user_attrs["class_names"][:2] == ["bear", "bird"]


def test_resume_with_a_different_setup_is_refused_and_says_what_changed(stub_plugins, table, small_sample):
    run_search(settings(small_sample, trials=1), stub_plugins, table, Console(quiet=True))
    with pytest.raises(UserError, match="--epochs changed from 3 to 4"):
        run_search(settings(small_sample, trials=2, epochs=4), stub_plugins, table, Console(quiet=True))
    other = load_table(FolderDataset().discover(str(small_sample)), 20, show_progress=False)
    with pytest.raises(UserError, match="image-size changed from 16 to 20"):
        run_search(settings(small_sample, trials=2, image_size=20), stub_plugins, other, Console(quiet=True))


def test_a_failing_trial_is_recorded_and_the_study_goes_on(stub_plugins, table, small_sample, monkeypatch):
    monkeypatch.setenv("STUB_NAN_ABOVE_LR", "0.003")
    result = run_search(settings(small_sample, trials=6), stub_plugins, table, Console(quiet=True))
    trials = result.study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed, "some sampled learning rates are above the NaN threshold"
    assert all("loss became nan" in t.user_attrs["fail_reason"] for t in failed)
    assert len([t for t in trials if t.state != TrialState.FAIL]) == 6


def test_an_exception_in_a_backbone_fails_only_that_trial(stub_plugins, table, small_sample, monkeypatch):
    monkeypatch.setenv("STUB_RAISE_ON_HEAD", "128")
    result = run_search(settings(small_sample, trials=6), stub_plugins, table, Console(quiet=True))
    failed = result.study.get_trials(states=(TrialState.FAIL,))
    assert all("stub backbone exploded" in t.user_attrs["fail_reason"] for t in failed)


def test_interrupt_fails_the_running_trial_and_queues_it_again(stub_plugins, table, small_sample, monkeypatch):
    import tests.support.sample_plugins.stub_plugin as stub_plugin
    from automl_tl.plugin.manager import load_plugins

    calls = {"n": 0}

    def interrupt(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return 0.5

    monkeypatch.setattr(stub_plugin.StubSession, "train_epoch", interrupt)
    plugins = load_plugins(extra=[("stub", stub_plugin)])
    with pytest.raises(KeyboardInterrupt):
        run_search(settings(small_sample, trials=4), plugins, table, Console(quiet=True))
    study = optuna.load_study(study_name="s", storage=storage_url("s", None))
    assert TrialState.RUNNING not in states(study)
    assert states(study).count(TrialState.FAIL) == 1
    failed = study.get_trials(states=(TrialState.FAIL,))[0]
    assert "interrupted" in failed.user_attrs["fail_reason"]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1 and waiting[0].params == failed.params and waiting[0].user_attrs["retry_of"] == failed.number

    resumed = run_search(settings(small_sample, trials=4), stub_plugins, table, Console(quiet=True))
    retried = [t for t in resumed.study.get_trials() if t.user_attrs.get("retry_of") == failed.number]
    assert len(retried) == 1 and retried[0].state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert retried[0].params == failed.params
    assert len(resumed.study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))) == 4


def test_trials_left_running_by_a_killed_process_are_failed_on_resume(stub_plugins, table, small_sample):
    run_search(settings(small_sample, trials=1), stub_plugins, table, Console(quiet=True))
    url = storage_url("s", None)
    study = optuna.load_study(study_name="s", storage=url)
    orphan = study.ask()  # a trial a SIGKILLed process never told
    orphan.suggest_float("lr", 1e-4, 3e-2, log=True)
    resumed = run_search(settings(small_sample, trials=3), stub_plugins, table, Console(quiet=True))
    assert "queued again" in resumed.notes[0]
    trials = resumed.study.get_trials()
    assert trials[orphan.number].state == TrialState.FAIL and "killed" in trials[orphan.number].user_attrs["fail_reason"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retry) == 1 and retry[0].params["lr"] == trials[orphan.number].params["lr"]
    assert TrialState.RUNNING not in states(resumed.study) and TrialState.WAITING not in states(resumed.study)


def test_a_second_process_on_the_same_sqlite_study_is_refused(stub_plugins, table, small_sample):
    from automl_tl.distributed.admission import SqliteAdmission
    from automl_tl.storage.urls import sqlite_path

    holder = SqliteAdmission(sqlite_path("s"))  # another process, as far as the lock is concerned
    try:
        with pytest.raises(UserError, match="PostgreSQL"):
            run_search(settings(small_sample, trials=1), stub_plugins, table, Console(quiet=True))
    finally:
        holder.close()
    assert run_search(settings(small_sample, trials=1), stub_plugins, table, Console(quiet=True)).ran == 1


def test_changed_data_is_refused_on_resume(stub_plugins, small_sample, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(small_sample, copy)
    first = load_table(FolderDataset().discover(str(copy)), 16, show_progress=False)
    run_search(settings(copy, trials=1), stub_plugins, first, Console(quiet=True))
    victim = next((copy / "cat").glob("*.png"))
    from PIL import Image

    Image.new("L", (28, 28), 255).save(victim)
    changed = load_table(FolderDataset().discover(str(copy)), 16, show_progress=False)
    with pytest.raises(UserError, match="the data changed"):
        run_search(settings(copy, trials=2), stub_plugins, changed, Console(quiet=True))


def test_a_trial_another_worker_failed_as_stale_is_dropped_and_the_search_goes_on(table, small_sample, monkeypatch):
    """As if this worker paused past the grace period: someone failed its trial and queued a retry."""
    import tests.support.sample_plugins.stub_plugin as stub_plugin
    from automl_tl.plugin.manager import load_plugins
    from automl_tl.tuning.retries import fail_and_requeue

    calls = {"n": 0}

    def paused():
        calls["n"] += 1
        if calls["n"] == 3:
            study = optuna.load_study(study_name="s", storage=storage_url("s", None))
            (running,) = study.get_trials(states=(TrialState.RUNNING,))
            fail_and_requeue(study, running._trial_id, "its worker stopped sending heartbeats")

    before_every_epoch(monkeypatch, stub_plugin.StubSession, paused)
    plugins = load_plugins(extra=[("stub", stub_plugin)])
    result = run_search(settings(small_sample, trials=3), plugins, table, Console(quiet=True))
    trials = result.study.get_trials()
    assert len([t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == 3
    (failed,) = [t for t in trials if t.state == TrialState.FAIL]
    assert "heartbeats" in failed.user_attrs["fail_reason"]
    assert [t for t in trials if t.user_attrs.get("retry_of") == failed.number]


def interrupting_plugins(monkeypatch, act):
    """The stub framework with ``act()`` run at the start of every second training epoch."""
    import tests.support.sample_plugins.stub_plugin as stub_plugin
    from automl_tl.plugin.manager import load_plugins

    calls = {"n": 0}

    def epoch():
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            act()

    before_every_epoch(monkeypatch, stub_plugin.StubSession, epoch)
    return load_plugins(extra=[("stub", stub_plugin)])


def before_every_epoch(monkeypatch, session_class, hook):
    """Run ``hook()`` before each training epoch of ``session_class``: an epoch of steps (``train_epoch``) or a
    fitted head's one fit (``set_linear_head``)."""
    for name in ("train_epoch", "set_linear_head"):
        original = getattr(session_class, name)

        def wrapped(self, *args, _original=original, **kwargs):
            hook()
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(session_class, name, wrapped)


def test_an_interrupt_swallowed_by_a_weakref_callback_still_stops_the_trial(table, small_sample, monkeypatch):
    """Python drops an exception raised inside a weakref callback ("Exception ignored ..."): a Ctrl-C
    whose handler ran there must still stop the run at the next epoch, not wait for a second one."""
    import signal
    import weakref

    import automl_tl.runtime.interrupts as interrupts
    class Held:
        pass

    def signal_lands_in_a_weakref_callback():
        held = Held()
        reference = weakref.ref(held, lambda _: interrupts._handler(signal.SIGINT, None))
        del held
        assert reference() is None

    plugins = interrupting_plugins(monkeypatch, signal_lands_in_a_weakref_callback)
    printed = []  # what Python would print as "Exception ignored ... Traceback"
    monkeypatch.setattr(sys, "unraisablehook", printed.append)
    with interrupts.interrupts_as_keyboard_interrupt():
        with pytest.raises(interrupts.StoppedTrial, match="queued again"):
            run_search(settings(small_sample, trials=3, smart_start=False), plugins, table, Console(quiet=True))
    study = optuna.load_study(study_name="s", storage=storage_url("s", None))
    assert states(study) == [TrialState.FAIL, TrialState.WAITING]
    assert not printed, "the swallowed interrupt is not printed as a traceback"
    assert sys.unraisablehook == printed.append, "the hook is put back after the command"


def test_the_fourth_interrupt_of_one_trial_says_it_is_not_queued_again(table, small_sample, monkeypatch):
    import automl_tl.runtime.interrupts as interrupts
    from automl_tl.tuning.retries import MAX_RETRIES

    plugins = interrupting_plugins(monkeypatch, lambda: interrupts._handler(2, None))
    details = []
    for _ in range(MAX_RETRIES + 1):
        with interrupts.interrupts_as_keyboard_interrupt(), pytest.raises(interrupts.StoppedTrial) as stopped:
            run_search(settings(small_sample, trials=2, smart_start=False), plugins, table, Console(quiet=True))
        details.append(stopped.value.detail)
    assert all(f"queued again (retry {i + 1} of {MAX_RETRIES})" in d for i, d in enumerate(details[:MAX_RETRIES]))
    assert "not queued again" in details[-1] and "queued again (" not in details[-1]
    study = optuna.load_study(study_name="s", storage=storage_url("s", None))
    assert TrialState.WAITING not in states(study)
    assert "not queued again" in study.get_trials()[-1].user_attrs["fail_reason"]


def test_a_resumed_study_does_not_draw_its_first_trials_again(small_sample, capsys):
    import optuna

    from automl_tl.cli import main
    from automl_tl.storage.urls import storage_url
    from tests.conftest import STUB_PLUGIN

    args = ["search", str(small_sample), "--study", "again", "--plugin", STUB_PLUGIN, "--framework", "stub",
            "--epochs", "2", "--image-size", "16", "--no-smart-start"]
    assert main([*args, "--trials", "2"]) == 0
    assert main([*args, "--trials", "4"]) == 0
    capsys.readouterr()
    trials = optuna.load_study(study_name="again", storage=storage_url("again", None)).get_trials()
    first, resumed = [t.params for t in trials[:2]], [t.params for t in trials[2:4]]
    assert all(params not in first for params in resumed)

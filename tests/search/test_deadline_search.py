"""Searches under a deadline: the running trial keeps its best whole epoch (COMPLETE, stopped_by deadline) or,
without one, is queued again; --timeout alone has no count of trials; the command returns in time."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.data import FolderDataset
from automl_tl.distributed.loop import run_search
from automl_tl.runtime.deadline import Deadline, running_under
from automl_tl.storage.artifacts import study_folder, study_key, trial_dir
from automl_tl.storage.urls import artifacts_dir, sqlite_path, storage_url
from automl_tl.tuning.trial_runner import trial_kind
from tests.conftest import STUB_PLUGIN
from tests.support.sample_plugins.stub_plugin import stub_spec
from tests.support.stub_search import stub_settings
from tests.training.test_engine import config as trial_config

EPOCHS_OF_ADAM = {"backbone": "stub_net", "head_fit": "adam", "head_units": 0, "head_dropout": 0.0, "lr": 3e-3,
                  "augment": "none", "cut_fraction": 1.0, "freeze_fraction": 1.0}


def settings(data, name="d", trials=3, epochs=20, **changes):
    return stub_settings(data, name, trials, epochs, **{"pruner": "none", "smart_start": False, **changes})


def armed_search(stub_plugins, table, search_settings, seconds):
    """``run_search`` under a deadline of ``seconds`` counted from when the study is ready (its preparation
    left out, so that slow machines do not change what the test sees)."""
    deadline = Deadline.after(3600.0)

    def arm(study, finished):
        study.enqueue_trial(EPOCHS_OF_ADAM)  # first: a trial of many epochs (a fitted head is one fit)
        object.__setattr__(deadline, "started", time.monotonic())
        object.__setattr__(deadline, "seconds", seconds)

    with running_under(deadline):
        return run_search(search_settings, stub_plugins, table, Console(quiet=True), on_ready=arm)


def test_the_running_trial_keeps_its_best_whole_epoch_and_counts_as_complete(stub_plugins, table, small_sample,
                                                                            monkeypatch):
    monkeypatch.setenv("STUB_BATCHES", "5")
    monkeypatch.setenv("STUB_BATCH_SECONDS", "0.1")  # half a second an epoch: the deadline cuts trial 0's 20 epochs
    result = armed_search(stub_plugins, table, settings(small_sample), seconds=2.0)
    assert result.stopped_by == "timeout" and result.ran == 1
    [trial] = result.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["stopped_by"] == "deadline"
    epochs_run = trial.user_attrs["epochs_run"]
    assert 1 <= epochs_run < 20 and trial.user_attrs["best_epoch"] < epochs_run
    assert trial.value == trial.user_attrs["val_accuracy"] and trial.user_attrs["kind"] in ("head-only", "fine-tune")
    folder = trial_dir(study_folder(artifacts_dir("d"), study_key(result.study)), trial.number)
    assert (folder / "trial.json").is_file() and (folder / "stub.json").is_file(), "its best epoch is saved"


def test_a_trial_without_a_whole_epoch_is_queued_again_and_the_search_ends(stub_plugins, table, small_sample,
                                                                           monkeypatch):
    monkeypatch.setenv("STUB_BATCHES", "20")
    monkeypatch.setenv("STUB_BATCH_SECONDS", "0.1")  # two seconds an epoch
    result = armed_search(stub_plugins, table, settings(small_sample), seconds=0.8)
    assert result.stopped_by == "timeout" and result.ran == 1
    failed, waiting = result.study.get_trials(deepcopy=False)
    assert failed.state == TrialState.FAIL and "stopped by --timeout" in failed.user_attrs["fail_reason"]
    assert "queued again" in failed.user_attrs["fail_reason"] and failed.user_attrs["seconds"] < 3
    assert waiting.state == TrialState.WAITING and waiting.params == failed.params
    folder = study_folder(artifacts_dir("d"), study_key(result.study))
    assert not trial_dir(folder, failed.number).exists(), "nothing of the stopped trial is kept"
    # The next run starts with the queued trial, and, with time enough, finishes it.
    monkeypatch.setenv("STUB_BATCHES", "2")
    monkeypatch.setenv("STUB_BATCH_SECONDS", "0")
    again = run_search(settings(small_sample, trials=1, epochs=20), stub_plugins, table, Console(quiet=True))
    done = again.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    assert [t.params for t in done] == [failed.params]


def test_timeout_alone_has_no_count_of_trials(stub_plugins, table, small_sample):
    """A budget of None (recorded as null) runs trials until the deadline, past any default count."""
    result = armed_search(stub_plugins, table, settings(small_sample, trials=None, epochs=1), seconds=2.0)
    assert result.stopped_by == "timeout" and result.ran >= 1
    assert "budget" in result.study.user_attrs and result.study.user_attrs["budget"] is None
    # Resuming with a count gives the study that count again.
    again = run_search(settings(small_sample, trials=1, epochs=1), stub_plugins, table, Console(quiet=True))
    assert again.ran == 0 and again.study.user_attrs["budget"] == 1


def test_every_trial_records_what_kind_it_is():
    spec = stub_spec()
    assert trial_kind(spec, trial_config(switch=2, epochs=4, freeze=0.5)) == "fine-tune"
    assert trial_kind(spec, trial_config(switch=4, epochs=4, freeze=0.5)) == "head-only"
    assert trial_kind(spec, trial_config(switch=2, epochs=4, freeze=1.0)) == "head-only"
    assert trial_kind(stub_spec(pretrained=False), trial_config(switch=2, epochs=4)) == "scratch"


def cli_search(small_sample, tmp_path, *options, env=None):
    """``automl-tl search`` as its own process on the stub framework; (exit code, output, seconds it ran)."""
    command = [sys.executable, "-m", "automl_tl", "search", str(small_sample), "--plugin", STUB_PLUGIN, "--framework",
               "stub", "--image-size", "16", "--no-smart-start", "--pruner", "none", "--study", "t", *options]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def load(tmp_path):
    return optuna.load_study(study_name="t", storage=storage_url("t", None))


STUB_MARGIN_S = 3.0  # stopping a 0.1 s batch, saving the trial and writing the study, on a busy 2-core machine


def test_search_timeout_returns_within_the_margin_of_the_commands_start(small_sample, tmp_path):
    """The whole command, imports included, returns within --timeout and a margin, and the trial the deadline
    cut keeps its best whole epoch; --timeout alone records no count of trials."""
    timeout = 20.0
    code, output, wall = cli_search(small_sample, tmp_path, "--timeout", str(timeout), "--epochs", "200",
                                    env={"STUB_BATCHES": "5", "STUB_BATCH_SECONDS": "0.1"})
    assert code == 0, output
    assert wall <= timeout + STUB_MARGIN_S, f"the command ran {wall:.1f}s against --timeout {timeout:g}\n{output}"
    assert "Stopped by --timeout 20s" in output and "budget no count (until --timeout)" in output
    study = load(tmp_path)
    last = study.get_trials(deepcopy=False)[-1]
    assert last.state == TrialState.COMPLETE and last.user_attrs["stopped_by"] == "deadline", output
    assert 1 <= last.user_attrs["epochs_run"] < 200 and last.user_attrs["best_epoch"] < last.user_attrs["epochs_run"]
    assert study.user_attrs["budget"] is None


def test_search_with_trials_and_timeout_keeps_the_count(small_sample):
    from automl_tl.cli import main

    assert main(["search", str(small_sample), "--plugin", STUB_PLUGIN, "--framework", "stub", "--image-size", "16",
                 "--no-smart-start", "--study", "t", "--epochs", "1", "--trials", "2", "--timeout", "120"]) == 0
    assert optuna.load_study(study_name="t", storage=storage_url("t", None)).user_attrs["budget"] == 2
    assert main(["search", str(small_sample), "--plugin", STUB_PLUGIN, "--framework", "stub", "--image-size", "16",
                 "--no-smart-start", "--study", "u", "--epochs", "1", "--trials", "1"]) == 0
    assert optuna.load_study(study_name="u", storage=storage_url("u", None)).user_attrs["budget"] == 1


def test_a_deadline_that_passes_while_the_images_are_read_stops_cleanly_with_exit_0(small_sample, capsys, tmp_path,
                                                                                   monkeypatch):
    """The first pass alone would overrun: said at the start with the estimate; then a clean stop, no trial.
    A cache of its own: images another test decoded at this size would be read in no time, past the decoding."""
    from automl_tl.cli import main
    from automl_tl.runtime.cache_paths import decoded_dir

    monkeypatch.setenv("AUTOML_TL_CACHE_DIR", str(tmp_path / "fresh_cache"))
    code = main(["search", str(small_sample), "--plugin", STUB_PLUGIN, "--framework", "stub", "--image-size", "24",
                 "--no-smart-start", "--study", "late", "--timeout", "1000"], started=time.monotonic() - 999.95)
    output = " ".join(capsys.readouterr().out.split())
    assert code == 0, output
    assert "decoding 200 images and a first backbone pass over them take about" in output
    assert "Stopped by --timeout 1000s" in output and "No trial ran" in output
    assert not list(decoded_dir().glob(".partial-*"))
    assert not sqlite_path("late").exists(), "the search stopped before its study was made"


def test_decoding_stops_at_the_deadline_and_keeps_no_partial_entry(small_sample, tmp_path):
    """The decoding threads check the deadline before each image; the half-written entry is dropped."""
    from automl_tl.data.image_store import read_hashes, stored_images
    from automl_tl.runtime.deadline import DeadlineReached
    from automl_tl.types import ResizeRule

    items = FolderDataset().discover(str(small_sample)).items
    hashes, unreadable = read_hashes(items, show_progress=False)
    gone = Deadline.after(1.0, started=time.monotonic() - 2.0)
    with running_under(gone), pytest.raises(DeadlineReached, match="decoding images"):
        stored_images(items, hashes, unreadable, 20, ResizeRule(), 10**8, root=tmp_path / "decoded", show_progress=False)
    assert not [p.name for p in (tmp_path / "decoded").iterdir() if not p.name.startswith(".lock")]


def test_complete_and_failed_trials_record_their_seconds_and_kind(stub_plugins, table, small_sample, monkeypatch):
    monkeypatch.setenv("STUB_NAN_ABOVE_LR", "0.003")
    result = run_search(settings(small_sample, trials=5, epochs=2), stub_plugins, table, Console(quiet=True))
    trials = result.study.get_trials(deepcopy=False)
    assert {t.state for t in trials} == {TrialState.COMPLETE, TrialState.FAIL}, "the stub fails trials above the lr"
    for trial in trials:
        assert trial.user_attrs["seconds"] >= 0 and trial.user_attrs["kind"] in ("head-only", "fine-tune", "scratch")

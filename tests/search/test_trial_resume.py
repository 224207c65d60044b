"""A trial stopped inside an epoch and run again goes on from its last finished epoch (automl_tl/training/resume.py):
through a whole search with the stub framework, and through the engine with a real torch session."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

import automl_tl.training.engine as engine
import automl_tl.training.resume as resume_module
import tests.support.sample_plugins.stub_plugin as stub_plugin
from automl_tl.capabilities import ResumableSession
from automl_tl.distributed.loop import run_search
from automl_tl.plugin.manager import load_plugins
from automl_tl.storage.artifacts import resume_dir, study_folder, study_key
from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.study_record import RESUME_NOTE_ATTR, RESUMED_FROM_ATTR
from automl_tl.training.resume import MANIFEST, TrialResume
from tests.support.stub_search import stub_settings


class ResumableStub(stub_plugin.StubSession):
    """The stub session with ``ResumableSession``: its whole state is its epoch count."""

    def save_state(self, directory, kept):
        (directory / "stub_state.json").write_text(json.dumps({"epoch": self.epoch, "kept": kept}))

    def load_state(self, directory):
        saved = json.loads((directory / "stub_state.json").read_text())
        self.epoch = saved["epoch"]
        return saved["kept"]


@pytest.fixture(autouse=True)
def every_epoch_saved(monkeypatch):
    """A save after every epoch (these trials' epochs take less than their saves: the cost rule would skip most;
    tests/training/test_resume_saves.py tests that rule)."""
    monkeypatch.setattr(resume_module, "SAVE_SHARE", math.inf)


@pytest.fixture(autouse=True)
def twelve_epochs(monkeypatch):
    """Every trial runs 12 epochs of minibatch steps, 6 head-only, then 6 fine-tuning (a fitted head would be one)."""
    import dataclasses

    import automl_tl.tuning.trial_runner as trial_runner

    sampled = trial_runner.config_from_trial
    monkeypatch.setattr(trial_runner, "config_from_trial", lambda *args, **kwargs: dataclasses.replace(
        sampled(*args, **kwargs), head_fit="adam", switch_epoch=6))


@pytest.fixture
def resumable_plugins(monkeypatch):
    monkeypatch.setattr(stub_plugin.StubAdapter, "start_trial", lambda self, spec, config, data: ResumableStub(config, data))
    return load_plugins(extra=[("stub", stub_plugin)])


@pytest.fixture
def trained_epochs(monkeypatch):
    """The epochs (0-based) the engine trains, and a way to interrupt one of them from inside it."""
    seen, stop_at = [], {"epoch": None}
    train = engine.EpochDriver.train

    def counted(self, epoch, phase, on_check=None):
        if epoch == stop_at["epoch"]:
            stop_at["epoch"] = None
            raise KeyboardInterrupt  # a Ctrl-C inside the epoch
        seen.append(epoch)
        return train(self, epoch, phase, on_check)

    monkeypatch.setattr(engine.EpochDriver, "train", counted)
    return seen, stop_at


def settings(data, **changes):
    return stub_settings(data, "r", 1, 12, smart_start=False, **changes)


def interrupted_at_epoch_9(small_sample, table, plugins, trained_epochs):
    seen, stop_at = trained_epochs
    stop_at["epoch"] = 8
    with pytest.raises(KeyboardInterrupt):
        run_search(settings(small_sample), plugins, table, Console(quiet=True))
    assert seen == list(range(8))
    seen.clear()
    study = optuna.load_study(study_name="r", storage=storage_url("r", None))
    return study, resume_dir(study_folder(artifacts_dir("r"), study_key(study)), 0)


def test_a_trial_interrupted_in_epoch_9_of_12_trains_only_epochs_9_to_12_when_run_again(
        small_sample, table, resumable_plugins, trained_epochs):
    study, saved = interrupted_at_epoch_9(small_sample, table, resumable_plugins, trained_epochs)
    assert (saved / MANIFEST).is_file()
    first = study.get_trials()[0]
    assert first.state == TrialState.FAIL and sorted(first.intermediate_values) == list(range(1, 9))

    result = run_search(settings(small_sample), resumable_plugins, table, Console(quiet=True))
    seen, _ = trained_epochs
    assert seen == [8, 9, 10, 11], "only the epochs after the last saved one are trained"
    retry = result.study.get_trials()[-1]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["retry_of"] == 0
    assert sorted(retry.intermediate_values) == list(range(1, 13)), "the curve holds all 12 epochs"
    assert retry.user_attrs[RESUMED_FROM_ATTR] == 8 and retry.user_attrs["epochs_run"] == 12
    fresh = [v for step, v in sorted(first.intermediate_values.items()) if step <= 8]
    assert [retry.intermediate_values[step] for step in range(1, 9)] == fresh
    assert not saved.exists(), "the saved state is removed once the trial completes"


def test_a_saved_state_whose_files_changed_is_not_used_and_the_trial_says_so(
        small_sample, table, resumable_plugins, trained_epochs):
    _, saved = interrupted_at_epoch_9(small_sample, table, resumable_plugins, trained_epochs)
    state = next(saved.glob("epoch-*/stub_state.json"))
    state.write_text(state.read_text().replace('"epoch": 8', '"epoch": 3'))
    result = run_search(settings(small_sample), resumable_plugins, table, Console(quiet=True))
    seen, _ = trained_epochs
    assert seen == list(range(12))
    retry = result.study.get_trials()[-1]
    assert "do not match the digests" in retry.user_attrs[RESUME_NOTE_ATTR] and RESUMED_FROM_ATTR not in retry.user_attrs


def test_a_session_without_the_capability_starts_again_from_epoch_1(small_sample, table, stub_plugins, trained_epochs):
    assert not isinstance(stub_plugin.StubSession(stub_plugin.TrialConfig("stub_net", 0.5, 0, 0.0, 1e-3, 0.1, 2, 3, 16), None),
                          ResumableSession)
    _, stop_at = trained_epochs
    stop_at["epoch"] = 8
    with pytest.raises(KeyboardInterrupt):
        run_search(settings(small_sample), stub_plugins, table, Console(quiet=True))
    trained_epochs[0].clear()
    run_search(settings(small_sample), stub_plugins, table, Console(quiet=True))
    assert trained_epochs[0] == list(range(12))


def test_a_state_saved_with_other_parameters_is_refused(tmp_path):
    state, Resumable = saved_state(tmp_path, {"params": {"lr": 0.001}})
    assert (state / MANIFEST).is_file()
    other = TrialResume(state, {"params": {"lr": 0.002}})
    assert other.load(Resumable([0.5])) is None and "other parameters" in other.note
    assert not state.exists()


class ScriptedAdapterFor:
    def __init__(self, session):
        self.session = session

    def start_trial(self, spec, config, data):
        return self.session


def test_a_torch_trial_resumed_after_epoch_5_ends_as_the_uninterrupted_one(tmp_path):
    """The torch session's saved state (weights, Adam, the annealing schedule, the shuffling generators) makes the
    resumed run the same run: the same validation accuracy at every epoch and the same final weights."""
    from automl_tl.testing import synthetic_table
    from automl_tl.tuning.space import config_from_params
    from tests.support.sample_plugins.torch_inline import tiny_spec

    adapter, spec, data = load_plugins().framework("torch"), tiny_spec(), synthetic_table(size=16, classes=3)
    trial = config_from_params(dict(backbone=spec.name, freeze_fraction=0.5, head_units=0, head_dropout=0.2, lr=3e-3,
                                    finetune_lr_ratio=0.3, switch_epoch=3), epochs=8, image_size=16)
    straight = engine.run_trial(adapter, spec, trial, data, save_to=tmp_path / "straight")

    def stop_in_epoch_6(result):
        if result.epoch == 4:
            raise KeyboardInterrupt

    resume = TrialResume(tmp_path / "state", {"trial": 1})
    with pytest.raises(KeyboardInterrupt):
        engine.run_trial(adapter, spec, trial, data, on_epoch=stop_in_epoch_6, resume=resume)
    again = TrialResume(tmp_path / "state", {"trial": 1})
    told = []
    resumed = engine.run_trial(adapter, spec, trial, data, on_epoch=told.append, save_to=tmp_path / "resumed", resume=again)
    assert again.resumed_epochs == 4 and [r.epoch for r in told] == list(range(8))
    assert [r.val_accuracy for r in resumed.history] == [r.val_accuracy for r in straight.history]
    assert resumed.best_epoch == straight.best_epoch and resumed.test_accuracy == straight.test_accuracy
    import torch

    a = torch.load(tmp_path / "straight" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "weights.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert np.allclose(resumed.val_probabilities, straight.val_probabilities, atol=1e-6)


def saved_state(tmp_path, identity=None):
    """A state saved after epoch 3 of a scripted 4-epoch trial (the last epoch is never saved) for ``identity``
    (``{"trial": 0}`` unless given), and the session class."""
    from tests.training.test_engine import ScriptedSession, config, stub_spec
    from tests.training.test_engine import table as scripted_table

    class Resumable(ScriptedSession):
        def save_state(self, directory, kept):
            (directory / "s.json").write_text("{}")

        def load_state(self, directory):
            return None

    resume = TrialResume(tmp_path / "state", {"trial": 0} if identity is None else identity)
    engine.run_trial(ScriptedAdapterFor(Resumable([0.5, 0.6, 0.7, 0.8])), stub_spec(), config(), scripted_table(), resume=resume)
    return tmp_path / "state", Resumable


@pytest.mark.parametrize("tamper, said", [
    (lambda m: m.update(epochs="../outside"), "is not named epoch-NNNN"),
    (lambda m: m.update(best=7), "best epoch 7 is not one of its 3"),
    (lambda m: m.update(best=-1), "best epoch -1"),
    (lambda m: m["history"][2].update(val_accuracy="high"), "record of epoch 3 is not one"),
    (lambda m: m["history"][1].update(phase="sideways"), "cannot be read"),
    (lambda m: m.update(history={"a": 1}), "cannot be read"),
])
def test_a_tampered_manifest_means_epoch_1_with_a_note_and_nothing_outside_the_folder_is_read(tmp_path, tamper, said):
    state, Resumable = saved_state(tmp_path)
    outside = tmp_path / "outside"
    shutil.copytree(next(state.glob("epoch-*")), outside)  # a folder beside it whose digests are the recorded ones
    manifest = json.loads((state / MANIFEST).read_text())
    tamper(manifest)
    (state / MANIFEST).write_text(json.dumps(manifest))
    resume = TrialResume(state, {"trial": 0})
    assert resume.load(Resumable([0.5])) is None and resume.resumed_epochs == 0
    assert said in resume.note and resume.note.startswith("started from epoch 1")
    assert not state.exists() and outside.is_dir(), "the state is given up; what is not ours is left alone"

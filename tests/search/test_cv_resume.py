"""A cross-validated trial stopped inside a fold and run again goes on from its first unfinished fold
(automl_tl/training/fold_resume.py), through a whole search with the stub framework."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from rich.console import Console

import automl_tl.training.cross_validation as cross_validation
from automl_tl.distributed.loop import run_search
from automl_tl.storage.artifacts import resume_dir, study_folder, study_key
from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.study_record import RESUME_NOTE_ATTR, RESUMED_FOLDS_ATTR
from automl_tl.training.fold_resume import FOLDS_MANIFEST, SEEN_FILE
from tests.support.stub_search import epochs_by_fold, stub_settings, train_every_epoch_by_steps

EPOCHS = 4
FULL = list(range(EPOCHS))


@pytest.fixture(autouse=True)
def trained_by_steps(monkeypatch):
    """Every epoch is minibatch steps, 2 head-only, then 2 fine-tuning."""
    train_every_epoch_by_steps(monkeypatch)


@pytest.fixture
def trained(monkeypatch):
    """The epochs trained, by fold index (or "refit"), and a way to interrupt one epoch of one fold from inside it."""
    stop: dict[str, object] = {"at": None}  # (fold, epoch)

    def interrupt(driver, fold, epoch):
        if stop["at"] == (fold, epoch):
            stop["at"] = None
            raise KeyboardInterrupt  # a Ctrl-C inside the epoch
        return False

    seen = epochs_by_fold(monkeypatch, interrupt)
    return seen, stop


def settings(data, name):
    return stub_settings(data, name, 1, EPOCHS, cv_folds=3, smart_start=False)


def interrupted_in_fold_2(small_sample, table, plugins, trained):
    seen, stop = trained
    stop["at"] = (1, 1)  # fold index 1, its second epoch
    with pytest.raises(KeyboardInterrupt):
        run_search(settings(small_sample, "cvr"), plugins, table, Console(quiet=True))
    assert seen == {0: FULL, 1: [0]}
    seen.clear()
    study = optuna.load_study(study_name="cvr", storage=storage_url("cvr", None))
    return study, resume_dir(study_folder(artifacts_dir("cvr"), study_key(study)), 0)


def test_a_cv_trial_interrupted_in_fold_2_does_not_train_fold_1_again_and_scores_as_the_uninterrupted_one(
        small_sample, table, stub_plugins, trained):
    seen, _ = trained
    straight = run_search(settings(small_sample, "cvs"), stub_plugins, table, Console(quiet=True)).study.get_trials()[0]
    assert straight.state == TrialState.COMPLETE and set(seen) == {0, 1, 2, "refit"}
    seen.clear()

    study, saved = interrupted_in_fold_2(small_sample, table, stub_plugins, trained)
    assert (saved / FOLDS_MANIFEST).is_file() and (saved / "fold-0000").is_dir() and not (saved / "fold-0001").exists()
    assert study.get_trials()[0].state == TrialState.FAIL

    result = run_search(settings(small_sample, "cvr"), stub_plugins, table, Console(quiet=True))
    assert 0 not in seen, "fold 1 is read back, not trained again"
    assert seen[1] == FULL and seen[2] == FULL and "refit" in seen
    retry = result.study.get_trials()[-1]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["retry_of"] == 0 and retry.params == straight.params
    assert retry.user_attrs[RESUMED_FOLDS_ATTR] == 1 and RESUME_NOTE_ATTR not in retry.user_attrs
    assert retry.value == straight.value
    assert retry.user_attrs["cv_fold_accuracies"] == straight.user_attrs["cv_fold_accuracies"]
    assert retry.user_attrs["cv_epoch_accuracies"] == straight.user_attrs["cv_epoch_accuracies"]
    assert retry.intermediate_values == straight.intermediate_values, "fold 1's curve is reported whole again"
    assert sorted(retry.intermediate_values) == list(range(1, EPOCHS + 1))
    assert not saved.exists(), "the kept folds are removed once the trial completes"


def test_a_tampered_fold_file_means_fold_1_again_with_a_note(small_sample, table, stub_plugins, trained):
    _, saved = interrupted_in_fold_2(small_sample, table, stub_plugins, trained)
    kept = saved / "fold-0000" / SEEN_FILE
    with np.load(kept, allow_pickle=False) as arrays:
        changed = {name: arrays[name] for name in arrays.files}
    changed["seen"] = changed["seen"][::-1].copy()  # the epochs' probabilities in another order: the same shapes
    np.savez(kept, **changed)

    result = run_search(settings(small_sample, "cvr"), stub_plugins, table, Console(quiet=True))
    seen, _ = trained
    assert seen[0] == FULL and seen[1] == FULL and seen[2] == FULL
    retry = result.study.get_trials()[-1]
    assert retry.state == TrialState.COMPLETE and RESUMED_FOLDS_ATTR not in retry.user_attrs
    note = retry.user_attrs[RESUME_NOTE_ATTR]
    assert note.startswith("started from fold 1") and "do not match the digests" in note
    assert not saved.exists()


def test_fold_1s_model_is_kept_with_it_and_other_folds_are_refused(tmp_path, table):
    """Without a refit the trial's model is fold 1's: the retry gets it back in its own folder. Kept folds are
    tied to the folds' rows: another seed's folds start from fold 1."""
    from automl_tl.training.fold_resume import FoldResume
    from tests.support.sample_plugins.stub_plugin import StubAdapter, TrialConfig, stub_spec

    adapter, spec, config = StubAdapter(), stub_spec(), TrialConfig("stub_net", 0.5, 0, 0.0, 1e-3, 0.1, 2, 3, 16)

    def scored(save_to, resume=None, on_fold=None, seed=0):
        return cross_validation.run_trial_scored(adapter, spec, config, table, 3, save_to=tmp_path / save_to,
                                                 refit=False, on_fold=on_fold, resume=resume, seed=seed)

    def stop_in_fold_2(fold):
        if fold == 1:
            raise KeyboardInterrupt

    straight = scored("straight")
    with pytest.raises(KeyboardInterrupt):
        scored("first", FoldResume(tmp_path / "state", {"trial": 0}), stop_in_fold_2)
    again = FoldResume(tmp_path / "state", {"trial": 0})
    resumed = scored("retry", again)
    assert again.resumed_folds == 1 and again.note is None
    assert (tmp_path / "retry" / "stub.json").read_text() == (tmp_path / "straight" / "stub.json").read_text()
    assert resumed.val_accuracy == straight.val_accuracy
    assert [r.val_accuracy for r in resumed.history] == [r.val_accuracy for r in straight.history]
    assert np.array_equal(resumed.test_probabilities, straight.test_probabilities)
    assert np.array_equal(resumed.val_probabilities, straight.val_probabilities)

    other = FoldResume(tmp_path / "state", {"trial": 0})
    scored("other", other, seed=1)
    assert other.resumed_folds == 0 and "other parameters or other folds" in other.note


def test_a_retry_whose_fold_1_check_now_prunes_is_pruned_there_without_training(tmp_path, table, trained):
    """The fold-1 check (fold halving) is made again on the restored accuracy: peers may have moved on."""
    from automl_tl.training.engine import PruneTrial
    from automl_tl.training.fold_resume import FoldResume
    from tests.support.sample_plugins.stub_plugin import StubAdapter, TrialConfig, stub_spec

    seen, stop = trained
    adapter, spec, config = StubAdapter(), stub_spec(), TrialConfig("stub_net", 0.5, 0, 0.0, 1e-3, 0.1, 2, 3, 16)
    stop["at"] = (1, 0)
    with pytest.raises(KeyboardInterrupt):
        cross_validation.run_trial_scored(adapter, spec, config, table, 3, resume=FoldResume(tmp_path, {"trial": 0}))
    seen.clear()
    checked = []
    with pytest.raises(PruneTrial) as pruned:
        cross_validation.run_trial_scored(adapter, spec, config, table, 3, resume=FoldResume(tmp_path, {"trial": 0}),
                                          after_fold=lambda fold, accuracy: checked.append((fold, accuracy)) or False)
    assert pruned.value.fold == 0 and len(checked) == 1 and checked[0][0] == 0 and seen == {}

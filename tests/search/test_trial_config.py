"""A trial records the configuration it really ran, which for a from-scratch backbone is not the one sampled."""

from __future__ import annotations

import json

import pytest
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.data import FolderDataset, load_table
from automl_tl.distributed.loop import run_search
from automl_tl.storage.artifacts import study_folder, study_key, trial_dir
from automl_tl.storage.urls import artifacts_dir, storage_url
from automl_tl.tuning.settings import SearchSettings
from tests.support.sample_plugins.stub_plugin import stub_spec


@pytest.fixture
def scratch_plugins(stub_plugins):
    stub_plugins.backbones.add("stub_scratch", stub_spec("stub_scratch", pretrained=False), "test")
    return stub_plugins


def test_a_from_scratch_trial_records_and_saves_what_it_ran(scratch_plugins, small_sample):
    table = load_table(FolderDataset().discover(str(small_sample)), 16, show_progress=False)
    settings = SearchSettings(study_name="scratch", storage_url=storage_url("scratch", None),
                              artifacts=artifacts_dir("scratch"), trials=2, epochs=2, image_size=16,
                              backbones=["stub_scratch"], data_location=str(small_sample))
    study = run_search(settings, scratch_plugins, table, Console(quiet=True)).study
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert complete
    for trial in study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)):
        assert trial.user_attrs["frozen_blocks"] == 0 and trial.user_attrs["depth"] == 4, trial.params
    for trial in complete:
        meta = json.loads((trial_dir(study_folder(artifacts_dir("scratch"), study_key(study)), trial.number)
                           / "trial.json").read_text())
        assert meta["config"]["freeze_fraction"] == 0.0 and meta["config"]["switch_epoch"] == 0
        assert meta["config"]["cut_fraction"] == 1.0 and meta["config"]["finetune_lr_ratio"] == 1.0

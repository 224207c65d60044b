"""``search --warm-start OTHER_STUDY`` queues the other study's best distinct recipes first (search/warm_start.py)."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState
from rich.console import Console

from automl_tl.distributed.loop import run_search
from automl_tl.errors import UserError
from automl_tl.storage.urls import storage_url
from automl_tl.study_record import WARM_START_ATTR
from automl_tl.tuning.warm_start import enqueue_warm_start, fitted_recipe, warm_start_recipes
from tests.support.stub_search import stub_settings


def best_distinct(study, n=5):
    done = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: (-t.value, t.number))
    out = []
    for trial in done:
        if trial.params not in out:
            out.append(trial.params)
    return out[:n]


def test_a_new_study_starts_with_the_other_studys_five_best_recipes(stub_plugins, table, small_sample):
    old = run_search(stub_settings(small_sample, "old", 6, 1, smart_start=False, pruner="none"), stub_plugins, table,
                     Console(quiet=True)).study
    assert len(best_distinct(old, 6)) > 5
    settings = stub_settings(small_sample, "new", 5, 1, smart_start=False, warm_start="old")
    new = run_search(settings, stub_plugins, table, Console(quiet=True)).study
    trials = new.get_trials()
    warm = [t for t in trials if WARM_START_ATTR in t.user_attrs]
    assert [t.number for t in warm] == [0, 1, 2, 3, 4], "queued before anything else"
    assert [t.params for t in warm] == best_distinct(old)
    assert all("study 'old', trial " in t.user_attrs[WARM_START_ATTR] for t in warm)
    again = run_search(stub_settings(small_sample, "new", 6, 1, smart_start=False, warm_start="old"),
                       stub_plugins, table, Console(quiet=True))
    assert len([t for t in again.study.get_trials() if WARM_START_ATTR in t.user_attrs]) == 5, "queued once per study"


def test_parameters_the_space_cannot_take_are_left_out_and_named():
    space = {"backbone": CategoricalDistribution(["resnet18"]), "lr": FloatDistribution(1e-4, 1e-2, log=True)}
    trial = optuna.trial.create_trial(params={"backbone": "mobilenet_v2", "lr": 1e-3, "cut_fraction": 0.5},
                                      distributions={"backbone": CategoricalDistribution(["mobilenet_v2"]),
                                                     "lr": FloatDistribution(1e-5, 1e-1, log=True),
                                                     "cut_fraction": FloatDistribution(0.5, 1.0)}, value=0.9)
    recipe = fitted_recipe(trial, space)
    assert recipe.params == {"lr": 1e-3}
    assert recipe.left_out == ["backbone='mobilenet_v2'", "cut_fraction=0.5"]
    study = optuna.create_study(direction="maximize")
    lines = enqueue_warm_start(study, "old", [recipe])
    assert "1 recipe(s) of study 'old'" in lines[0] and "left out (not in this search's space): backbone='mobilenet_v2'" in lines[1]
    assert study.get_trials()[0].state == TrialState.WAITING and study.get_trials()[0].user_attrs[WARM_START_ATTR]


def test_a_missing_study_is_refused_before_the_new_one_is_made(stub_plugins, table, small_sample):
    run_search(stub_settings(small_sample, "old", 1, 2, smart_start=False), stub_plugins, table, Console(quiet=True))
    with pytest.raises(UserError, match="no study of that name"):
        warm_start_recipes(storage_url("old", None), "olde", "new", {})
    settings = stub_settings(small_sample, "new", 2, 2, warm_start="nothere")
    with pytest.raises(UserError, match="--warm-start 'nothere'"):
        run_search(settings, stub_plugins, table, Console(quiet=True))
    assert "new" not in [s.study_name for s in optuna.get_all_study_summaries(storage_url("new", None))]


def test_the_cli_takes_warm_start(small_sample, capsys):
    from automl_tl.cli import main
    from tests.conftest import STUB_PLUGIN

    args = ["search", str(small_sample), "--plugin", STUB_PLUGIN, "--framework", "stub", "--epochs", "2",
            "--image-size", "16", "--no-smart-start"]
    assert main([*args, "--study", "first", "--trials", "3"]) == 0
    capsys.readouterr()
    assert main([*args, "--study", "second", "--trials", "3", "--warm-start", "first"]) == 0
    out = capsys.readouterr().out
    assert "Warm start:" in out and "of study 'first' queued first" in out
    assert main([*args, "--study", "third", "--trials", "1", "--warm-start", "absent"]) == 2
    assert "--warm-start 'absent'" in capsys.readouterr().err


def test_smart_start_does_not_queue_again_what_the_warm_start_queued(stub_plugins, table, small_sample):
    from automl_tl.study_record import SMART_START_ATTR

    old = run_search(stub_settings(small_sample, "old", 4, 1), stub_plugins, table, Console(quiet=True)).study
    assert any(SMART_START_ATTR in t.user_attrs for t in old.get_trials()), "the stub profiles: smart start ran"
    new = run_search(stub_settings(small_sample, "new", 8, 1, warm_start="old"), stub_plugins, table,
                     Console(quiet=True)).study
    started = [t for t in new.get_trials() if WARM_START_ATTR in t.user_attrs or SMART_START_ATTR in t.user_attrs]
    assert any(SMART_START_ATTR in t.user_attrs for t in started) and any(WARM_START_ATTR in t.user_attrs for t in started)
    params = [t.params for t in started]
    assert all(params.count(p) == 1 for p in params), "a recipe queued by both ran twice"

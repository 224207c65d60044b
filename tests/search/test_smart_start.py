"""Smart start: the data profile, the rules of thumb, and enqueued trials that say why."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from automl_tl.study_record import SMART_START_ATTR
from automl_tl.testing import synthetic_table
from automl_tl.tuning.smart_start import DataProfile, middle_cut, ridge_probe_accuracy, start_trials
from automl_tl.tuning.space import BackboneShape, ask_params, config_from_params, search_space

from .test_study import settings

SPACE = search_space(["mobilenet_v2", "small_cnn"], epochs=4)
SHAPES = {"mobilenet_v2": BackboneShape(pretrained=True, blocks=19), "small_cnn": BackboneShape(pretrained=False, blocks=3)}


def profile(per_class: float, last: float, middle: float) -> DataProfile:
    return DataProfile("mobilenet_v2", int(per_class * 10), 10, per_class, last, middle, middle_cut(SPACE))


@pytest.mark.parametrize(
    "per_class, last, middle, expect",
    [
        (30, 0.9, 0.7, lambda c: c.freeze_fraction == 1.0 and c.cut_fraction == 1.0),  # small, similar: freeze all
        (700, 0.9, 0.7, lambda c: 0 < c.freeze_fraction <= 0.5 and c.switch_epoch == 1),  # large, similar: fine-tune more
        (30, 0.6, 0.8, lambda c: c.cut_fraction < 1.0),  # small, different: earlier features
        (700, 0.6, 0.8, lambda c: c.freeze_fraction <= 0.25 and c.switch_epoch == 1),  # large, different: fine-tune most
    ],
    ids=["small-similar", "large-similar", "small-different", "large-different"],
)
def test_the_rules_of_thumb_pick_the_second_trial(per_class, last, middle, expect):
    trials = start_trials(profile(per_class, last, middle), SPACE, 4, ["mobilenet_v2", "small_cnn"], limit=4, shape_of=SHAPES.__getitem__)
    first, second = (config_from_params(t.params, epochs=4, image_size=48) for t in trials[:2])
    assert first.freeze_fraction == 1.0 and first.head_units == 0, "the bottleneck recipe comes first: it is nearly free"
    assert expect(second), trials[1]
    for trial in trials:
        asked = ask_params(SPACE, lambda name, dist, params=trial.params: params[name], SHAPES.__getitem__)
        assert asked == trial.params, "exactly the parameters the conditional space asks of such a trial"
        for name, value in trial.params.items():
            assert SPACE[name]._contains(SPACE[name].to_internal_repr(value)), (name, value)
        assert "Data:" in trial.reason and "probe" in trial.reason


def test_a_from_scratch_candidate_joins_only_when_the_data_is_unlike_the_source():
    names = ["mobilenet_v2", "small_cnn"]
    unlike = start_trials(profile(700, 0.6, 0.8), SPACE, 4, names, limit=4, shape_of=SHAPES.__getitem__)
    like = start_trials(profile(700, 0.9, 0.7), SPACE, 4, names, limit=4, shape_of=SHAPES.__getitem__)
    assert any(t.params["backbone"] == "small_cnn" for t in unlike)
    assert not any(t.params["backbone"] == "small_cnn" for t in like)
    assert len(start_trials(profile(700, 0.6, 0.8), SPACE, 4, names, limit=1, shape_of=SHAPES.__getitem__)) == 1


@pytest.mark.parametrize("per_class, last, middle", [(30, 0.9, 0.7), (700, 0.9, 0.7), (30, 0.6, 0.8), (700, 0.6, 0.8)])
def test_planned_trials_hold_only_what_they_use(per_class, last, middle):
    for trial in start_trials(profile(per_class, last, middle), SPACE, 4, list(SHAPES), limit=4, shape_of=SHAPES.__getitem__):
        config = config_from_params(trial.params, epochs=4, image_size=48)
        if trial.params["backbone"] == "small_cnn":
            assert not {"freeze_fraction", "switch_epoch", "finetune_lr_ratio", "cut_fraction"} & set(trial.params)
        elif not config.finetunes(19):
            assert not {"switch_epoch", "finetune_lr_ratio", "unfrozen_bn"} & set(trial.params), trial
        else:
            assert trial.params["switch_epoch"] < 4, "a switch after the last epoch would be head-only twice over"


def test_a_one_epoch_study_plans_no_fine_tuning():
    space = search_space(["mobilenet_v2"], epochs=1)
    trials = start_trials(profile(700, 0.6, 0.8), space, 1, ["mobilenet_v2"], limit=4, shape_of=SHAPES.__getitem__)
    assert trials and all("switch_epoch" not in t.params and "freeze_fraction" not in t.params for t in trials)


def test_without_truncation_no_trial_asks_for_a_cut():
    space = search_space(["mobilenet_v2"], epochs=4, truncation=False)
    trials = start_trials(DataProfile("mobilenet_v2", 300, 10, 30, 0.6, 0.8, middle_cut(space)), space, 4, ["mobilenet_v2"], 4,
                          SHAPES.__getitem__)
    assert all("cut_fraction" not in t.params for t in trials)


def test_the_ridge_probe_separates_separable_features():
    data = synthetic_table(n_per_split=30, size=8, classes=3)
    features = np.eye(3)[data.labels] + np.random.default_rng(0).normal(0, 0.1, (len(data.labels), 3))
    assert ridge_probe_accuracy(features, data) > 0.95
    noise = np.random.default_rng(1).normal(size=(len(data.labels), 3))
    assert ridge_probe_accuracy(noise, data) < 0.8


def test_a_new_study_starts_with_enqueued_trials_that_say_why(stub_plugins, table, small_sample):  # noqa: F811
    from automl_tl.distributed.loop import run_search
    result = run_search(settings(small_sample, name="smart", trials=8, epochs=4), stub_plugins, table, Console(quiet=True))
    trials = result.study.get_trials(deepcopy=False)
    reasons = [t.user_attrs.get(SMART_START_ATTR) for t in trials]
    assert reasons[0] and reasons[1], "the first trials come from smart start"
    assert all(r is None for r in reasons[2:]), "then the sampler takes over"
    assert trials[0].params["freeze_fraction"] == 1.0
    assert result.study.user_attrs["data_profile"]["train_images"] == len(table.splits["train"])
    resumed = run_search(settings(small_sample, name="smart", trials=10, epochs=4), stub_plugins, table, Console(quiet=True))
    assert [t.user_attrs.get(SMART_START_ATTR) for t in resumed.study.get_trials(deepcopy=False)][8:] == [None, None], \
        "a resumed study is not started again"


def test_smart_start_can_be_turned_off(stub_plugins, table, small_sample):  # noqa: F811
    from automl_tl.distributed.loop import run_search
    result = run_search(settings(small_sample, name="plain", trials=2, smart_start=False), stub_plugins, table, Console(quiet=True))
    assert all(SMART_START_ATTR not in t.user_attrs for t in result.study.get_trials(deepcopy=False))


def test_a_close_call_hedges_with_the_other_sides_plan_and_tries_the_shorter_backbone_first():
    trials = start_trials(profile(700, 0.906, 0.902), SPACE, 4, ["mobilenet_v2", "small_cnn"], limit=4, shape_of=SHAPES.__getitem__)
    hedge, plan = (config_from_params(t.params, epochs=4, image_size=48) for t in trials[1:3])
    assert hedge.cut_fraction < 1.0 and "close call" in trials[1].reason, "earlier features, from the other side, first"
    assert plan.cut_fraction == 1.0 and plan.freeze_fraction == 0.5, "then large and similar's own plan"


def test_a_clear_call_keeps_its_sides_order():
    trials = start_trials(profile(700, 0.95, 0.80), SPACE, 4, ["mobilenet_v2", "small_cnn"], limit=4, shape_of=SHAPES.__getitem__)
    first, second = (config_from_params(t.params, epochs=4, image_size=48) for t in trials[1:3])
    assert (first.freeze_fraction, second.freeze_fraction) == (0.5, 0.2) and "close call" not in trials[2].reason


def test_the_probe_is_the_mean_of_five_folds_of_train_and_val_and_its_trial_fits_its_head():
    from automl_tl.training.folds import assign_folds, fold_table, scored_rows
    from automl_tl.tuning.smart_start import probe_accuracy

    table = synthetic_table(n_per_split=40, size=8, classes=3)
    features = np.random.default_rng(0).normal(size=(len(table.labels), 6)) + table.labels[:, None] * 0.4
    folds = assign_folds(table.relpaths, table.labels, scored_rows(table), 5)
    expected = np.mean([ridge_probe_accuracy(features, fold_table(table, folds, j)) for j in range(5)])
    assert probe_accuracy(features, table) == pytest.approx(expected)
    assert probe_accuracy(features, table) != ridge_probe_accuracy(features, table), "not the validation split alone"
    profile = DataProfile("net", 80, 3, 26.7, 0.9, 0.8, 0.5)
    first = start_trials(profile, search_space(["net"], 6), 6, ["net"], 3, lambda name: BackboneShape(True, 8))[0]
    assert first.params["head_fit"] == "lbfgs" and "head_l2" in first.params and "head_units" not in first.params


def test_on_small_data_the_bottleneck_recipe_runs_on_every_pretrained_backbone_next():
    names = ["mobilenet_v2", "efficientnet_lite0", "small_cnn"]
    space = search_space(names, epochs=4)
    shapes = {**SHAPES, "efficientnet_lite0": BackboneShape(pretrained=True, blocks=18)}
    pretrained = ["mobilenet_v2", "efficientnet_lite0"]
    small = start_trials(DataProfile("mobilenet_v2", 300, 10, 30, 0.9, 0.7, middle_cut(space)), space, 4, names, 8,
                         shapes.__getitem__, pretrained)
    first, second = small[0].params, small[1].params
    assert (first["backbone"], second["backbone"]) == ("mobilenet_v2", "efficientnet_lite0")
    assert {k: v for k, v in second.items() if k != "backbone"} == {k: v for k, v in first.items() if k != "backbone"}
    assert second["head_fit"] == "lbfgs" and "efficientnet_lite0" in small[1].reason
    assert small[2].params["backbone"] == "mobilenet_v2" and small[2].params["head_fit"] == "adam", "then the plans"
    large = start_trials(DataProfile("mobilenet_v2", 7000, 10, 700, 0.9, 0.7, middle_cut(space)), space, 4, names, 8,
                         shapes.__getitem__, pretrained)
    assert all(t.params["backbone"] == "mobilenet_v2" for t in large), "large data: the sampler chooses backbones"


def test_with_many_backbones_and_few_trials_the_backbone_probes_leave_room_for_the_plans():
    names = ["mobilenet_v2", "efficientnet_lite0", "small_cnn"]
    space = search_space(names, epochs=4)
    shapes = {**SHAPES, "efficientnet_lite0": BackboneShape(pretrained=True, blocks=18)}
    trials = start_trials(DataProfile("mobilenet_v2", 300, 10, 30, 0.9, 0.7, middle_cut(space)), space, 4, names, 3,
                          shapes.__getitem__, ["mobilenet_v2", "efficientnet_lite0"])
    assert [t.params["backbone"] for t in trials] == ["mobilenet_v2"] * 3, "the probe, then both of the data's plans"

import optuna
import pytest

from automl_tl.errors import UserError
from automl_tl.tuning.space import BackboneShape, ask_params, config_from_params, config_from_trial, search_space, space_json
from automl_tl.types import Phase, TrialConfig


def test_space_has_every_recipe_parameter():
    space = search_space(["a", "b"], epochs=5)
    assert set(space) == {"backbone", "head_fit", "head_l2", "freeze_fraction", "head_units", "head_dropout", "lr",
                          "finetune_lr_ratio", "switch_epoch", "unfrozen_bn", "cut_fraction", "augment", "block_lr_decay"}
    decay = space["block_lr_decay"]
    assert (decay.low, decay.high, decay.step) == (0.7, 1.0, 0.05), "1, the single rate, is on the grid"
    assert "cut_fraction" not in search_space(["a"], epochs=5, truncation=False)
    assert space["switch_epoch"].high == 4 and space["switch_epoch"].low == 1, "switching after the last epoch is not fine-tuning"
    assert space["lr"].log and space["finetune_lr_ratio"].log


def test_space_json_changes_with_backbones_and_epochs():
    assert space_json(search_space(["a"], 4)) != space_json(search_space(["a", "b"], 4))
    assert space_json(search_space(["a"], 4)) != space_json(search_space(["a"], 5))


def test_empty_space_and_zero_epochs_are_user_errors():
    with pytest.raises(UserError):
        search_space([], 3)
    with pytest.raises(UserError):
        search_space(["a"], 0)


def test_config_from_trial_uses_the_space():
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    trial = study.ask()
    config = config_from_trial(trial, search_space(["a", "b"], 4), epochs=4, image_size=32, seed=3)
    assert config.backbone in ("a", "b") and 1 <= config.switch_epoch <= 4  # 4: not asked, the trial trains its head only
    assert config.seed == 3 + trial.number and config.image_size == 32


def _config(**changes):
    params = dict(backbone="a", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-3,
                  finetune_lr_ratio=0.1, switch_epoch=2)
    params.update(changes)
    return config_from_params(params, epochs=4, image_size=32)


def test_freeze_fraction_is_a_share_of_blocks():
    assert _config(freeze_fraction=0.5).frozen_blocks(10) == 5
    assert _config(freeze_fraction=0.0).frozen_blocks(19) == 0
    assert _config(freeze_fraction=1.0).frozen_blocks(19) == 19


def test_phases_and_finetune_rate():
    config = _config(switch_epoch=2)
    assert [config.phase_at(e) for e in range(4)] == [Phase.HEAD, Phase.HEAD, Phase.FINETUNE, Phase.FINETUNE]
    assert config.finetune_lr == pytest.approx(1e-4)
    assert not _config(freeze_fraction=1.0).finetunes(10)
    assert not _config(switch_epoch=4).finetunes(10)
    assert isinstance(config, TrialConfig)


def test_the_cut_point_truncates_and_the_freeze_fraction_is_a_share_of_the_kept_blocks():
    config = _config(cut_fraction=0.5, freeze_fraction=0.5)
    assert config.depth(20) == 10 and config.frozen_blocks(20) == 5
    assert _config(cut_fraction=0.01).depth(19) == 1, "at least one block is kept"
    assert not _config(cut_fraction=0.5, freeze_fraction=1.0).finetunes(20)
    assert _config(cut_fraction=0.5, freeze_fraction=0.5, switch_epoch=1).finetunes(20)


def test_a_from_scratch_trial_trains_every_block_from_the_first_epoch():
    scratch = _config(freeze_fraction=0.8, switch_epoch=2, finetune_lr_ratio=0.1, cut_fraction=0.5).from_scratch()
    assert scratch.frozen_blocks(3) == 0 and scratch.depth(3) == 3
    assert scratch.phase_at(0).value == "finetune" and scratch.finetune_lr == scratch.lr


FINE_TUNING = {"switch_epoch", "finetune_lr_ratio", "unfrozen_bn"}
TRANSFER = {"freeze_fraction", "switch_epoch", "finetune_lr_ratio", "cut_fraction"}


def planned(space, shape, **values):
    """The parameters ``ask_params`` asks, each answered from ``values`` (or the distribution's low end)."""
    asked = []

    def choose(name, dist):
        asked.append(name)
        return values.get(name, dist.choices[0] if hasattr(dist, "choices") else dist.low)

    params = ask_params(space, choose, lambda name: shape)
    assert list(params) == asked
    return params


def test_a_backbone_trained_from_scratch_is_asked_nothing_about_transfer():
    params = planned(search_space(["scratch"], 4), BackboneShape(pretrained=False, blocks=3))
    assert set(params) == {"backbone", "head_units", "head_dropout", "lr", "augment", "unfrozen_bn"}
    assert not TRANSFER & set(params)


def test_a_head_only_trial_is_asked_nothing_about_fine_tuning():
    space = search_space(["a"], 4)
    head_only = planned(space, BackboneShape(True, 19), freeze_fraction=1.0)
    assert head_only["freeze_fraction"] == 1.0 and not FINE_TUNING & set(head_only)
    fine_tuning = planned(space, BackboneShape(True, 19), freeze_fraction=0.5)
    assert FINE_TUNING <= set(fine_tuning)


def test_a_freeze_fraction_that_rounds_to_every_kept_block_is_head_only():
    space = search_space(["a"], 4)
    assert not FINE_TUNING & set(planned(space, BackboneShape(True, 3), cut_fraction=1.0, freeze_fraction=0.9))  # 3 of 3
    assert FINE_TUNING <= set(planned(space, BackboneShape(True, 3), cut_fraction=1.0, freeze_fraction=0.8))  # 2 of 3
    cut = planned(space, BackboneShape(True, 8), cut_fraction=0.5, freeze_fraction=0.9)  # round(3.6) = 4 of 4 kept
    assert not FINE_TUNING & set(cut)
    assert FINE_TUNING <= set(planned(space, BackboneShape(True, None), cut_fraction=1.0, freeze_fraction=0.95)), "unknown"


def test_one_epoch_leaves_nothing_to_fine_tune():
    space = search_space(["a"], 1)
    assert not {"freeze_fraction", "switch_epoch", "finetune_lr_ratio"} & set(space)
    assert not FINE_TUNING & set(planned(space, BackboneShape(True, 19)))
    assert not config_from_params(planned(space, BackboneShape(True, 19)), epochs=1, image_size=8).finetunes(19)


def test_sampled_trials_carry_only_the_parameters_they_use_and_one_encoding_of_head_only():
    """What a flat space wasted: every trial asked every parameter, so TPE modelled ones it ignored."""
    shapes = {"net": BackboneShape(True, 19), "cnn": BackboneShape(False, 3)}
    space = search_space(list(shapes), 4)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(60):
        trial = study.ask()
        config = config_from_trial(trial, space, epochs=4, image_size=8, shape_of=shapes.__getitem__)
        if not shapes[config.backbone].pretrained:
            assert not TRANSFER & set(trial.params), trial.params
        elif config.finetunes(19):
            assert FINE_TUNING <= set(trial.params) and trial.params["switch_epoch"] < 4
            trained = config.depth(19) - config.frozen_blocks(19)
            assert ("block_lr_decay" in trial.params) == (trained > 1), trial.params
            assert config.block_lr_decay == trial.params.get("block_lr_decay", 1.0)
        else:
            assert trial.params["freeze_fraction"] == 1.0 and not FINE_TUNING & set(trial.params), trial.params
        study.tell(trial, 0.5)


def test_the_block_rate_decay_is_asked_only_when_two_blocks_or_more_fine_tune():
    space = search_space(["a"], 4)
    two_of_three = planned(space, BackboneShape(True, 3), cut_fraction=1.0, freeze_fraction=0.3)  # round(0.9) = 1 frozen
    assert two_of_three["block_lr_decay"] == 0.7
    assert config_from_params(two_of_three, epochs=4, image_size=8).block_lr_decay == 0.7
    one_of_three = planned(space, BackboneShape(True, 3), cut_fraction=1.0, freeze_fraction=0.8)  # round(2.4) = 2 frozen
    assert "block_lr_decay" not in one_of_three and FINE_TUNING <= set(one_of_three), "one block: nothing below it to slow"
    assert "block_lr_decay" not in planned(space, BackboneShape(True, 19), freeze_fraction=1.0), "head only"
    assert "block_lr_decay" in planned(space, BackboneShape(True, None), cut_fraction=1.0, freeze_fraction=0.95), "unknown"


def test_a_parameter_a_trial_was_not_asked_means_not_used():
    config = config_from_params(dict(backbone="a", head_units=0, head_dropout=0.0, lr=1e-3), epochs=4, image_size=8)
    assert config.freeze_fraction == 1.0 and config.switch_epoch == 4 and config.cut_fraction == 1.0
    assert config.block_lr_decay == 1.0, "the single fine-tuning rate"
    assert not config.finetunes(10)


def test_a_trial_is_described_with_its_block_rate_decay_only_when_it_has_one():
    from automl_tl.tuning.trial_runner import describe_config

    assert "per block down" not in describe_config(_config(freeze_fraction=0.5, switch_epoch=1), 10)
    decayed = describe_config(_config(freeze_fraction=0.5, switch_epoch=1, block_lr_decay=0.7), 10)
    assert "fine-tune 5/10 blocks from epoch 2, rate x0.7 per block down" in decayed, decayed
    assert "per block down" not in describe_config(_config(freeze_fraction=0.9, switch_epoch=1, block_lr_decay=0.7), 10), \
        "one block fine-tuned: no block below it"


def test_a_fitted_head_is_asked_its_l2_and_a_rate_only_when_it_fine_tunes():
    space = search_space(["net"], epochs=4)
    shape = lambda name: BackboneShape(True, 8)  # noqa: E731
    values = {"head_fit": "lbfgs", "head_l2": 0.01, "freeze_fraction": 1.0, "cut_fraction": 1.0, "augment": "none"}
    head_only = ask_params(space, lambda name, dist: values.get(name, dist.choices[0] if hasattr(dist, "choices") else dist.low),
                           shape)
    assert set(head_only) == {"backbone", "head_fit", "head_l2", "augment", "cut_fraction", "freeze_fraction"}
    values["freeze_fraction"] = 0.5
    tuned = ask_params(space, lambda name, dist: values.get(name, dist.choices[0] if hasattr(dist, "choices") else dist.low),
                       shape)
    assert {"lr", "finetune_lr_ratio", "switch_epoch"} <= set(tuned) and not {"head_units", "head_dropout"} & set(tuned)
    config = config_from_params(head_only, epochs=4, image_size=16)
    assert (config.head_fit, config.head_l2, config.head_units) == ("lbfgs", 0.01, 0)


def test_a_backbone_trained_from_scratch_is_never_asked_how_to_fit_its_head():
    space = search_space(["scratch"], epochs=4)
    asked = ask_params(space, lambda name, dist: dist.choices[-1] if hasattr(dist, "choices") else dist.low,
                       lambda name: BackboneShape(False, 4))
    assert "head_fit" not in asked and "head_l2" not in asked and "head_units" in asked


def test_the_head_label_names_a_fitted_head_and_its_l2_in_a_narrow_column():
    from automl_tl.tuning.space import head_label

    assert head_label({"head_fit": "lbfgs", "head_l2": 0.01}) == "fit L2 0.01"
    assert head_label({"head_fit": "adam", "head_units": 0}) == "linear" and head_label({"head_units": 256}) == "256"


def test_a_fitted_heads_l2_that_is_not_a_number_is_shown_as_written():
    from automl_tl.tuning.space import head_label

    assert head_label({"head_fit": "lbfgs", "head_l2": "[/]x"}) == "fit L2 [/]x", "a study from elsewhere, unchecked"

"""The trial cost model: block runs priced by measured block seconds, free prefix passes for stored activations,
folds plus a refit under cross-validation, online calibration, and shrink-to-fit before a trial starts."""

from __future__ import annotations

from dataclasses import replace

import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from automl_tl.training.augment import VIEW_COUNT
from automl_tl.tuning.cost import (
    FITTED_HEAD_EPOCHS,
    KIND_FINETUNE,
    KIND_HEAD,
    KIND_SCRATCH,
    CostRates,
    DataSizes,
    NothingCached,
    TrialCostModel,
    scaled_switch,
    shrunk_versions,
    trial_kind,
)
from automl_tl.tuning.cost_calibration import FACTOR_LIMITS, CostCalibration
from automl_tl.types import BackboneSpec, TrialConfig
from tests.support.sample_plugins.stub_plugin import stub_spec

BLOCKS = 8
SECONDS = tuple(1e-3 * (i + 1) for i in range(BLOCKS))  # later blocks slower, so which blocks run shows
SIZES = DataSizes(train=200, val=50, test=40)
RATES = {"stub": CostRates(train_factor=3.0, head_row_s=1e-5, head_epoch_s=0.01, run_s=0.5, tune_setup_s=2.0)}


def spec(pretrained: bool = True) -> BackboneSpec:
    return replace(stub_spec(pretrained=pretrained), framework="stub", blocks=tuple(f"b{i}" for i in range(BLOCKS)))


def config(**changes: object) -> TrialConfig:
    base = TrialConfig(backbone="stub_net", freeze_fraction=0.5, head_units=0, head_dropout=0.0, lr=1e-3,
                       finetune_lr_ratio=0.1, switch_epoch=2, epochs=6, image_size=32)
    return replace(base, **changes)  # type: ignore[arg-type]


HEAD_ONLY = dict(freeze_fraction=1.0, switch_epoch=6)


class Stored:
    """A cache state holding block ``block`` and the pooled features at ``pooled`` (per view: the same)."""

    def __init__(self, block: int = 0, pooled: tuple[int, ...] = ()) -> None:
        self.block, self.pooled = block, pooled

    def stored_block(self, spec: BackboneSpec, view: int, k: int) -> int:
        return self.block if self.block <= k else 0

    def pooled_stored(self, spec: BackboneSpec, view: int, k: int) -> bool:
        return k in self.pooled


def model(cache: object = None, folds: int = 0, calibration: CostCalibration | None = None,
          seconds: tuple[float, ...] | None = SECONDS) -> TrialCostModel:
    return TrialCostModel(lambda s, size: seconds, SIZES, folds, cache, calibration, RATES)  # type: ignore[arg-type]


def test_the_kind_of_a_trial():
    assert trial_kind(spec(), config(**HEAD_ONLY)) == KIND_HEAD
    assert trial_kind(spec(), config()) == KIND_FINETUNE
    assert trial_kind(spec(pretrained=False), config(**HEAD_ONLY)) == KIND_SCRATCH


def test_a_head_only_trial_pays_one_pass_to_its_cut_unless_the_pooled_features_are_stored():
    cut = config(**HEAD_ONLY, cut_fraction=0.5)
    depth = cut.depth(BLOCKS)
    cold = model().breakdown(spec(), cut)
    assert cold is not None and cold.prefix_s == pytest.approx(SIZES.total * sum(SECONDS[:depth]))
    assert cold.train_s == 0 and cold.predict_s == 0
    warm = model(Stored(pooled=(depth,))).breakdown(spec(), cut)
    assert warm is not None and warm.prefix_s == 0
    assert warm.seconds < cold.seconds / 5  # cached features: only head steps are left
    from_block = model(Stored(block=2)).breakdown(spec(), cut)  # a stored block shortens the pass
    assert from_block is not None and from_block.prefix_s == pytest.approx(SIZES.total * sum(SECONDS[2:depth]))


def test_a_mirrored_view_doubles_the_prefix_passes():
    plain = model().breakdown(spec(), config(**HEAD_ONLY))
    mirrored = model().breakdown(spec(), config(**HEAD_ONLY, augment="hflip"))
    assert plain is not None and mirrored is not None and mirrored.prefix_s == pytest.approx(2 * plain.prefix_s)


def test_k_augmented_views_pay_k_more_passes_and_the_making_of_their_images_unless_cached():
    plain = model().breakdown(spec(), config(**HEAD_ONLY))
    making = RATES["stub"].view_image_s + RATES["stub"].view_pixel_s * 32**2
    for augment, count in (("views", VIEW_COUNT), ("views4", 4)):
        priced = model().breakdown(spec(), config(**HEAD_ONLY, augment=augment))
        assert plain is not None and priced is not None
        assert priced.prefix_s == pytest.approx((1 + count) * plain.prefix_s + count * SIZES.total * making)
        assert priced.head_s == pytest.approx(plain.head_s), "an Adam epoch still draws one view per row"
    depth = config(**HEAD_ONLY).depth(BLOCKS)
    warm = model(Stored(pooled=(depth,))).breakdown(spec(), config(**HEAD_ONLY, augment="views"))
    assert warm is not None and warm.prefix_s == 0, "stored views cost a later trial nothing"


def test_a_fitted_head_fits_every_view_so_its_fit_is_priced_per_view():
    one = model().breakdown(spec(), config(**HEAD_ONLY, head_fit="lbfgs"))
    viewed = model().breakdown(spec(), config(**HEAD_ONLY, head_fit="lbfgs", augment="views"))
    assert one is not None and viewed is not None and viewed.head_s == pytest.approx((1 + VIEW_COUNT) * one.head_s)


def test_a_fitted_head_is_one_fit_priced_at_four_adam_epochs_whatever_the_epochs_asked():
    adam = model().breakdown(spec(), config(**HEAD_ONLY))
    fitted = model().breakdown(spec(), config(**HEAD_ONLY, head_fit="lbfgs"))
    assert adam is not None and fitted is not None and fitted.prefix_s == adam.prefix_s
    assert fitted.head_s == pytest.approx(adam.head_s * FITTED_HEAD_EPOCHS / 6), "one fit instead of six epochs"


def test_fine_tuning_pays_the_trained_blocks_forward_and_backward_every_tuning_epoch():
    tuned = config(freeze_fraction=0.5, switch_epoch=2)
    frozen, epochs = tuned.frozen_blocks(BLOCKS), tuned.epochs - tuned.switch_epoch
    parts = model(Stored(block=frozen, pooled=(BLOCKS,))).breakdown(spec(), tuned)
    assert parts is not None and parts.prefix_s == 0  # both prefix entries stored
    assert parts.train_s == pytest.approx(epochs * SIZES.train * 3.0 * sum(SECONDS[frozen:]))
    assert parts.predict_s == pytest.approx((epochs * SIZES.val + SIZES.test) * sum(SECONDS[frozen:]))
    cold = model().breakdown(spec(), tuned)  # both passes paid: to the top for the head, to the freeze point
    assert cold is not None and cold.prefix_s == pytest.approx(SIZES.total * (sum(SECONDS) + sum(SECONDS[:frozen])))
    more_blocks = model().predict(spec(), config(freeze_fraction=0.25))
    earlier_switch = model().predict(spec(), config(switch_epoch=1))
    base = model().predict(spec(), tuned)
    assert base is not None and more_blocks is not None and earlier_switch is not None
    assert more_blocks.seconds > base.seconds and earlier_switch.seconds > base.seconds


def test_from_scratch_trains_every_block_every_epoch_with_no_prefix_pass():
    parts = model().breakdown(spec(pretrained=False), config(**HEAD_ONLY))
    assert parts is not None and parts.prefix_s == 0 and parts.head_s == 0
    assert parts.train_s == pytest.approx(6 * SIZES.train * 3.0 * sum(SECONDS))


def test_cross_validation_costs_its_folds_and_a_refit_on_train_and_val():
    tuned, folds = config(), 5
    plain = model().breakdown(spec(), tuned)
    cv = model(folds=folds).breakdown(spec(), tuned)
    assert plain is not None and cv is not None
    scored = SIZES.train + SIZES.val
    # K folds train on (K-1)/K of train+val each, the refit on all of it: K * (train + val) rows per epoch.
    assert cv.train_s / plain.train_s == pytest.approx(folds * scored / SIZES.train)
    assert cv.prefix_s == plain.prefix_s  # the passes are paid once: later folds read the cache
    assert cv.overhead_s == pytest.approx((folds + 1) * plain.overhead_s)
    assert model(folds=folds).breakdown(spec(), tuned, folds=0) == plain


def test_no_block_seconds_no_prediction_and_the_trial_runs_as_asked():
    unknown = model(seconds=None)
    assert unknown.predict(spec(), config()) is None
    plan = unknown.fit_to(spec(), config(), seconds_left=0.001)
    assert plan is not None and plan.config == config() and plan.predicted_seconds is None and not plan.shrunk


def finished(number: int, predicted: float, seconds: float, kind: str = KIND_FINETUNE, framework: str = "stub",
             state: TrialState = TrialState.COMPLETE, backbone: str | None = None, **extra: object):
    attrs = {"predicted_raw_seconds": predicted, "seconds": seconds, "kind": kind, "framework": framework, **extra}
    params = {} if backbone is None else {"backbone": backbone}
    distributions = {} if backbone is None else {"backbone": CategoricalDistribution(["a", "b", "c"])}
    return create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None, user_attrs=attrs,
                        params=params, distributions=distributions)


def test_calibration_is_the_median_real_to_predicted_ratio_of_finished_trials_of_the_kind():
    trials = [finished(0, 10, 20), finished(1, 10, 30), finished(2, 10, 25),  # fine-tune: 2, 3, 2.5
              finished(3, 10, 5, kind=KIND_HEAD), finished(6, 0.1, 0.9, kind=KIND_HEAD),  # head: 0.5, and 9 (tiny)
              finished(4, 10, 90, state=TrialState.PRUNED), finished(5, 10, 1, stopped_by="deadline")]
    calibration = CostCalibration.from_trials(trials)
    assert calibration.factor("stub", KIND_FINETUNE) == pytest.approx(2.5)
    assert calibration.factor("stub", KIND_HEAD) == pytest.approx(0.5)  # a 0.1 s trial weighs a hundredth of a 10 s one
    assert calibration.factor("stub", KIND_SCRATCH) == pytest.approx(2.5)  # none of the kind: the framework's
    assert calibration.factor("other", KIND_HEAD) == 1.0
    wild = CostCalibration.from_trials([finished(0, 1, 1000)])
    assert wild.factor("stub", KIND_FINETUNE) == FACTOR_LIMITS[1]
    raw = model().predict(spec(), config())
    corrected = model(calibration=calibration).predict(spec(), config())
    assert raw is not None and corrected is not None
    covered = 30.0  # the predicted seconds of the three fine-tuning trials behind the factor
    assert corrected.seconds == pytest.approx(2.5 ** min(1.0, covered / raw.seconds) * raw.seconds)
    assert corrected.raw_seconds == raw.seconds
    assert corrected.attrs()["kind"] == KIND_FINETUNE


def test_a_factor_learnt_from_small_trials_barely_moves_a_much_larger_prediction():
    """Seen in a real search: three ~1 s head-only trials took 2-4x their prediction (fixed costs), and their
    factor turned an exact 40 s prediction of another backbone into 107 s, which shrank it to one epoch."""
    calibration = CostCalibration.from_trials([finished(n, 1.0, 2.7, kind=KIND_HEAD, backbone="a") for n in range(3)])
    assert calibration.factor("stub", KIND_HEAD, "a", seconds=1.0) == pytest.approx(2.7)
    assert calibration.factor("stub", KIND_HEAD, "a", seconds=3.0) == pytest.approx(2.7)  # covered: trusted whole
    assert calibration.factor("stub", KIND_HEAD, "b", seconds=40.0) == pytest.approx(2.7 ** (3 / 40))
    assert calibration.factor("stub", KIND_HEAD, "b", seconds=40.0) < 1.1


def test_calibration_corrects_each_backbone_by_its_own_trials_first():
    trials = [finished(0, 10, 30, backbone="a"), finished(1, 10, 10, backbone="b"), finished(2, 10, 12, backbone="b"),
              finished(3, 10, 20, kind=KIND_HEAD, backbone="c")]
    calibration = CostCalibration.from_trials(trials)
    assert calibration.factor("stub", KIND_FINETUNE, "a") == pytest.approx(3.0)  # its block timings were off
    assert calibration.factor("stub", KIND_FINETUNE, "b") == pytest.approx(1.0)
    assert calibration.factor("stub", KIND_FINETUNE, "c") == pytest.approx(2.0)  # its own head-only trial first
    assert calibration.factor("stub", KIND_FINETUNE, "d") == pytest.approx(1.2)  # then the kind's, over backbones
    assert calibration.samples("stub", KIND_FINETUNE, "b") == 2


def test_a_trial_that_fits_runs_as_asked():
    asked = model().predict(spec(), config())
    assert asked is not None
    plan = model().fit_to(spec(), config(), asked.seconds * 1.01)
    assert plan is not None and plan.config == config() and not plan.shrunk and plan.reason == ""


def test_shrinking_cuts_epochs_then_folds_then_fine_tuning_and_never_starts_the_trial_at_full_size():
    cv = model(folds=5)
    asked = cv.predict(spec(), config())
    assert asked is not None
    for share in (0.9, 0.5, 0.3, 0.15, 0.05):
        left = share * asked.seconds
        plan = cv.fit_to(spec(), config(), left)
        if plan is None:
            continue
        assert plan.shrunk and plan.predicted_seconds is not None and plan.predicted_seconds <= left
        assert (plan.config, plan.folds) != (config(), 5) and plan.reason.startswith("shrunk to fit")
    slightly = cv.fit_to(spec(), config(), 0.9 * asked.seconds)
    assert slightly is not None and slightly.folds == 5 and slightly.config.epochs < 6
    assert slightly.config.finetunes(BLOCKS) and slightly.config.switch_epoch == scaled_switch(config(), slightly.config.epochs)
    two_epochs = cv.predict(spec(), replace(config(), epochs=2, switch_epoch=1))
    assert two_epochs is not None
    fewer_folds = cv.fit_to(spec(), config(), 0.99 * two_epochs.seconds)  # two epochs at 5 folds do not fit
    assert fewer_folds is not None and 2 <= fewer_folds.folds < 5 and "folds instead of 5" in fewer_folds.reason
    smallest_tune = cv.predict(spec(), replace(config(), epochs=2, switch_epoch=1), folds=2)
    assert smallest_tune is not None
    head = cv.fit_to(spec(), config(), 0.99 * smallest_tune.seconds)
    assert head is not None and not head.config.finetunes(BLOCKS) and "head only" in head.reason
    assert head.config.cut_fraction == config().cut_fraction and head.config.backbone == config().backbone
    assert cv.fit_to(spec(), config(), 1e-6) is None  # nothing fits


def test_shrunk_versions_come_largest_first_and_never_below_two_folds():
    versions = shrunk_versions(spec(), config(), 3)
    assert versions[0] == (replace(config(), epochs=5, switch_epoch=scaled_switch(config(), 5)), 3)
    assert all(folds >= 2 for _, folds in versions) and (config(), 3) not in versions
    tuned = [v for v, _ in versions if v.finetunes(BLOCKS)]
    assert all(v.epochs >= 2 and 1 <= v.switch_epoch < v.epochs for v in tuned)
    assert not any(v.finetunes(BLOCKS) for v, _ in versions[len(tuned):])  # head-only versions come last
    scratch = shrunk_versions(spec(pretrained=False), config(), 0)
    assert [v.epochs for v, _ in scratch] == [5, 4, 3, 2, 1] and all(f == 0 for _, f in scratch)


def test_nothing_cached_is_the_default():
    assert isinstance(model().cache, NothingCached)

"""What a trial will cost, in seconds, before it runs; and the largest version of it that fits the time left.

A trial's seconds are mostly blocks run forward and backward, so the model counts block runs and prices them
with the backbone's measured forward seconds per image and block (automl_tl/tuning/block_seconds.py):

- prefix passes, once per trial, over every image of the table (and of each augmented view): the pooled
  features the head reads and the activations at the freeze point, from the deepest block the activation cache
  already holds; free when the entry is stored. An augmented view (``augment: views``) adds the making of its
  images (crop, resize, colour) to each of its passes;
- per fine-tuning epoch, the trained blocks forward and backward over the training rows (``train_factor`` times
  a forward), and forward over the validation rows; the test rows once at the end;
- per head epoch, a head step per training row on cached features (tiny), and a fixed cost per epoch;
- a fixed cost per training run (building the model, saving it), and per run that fine-tunes (its first
  epoch's set-up: kernels chosen, Keras' training graph traced);
- under cross-validation, K folds (each trains on (K-1)/K of train and val and validates on the rest) plus a
  refit on train and val together, for every epoch (an upper bound: the refit stops at the best epoch).

Predictions model the engine's ``outcome.seconds``: the trial's training and scoring, not the latency
measurement or the writes around it. ``CostCalibration`` corrects them from the study's finished trials.
docs/decisions.md (issue 23, part B) has the measured accuracy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from automl_tl.study_record import KIND_ATTR, PREDICTED_ATTR, PREDICTED_RAW_ATTR
from automl_tl.training.augment import view_ids
from automl_tl.training.engine import effective_config
from automl_tl.tuning.cost_calibration import CostCalibration
from automl_tl.types import HEAD_FIT_LBFGS, BackboneSpec, ImageTable, TrialConfig

KIND_HEAD, KIND_FINETUNE, KIND_SCRATCH = "head-only", "fine-tune", "scratch"
MIN_FOLDS = 2  # shrinking never goes below two folds: a trial is never scored another way than its peers
FITTED_HEAD_EPOCHS = 4.0  # the cost of a fitted head's one fit, in Adam epochs (head_epoch_weight)


def trial_kind(spec: BackboneSpec, config: TrialConfig) -> str:
    """``scratch`` (no pretrained weights), ``fine-tune`` (some blocks learn) or ``head-only``."""
    if not spec.pretrained:
        return KIND_SCRATCH
    return KIND_FINETUNE if effective_config(spec, config).finetunes(len(spec.blocks)) else KIND_HEAD


@dataclass(frozen=True)
class DataSizes:
    """Images per split of the table trials run on."""

    train: int
    val: int
    test: int

    @classmethod
    def of(cls, table: ImageTable) -> DataSizes:
        """The sizes of ``table``'s splits."""
        return cls(*(len(table.splits.get(name, ())) for name in ("train", "val", "test")))

    @property
    def total(self) -> int:
        """Every image of the table: what a prefix pass runs over."""
        return self.train + self.val + self.test


@dataclass(frozen=True)
class CostRates:
    """What the block timings do not say, per framework (calibrated on real trials, see docs/decisions.md)."""

    train_factor: float = 3.0  # a trained block's forward and backward, against its inference forward
    head_row_s: float = 2e-5  # one training row of a head step on cached features (forward, backward, Adam)
    head_epoch_s: float = 0.003  # fixed per head epoch
    run_s: float = 0.05  # fixed per training run: the model built and saved, the test split predicted
    tune_setup_s: float = 0.5  # fixed per run that fine-tunes: its first epoch's set-up (kernels, graphs)
    view_image_s: float = 2.5e-4  # making one image of an augmented view, fixed part (Pillow, any framework) ...
    view_pixel_s: float = 1e-7  # ... and per pixel: 0.3 ms at 32 px, 2-5 ms at 224 px (bench/augmented_views.py)


RATES: dict[str, CostRates] = {
    "torch": CostRates(),
    # fit() sets up every epoch, a backbone is built per run, and the first fine-tuning epoch traces its graph
    "keras": CostRates(head_row_s=6e-5, head_epoch_s=0.3, run_s=2.0, tune_setup_s=11.0),
}


class CacheState(Protocol):
    """Which frozen-prefix activations the cache holds for a backbone, per view (0: the images, 1: mirrored,
    ``1 + k``: augmented view ``k``; automl_tl.training.augment.view_ids)."""

    def stored_block(self, spec: BackboneSpec, view: int, k: int) -> int:
        """The deepest block ``j <= k`` whose activations are stored (0 when none)."""

    def pooled_stored(self, spec: BackboneSpec, view: int, k: int) -> bool:
        """Whether the pooled features after block ``k`` are stored."""


class NothingCached:
    """A cache state for when nothing is known: every prefix pass is paid."""

    def stored_block(self, spec: BackboneSpec, view: int, k: int) -> int:
        """No block is stored."""
        return 0

    def pooled_stored(self, spec: BackboneSpec, view: int, k: int) -> bool:
        """No pooled features are stored."""
        return False


@dataclass(frozen=True)
class CostBreakdown:
    """A trial's predicted seconds by what they are spent on, before calibration."""

    prefix_s: float  # prefix passes for activations the cache does not hold
    train_s: float  # trained blocks forward and backward
    head_s: float  # head epochs on cached features
    predict_s: float  # validation and test predictions through trained blocks
    overhead_s: float  # fixed costs per run

    @property
    def seconds(self) -> float:
        """The whole raw prediction."""
        return self.prefix_s + self.train_s + self.head_s + self.predict_s + self.overhead_s


@dataclass(frozen=True)
class Prediction:
    """A trial's predicted seconds (calibrated), the raw prediction, its kind and where the seconds go."""

    seconds: float
    raw_seconds: float
    kind: str
    breakdown: CostBreakdown

    def attrs(self) -> dict[str, float | str]:
        """The trial attributes that record it (calibration reads them back)."""
        return {PREDICTED_ATTR: round(self.seconds, 2), PREDICTED_RAW_ATTR: round(self.raw_seconds, 3), KIND_ATTR: self.kind}


@dataclass(frozen=True)
class FitPlan:
    """What to run: ``config`` with ``folds`` (0: no cross-validation), predicted to take ``predicted_seconds``
    (None: unknown); ``reason`` says what was cut to make it fit ("" when nothing was)."""

    config: TrialConfig
    folds: int
    predicted_seconds: float | None
    reason: str = ""

    @property
    def shrunk(self) -> bool:
        """Whether the plan is smaller than the trial asked."""
        return bool(self.reason)


BlockSecondsLookup = Callable[[BackboneSpec, int], Sequence[float] | None]


class TrialCostModel:
    """Predicts a trial's seconds from its backbone, its configuration, the data's size, the folds and the cache.

    ``block_seconds(spec, image_size)`` gives each block's forward seconds per image (None: unknown, and so is
    the trial's cost); ``cache`` says which activations are stored (by default none); ``calibration`` corrects
    predictions from finished trials; ``folds`` is the study's ``--cv`` (0 or 1: the validation split)."""

    def __init__(self, block_seconds: BlockSecondsLookup, sizes: DataSizes, folds: int = 0,
                 cache: CacheState | None = None, calibration: CostCalibration | None = None,
                 rates: Mapping[str, CostRates] | None = None) -> None:
        self.block_seconds, self.sizes, self.folds = block_seconds, sizes, folds
        self.cache: CacheState = cache or NothingCached()
        self.calibration = calibration or CostCalibration()
        self.rates = dict(RATES if rates is None else rates)

    def breakdown(self, spec: BackboneSpec, config: TrialConfig, folds: int | None = None) -> CostBreakdown | None:
        """The raw predicted seconds of ``config`` on ``spec`` with ``folds`` (the model's by default), by part."""
        seconds = self.block_seconds(spec, config.image_size)
        if seconds is None or len(seconds) != len(spec.blocks):
            return None
        config = effective_config(spec, config)
        rates = self.rates.get(spec.framework, CostRates())
        blocks = len(spec.blocks)
        depth, frozen = config.depth(blocks), config.frozen_blocks(blocks)
        finetunes = config.finetunes(blocks)
        head_epochs = min(config.switch_epoch, config.epochs) if finetunes else config.epochs
        tune_epochs = config.epochs - head_epochs
        trained = sum(seconds[frozen:depth]) if tune_epochs else 0.0
        making = rates.view_image_s + rates.view_pixel_s * config.image_size**2  # one augmented view's image
        prefix = self._prefix_seconds(spec, config, seconds, head_epochs > 0, tune_epochs > 0, making)
        folds = self.folds if folds is None else folds
        runs = self._runs(folds)
        train_s = head_s = predict_s = 0.0
        for train, val, test in runs:
            train_s += tune_epochs * train * rates.train_factor * trained
            predict_s += (tune_epochs * val + (test if tune_epochs else 0)) * trained
            head_s += head_epochs * head_epoch_weight(config) * (train * rates.head_row_s + rates.head_epoch_s)

        overhead = len(runs) * (rates.run_s + (rates.tune_setup_s if tune_epochs else 0.0))
        return CostBreakdown(prefix, train_s, head_s, predict_s, overhead)

    def predict(self, spec: BackboneSpec, config: TrialConfig, folds: int | None = None) -> Prediction | None:
        """The calibrated prediction of ``config`` on ``spec``; None when the backbone's block timings are unknown."""
        parts = self.breakdown(spec, config, folds)
        if parts is None:
            return None
        kind = trial_kind(spec, config)
        factor = self.calibration.factor(spec.framework, kind, spec.name, parts.seconds)
        return Prediction(parts.seconds * factor, parts.seconds, kind, parts)

    def fit_to(self, spec: BackboneSpec, config: TrialConfig, seconds_left: float | None,
               folds: int | None = None) -> FitPlan | None:
        """The largest version of the trial predicted to finish within ``seconds_left``: as asked; else with
        fewer epochs (the switch scaled, so a fine-tuning trial still fine-tunes); else with fewer folds (not
        below two) and as many epochs as then fit; else the head alone on the same backbone and cut point. None
        when nothing fits. Without a limit, or without a prediction, the trial runs as asked."""
        folds = self.folds if folds is None else folds
        asked = self.predict(spec, config, folds)
        if asked is None or seconds_left is None or asked.seconds <= seconds_left:
            return FitPlan(config, folds, asked.seconds if asked is not None else None)
        for candidate, candidate_folds in shrunk_versions(spec, config, folds):
            found = self.predict(spec, candidate, candidate_folds)
            if found is not None and found.seconds <= seconds_left:
                reason = describe_shrink(spec, config, folds, candidate, candidate_folds, seconds_left)
                return FitPlan(candidate, candidate_folds, found.seconds, reason)
        return None

    # -- internals --------------------------------------------------------------------------
    def _runs(self, folds: int) -> list[tuple[float, float, int]]:
        """(training rows, validation rows, test rows) of each training run a trial makes."""
        sizes = self.sizes
        if folds < MIN_FOLDS:
            return [(sizes.train, sizes.val, sizes.test)]
        scored = sizes.train + sizes.val
        fold = [(scored * (folds - 1) / folds, scored / folds, sizes.test)] * folds
        return [*fold, (scored, 0.0, sizes.test)]  # the refit: train and val, no validation

    def _prefix_seconds(self, spec: BackboneSpec, config: TrialConfig, seconds: Sequence[float], head: bool,
                        tune: bool, making: float = 0.0) -> float:
        """Seconds of the prefix passes the trial pays: pooled features at the cut for its head epochs, the
        activations at the freeze point for its fine-tuning epochs, per view, from the deepest stored block;
        a pass over an augmented view's images (view 2 on) also makes them, ``making`` seconds an image."""
        if not spec.pretrained:
            return 0.0  # nothing is frozen: every block runs in every epoch, counted there
        depth, frozen = config.depth(len(spec.blocks)), config.frozen_blocks(len(spec.blocks))
        rows, total = self.sizes.total, 0.0
        for view in view_ids(config.augment):
            made = making if view >= 2 else 0.0
            if head and not self.cache.pooled_stored(spec, view, depth):
                start = self.cache.stored_block(spec, view, depth)
                total += rows * (sum(seconds[start:depth]) + (made if start == 0 else 0.0))
            if tune and frozen > 0:
                start = self.cache.stored_block(spec, view, frozen)
                total += rows * (sum(seconds[start:frozen]) + (made if start == 0 else 0.0))
        return total


def head_epoch_weight(config: TrialConfig) -> float:
    """A head epoch's cost in Adam epochs: a fitted (L-BFGS) head's one fit takes about four (0.28 s a fit against
    0.063 s an epoch, 13 classes of 1280 features on 2 cores, bench/budget.py), times its views: it fits every
    view's training rows at once, where an Adam epoch draws one view per row."""
    if config.head_fit != HEAD_FIT_LBFGS:
        return 1.0
    return FITTED_HEAD_EPOCHS * len(view_ids(config.augment))


def scaled_switch(config: TrialConfig, epochs: int) -> int:
    """The switch epoch of ``config`` scaled to ``epochs``, kept between 1 and ``epochs - 1`` (a trial that
    fine-tuned still fine-tunes, after at least one head epoch)."""
    return max(1, min(epochs - 1, round(config.switch_epoch * epochs / max(config.epochs, 1))))


def _fewer_epochs(config: TrialConfig, epochs: int, tunes: bool) -> TrialConfig:
    return replace(config, epochs=epochs, switch_epoch=scaled_switch(config, epochs) if tunes else epochs)


def shrunk_versions(spec: BackboneSpec, config: TrialConfig, folds: int) -> list[tuple[TrialConfig, int]]:
    """Smaller versions of the trial, the largest first: for each number of folds from ``folds`` down to two,
    every shorter epoch count (a fine-tuning trial down to two epochs); then the head alone on the same
    backbone and cut point (pretrained backbones only), the same way."""
    blocks = len(spec.blocks)
    tunes = effective_config(spec, config).finetunes(blocks)
    fold_counts = list(range(folds, MIN_FOLDS - 1, -1)) if folds >= MIN_FOLDS else [folds]
    shapes: list[tuple[TrialConfig, bool]] = [(config, tunes)]
    if tunes and spec.pretrained:
        shapes.append((replace(config, freeze_fraction=1.0, switch_epoch=config.epochs), False))
    versions = []
    for shape, shape_tunes in shapes:
        lowest = 2 if shape_tunes and spec.pretrained else 1  # from scratch, one epoch still trains every block
        for count in fold_counts:
            for epochs in range(shape.epochs, lowest - 1, -1):
                version = _fewer_epochs(shape, epochs, shape_tunes) if epochs < shape.epochs else shape
                if (version, count) != (config, folds):
                    versions.append((version, count))
    return versions


def describe_shrink(spec: BackboneSpec, asked: TrialConfig, asked_folds: int, plan: TrialConfig, plan_folds: int,
                    seconds_left: float) -> str:
    """One line on what was cut from a trial so that it fits the seconds left."""
    parts = []
    blocks = len(spec.blocks)
    if effective_config(spec, asked).finetunes(blocks) and not effective_config(spec, plan).finetunes(blocks):
        parts.append("the head only instead of fine-tuning")
    if plan.epochs != asked.epochs:
        tunes = spec.pretrained and plan.finetunes(blocks)
        switch = f", switch after {plan.switch_epoch}" if tunes else ""
        parts.append(f"{plan.epochs} of {asked.epochs} epochs{switch}")
    if plan_folds != asked_folds:
        parts.append(f"{plan_folds} folds instead of {asked_folds}")
    return f"shrunk to fit the {seconds_left:.0f} s left: " + ", ".join(parts)

"""Smart start: the first trials of a new study, chosen from the data by the rules of thumb of transfer learning.

Before the sampler takes over, the data is profiled: its size per class, and how well a quick
linear probe (a closed-form ridge classifier) does on the frozen backbone's pooled features, at
the last block and at the middle cut point. The features come from the shared activation cache,
so the probe's forward pass is the one the first trials would have paid for anyway.

    small and similar   -> freeze everything, train a head
    large and similar   -> fine-tune more (the top half)
    small and different -> earlier features (cut the backbone in the middle)
    large and different -> fine-tune most

"Similar" means the last block's features probe at least as well as the middle block's: the deep,
source-specific features still fit the data. When the two probes nearly tie, the second plan is
taken from the other side as a hedge, and the plan that keeps fewer blocks runs first: it fits as
well by the probe and is the smaller model. Each enqueued trial records why in its user attrs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from automl_tl.training.folds import assign_folds, fold_table, scored_rows
from automl_tl.tuning.space import ShapeOf, ask_params, unknown_shape
from automl_tl.types import HEAD_FIT_ADAM, HEAD_FIT_LBFGS, BackboneSpec, FrameworkAdapter, ImageTable, TrialConfig

SMALL_PER_CLASS = 100  # fewer training images per class than this is "small" data
PROBE_FOLDS = 5  # the probe is cross-validated over train and val, as trials under --cv auto are
CLOSE_CALL = 0.02  # probe accuracies closer than this leave the likeness undecided


@dataclass(frozen=True)
class DataProfile:
    """What smart start measured about the data."""

    backbone: str
    train_images: int
    classes: int
    per_class: float
    probe_last: float  # 5-fold accuracy of a ridge probe on the last block's pooled features (train and val)
    probe_middle: float  # ... on the pooled features at the middle cut point
    middle_cut: float  # the cut_fraction of that middle point

    @property
    def small(self) -> bool:
        return self.per_class < SMALL_PER_CLASS

    @property
    def similar(self) -> bool:
        return self.probe_last >= self.probe_middle

    @property
    def close_call(self) -> bool:
        """The two probes within CLOSE_CALL of each other: likeness is too uncertain to bet on one side."""
        return abs(self.probe_last - self.probe_middle) < CLOSE_CALL

    def describe(self) -> str:
        size = "small" if self.small else "large"
        likeness = "similar to" if self.similar else "unlike"
        return (f"{self.train_images} training images ({self.per_class:.0f} per class: {size}); a linear probe on frozen "
                f"{self.backbone} features scores {self.probe_last:.3f} at the last block and {self.probe_middle:.3f} at "
                f"the middle one (the mean of {PROBE_FOLDS} folds of the training and validation images; "
                f"{likeness} the backbone's source data)")


@dataclass(frozen=True)
class StartTrial:
    params: dict[str, Any]
    reason: str


def probe_folds(table: ImageTable, folds: int = PROBE_FOLDS) -> list[ImageTable]:
    """``folds`` folds of the training and validation images, assigned as the trials' own cross-validation
    assigns them (``training.folds``); those with images to train on and to score. Empty: too few to fold."""
    assignment = assign_folds(table.relpaths, table.labels, scored_rows(table), folds)
    tables = [fold_table(table, assignment, j) for j in range(folds)]
    return [fold for fold in tables if len(fold.splits["val"]) and len(fold.splits["train"])]


def probe_accuracy(features: np.ndarray, table: ImageTable, folds: list[ImageTable] | None = None) -> float:
    """The ridge probe's accuracy cross-validated over ``folds`` (default ``probe_folds(table)``): a closed-form
    solve per fold. One validation split of a small folder is too few images to compare with cross-validated
    trials (on 647 stamps the five folds of one head ranged from 0.84 to 0.97: bench/head_fit.py)."""
    folds = probe_folds(table) if folds is None else folds
    if not folds:  # too few images to fold: the validation split alone
        return ridge_probe_accuracy(features, table)
    return float(np.mean([ridge_probe_accuracy(features, fold) for fold in folds]))


def ridge_probe_accuracy(features: np.ndarray, table: ImageTable, l2: float = 1.0) -> float:
    """Validation accuracy of a closed-form ridge classifier (one-hot targets) on standardised features."""
    train, val = table.splits["train"], table.splits["val"]
    x_train = features[train].astype(np.float64)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train = (x_train - mean) / std
    x_val = (features[val].astype(np.float64) - mean) / std
    targets = np.eye(table.num_classes)[table.labels[train]]
    gram = x_train.T @ x_train + l2 * len(train) * 1e-3 * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ targets)
    return float(np.mean((x_val @ weights).argmax(axis=1) == table.labels[val]))


def middle_cut(space: Mapping[str, BaseDistribution]) -> float:
    """The cut point halfway down the searched range (1.0 when truncation is not searched)."""
    dist = space.get("cut_fraction")
    if not isinstance(dist, FloatDistribution):
        return 1.0
    step = dist.step or 0.125
    middle = (dist.low + dist.high) / 2
    return float(min(dist.high, max(dist.low, dist.low + math.floor((middle - dist.low) / step + 1e-9) * step)))


def profile_data(adapter: FrameworkAdapter, spec: BackboneSpec, table: ImageTable, space: Mapping[str, BaseDistribution]) -> DataProfile:
    """Profile the data with ``spec`` (a pretrained backbone): one forward pass, through the cache."""
    n_blocks = len(spec.blocks)
    cut = middle_cut(space)
    last = adapter.block_features(spec, table, n_blocks)
    middle_depth = max(1, min(n_blocks, int(round(cut * n_blocks))))
    middle = adapter.block_features(spec, table, middle_depth) if middle_depth < n_blocks else last
    train, folds = len(table.splits["train"]), probe_folds(table)
    return DataProfile(
        backbone=spec.name, train_images=train, classes=table.num_classes, per_class=train / max(table.num_classes, 1),
        probe_last=probe_accuracy(last, table, folds), probe_middle=probe_accuracy(middle, table, folds), middle_cut=cut,
    )


def _fit(space: Mapping[str, BaseDistribution], params: dict[str, Any]) -> dict[str, Any]:
    """Keep only the searched parameters, each moved into its distribution's domain."""
    fitted: dict[str, Any] = {}
    for name, dist in space.items():
        value = params[name] if name in params else _default(dist)
        if isinstance(dist, CategoricalDistribution):
            value = value if value in dist.choices else dist.choices[0]
        elif isinstance(dist, IntDistribution):
            value = int(min(dist.high, max(dist.low, value)))
        elif isinstance(dist, FloatDistribution):
            value = float(min(dist.high, max(dist.low, value)))
            if dist.step:
                value = round(dist.low + round((value - dist.low) / dist.step) * dist.step, 10)
        fitted[name] = value
    return fitted


def _planned(space: Mapping[str, BaseDistribution], params: dict[str, Any], shape_of: ShapeOf) -> dict[str, Any]:
    """A plan as the trial will be asked it: fitted into the space, without the parameters it does not use."""
    fitted = _fit(space, params)
    return ask_params(space, lambda name, dist: fitted[name], shape_of)


def _default(dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[0]
    if isinstance(dist, (IntDistribution, FloatDistribution)):
        return dist.high
    raise TypeError(dist)


def start_trials(profile: DataProfile, space: Mapping[str, BaseDistribution], epochs: int,
                 backbones: list[str], limit: int, shape_of: ShapeOf = unknown_shape,
                 pretrained: list[str] | None = None) -> list[StartTrial]:
    """The first trials for this data, most promising first, at most ``limit``. Each holds only the
    parameters the conditional space asks of it (see ``space.ask_params``), each inside its range.

    On small data the bottleneck recipe also runs on each of the other ``pretrained`` backbones, right
    after the profiled one: which backbone transfers best is the largest single choice on small data,
    and each of these trials costs one cached forward pass (see ``backbone_probes``)."""
    base = {"backbone": profile.backbone, "head_fit": HEAD_FIT_ADAM, "head_units": 0, "head_dropout": 0.0, "lr": 3e-3,
            "finetune_lr_ratio": 0.1, "switch_epoch": epochs, "unfrozen_bn": "train", "cut_fraction": 1.0, "augment": "none",
            "freeze_fraction": 1.0, "block_lr_decay": 1.0}  # the single fine-tuning rate: bench/block_lr.py says why
    cut = profile.middle_cut
    about = profile.describe()
    head = {"head_units": 256, "head_dropout": 0.2, "lr": 1e-3}
    # Fine-tuning is annealed to zero over its epochs (automl_tl/training/schedule.py), so an early switch
    # starts it at the head's own rate: measured on the sample, a third of it ended lower.
    early_switch = {"switch_epoch": 1, "finetune_lr_ratio": 1.0}
    late_switch = {"switch_epoch": max(1, epochs // 2)}
    rules: dict[tuple[bool, bool], list[tuple[dict[str, Any], str]]] = {
        (True, True): [({**head, "head_dropout": 0.3}, "small and similar: freeze everything and train a head"),
                       ({**head, **late_switch, "freeze_fraction": 0.75}, "small and similar: fine-tune only the top quarter, late")],
        (False, True): [({**head, **early_switch, "freeze_fraction": 0.5}, "large and similar: fine-tune more (the top half)"),
                        ({**head, **early_switch, "freeze_fraction": 0.2, "unfrozen_bn": "frozen"},
                         "large and similar, hedged: fine-tune most")],
        (True, False): [({**head, "cut_fraction": cut, "head_dropout": 0.3},
                         f"small and different: earlier features (cut at {cut:g} of the blocks)"),
                        ({**head, **late_switch, "cut_fraction": cut, "freeze_fraction": 0.5},
                         "small and different: earlier features, the top of them fine-tuned late")],
        (False, False): [({**head, **early_switch, "freeze_fraction": 0.2, "unfrozen_bn": "frozen"}, "large and different: fine-tune most"),
                         ({**head, **early_switch, "freeze_fraction": 0.25, "cut_fraction": cut},
                          f"large and different: fine-tune most of the earlier blocks (cut at {cut:g})")],
    }
    plans = list(rules[(profile.small, profile.similar)])
    if profile.close_call:
        # The probes nearly tie: the likeness is uncertain, so the second plan comes from the other side.
        other, why = rules[(profile.small, not profile.similar)][1 if profile.similar else 0]
        plans[1] = (other, f"a close call between similar and different, so also: {why}")
        # In a tie the shorter backbone fits as well and is the smaller, cheaper model: it goes first.
        plans.sort(key=lambda plan: plan[0].get("cut_fraction", 1.0))
    probe = ({"cut_fraction": 1.0 if profile.similar else cut, "head_fit": HEAD_FIT_LBFGS, "head_l2": TrialConfig.head_l2},
             "the classic bottleneck recipe: frozen features and a softmax layer, fitted to convergence, the cheapest "
             "baseline")
    # The probes on other backbones never crowd out the data's own plans: with many backbones and few trials,
    # the plans keep their places inside ``limit``.
    others = backbone_probes(profile, probe[0], pretrained or [])[:max(0, limit - 1 - len(plans))]
    trials = [probe, *others, *plans]
    scratch = [name for name in backbones if name == "small_cnn"]
    if scratch and not profile.similar:
        trials.append(({"backbone": scratch[0], "lr": 3e-3, "head_units": 128, "head_dropout": 0.1},
                       "unlike the source data: a small CNN from scratch shows whether transfer pays at all"))
    chosen = [StartTrial(_planned(space, {**base, **changes}, shape_of), f"{why}. Data: {about}.") for changes, why in trials]
    unique: list[StartTrial] = []
    for trial in chosen:
        if all(trial.params != other.params for other in unique):
            unique.append(trial)
    return unique[:limit]


def backbone_probes(profile: DataProfile, probe: dict[str, Any], pretrained: list[str]) -> list[tuple[dict[str, Any], str]]:
    """The bottleneck recipe on each pretrained backbone other than the profiled one, when the data is small.

    Across architectures linear transfer follows ImageNet accuracy closely (Kornblith et al. 2019), but on
    one folder the ranking is the data's: on the stamps a fitted head on EfficientNet-Lite1 scored 0.924 on
    held-out images against Lite0's 0.912 and Lite2's 0.892 (docs/decisions.md, issue 24). These trials are
    also the diverse members an ensemble needs. On large data the forward passes cost more and fine-tuning
    matters more, so the sampler chooses there."""
    if not profile.small:
        return []
    return [({**probe, "backbone": name}, f"the same bottleneck recipe on {name}: on small data the backbone that "
             "transfers best is the largest single choice, and one cached forward pass measures it")
            for name in pretrained if name != profile.backbone]


def profile_attrs(profile: DataProfile) -> dict[str, Any]:
    return {**asdict(profile), "small": profile.small, "similar": profile.similar}

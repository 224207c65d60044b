"""The search space as data: Optuna distributions, asked define-by-run, and a TrialConfig from a trial.

The space is conditional: a trial is asked only the parameters that change what it trains.

- Every trial: ``backbone``, ``augment``; a pretrained one ``head_fit`` too. A head trained by Adam (and every
  from-scratch trial) is asked ``head_units``, ``head_dropout`` and ``lr``; a fitted linear head (``lbfgs``)
  only ``head_l2``, and ``lr`` if it fine-tunes.
- A backbone trained from scratch trains every block from the first epoch: it is asked ``unfrozen_bn``
  too, and nothing about transfer (cut point, freezing, phase switch, fine-tuning rate).
- A pretrained backbone: ``cut_fraction`` (with truncation) and ``freeze_fraction``. Only when that
  leaves a block to fine-tune is it asked ``switch_epoch`` (1 to epochs - 1: switching after the
  last epoch is not fine-tuning), ``finetune_lr_ratio`` and ``unfrozen_bn``. ``freeze_fraction == 1``
  is thus the one encoding of "train the head only"; a flat space had a second one in
  ``switch_epoch == epochs``, and asked a head-only trial three parameters it ignores.
- ``block_lr_decay`` (per-block fine-tuning rates, automl_tl/training/block_rates.py) only when at
  least two blocks are fine-tuned: with one, the decay has no block below the top to slow down.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from automl_tl.errors import UserError
from automl_tl.training.augment import SEARCHED_AUGMENTATIONS
from automl_tl.types import HEAD_FIT_ADAM, HEAD_FIT_LBFGS, HEAD_FITS, BackboneSpec, TrialConfig

HEAD_UNITS = (0, 128, 256, 512)
FITTED_HEAD_LR = 1e-3  # a fitted head's lr when it does not fine-tune: nothing reads it
UNFROZEN_BN_MODES = ("train", "frozen")
SPACE_LAYOUT = "conditional"  # recorded in the fingerprint: studies before it asked every trial every parameter

CUT_FRACTIONS = FloatDistribution(0.5, 1.0, step=0.125)
EVERY_TRIAL = ("head_units", "head_dropout", "lr", "augment")
FINE_TUNING = ("switch_epoch", "finetune_lr_ratio", "unfrozen_bn", "block_lr_decay")
# In steps of 0.05, so that 1 (the single rate of studies before it) is a value TPE can draw and smart start can plan.
# From 0.7: with ten trained blocks 0.5 leaves the lowest at 0.002 of the rate, frozen in all but name
# (bench/block_lr.py: 0.6 cost 10 % on the sample).
BLOCK_LR_DECAYS = FloatDistribution(0.7, 1.0, step=0.05)
# The fitted linear head's L2 strength on standardised features: on the stamps its cross-validated accuracy was
# flat from 1e-4 to 3e-2 and fell by 1 point at 1 (bench/head_fit.py).
HEAD_L2 = FloatDistribution(1e-4, 1.0, log=True)


@dataclass(frozen=True)
class BackboneShape:
    """What the space must know of a backbone to ask a trial only what it uses: whether it is
    pretrained, and its number of blocks (None: unknown, so only ``freeze_fraction == 1`` freezes all)."""

    pretrained: bool = True
    blocks: int | None = None

    @classmethod
    def of(cls, spec: BackboneSpec) -> BackboneShape:
        """The shape of a registered backbone."""
        return cls(spec.pretrained, len(spec.blocks))


ShapeOf = Callable[[str], BackboneShape]


def unknown_shape(name: str) -> BackboneShape:
    """The shape assumed without the backbones at hand: pretrained, with blocks not counted."""
    return BackboneShape()


def shapes_from(backbone: Callable[[str], BackboneSpec]) -> ShapeOf:
    """A ``ShapeOf`` from a spec lookup such as ``Plugins.backbone``."""
    return lambda name: BackboneShape.of(backbone(name))


def search_space(backbones: Sequence[str], epochs: int, truncation: bool = True) -> dict[str, BaseDistribution]:
    """Every parameter a trial may be asked, each with the one distribution it is asked from (which
    of them a trial is asked, ``ask_params`` decides). Every parameter means the same thing for every
    backbone, so this never changes mid-study. With ``truncation``, the cut point is searched too: the
    head reads pooled features after ``cut_fraction`` of the blocks (earlier features can transfer
    better to unlike data). A one-epoch trial cannot fine-tune after a head phase: it is asked nothing
    about fine-tuning."""
    if not backbones:
        raise UserError("The search space has no backbone. Check --backbones and `automl-tl backbones`.")
    if epochs < 1:
        raise UserError(f"--epochs {epochs}: a trial needs at least one epoch.")
    transfer: dict[str, BaseDistribution] = {} if epochs == 1 else {
        "freeze_fraction": FloatDistribution(0.0, 1.0, step=0.05),
        "switch_epoch": IntDistribution(1, epochs - 1),
        "finetune_lr_ratio": FloatDistribution(0.01, 1.0, log=True),
        "block_lr_decay": BLOCK_LR_DECAYS,
    }
    return {
        "backbone": CategoricalDistribution(list(backbones)),
        "head_fit": CategoricalDistribution(list(HEAD_FITS)),
        "head_l2": HEAD_L2,
        "head_units": CategoricalDistribution(list(HEAD_UNITS)),
        "head_dropout": FloatDistribution(0.0, 0.5, step=0.05),
        "lr": FloatDistribution(1e-4, 3e-2, log=True),
        **transfer,
        "unfrozen_bn": CategoricalDistribution(list(UNFROZEN_BN_MODES)),
        **({"cut_fraction": CUT_FRACTIONS} if truncation else {}),
        "augment": CategoricalDistribution(list(SEARCHED_AUGMENTATIONS)),
    }


def space_json(space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """A JSON-able description of the space, used in the study fingerprint."""
    return {name: json.loads(distribution_to_json(dist)) for name, dist in sorted(space.items())}


def suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    """Ask the trial for one parameter, through the public suggest API."""
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        if dist.step is not None:
            return trial.suggest_float(name, dist.low, dist.high, step=dist.step)
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    raise TypeError(f"unsupported distribution for {name}: {dist!r}")


def blocks_to_fine_tune(params: Mapping[str, Any], shape: BackboneShape) -> int | None:
    """How many kept blocks the cut point and freeze fraction in ``params`` leave unfrozen (None: the
    backbone's blocks are not counted)."""
    if shape.blocks is None:
        return None
    probe = TrialConfig(backbone="", freeze_fraction=float(params.get("freeze_fraction", 1.0)), head_units=0,
                        head_dropout=0.0, lr=0.0, finetune_lr_ratio=1.0, switch_epoch=0, epochs=1, image_size=1,
                        cut_fraction=float(params.get("cut_fraction", 1.0)))
    return probe.depth(shape.blocks) - probe.frozen_blocks(shape.blocks)


def leaves_blocks_to_fine_tune(params: Mapping[str, Any], shape: BackboneShape) -> bool:
    """Whether the cut point and freeze fraction in ``params`` leave at least one block unfrozen."""
    trained = blocks_to_fine_tune(params, shape)
    return float(params.get("freeze_fraction", 1.0)) < 1.0 if trained is None else trained > 0


def ask_params(space: Mapping[str, BaseDistribution], choose: Callable[[str, BaseDistribution], Any],
               shape_of: ShapeOf = unknown_shape) -> dict[str, Any]:
    """The parameters of one trial, define-by-run: ``choose(name, distribution)`` gives each value
    (a trial's suggestion, or a planned value), and only the parameters the trial uses are asked."""
    params: dict[str, Any] = {}

    def ask(*names: str) -> None:
        for name in names:
            if name in space:
                params[name] = choose(name, space[name])

    ask("backbone")
    shape = shape_of(str(params["backbone"]))
    if not shape.pretrained:
        ask(*EVERY_TRIAL, "unfrozen_bn")  # every block trains from the first epoch; nothing is transferred
        return params
    ask("head_fit")
    fitted = params.get("head_fit") == HEAD_FIT_LBFGS  # a linear head solved on the features: no size, dropout or rate
    ask(*(("head_l2", "augment") if fitted else EVERY_TRIAL))
    ask("cut_fraction", "freeze_fraction")
    if "freeze_fraction" in params and leaves_blocks_to_fine_tune(params, shape):
        if fitted:
            ask("lr")  # the fine-tuning rate is lr x finetune_lr_ratio, as for every trial
        one_block = blocks_to_fine_tune(params, shape) == 1  # the decay would have no lower block to slow down
        ask(*(name for name in FINE_TUNING if not (one_block and name == "block_lr_decay")))
    return params


def head_label(params: Mapping[str, Any]) -> str:
    """A trial's head in a few words: its hidden units, "linear", or a fitted linear head with its L2 strength."""
    if params.get("head_fit") == HEAD_FIT_LBFGS:
        l2 = params.get("head_l2", TrialConfig.head_l2)
        return f"fit L2 {l2:.1g}" if isinstance(l2, (int, float)) else f"fit L2 {l2}"  # a study's value, unchecked
    return str(params.get("head_units") or "linear")


def config_from_params(
    params: Mapping[str, Any], *, epochs: int, image_size: int, seed: int = 0, batch_size: int = 64
) -> TrialConfig:
    """Turn a parameter dict (a trial's params) into a TrialConfig. A parameter the trial was not
    asked takes the value that means "not used": everything frozen, no switch, no cut."""
    return TrialConfig(
        backbone=str(params["backbone"]),
        freeze_fraction=float(params.get("freeze_fraction", 1.0)),
        head_units=int(params.get("head_units", 0)),
        head_dropout=float(params.get("head_dropout", 0.0)),
        lr=float(params.get("lr", FITTED_HEAD_LR)),
        finetune_lr_ratio=float(params.get("finetune_lr_ratio", 1.0)),
        switch_epoch=int(params.get("switch_epoch", epochs)),
        epochs=epochs,
        image_size=image_size,
        unfrozen_bn=str(params.get("unfrozen_bn", "train")),
        cut_fraction=float(params.get("cut_fraction", 1.0)),
        augment=str(params.get("augment", "none")),
        block_lr_decay=float(params.get("block_lr_decay", 1.0)),
        head_fit=str(params.get("head_fit", HEAD_FIT_ADAM)),
        head_l2=float(params.get("head_l2", TrialConfig.head_l2)),
        batch_size=batch_size,
        seed=seed,
    )


def config_from_trial(
    trial: optuna.Trial, space: Mapping[str, BaseDistribution], *, epochs: int, image_size: int, seed: int = 0,
    shape_of: ShapeOf = unknown_shape,
) -> TrialConfig:
    """Ask ``trial`` the parameters it uses (see ``ask_params``) and make its TrialConfig."""
    params = ask_params(space, lambda name, dist: suggest(trial, name, dist), shape_of)
    return config_from_params(params, epochs=epochs, image_size=image_size, seed=seed + trial.number)

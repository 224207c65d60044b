"""The search space as data: Optuna distributions, and a TrialConfig from a trial."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
)

from automl_tl.training.augment import AUGMENTATIONS
from automl_tl.errors import UserError
from automl_tl.types import TrialConfig

HEAD_UNITS = (0, 128, 256, 512)
UNFROZEN_BN_MODES = ("train", "frozen")


CUT_FRACTIONS = FloatDistribution(0.5, 1.0, step=0.125)


def search_space(backbones: Sequence[str], epochs: int, truncation: bool = True) -> dict[str, BaseDistribution]:
    """Every parameter means the same thing for every backbone, so this never changes mid-study.
    With ``truncation``, the cut point is searched too: the head reads pooled features after
    ``cut_fraction`` of the blocks (earlier features can transfer better to unlike data)."""
    if not backbones:
        raise UserError("The search space has no backbone. Check --backbones and `automl-tl backbones`.")
    if epochs < 1:
        raise UserError(f"--epochs {epochs}: a trial needs at least one epoch.")
    return {
        "backbone": CategoricalDistribution(list(backbones)),
        "freeze_fraction": FloatDistribution(0.0, 1.0, step=0.05),
        "head_units": CategoricalDistribution(list(HEAD_UNITS)),
        "head_dropout": FloatDistribution(0.0, 0.5, step=0.05),
        "lr": FloatDistribution(1e-4, 3e-2, log=True),
        "finetune_lr_ratio": FloatDistribution(0.01, 1.0, log=True),
        "switch_epoch": IntDistribution(1, epochs),
        "unfrozen_bn": CategoricalDistribution(list(UNFROZEN_BN_MODES)),
        **({"cut_fraction": CUT_FRACTIONS} if truncation else {}),
        "augment": CategoricalDistribution(list(AUGMENTATIONS)),
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


def config_from_params(
    params: Mapping[str, Any], *, epochs: int, image_size: int, seed: int = 0, batch_size: int = 64
) -> TrialConfig:
    """Turn a parameter dict (a trial's params) into a TrialConfig."""
    return TrialConfig(
        backbone=str(params["backbone"]),
        freeze_fraction=float(params["freeze_fraction"]),
        head_units=int(params["head_units"]),
        head_dropout=float(params["head_dropout"]),
        lr=float(params["lr"]),
        finetune_lr_ratio=float(params["finetune_lr_ratio"]),
        switch_epoch=int(params["switch_epoch"]),
        epochs=epochs,
        image_size=image_size,
        unfrozen_bn=str(params.get("unfrozen_bn", "train")),
        cut_fraction=float(params.get("cut_fraction", 1.0)),
        augment=str(params.get("augment", "none")),
        batch_size=batch_size,
        seed=seed,
    )


def config_from_trial(
    trial: optuna.Trial, space: Mapping[str, BaseDistribution], *, epochs: int, image_size: int, seed: int = 0
) -> TrialConfig:
    params = {name: suggest(trial, name, dist) for name, dist in space.items()}
    return config_from_params(params, epochs=epochs, image_size=image_size, seed=seed + trial.number)

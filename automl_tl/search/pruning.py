"""Pruners that understand the two phases of a trial.

Epochs are the resource, on one step scale across both phases: step s is the validation
accuracy after s epochs, head-only or fine-tuning alike. ``PhaseAwareHalving`` is successive
halving on that scale with two changes that come from the recipe:

- the end of phase 1 (step ``switch_epoch``) is a rung of its own: a head that is already
  behind its peers there rarely catches up by fine-tuning;
- the first fine-tuning epoch is never judged: unfreezing blocks often dips accuracy for an
  epoch before it climbs (the fine-tuning dip), and pruning there would kill good trials.

A trial is judged on its best value so far (the engine keeps the best epoch's weights), against
the best-so-far values of every other trial that reached the same step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from automl_tl.errors import UserError

PRUNERS = ("halving", "median", "hyperband", "none")
DEFAULT_PRUNER = "halving"


def best_so_far(trial: FrozenTrial, step: int) -> float | None:
    values = [v for s, v in trial.intermediate_values.items() if s <= step and v is not None and not math.isnan(v)]
    return max(values) if values else None


class PhaseAwareHalving(BasePruner):
    """Successive halving over epochs with a rung at each trial's phase switch (see module docstring)."""

    def __init__(self, epochs: int, reduction_factor: int = 3, min_resource: int = 1, min_peers: int = 4) -> None:
        self.epochs, self.reduction_factor = epochs, reduction_factor
        self.min_resource, self.min_peers = min_resource, min_peers

    def rungs(self, switch_epoch: int | None) -> set[int]:
        """Steps at which a trial is judged: min_resource * eta^r below the last epoch, plus the switch."""
        steps, resource = set(), self.min_resource
        while resource < self.epochs:
            steps.add(resource)
            resource *= self.reduction_factor
        if switch_epoch is not None and 0 < switch_epoch < self.epochs:
            steps.add(switch_epoch)
            steps.discard(switch_epoch + 1)  # the fine-tuning dip
        return steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        switch = trial.params.get("switch_epoch")
        if step not in self.rungs(int(switch) if switch is not None else None):
            return False
        mine = best_so_far(trial, step)
        if mine is None:
            return False
        peers = [
            value
            for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
            if other.number != trial.number and step in other.intermediate_values
            for value in [best_so_far(other, step)]
            if value is not None
        ]
        if len(peers) < self.min_peers:
            return False
        return mine < keep_threshold([*peers, mine], self.reduction_factor)


def keep_threshold(values: Sequence[float], reduction_factor: int) -> float:
    """The lowest value among the top 1/eta of ``values``: below it, a trial is pruned."""
    ranked = sorted(values, reverse=True)
    keep = max(1, math.ceil(len(ranked) / reduction_factor))
    return ranked[keep - 1]


def make_pruner(name: str, epochs: int) -> BasePruner:
    """A pruner by name. Steps are epochs completed (1..epochs)."""
    if name == "halving":
        return PhaseAwareHalving(epochs)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"--pruner {name!r}: choose one of {', '.join(PRUNERS)}.")

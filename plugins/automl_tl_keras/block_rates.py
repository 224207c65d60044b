"""Per-block fine-tuning rates in Keras 3 (automl_tl/training/block_rates.py defines them).

Keras 3 optimisers have no parameter groups, and scaling the gradients instead would change
nothing: Adam divides the gradient by its own running magnitude, so a gradient scaled by 0.5
moves the weight exactly as far. What Keras does offer is the documented way to write an
optimiser: a subclass overrides ``build`` (once, with the variables it will train) and
``update_step`` (each variable's update, given the current rate from the schedule).
``BlockRateAdam`` keeps Adam's update and multiplies the rate it is handed by the variable's
block multiplier, so the effective rate of every variable is ``schedule(step) * multiplier``: the
phase's CosineDecay still anneals every block, and ``fit`` trains the model as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from automl_tl.training.block_rates import block_rate_multipliers
from automl_tl.types import TrialConfig

from .model import keras


class BlockRateAdam(keras.optimizers.Adam):
    """Adam whose rate (a float or a schedule) is multiplied, per variable, by a fixed multiplier.

    ``multipliers`` maps ``id(variable)`` of model variables to their multiplier; a variable it does
    not name (the head's) learns at the rate itself. Only ids are kept: a Keras optimiser tracks the
    variables assigned to it as its own, which model variables are not."""

    def __init__(self, multipliers: Mapping[int, float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._multiplier_by_id = dict(multipliers)
        self.rate_multipliers: tuple[float, ...] = ()  # one per variable, in the order ``build`` was given them

    def build(self, var_list: Sequence[Any]) -> None:
        """Adam's slots, and each variable's multiplier in the optimiser's own variable order."""
        if self.built:
            return
        super().build(var_list)
        self.rate_multipliers = tuple(float(self._multiplier_by_id.get(id(v), 1.0)) for v in var_list)

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        """Adam's update of ``variable`` at this step's rate times the variable's multiplier."""
        multiplier = self.rate_multipliers[self._get_variable_index(variable)]
        if multiplier != 1.0:
            learning_rate = keras.ops.multiply(learning_rate, multiplier)
        super().update_step(gradient, variable, learning_rate)


def block_multipliers(base: Any, cuts: Sequence[Any], frozen: int, config: TrialConfig) -> dict[int, float]:
    """``id(variable)`` of every trainable variable in the trained blocks ``frozen ..`` of ``base`` (cut
    at ``cuts``, one tensor per block end) and its block's rate multiplier. Each block's variables are
    those of the sub-model from the previous block end to its own, the way the activation cache cuts."""
    multipliers: dict[int, float] = {}
    for block, multiplier in zip(range(frozen, len(cuts)), block_rate_multipliers(config, frozen, len(cuts)), strict=True):
        segment = keras.Model(base.input if block == 0 else cuts[block - 1], cuts[block])
        for variable in segment.trainable_weights:
            multipliers.setdefault(id(variable), multiplier)
    return multipliers


def finetune_adam(base: Any, cuts: Sequence[Any], frozen: int, config: TrialConfig, learning_rate: Any) -> Any:
    """The fine-tuning optimiser: plain Adam for a single rate, ``BlockRateAdam`` for decaying ones."""
    if config.block_lr_decay == 1.0 or len(cuts) - frozen < 2:
        return keras.optimizers.Adam(learning_rate=learning_rate)
    return BlockRateAdam(block_multipliers(base, cuts, frozen, config), learning_rate=learning_rate)

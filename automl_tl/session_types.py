"""The trial session contract: a trial's phases, what the engine learns from an epoch, and the session a
framework adapter's ``start_trial`` returns (``automl_tl.types`` names them all too)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["EpochResult", "FittedHeadSession", "Phase", "TrialSession"]


class Phase(str, enum.Enum):
    """The two phases of a trial."""

    HEAD = "head"  # backbone frozen, only the new head learns
    FINETUNE = "finetune"  # blocks above the freeze point learn too, at a lower rate


@dataclass
class EpochResult:
    """What the engine learns from one epoch, or from a check inside one.

    ``seconds``: the training time of this epoch so far. ``fraction``: the share of the epoch's batches
    trained when it was measured; 1.0 for a whole epoch, less for a check the engine made inside an
    epoch (see ``run_trial``'s ``pause_due``). ``spent``: the trial's training seconds up to here, every
    epoch and check before it included (time in ``train_epoch`` and in validation, not the activation
    cache's passes in ``set_phase``)."""

    epoch: int
    phase: Phase
    train_loss: float
    val_accuracy: float
    val_balanced_accuracy: float
    seconds: float
    fraction: float = 1.0
    spent: float = 0.0

    @property
    def partial(self) -> bool:
        """A check inside an epoch, not the epoch's end."""
        return self.fraction < 1.0


@runtime_checkable
class TrialSession(Protocol):
    """One trial's model inside a framework adapter. The engine drives it epoch by epoch."""

    def set_phase(self, phase: Phase) -> None:
        """Switch between head-only training and fine-tuning (sets what is trainable and the lr)."""

    def train_epoch(self, should_stop: Callable[[], bool] | None = None) -> float:
        """Train on the training split until the epoch ends or ``should_stop()`` says True; return the mean
        loss of the batches this call trained.

        ``should_stop`` is called after every optimiser step. When it says True before the epoch's last
        batch, the call returns at once, and the next call continues the same epoch: its remaining
        batches, in the same order, with the same schedule steps. Only a call after the epoch's last batch
        starts a new epoch. ``epoch_progress`` says where the epoch stands; ``set_phase`` drops an
        unfinished epoch."""

    @property
    def epoch_progress(self) -> float:
        """The share of the current epoch's training rows trained so far, in (0, 1]: exactly 1.0 once its
        last batch has run (then the next ``train_epoch`` starts a new epoch), and 1.0 before the first."""

    def predict_split(self, split: str) -> np.ndarray:
        """Class probabilities, (N, classes), for the named split of the trial's data."""

    def snapshot(self) -> Any:
        """A copy of the current weights that ``restore`` can bring back."""

    def restore(self, snapshot: Any) -> None:
        """Bring back weights taken with ``snapshot``."""

    def save(self, directory: Path) -> None:
        """Write the trial's weights into ``directory`` so ``FrameworkAdapter.load`` can rebuild it."""

    def close(self) -> None:
        """Free what the session holds."""


@runtime_checkable
class FittedHeadSession(Protocol):
    """What a session adds so that the engine can fit its linear head in closed form (``head_fit="lbfgs"``):
    the features the head reads and a way to set its weights. A session without them fails such trials."""

    def head_training_features(self) -> tuple[np.ndarray, np.ndarray]:
        """The pooled features the head reads for every training row, one row per training image and view
        (float32, (rows, features)), and their labels (int64, (rows,)). Called in the head phase."""

    def set_linear_head(self, weights: np.ndarray, bias: np.ndarray) -> None:
        """Make the head ``logits = features @ weights + bias`` (``weights``: (features, classes))."""

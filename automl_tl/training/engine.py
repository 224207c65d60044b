"""One trial, framework-neutral: phase 1 (head only), switch, phase 2 (fine-tune), keep the best epoch."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.errors import TrialFailure
from automl_tl.training.metrics import accuracy, balanced_accuracy
from automl_tl.types import BackboneSpec, EpochResult, FrameworkAdapter, ImageTable, Phase, TrialConfig


class PruneTrial(Exception):
    """Raised when the pruner stops a trial; carries the epochs seen so far."""

    def __init__(self, history: list[EpochResult]) -> None:
        super().__init__(f"pruned after epoch {history[-1].epoch + 1}" if history else "pruned")
        self.history = history


@dataclass
class TrialOutcome:
    """What a finished trial kept: the weights of its best epoch and their scores."""

    val_accuracy: float
    val_balanced_accuracy: float
    best_epoch: int
    best_phase: Phase
    test_accuracy: float
    test_balanced_accuracy: float
    config: TrialConfig  # what the trial really ran: ``effective_config`` of the one asked for
    history: list[EpochResult] = field(default_factory=list)
    seconds: float = 0.0
    # The kept weights' class probabilities, row for row with data.splits["val"] and ["test"]: what
    # ensembles of trials are selected on and judged by (automl_tl.storage.predictions keeps them).
    val_probabilities: np.ndarray | None = None
    test_probabilities: np.ndarray | None = None
    # The table rows ``val_probabilities`` belong to; None: data.splits["val"]. Under cross-validation they are
    # the out-of-fold predictions over train and val (automl_tl.training.cross_validation).
    val_index: np.ndarray | None = None
    scoring: dict[str, Any] = field(default_factory=dict)  # how the value was scored, kept with the trial's metrics


EpochCallback = Callable[[EpochResult], None]
PruneCheck = Callable[[EpochResult], bool]
StartCallback = Callable[[TrialConfig], None]
ProbabilitiesCallback = Callable[[EpochResult, np.ndarray], None]


def effective_config(spec: BackboneSpec, config: TrialConfig) -> TrialConfig:
    """What a trial really runs: a backbone without pretrained weights has nothing to transfer,
    so it trains every block from the first epoch (see ``TrialConfig.from_scratch``)."""
    return config if spec.pretrained else config.from_scratch()


def phase_schedule(config: TrialConfig, n_blocks: int) -> list[Phase]:
    """The phase of each epoch. Without anything to fine-tune, every epoch trains the head."""
    if not config.finetunes(n_blocks):
        return [Phase.HEAD] * config.epochs
    return [config.phase_at(epoch) for epoch in range(config.epochs)]


def checked_loss(loss: float, epoch: int, phase: Phase) -> float:
    """An epoch's mean training loss; a loss that is not finite fails the trial."""
    if not math.isfinite(loss):
        raise TrialFailure(
            f"the training loss became {loss} in epoch {epoch + 1} ({phase.value} phase); "
            f"the learning rate may be too high for this backbone"
        )
    return loss


def run_trial(
    adapter: FrameworkAdapter,
    spec: BackboneSpec,
    config: TrialConfig,
    data: ImageTable,
    on_epoch: EpochCallback | None = None,
    should_prune: PruneCheck | None = None,
    save_to: Path | None = None,
    on_start: StartCallback | None = None,
    on_val_probabilities: ProbabilitiesCallback | None = None,
) -> TrialOutcome:
    """Train one configuration and return the scores of the weights it keeps.

    The trial runs ``effective_config(spec, config)``; ``on_start`` is called with it before the
    adapter prepares anything, and the outcome records it, so no caller needs to work it out again.
    Validation accuracy is measured after every epoch on one step scale across both
    phases. The weights of the best epoch are snapshotted and restored at the end, so
    the trial's value, its test accuracy and its saved artifact all describe the same
    weights, as checkpointing with early stopping does. ``on_val_probabilities`` receives every epoch's
    validation probabilities (cross-validation pools them across folds).
    """
    started = time.perf_counter()
    config = effective_config(spec, config)
    if on_start is not None:
        on_start(config)
    val_labels = data.labels[data.splits["val"]]
    session = adapter.start_trial(spec, config, data)
    history: list[EpochResult] = []
    best: EpochResult | None = None
    best_snapshot: Any = None
    best_probabilities: np.ndarray | None = None
    try:
        current: Phase | None = None
        for epoch, phase in enumerate(phase_schedule(config, len(spec.blocks))):
            if phase is not current:
                session.set_phase(phase)
                current = phase
            epoch_start = time.perf_counter()
            loss = checked_loss(session.train_epoch(), epoch, phase)
            probabilities = session.predict_split("val")
            result = EpochResult(
                epoch=epoch,
                phase=phase,
                train_loss=loss,
                val_accuracy=accuracy(probabilities, val_labels),
                val_balanced_accuracy=balanced_accuracy(probabilities, val_labels),
                seconds=time.perf_counter() - epoch_start,
            )
            history.append(result)
            if on_val_probabilities is not None:
                on_val_probabilities(result, probabilities)
            if best is None or result.val_accuracy > best.val_accuracy:
                best, best_snapshot, best_probabilities = result, session.snapshot(), probabilities
            if on_epoch is not None:
                on_epoch(result)
            if should_prune is not None and should_prune(result):
                raise PruneTrial(history)
        assert best is not None
        session.restore(best_snapshot)
        test_labels = data.labels[data.splits["test"]]
        test_probabilities = session.predict_split("test")
        if save_to is not None:
            session.save(save_to)
        return TrialOutcome(
            val_accuracy=best.val_accuracy,
            val_balanced_accuracy=best.val_balanced_accuracy,
            best_epoch=best.epoch,
            best_phase=best.phase,
            test_accuracy=accuracy(test_probabilities, test_labels),
            test_balanced_accuracy=balanced_accuracy(test_probabilities, test_labels),
            config=config,
            history=history,
            seconds=time.perf_counter() - started,
            val_probabilities=np.asarray(best_probabilities, dtype=np.float32),
            test_probabilities=np.asarray(test_probabilities, dtype=np.float32),
        )
    finally:
        session.close()

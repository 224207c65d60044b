"""Sessions and deadlines for the deadline tests: a session that trains batch by batch and stops when asked,
and deadlines that pass after a set number of batches (no clock in the way)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.runtime.deadline import Deadline
from automl_tl.types import ImageTable, Phase
from tests.support.scripted import one_hot_with_accuracy


class BatchDeadline(Deadline):
    """A deadline that passes once ``after`` batches have run (``tick`` counts them)."""

    def __init__(self, after: int) -> None:
        super().__init__(started=time.monotonic(), seconds=3600.0)
        object.__setattr__(self, "after", after)
        object.__setattr__(self, "ticks", 0)

    def tick(self) -> None:
        object.__setattr__(self, "ticks", self.ticks + 1)

    def passed(self) -> bool:
        return self.ticks >= self.after


class SteppedSession:
    """``batches`` optimiser steps per epoch; accuracy after ``e`` whole epochs is ``script[e - 1]`` (a partly
    trained epoch scores as the whole epochs before it). Records every (epoch, batch) it trains."""

    def __init__(self, data: ImageTable, script: list[float], batches: int = 4, deadline: BatchDeadline | None = None,
                 batch_seconds: float = 0.0, phase_seconds: float = 0.0) -> None:
        self.data, self.script, self.batches, self.deadline = data, script, batches, deadline
        self.batch_seconds, self.phase_seconds = batch_seconds, phase_seconds
        self.epochs, self.position = 0, 0  # whole epochs trained, steps into the next
        self.trained: list[tuple[int, int]] = []
        self.calls = 0
        self.saved: Path | None = None
        self.closed = False

    @property
    def epoch_progress(self) -> float:
        return self.position / self.batches if self.position else 1.0

    def set_phase(self, phase: Phase) -> None:
        time.sleep(self.phase_seconds)  # the activation cache's pass: not training time
        self.position = 0

    def train_epoch(self, should_stop: Any = None) -> float:
        self.calls += 1
        while True:
            time.sleep(self.batch_seconds)
            self.trained.append((self.epochs, self.position))
            self.position += 1
            if self.deadline is not None:
                self.deadline.tick()
            stop = should_stop is not None and should_stop()  # asked after every step, the last one too
            if self.position == self.batches:
                self.epochs, self.position = self.epochs + 1, 0
                return 0.5
            if stop:
                return 0.5

    def predict_split(self, split: str) -> np.ndarray:
        labels = self.data.labels[self.data.splits[split]]
        score = self.script[self.epochs - 1] if self.epochs else 0.0
        return one_hot_with_accuracy(labels, score, self.data.num_classes)

    def snapshot(self) -> Any:
        return self.epochs

    def restore(self, snapshot: Any) -> None:
        self.epochs, self.position = snapshot, 0

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "epochs.txt").write_text(str(self.epochs))
        self.saved = directory

    def close(self) -> None:
        self.closed = True


class OneSessionAdapter:
    """Hands out one session per trial from ``make(data)``; keeps them."""

    name = "stepped"

    def __init__(self, make: Any) -> None:
        self.make, self.sessions = make, []

    def start_trial(self, spec: Any, config: Any, data: ImageTable) -> Any:
        session = self.make(data)
        self.sessions.append(session)
        return session

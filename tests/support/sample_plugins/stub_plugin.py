"""A fast stand-in framework for tests where the property under test is the study, not training.

Loaded with ``--plugin tests/support/sample_plugins/stub_plugin.py`` or registered in code. Its "accuracy" is a
deterministic function of the trial's parameters, so samplers and pruners behave as usual.
Environment knobs: STUB_EPOCH_SECONDS (sleep per epoch, the fitted head's one epoch included), STUB_BATCHES
(optimiser steps per epoch, default 1) and STUB_BATCH_SECONDS (sleep per step; ``should_stop`` is asked after each), STUB_NAN_ABOVE_LR (NaN
loss when lr is above this value), STUB_RAISE_ON_HEAD (raise when head_units equals this value),
STUB_BLOCK_SECONDS (each block's forward seconds per image, as ``block_seconds`` reports them to the cost
model; unset: the stub cannot be timed, and its trials are not predicted; the figures are cached in the cache
folder like real ones, so a test that sets it gives the cache folder of its own).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, Phase, Preprocessing, TrialConfig, WeightsInfo


class StubSession:
    def __init__(self, config: TrialConfig, data: Any) -> None:
        self.config, self.data = config, data
        self.epoch = 0
        self.steps_done = 0  # optimiser steps of the epoch under way
        self.phase = Phase.HEAD
        self.quality = 0.5 + 0.4 * math.exp(-abs(math.log10(config.lr) + 2.5)) - 0.1 * config.head_dropout
        if config.head_fit == "lbfgs":  # a fitted linear head: best at an L2 strength of 1e-2
            self.quality = 0.5 + 0.4 * math.exp(-abs(math.log10(config.head_l2) + 2.0))

    def set_phase(self, phase: Phase) -> None:
        self.phase = phase

    @property
    def epoch_progress(self) -> float:
        return self.steps_done / self.batches() if self.steps_done else 1.0

    @staticmethod
    def batches() -> int:
        return max(1, int(os.environ.get("STUB_BATCHES", "1")))

    def train_epoch(self, should_stop: Callable[[], bool] | None = None) -> float:
        if not self.steps_done:
            time.sleep(float(os.environ.get("STUB_EPOCH_SECONDS", "0")))
        limit = os.environ.get("STUB_NAN_ABOVE_LR")
        if limit and self.config.lr > float(limit):
            return float("nan")
        if os.environ.get("STUB_RAISE_ON_HEAD") == str(self.config.head_units):
            raise RuntimeError("stub backbone exploded")
        while self.steps_done < self.batches():
            time.sleep(float(os.environ.get("STUB_BATCH_SECONDS", "0")))
            self.steps_done += 1
            if self.steps_done < self.batches() and should_stop is not None and should_stop():
                return 1.0 / (self.epoch + 1)
        self.steps_done = 0
        self.epoch += 1
        return 1.0 / self.epoch

    def head_training_features(self) -> tuple[np.ndarray, np.ndarray]:
        # The fit is the head phase's one epoch, and lasts as long: a test that stops a running trial (SIGTERM,
        # a deadline) must find smart start's fitted-head trial still running, not done in 0.04 s.
        time.sleep(float(os.environ.get("STUB_EPOCH_SECONDS", "0")))
        train = self.data.splits["train"]
        return np.random.default_rng(0).normal(size=(len(train), 4)).astype(np.float32), self.data.labels[train]

    def set_linear_head(self, weights: np.ndarray, bias: np.ndarray) -> None:
        self.epoch += 1  # the fit is the head phase's one epoch

    def predict_split(self, split: str) -> np.ndarray:
        labels = self.data.labels[self.data.splits[split]]
        n_right = int(round(len(labels) * min(0.99, self.quality * (1 - 0.5 ** self.epoch) + 0.1)))
        predicted = labels.copy()
        predicted[n_right:] = (labels[n_right:] + 1) % self.data.num_classes
        return np.eye(self.data.num_classes, dtype=np.float32)[predicted]

    def snapshot(self) -> Any:
        return self.epoch

    def restore(self, snapshot: Any) -> None:
        self.epoch = snapshot

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "stub.json").write_text(json.dumps({"epoch": self.epoch}))

    def close(self) -> None:
        pass


class StubAdapter:
    name = "stub"
    export_formats: tuple[str, ...] = ()
    safe_formats: tuple[str, ...] = ()

    def is_installed(self) -> bool:
        return True

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: Any) -> StubSession:
        return StubSession(config, data)

    def block_seconds(self, spec: BackboneSpec, image_size: int) -> list[float] | None:
        figure = os.environ.get("STUB_BLOCK_SECONDS")
        return [float(figure)] * len(spec.blocks) if figure else None

    def block_features(self, spec: BackboneSpec, data: Any, block: int) -> np.ndarray:
        return data.images.reshape(len(data.images), -1, 3).mean(axis=1).astype(np.float32)

    def load(self, spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig) -> Any:
        raise RuntimeError("the stub framework declares no export formats")

    def predict_loaded(self, model: Any, preprocessing: Preprocessing, batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("the stub framework declares no export formats")

    def export(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
        raise RuntimeError("the stub framework declares no export formats")

    def load_exported(self, out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> Any:
        raise RuntimeError("the stub framework declares no export formats")


def stub_spec(name: str = "stub_net", pretrained: bool = True) -> BackboneSpec:
    weights = WeightsInfo(source="stub weights", is_available=lambda: True) if pretrained else None
    return BackboneSpec(name=name, framework="stub", factory=lambda pretrained: None,
                        blocks=tuple(f"b{i}" for i in range(4)), feature_dim=8, weights=weights)


@hookimpl
def register_frameworks(register: Callable[[Any], None]) -> None:
    """The stub framework."""
    register(StubAdapter())


@hookimpl
def register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """One stub backbone, declared from-scratch (no weights), so it is always usable."""
    register(stub_spec())

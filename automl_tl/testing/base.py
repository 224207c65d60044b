"""What the conformance checks stand on: the hooks a framework plugin fills in, and the suite's helpers."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl_tl.capabilities import InspectableSession
from automl_tl.training.engine import effective_config
from automl_tl.tuning.space import config_from_params
from automl_tl.types import BackboneSpec, FrameworkAdapter, ImageTable, Phase, TrialConfig, TrialSession

from .environment import suite_environment
from .tables import synthetic_table
from .verdicts import fail, refusals_named

__all__ = ["ConformanceBase"]

# Differences that rounding alone explains, by the dtype the activation cache keeps (see ``cache_dtype``).
CACHED_VALUE_TOLERANCE = {"float32": 1e-5, "float16": 2e-3}  # on probabilities, trial against rebuilt model
FEATURE_TOLERANCE = {"float32": 1e-4, "float16": 2e-3}  # on features, relative to their largest value


class ConformanceBase(abc.ABC):
    """The hooks and helpers every conformance check uses; see ``automl_tl.testing``."""

    image_size = 16
    determinism_tolerance = 1e-5
    export_tolerance = 1e-4
    # The suite keeps activations in a cache folder of its own, in this dtype. float32 makes a trial's
    # predictions (from cached activations) and a reloaded model's (from the images) agree to 1e-5, so the
    # round-trip checks can be tight; "float16" (the search's default) checks at float16's rounding.
    cache_dtype = "float32"
    reload_tolerance: float | None = None  # None: what the cache dtype's rounding explains
    learning_epochs = 3  # epochs in which the head must visibly learn the synthetic table
    finetuned_blocks = 2  # the top blocks the suite's trials fine-tune (fine-tuning is what takes the time)

    # -- what a plugin provides -----------------------------------------------------------
    @abc.abstractmethod
    def make_adapter(self) -> FrameworkAdapter:
        """The adapter under test (made afresh for each check, inside the suite's own cache settings)."""

    @abc.abstractmethod
    def make_spec(self) -> BackboneSpec:
        """The backbone under test; the suite trains it many times at ``image_size`` px."""

    def block_weights(self, session: TrialSession, index: int) -> list[np.ndarray]:
        """Copies of every weight and statistic (BatchNorm moving averages too) of block ``index``, from the
        session's ``InspectableSession.block_weights`` (``automl_tl.capabilities``)."""
        return [np.asarray(w) for w in self._inspectable(session).block_weights(index)]

    def head_weights(self, session: TrialSession) -> list[np.ndarray]:
        """Copies of every weight of the session's new head, from ``InspectableSession.head_weights``."""
        return [np.asarray(w) for w in self._inspectable(session).head_weights()]

    def _inspectable(self, session: TrialSession) -> InspectableSession:
        if not isinstance(session, InspectableSession):
            fail(self.backbone, f"the trial session ({type(session).__name__}) has no block_weights(index) and head_weights(): a "
                 f"session implements automl_tl.capabilities.InspectableSession so that the suite can see what each "
                 f"phase trains")
        return session

    @abc.abstractmethod
    def reference_features(self, spec: BackboneSpec, data: ImageTable, depths: list[int]) -> dict[int, np.ndarray]:
        """Globally average-pooled activations after each block in ``depths`` (after every block:
        with whatever ``spec`` applies after pooling), for every image of ``data``, computed with the
        framework's own model from ``spec.factory(spec.pretrained)``, not with the adapter's code.
        Feed it ``reference_inputs(data.images, spec.mean, spec.std)``."""

    @abc.abstractmethod
    def seed_framework(self, seed: int) -> None:
        """Seed the framework's random numbers, so that two from-scratch builds get the same weights."""

    def make_table(self) -> ImageTable:
        """The data every check trains on: 16 images per split at ``image_size`` px."""
        return synthetic_table(size=self.image_size)

    # -- the suite's surroundings ---------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def conformance_cache_folder(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """One activation cache folder per conformance class, never the caller's."""
        return tmp_path_factory.mktemp("conformance-cache")

    @pytest.fixture(autouse=True)
    def _conformance_environment(self, conformance_cache_folder: Path) -> Iterator[None]:
        spec = self.make_spec()
        if spec.pretrained and spec.weights is not None and not spec.weights_available():
            pytest.skip(f"{spec.name}: its pretrained weights are not here ({spec.weights.where or spec.weights.source}); "
                        f"download them once (see `automl-tl backbones`) to run the conformance suite on it")
        with suite_environment(conformance_cache_folder, self.cache_dtype):
            yield

    # -- helpers --------------------------------------------------------------------------
    @property
    def backbone(self) -> str:
        """The name every failure message starts with."""
        return str(self.make_spec().name)

    def cached_value_tolerance(self) -> float:
        """How far a trial's predictions (from cached activations) may be from a rebuilt model's."""
        return self.reload_tolerance if self.reload_tolerance is not None else CACHED_VALUE_TOLERANCE[self.cache_dtype]

    def feature_tolerance(self) -> float:
        """How far ``block_features`` may be from ``reference_features``, relative to their largest value."""
        return FEATURE_TOLERANCE[self.cache_dtype]

    def config(self, epochs: int = 2, **changes: Any) -> TrialConfig:
        """A small trial as the engine runs it: for a from-scratch backbone, ``effective_config`` freezes
        nothing and has no head-only phase."""
        params = dict(backbone=self.make_spec().name, freeze_fraction=self.freeze_fraction(), head_units=0, head_dropout=0.0, lr=1e-2,
                      finetune_lr_ratio=0.5, switch_epoch=1, unfrozen_bn="train")
        params.update(changes)
        return effective_config(self.make_spec(), config_from_params(params, epochs=epochs, image_size=self.image_size,
                                                                     batch_size=8))

    def freeze_fraction(self) -> float:
        """The share of blocks the suite's trials freeze: all but the top ``finetuned_blocks`` (at least one
        frozen, at least one fine-tuned, also when the trial is cut at half the blocks)."""
        n = self.n_blocks()
        return (n - max(1, min(self.finetuned_blocks, n - 1))) / n

    def session(self, **changes: Any) -> tuple[FrameworkAdapter, TrialSession, ImageTable]:
        """A fresh adapter and a trial session of ``config(**changes)`` on ``make_table()``."""
        adapter, data, spec = self.make_adapter(), self.make_table(), self.make_spec()
        with refusals_named(spec.name, "start_trial"):
            return adapter, adapter.start_trial(spec, self.config(**changes), data), data

    def first_phase(self) -> Phase:
        """The phase a trial starts in: head only over a pretrained backbone, every block from scratch."""
        return Phase.HEAD if self.make_spec().pretrained else Phase.FINETUNE

    def two_phases(self) -> tuple[Phase, Phase]:
        """The phases of a two-epoch trial: head then fine-tuning, or (from scratch) fine-tuning twice."""
        return self.first_phase(), Phase.FINETUNE

    def train(self, session: TrialSession, phases: tuple[Phase, ...]) -> list[float]:
        """One epoch per phase, switching phase only when it changes (as the engine does); the losses."""
        losses, current = [], None
        for phase in phases:
            if phase is not current:
                session.set_phase(phase)
                current = phase
            losses.append(session.train_epoch())
        return losses

    def n_blocks(self) -> int:
        """How many blocks the backbone declares."""
        return len(self.make_spec().blocks)

    def block_name(self, index: int) -> str:
        """Block ``index`` as failure messages name it: ``block 3 ('features.3')``."""
        return f"block {index} ({self.make_spec().blocks[index]!r})"

"""Broken torch adapters and backbone specs, each wrong in one way a plugin author could get wrong.

Each adapter is the real ``TorchAdapter`` with one behaviour broken; each spec is the inline tiny
backbone (tests/support/sample_plugins/torch_inline.py) with one field wrong."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from automl_tl.types import BackboneSpec, ImageTable, Phase, Preprocessing, TrialConfig
from automl_tl_torch.adapter import TorchAdapter
from tests.support.sample_plugins.torch_inline import _tiny_model, tiny_spec


class SessionWrapper:
    """A trial session that forwards everything to the real one, for a mutant to override a part of."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.current: Phase | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def set_phase(self, phase: Phase) -> None:
        self.inner.set_phase(phase)
        self.current = phase


class HeadStaysPut(SessionWrapper):
    """The head-only phase forgets to step its optimiser, and fine-tuning leaves the head out of its own."""

    def set_phase(self, phase: Phase) -> None:
        super().set_phase(phase)
        for p in self.inner.model.head.parameters():
            p.requires_grad_(False)

    def train_epoch(self) -> float:
        if self.current is Phase.HEAD:
            return math.log(self.inner.data.num_classes)
        return float(self.inner.train_epoch())


class IgnoresShouldStop(SessionWrapper):
    """``train_epoch`` as written before ``should_stop`` existed: it always trains the whole epoch."""

    def train_epoch(self, should_stop: Any = None) -> float:
        return float(self.inner.train_epoch())


class RestartsTheEpoch(SessionWrapper):
    """A call after a stop starts the epoch over (a new order) instead of continuing it."""

    def train_epoch(self, should_stop: Any = None) -> float:
        self.inner._epoch = None
        return float(self.inner.train_epoch(should_stop))


class StopIgnored(TorchAdapter):
    """An adapter whose sessions never stop inside an epoch."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        return IgnoresShouldStop(super().start_trial(spec, config, data))


class EpochStartsOver(TorchAdapter):
    """An adapter whose sessions start a cut epoch over on the next call."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        return RestartsTheEpoch(super().start_trial(spec, config, data))


class HeadNeverTrains(TorchAdapter):
    """An adapter whose new head never learns (before the suite checked the head, it failed one check)."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        return HeadStaysPut(super().start_trial(spec, config, data))


class BlockFeaturesOneTooDeep(TorchAdapter):
    """``block_features(k)`` pools after block k + 1: wrong block indexing (before the suite compared it only
    with its own second call)."""

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        return super().block_features(spec, data, min(block + 1, len(spec.blocks)))


class FreezesOneBlockTooFew(TorchAdapter):
    """Fine-tuning also trains the top frozen block: the freeze point is off by one."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        session = super().start_trial(spec, config, data)
        session.frozen = max(0, session.frozen - 1)
        return session


class UnseededHead(TorchAdapter):
    """The head starts from weights drawn outside config.seed: two runs of one trial differ."""

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        session = super().start_trial(spec, config, data)
        with torch.no_grad():
            for p in session.model.head.parameters():
                p.add_(torch.from_numpy(np.random.default_rng().normal(0.0, 0.1, tuple(p.shape)).astype(np.float32)))
        return session


class ExportWithoutNormalisation(TorchAdapter):
    """The exported model forgets the backbone's mean and std (feeds it 0..1 pixels)."""

    def export(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Any) -> str:
        plain = dataclasses.replace(preprocessing, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        return super().export(model, plain, fmt, out_dir)


class LoadForgetsTheHead(TorchAdapter):
    """``load`` rebuilds the backbone but leaves the new head at fresh random weights."""

    def load(self, spec: BackboneSpec, directory: Any, num_classes: int, config: TrialConfig) -> Any:
        model = super().load(spec, directory, num_classes, config)
        with torch.no_grad():
            for p in model.head.parameters():
                p.normal_(0.0, 0.5)
        return model


def random_every_build_spec() -> BackboneSpec:
    """Declares pretrained weights, but its factory ignores ``pretrained`` and returns new random weights."""
    return dataclasses.replace(tiny_spec(), factory=lambda pretrained: _tiny_model(False))


def wrong_feature_dim_spec() -> BackboneSpec:
    """Declares 16 features; the backbone gives 8."""
    return dataclasses.replace(tiny_spec(), feature_dim=16)


def wrong_block_name_spec() -> BackboneSpec:
    """Names a block the model does not have (``features.9``)."""
    spec = tiny_spec()
    return dataclasses.replace(spec, blocks=(*spec.blocks[:-1], "features.9"))


def scalar_mean_spec() -> BackboneSpec:
    """Gives one number as the mean, where three (one per channel) belong."""
    return dataclasses.replace(tiny_spec(), mean=0.5)  # type: ignore[arg-type]

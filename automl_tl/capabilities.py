"""The optional parts of the adapter contract, one small Protocol per capability.

``automl_tl.types.FrameworkAdapter`` is what every framework adapter must provide; the Protocols here
are what one may add. The core asks for a capability in one way only, ``isinstance(adapter,
Capability)`` (they are ``runtime_checkable``: an adapter need not subclass them, it only defines the
members), and does without it when the answer is no: a search without latency figures, an export
without ``--quantize`` or ``--ensemble``. ``FRAMEWORK_CAPABILITIES`` and ``SESSION_CAPABILITIES`` list
them all; the docs' framework adapter guide (docs/plugins/framework-adapter.md) describes each.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from automl_tl.ensemble_types import EnsembleMember
from automl_tl.types import BackboneSpec, ImageTable, Preprocessing, TrialConfig

__all__ = [
    "FRAMEWORK_CAPABILITIES",
    "SESSION_CAPABILITIES",
    "AveragesMirror",
    "CombinesTrials",
    "DigestsWeights",
    "InspectableSession",
    "MeasuresLatency",
    "MirroredSession",
    "NamesDevice",
    "Quantizes",
    "ResumableSession",
    "ShowsStoredPrefixes",
    "TimesBlocks",
]


@runtime_checkable
class DigestsWeights(Protocol):
    """An adapter that can name the pretrained weights a trial starts from (export refuses another digest)."""

    def backbone_digest(self, spec: BackboneSpec) -> str | None:
        """A digest of the pretrained weights trials of ``spec`` start from and ``load`` rebuilds onto; None
        for a from-scratch backbone. Stored on each trial; ``export`` refuses to rebuild a trial onto
        weights with another digest."""


@runtime_checkable
class MeasuresLatency(Protocol):
    """An adapter that can time a trial's architecture (``search --max-latency-ms``, the latency column)."""

    def inference_latency(self, spec: BackboneSpec, config: TrialConfig, num_classes: int) -> dict[str, float]:
        """Median milliseconds per call of ``config``'s architecture on this machine: ``batch_1_ms`` (needed)
        and ``batch_32_ms``. The core caches the figures per architecture and machine."""


@runtime_checkable
class TimesBlocks(Protocol):
    """An adapter that can time each block of a backbone, for the search's cost model."""

    def block_seconds(self, spec: BackboneSpec, image_size: int) -> list[float]:
        """Seconds per image of each block of ``spec`` run forward at ``image_size`` on this machine, one
        positive figure per block. The core caches them per machine (see ``NamesDevice``)."""


@runtime_checkable
class NamesDevice(Protocol):
    """An adapter that runs on a device of its choice (a GPU, say): block timings are kept per device."""

    @property
    def device(self) -> Any:
        """The device trials run on; ``str(device)`` is part of the key of cached block timings."""


@runtime_checkable
class ShowsStoredPrefixes(Protocol):
    """An adapter that can say which frozen-prefix activations the shared cache holds (the cost model's
    estimate of what a trial costs)."""

    def prefix_activations(self, spec: BackboneSpec, data: ImageTable) -> Any:
        """The frozen-prefix activations of ``spec`` over ``data`` (an ``automl_tl.cache.activations.
        PrefixActivations``, or anything with its ``stored_block(k)`` and ``pooled_stored(k)``), only to
        ask what is stored: nothing is computed. None when nothing of ``spec`` is ever shared."""


@runtime_checkable
class CombinesTrials(Protocol):
    """An adapter that can build one model averaging several trials (``export --ensemble``)."""

    def combine(self, members: Sequence[EnsembleMember], preprocessing: Preprocessing) -> Any:
        """One model, as ``export`` and ``predict_loaded`` take it, whose probabilities are the members'
        weighted mean (``EnsembleMember.weight``); ``preprocessing`` is the input they share."""


@runtime_checkable
class AveragesMirror(Protocol):
    """An adapter that can average a model over each image and its left-right mirror (``export --flip``)."""

    def flip_average(self, model: Any, preprocessing: Preprocessing) -> Any:
        """``model`` (a loaded trial or a combined ensemble) averaged over each image and its mirror, as one
        model that ``export`` and ``predict_loaded`` take like ``model`` itself."""


@runtime_checkable
class Quantizes(Protocol):
    """An adapter that can write an int8 form of some of its exports (``export --quantize int8``)."""

    quantize_formats: tuple[str, ...]
    """The export formats ``quantize`` handles (a part of ``export_formats``)."""

    def quantize(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path, model_file: str,
                 calibration: list[np.ndarray]) -> str:
        """Write the int8 form of the float export ``out_dir / model_file`` (or of ``model``, converted
        again) beside it and return its file name; ``calibration`` is a list of float32 NHWC [0, 1] batches
        of training images. ``load_exported`` must open that file in ``fmt`` too. The core measures it
        against the float model and keeps only one of the two (see automl_tl/deploy/quantize.py)."""


@runtime_checkable
class MirroredSession(Protocol):
    """A trial session that can predict mirrored images at no extra pass (flip-averaged validation)."""

    def predict_mirrored(self, split: str) -> np.ndarray | None:
        """Probabilities, (N, classes), for ``split`` with every image mirrored left-right; None when the
        session does not train on the mirror (it answers only when that costs no new pass)."""


@runtime_checkable
class InspectableSession(Protocol):
    """A trial session whose weights the conformance suite (``automl_tl.testing``) can read, without
    knowing how the framework stores them. Every bundled adapter's sessions provide it; a session
    without it fails the suite's checks of what each phase trains."""

    def block_weights(self, index: int) -> list[np.ndarray]:
        """Copies of every weight and statistic (BatchNorm moving averages too) of block ``index`` of the
        trial's backbone (an index into ``BackboneSpec.blocks``), as numpy arrays, in a fixed order."""

    def head_weights(self) -> list[np.ndarray]:
        """Copies of every weight of the trial's new head, as numpy arrays, in a fixed order."""


@runtime_checkable
class ResumableSession(Protocol):
    """A trial session whose training state can be written after an epoch and read back in a new process, so
    that an interrupted trial run again goes on from its last finished epoch (automl_tl/training/resume.py)."""

    def save_state(self, directory: Path, kept: Any) -> None:
        """Write into ``directory`` (an empty folder) everything training needs to go on: the weights, the
        optimiser's and the learning-rate schedule's state, the random generators' state, and ``kept`` (a
        ``snapshot()`` of the weights the engine keeps so far, or None when they are the current ones). Called
        between epochs, in the phase of the epoch just finished."""

    def load_state(self, directory: Path) -> Any:
        """Read back what ``save_state`` wrote, into a session just started and set to the phase that was saved
        in; return its ``kept`` snapshot (None: the weights just loaded). Files are read without running code
        (``torch.load(weights_only=True)``, a framework's own safe format); anything unreadable raises."""


FRAMEWORK_CAPABILITIES: tuple[type, ...] = (DigestsWeights, MeasuresLatency, TimesBlocks, NamesDevice,
                                            ShowsStoredPrefixes, CombinesTrials, AveragesMirror, Quantizes)
"""Every optional capability of a framework adapter."""

SESSION_CAPABILITIES: tuple[type, ...] = (MirroredSession, InspectableSession, ResumableSession)
"""Every optional capability of a trial session (``FittedHeadSession`` in ``automl_tl.types`` is one too)."""

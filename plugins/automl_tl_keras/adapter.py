"""The Keras 3 framework adapter. TensorFlow is imported lazily, after torchvision."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.cache.store import MemoryStore, store_from_env
from automl_tl.ensemble_types import EnsembleMember
from automl_tl.errors import UserError
from automl_tl.import_order import installed
from automl_tl.types import BackboneSpec, ExportedModel, ImageTable, Preprocessing, TrialConfig


class KerasAdapter:
    """Implements automl_tl.types.FrameworkAdapter with keras.applications backbones."""

    name = "keras"
    export_formats: tuple[str, ...] = ("keras", "savedmodel", "tflite")  # first is the one suggested to users
    # keras: loaded with safe_mode; tflite: built-in operators only. tf.saved_model.load runs the SavedModel's graph as given
    safe_formats: tuple[str, ...] = ("keras", "tflite")
    quantize_formats: tuple[str, ...] = ("tflite",)  # export --quantize int8

    def __init__(self) -> None:
        self.cache = store_from_env()  # frozen-prefix activations on disk, shared by trials, runs and workers
        self._digests: dict[str, str] = {}  # backbone -> the weights digest of its first pretrained build here
        self._probe_bases: dict[str, Any] = {}  # backbone -> a pretrained build, for prefix_activations only

    def is_installed(self) -> bool:
        return installed("keras") and installed("tensorflow")

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        from .session import KerasTrialSession

        return KerasTrialSession(spec, config, data, self.cache, check_base=self._same_weights(spec))

    def _same_weights(self, spec: BackboneSpec) -> Any:
        """A check for each pretrained build of ``spec``: the first one's weights digest is recorded, every
        later one must match it. A factory that ignores ``pretrained=True`` is refused at its second build."""

        def check(base: Any) -> None:
            from .session import weights_digest

            digest = weights_digest(base)
            first = self._digests.setdefault(spec.name, digest)
            if digest != first:
                raise UserError(
                    f"Backbone {spec.name!r}: two builds with pretrained=True gave different weights (digests "
                    f"{first[:12]} and {digest[:12]}), so its factory ignores pretrained=True or loads weights that "
                    f"change from build to build. A trial saves only what it trained, and export rebuilds the rest "
                    f"from the factory: the exported model would not be the one that was scored. Make "
                    f"factory(True) load the same pretrained weights every time, or register the backbone without "
                    f"`weights` to train it from scratch."
                )

        return check

    def backbone_digest(self, spec: BackboneSpec) -> str | None:
        """A digest of the pretrained weights every build of ``spec`` in this process starts from (trials,
        ``load``, features); None for a from-scratch backbone. The first call builds the backbone once, so
        a factory that ignores ``pretrained=True`` is refused by the trial's own build that follows."""
        if not spec.pretrained:
            return None
        if spec.name not in self._digests:
            from .session import build_base

            build_base(spec, self._same_weights(spec))
        return self._digests[spec.name]

    def inference_latency(self, spec: BackboneSpec, config: TrialConfig, num_classes: int) -> dict[str, float]:
        """Median ms per call of the exported form of ``config``'s architecture (one TensorFlow graph) on this
        CPU, at batch 1 and 32 (``batch_1_ms``, ``batch_32_ms``); the core caches it per architecture."""
        from .latency import keras_latency

        return keras_latency(spec, config, num_classes, self._same_weights(spec))

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        from .model import cut_tensors
        from .session import KerasPrefix, build_base

        base = build_base(spec, self._same_weights(spec))
        # A from-scratch backbone is new random weights each time: its activations must not be shared.
        store = self.cache if spec.pretrained else MemoryStore()
        prefix = KerasPrefix(store, spec.name, data, base, cut_tensors(base, spec.blocks), spec.mean, spec.std)
        return np.asarray(prefix.pooled(block), dtype=np.float32)

    def block_seconds(self, spec: BackboneSpec, image_size: int) -> list[float]:
        """Seconds per image of each block of ``spec`` run forward at ``image_size`` on this machine (each block
        a segment of the backbone's graph, as the activation cache runs it): the core caches them."""
        from automl_tl.cache.block_timing import probe_table, time_blocks

        from .model import cut_tensors
        from .session import KerasPrefix, build_base

        base = build_base(spec, self._same_weights(spec))
        prefix = KerasPrefix(MemoryStore(), spec.name, probe_table(image_size), base, cut_tensors(base, spec.blocks),
                             spec.mean, spec.std)
        return time_blocks(prefix)

    def prefix_activations(self, spec: BackboneSpec, data: ImageTable) -> Any:
        """The frozen-prefix activations of ``spec``'s pretrained backbone over ``data``, through the shared cache,
        to ask which of them are stored (``stored_block``, ``pooled_stored``); None for a from-scratch backbone.
        The backbone is built once per process for this."""
        from .model import cut_tensors
        from .session import KerasPrefix, build_base

        if not spec.pretrained:
            return None
        if spec.name not in self._probe_bases:
            self._probe_bases[spec.name] = build_base(spec, self._same_weights(spec))
        base = self._probe_bases[spec.name]
        return KerasPrefix(self.cache, spec.name, data, base, cut_tensors(base, spec.blocks), spec.mean, spec.std)

    def load(self, spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig) -> Any:
        from .session import load_trained

        return load_trained(spec, directory, num_classes, config, check_base=self._same_weights(spec))

    def combine(self, members: Sequence[EnsembleMember], preprocessing: Preprocessing) -> Any:
        """Several loaded trials as one model averaging their probabilities (``export --ensemble``): members of
        one backbone read their branch points from one shared pretrained copy of it, run once."""
        from .ensemble import combine

        return combine(members, preprocessing, check_base=self._same_weights(members[0].spec))

    def flip_average(self, model: Any, preprocessing: Preprocessing) -> Any:
        """``model`` averaged over each image and its mirror in one graph (``export --flip``)."""
        from .model import flip_averaged

        return flip_averaged(model, preprocessing.image_size)

    def predict_loaded(self, model: Any, preprocessing: Preprocessing, batch: np.ndarray) -> np.ndarray:
        from automl_tl.cache.activations import normalise_images

        inputs = normalise_images(batch, preprocessing.mean, preprocessing.std)
        return np.asarray(model.predict(inputs, batch_size=64, verbose=0), dtype=np.float32)

    def export(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
        if fmt == "tflite":
            from .tflite import export_tflite

            return export_tflite(model, preprocessing, out_dir)
        from .exporting import export_model

        return export_model(model, preprocessing, fmt, out_dir)

    def quantize(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path, model_file: str,
                 calibration: list[np.ndarray]) -> str:
        """The int8 TensorFlow Lite file of ``model``, converted again with ``calibration`` as its
        representative data set (a ``.tflite`` file cannot be quantized after conversion)."""
        from .tflite import quantize_tflite

        if fmt != "tflite":
            raise ValueError(f"the keras adapter quantizes tflite exports, not {fmt!r}")
        return quantize_tflite(model, preprocessing, out_dir, calibration)

    def load_exported(self, out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> ExportedModel:
        if fmt == "tflite":
            from .tflite import TFLiteModel

            return TFLiteModel(out_dir / model_file)
        from .exporting import load_exported_model

        return load_exported_model(out_dir, fmt, model_file, trusted)

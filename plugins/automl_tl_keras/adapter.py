"""The Keras 3 framework adapter. TensorFlow is imported lazily, after torchvision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.cache.store import MemoryStore, store_from_env
from automl_tl.import_order import installed
from automl_tl.types import BackboneSpec, ExportedModel, ImageTable, Preprocessing, TrialConfig


class KerasAdapter:
    """Implements automl_tl.types.FrameworkAdapter with keras.applications backbones."""

    name = "keras"
    export_formats = ("keras", "savedmodel")  # first is the one suggested to users
    safe_formats = ("keras",)  # loaded with safe_mode; tf.saved_model.load runs the SavedModel's graph as given

    def __init__(self) -> None:
        self.cache = store_from_env()  # frozen-prefix activations on disk, shared by trials, runs and workers

    def is_installed(self) -> bool:
        return installed("keras") and installed("tensorflow")

    def start_trial(self, spec: BackboneSpec, config: TrialConfig, data: ImageTable) -> Any:
        from .session import KerasTrialSession

        return KerasTrialSession(spec, config, data, self.cache)

    def block_features(self, spec: BackboneSpec, data: ImageTable, block: int) -> np.ndarray:
        from .model import cut_tensors
        from .session import KerasPrefix

        base = spec.factory(spec.pretrained)
        # A from-scratch backbone is new random weights each time: its activations must not be shared.
        store = self.cache if spec.pretrained else MemoryStore()
        prefix = KerasPrefix(store, spec.name, data, base, cut_tensors(base, spec.blocks), spec.mean, spec.std)
        return np.asarray(prefix.pooled(block), dtype=np.float32)

    def load(self, spec: BackboneSpec, directory: Path, num_classes: int, config: TrialConfig) -> Any:
        from .session import load_trained

        return load_trained(spec, directory, num_classes, config)

    def predict_loaded(self, model: Any, preprocessing: Preprocessing, batch: np.ndarray) -> np.ndarray:
        from .session import normalised

        inputs = normalised(batch * 255.0, preprocessing.mean, preprocessing.std)
        return np.asarray(model.predict(inputs, batch_size=64, verbose=0), dtype=np.float32)

    def export(self, model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
        from .exporting import export_model

        return export_model(model, preprocessing, fmt, out_dir)

    def load_exported(self, out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> ExportedModel:
        from .exporting import load_exported_model

        return load_exported_model(out_dir, fmt, model_file, trusted)

"""`.keras` and TensorFlow SavedModel export, and runtimes that load them back safely."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.errors import UserError
from automl_tl.types import Preprocessing

from .model import keras

KERAS_FILE = "model.keras"
SAVEDMODEL_DIR = "savedmodel"


def with_normalisation(model: Any, preprocessing: Preprocessing) -> Any:
    """NHWC RGB in [0, 1] in, probabilities out: the normalisation travels inside the model."""
    inputs = keras.Input((preprocessing.image_size, preprocessing.image_size, 3), name="image")
    variance = [s * s for s in preprocessing.std]
    x = keras.layers.Normalization(mean=list(preprocessing.mean), variance=variance, name="normalise")(inputs)
    return keras.Model(inputs, model(x), name="automl_tl_classifier")


def export_model(model: Any, preprocessing: Preprocessing, fmt: str, out_dir: Path) -> str:
    wrapped = with_normalisation(model, preprocessing)
    if fmt == "keras":
        wrapped.save(out_dir / KERAS_FILE)
        return KERAS_FILE
    if fmt == "savedmodel":
        wrapped.export(str(out_dir / SAVEDMODEL_DIR), format="tf_saved_model", verbose=False)
        return SAVEDMODEL_DIR
    raise ValueError(f"unknown keras export format {fmt!r}")


class KerasFileModel:
    """A `.keras` file loaded with safe_mode (no arbitrary code from the file)."""

    def __init__(self, path: Path) -> None:
        self.model = keras.models.load_model(path, safe_mode=True, compile=False)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(batch.astype(np.float32), batch_size=64, verbose=0))


class SavedModel:
    """A TensorFlow SavedModel's ``serve`` endpoint. Its graph runs as written (file-reading and -writing
    ops included), with no safe mode: only trusted folders get here (see load_exported_model)."""

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self._tf = tf
        self.loaded = tf.saved_model.load(str(path))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.loaded.serve(self._tf.constant(batch.astype(np.float32))).numpy()


def load_exported_model(out_dir: Path, fmt: str, model_file: str, trusted: bool = False) -> Any:
    """The export's model; a SavedModel only when ``trusted``, since its graph can read and write files."""
    if fmt == "keras":
        return KerasFileModel(out_dir / model_file)
    if fmt == "savedmodel":
        if not trusted:
            raise UserError(f"{out_dir / model_file}: a SavedModel can run code (read and write files) when it is "
                            f"loaded, so it is loaded only from a trusted folder (--trust-model). A keras export "
                            f"loads in safe mode.")
        return SavedModel(out_dir / model_file)
    raise ValueError(f"unknown keras export format {fmt!r}")

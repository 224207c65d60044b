"""``export --flip`` in Keras: the mirror-averaged graph, written as .keras (loaded in safe mode), SavedModel
and .tflite, gives the mean of the model on each image and on its mirror."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the keras extra is not installed")

from automl_tl.types import Preprocessing  # noqa: E402


def tiny_classifier() -> object:
    """Normalised NHWC in, probabilities out, with weights that do not treat left and right alike."""
    from automl_tl_keras.model import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(2, 3, padding="same")(inputs))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))


@pytest.mark.parametrize("fmt", ["keras", "savedmodel", "tflite"])
def test_a_keras_flip_export_is_the_mean_of_the_model_on_the_image_and_its_mirror(tmp_path: Path, fmt: str) -> None:
    from automl_tl_keras.adapter import KerasAdapter

    adapter = KerasAdapter()
    preprocessing = Preprocessing(8, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    model = tiny_classifier()
    batch = np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
    plain = adapter.predict_loaded(model, preprocessing, batch)
    mirrored = adapter.predict_loaded(model, preprocessing, np.ascontiguousarray(batch[:, :, ::-1]))
    averaged = adapter.flip_average(model, preprocessing)
    assert np.allclose(adapter.predict_loaded(averaged, preprocessing, batch), (plain + mirrored) / 2, atol=1e-6)
    model_file = adapter.export(averaged, preprocessing, fmt, tmp_path)
    exported = adapter.load_exported(tmp_path, fmt, model_file, trusted=fmt == "savedmodel").predict(batch)
    assert np.allclose(exported, (plain + mirrored) / 2, atol=1e-5)
    assert not np.allclose(exported, plain, atol=1e-4)

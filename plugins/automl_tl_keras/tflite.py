"""TensorFlow Lite export of a trained classifier, its int8 form, and the interpreter that loads them back.

The model converted is the normalised one ``exporting.with_normalisation`` builds, so a ``.tflite`` file
takes float32 NHWC RGB in [0, 1] like the other exports. The int8 form is quantized by the converter
itself: weights and activations int8, activation ranges calibrated on the training images the core
passes (``representative_dataset``); its input and output stay float32, so ``predict`` feeds it as it
feeds the float one. A ``.tflite`` file is a flat buffer of built-in operators: the interpreter runs no
code from it (a model that needs TensorFlow's own ops, which could read or write files, does not load).
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from automl_tl.runtime.env_vars import THREADS
from automl_tl.types import Preprocessing

from .exporting import with_normalisation

TFLITE_FILE = "model.tflite"
INT8_TFLITE_FILE = "model.int8.tflite"


def _convert(model: Any, preprocessing: Preprocessing, configure: Callable[[Any], None] | None = None) -> bytes:
    """The ``.tflite`` bytes of the normalised ``model``, by way of a quiet SavedModel export
    (``from_keras_model`` would print the SavedModel's whole signature)."""
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    with tempfile.TemporaryDirectory(prefix="automl-tl-tflite-") as work:
        with_normalisation(model, preprocessing).export(work, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(work)
        if configure is not None:
            configure(converter)
        return bytes(converter.convert())


def export_tflite(model: Any, preprocessing: Preprocessing, out_dir: Path) -> str:
    """Write the float ``.tflite`` file of ``model`` into ``out_dir``; return its name."""
    (out_dir / TFLITE_FILE).write_bytes(_convert(model, preprocessing))
    return TFLITE_FILE


def quantize_tflite(model: Any, preprocessing: Preprocessing, out_dir: Path, calibration: list[np.ndarray]) -> str:
    """Write the int8 ``.tflite`` file of ``model`` (float input and output) into ``out_dir``; return its name."""
    import tensorflow as tf

    def representative_dataset() -> Iterator[list[np.ndarray]]:
        for batch in calibration:
            for image in batch:
                yield [image[np.newaxis].astype(np.float32)]

    def full_integer(converter: Any) -> None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32

    with warnings.catch_warnings():  # "Statistics for quantized inputs were expected": the input stays float
        warnings.simplefilter("ignore", UserWarning)
        (out_dir / INT8_TFLITE_FILE).write_bytes(_convert(model, preprocessing, full_integer))
    return INT8_TFLITE_FILE


def _interpreter_class() -> Any:
    """LiteRT's interpreter where ``ai_edge_litert`` is installed, else TensorFlow's own (deprecated, same API)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


class TFLiteModel:
    """A ``.tflite`` file in the TensorFlow Lite interpreter: NHWC [0, 1] in, probabilities out."""

    def __init__(self, path: Path) -> None:
        from automl_tl.runtime.threads import usable_cpus

        threads = int(THREADS.value("0")) or usable_cpus()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = _interpreter_class()(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()  # here, so that a file with operators it lacks fails to load
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self._batch = int(self.input["shape"][0])

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:  # the file's input has a free batch axis: size it to this batch
            self.interpreter.resize_tensor_input(self.input["index"], [len(batch), *self.input["shape"][1:]])
            self.interpreter.allocate_tensors()
            self._batch = len(batch)
        self.interpreter.set_tensor(self.input["index"], np.ascontiguousarray(batch, dtype=np.float32))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self.output))

"""TensorFlow's start-up lines (C++ and absl, written to stderr before absl is initialised) and its Python
loggers never reach the terminal of a process that runs Keras trials: they go to the log."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("keras", reason="the keras extra is not installed")

pytestmark = pytest.mark.slow

# What a CLI process does before a Keras trial: configure no logging of its own, load the Keras model module,
# run an operation; then TensorFlow's, Keras' and absl's Python loggers each say something.
_PROGRAM = """
import automl_tl.cli
from automl_tl.runtime.native_logs import quiet_unconfigured_logging
quiet_unconfigured_logging()
import automl_tl_keras.model
import absl.logging, keras, numpy as np, tensorflow as tf
print("shape", tuple(keras.layers.Dense(2)(np.zeros((1, 3), "float32")).shape))
tf.get_logger().error("a tensorflow error record")
absl.logging.warning("an absl warning record")
"""


def test_no_tensorflow_or_absl_line_reaches_stderr() -> None:
    env = {name: value for name, value in os.environ.items() if name != "TF_CPP_MIN_LOG_LEVEL"}  # TF's default
    result = subprocess.run([sys.executable, "-c", _PROGRAM], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "shape (1, 2)" in result.stdout
    assert result.stderr.strip() == "", result.stderr[-3000:]

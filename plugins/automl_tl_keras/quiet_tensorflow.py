"""TensorFlow and Keras imported once, quietly: their log lines go to Python's logging, never to the terminal.

Keras trials start while a search's progress display is live. TensorFlow's C++ start-up lines (absl writes
them to stderr before it is initialised, whatever ``TF_CPP_MIN_LOG_LEVEL`` says) and the Python loggers'
own stderr handlers would break into it; here they go to the ``tensorflow`` and ``absl`` loggers instead,
which reach a file or the terminal only when the host program configures logging to send them there.
"""

from __future__ import annotations

import logging
import sys

from automl_tl.import_order import torchvision_before_tensorflow
from automl_tl.runtime.env_vars import TF_LOG_LEVEL
from automl_tl.runtime.native_logs import native_stderr_to_log, python_logs_to_log

FRAMEWORK_LOGGERS = ("tensorflow", "absl", "keras")
NATIVE_LOGGER = "tensorflow.native"  # the C++ lines; its own level (INFO), as "tensorflow" itself keeps only errors


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras (torchvision first where both frameworks are installed), their log lines routed
    to the log; a later call, or a process that imported them already, changes only the Python loggers."""
    torchvision_before_tensorflow()
    TF_LOG_LEVEL.put_default("2")
    if "tensorflow" not in sys.modules or "keras" not in sys.modules:
        native = logging.getLogger(NATIVE_LOGGER)
        if native.level == logging.NOTSET:
            native.setLevel(logging.INFO)
        with native_stderr_to_log(native):
            import keras  # noqa: F401
            import tensorflow as tf

            tf.get_logger()  # its first call adds TensorFlow's own stderr handler: inside the block, removed below
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices are not the user's concern
    python_logs_to_log(*FRAMEWORK_LOGGERS)

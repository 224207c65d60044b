"""torchvision must be imported before TensorFlow: the other order segfaults (two copies of LLVM).

Every place that may import either framework calls ``torchvision_before_tensorflow()`` first.
If TensorFlow is already loaded and torchvision is not, importing torchvision would crash the
process, so a clear error is raised instead.
"""

from __future__ import annotations

import importlib.util
import sys

from automl_tl.errors import UserError


def installed(name: str) -> bool:
    """True when ``name`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def torchvision_before_tensorflow() -> None:
    """Import torchvision now if both frameworks are installed and neither order is fixed yet."""
    if "torchvision" in sys.modules:
        return
    tensorflow_loaded = "tensorflow" in sys.modules or "keras" in sys.modules
    if not installed("torchvision"):
        return
    if tensorflow_loaded:
        raise UserError(
            "TensorFlow was imported before torchvision in this process, and importing torchvision now would "
            "crash it. Import automl_tl (or torchvision) before tensorflow/keras, or use one framework per process."
        )
    if installed("tensorflow") or installed("keras"):
        import torchvision  # noqa: F401

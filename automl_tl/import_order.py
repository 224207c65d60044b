"""torchvision must be imported before TensorFlow: the other order segfaults (two copies of LLVM).

Every place that may import either framework calls ``torchvision_before_tensorflow()`` first. Where both
are installed, it puts a hook in the import system that imports torchvision the moment tensorflow or keras
is first imported, rather than importing torchvision at once: a command that never loads TensorFlow (such as
``predict`` with an ONNX model) does not pay torchvision's seconds of start-up. If TensorFlow is already
loaded and torchvision is not, importing torchvision would crash the process, so a clear error is raised instead.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

from automl_tl.errors import UserError


def installed(name: str) -> bool:
    """True when ``name`` can be imported here (without importing it, nor torchvision by the hook below)."""
    hooks = [finder for finder in sys.meta_path if isinstance(finder, _TorchvisionFirst)]
    for hook in hooks:
        hook.asleep += 1
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
    finally:
        for hook in hooks:
            hook.asleep -= 1


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
    if (installed("tensorflow") or installed("keras")) and not any(isinstance(f, _TorchvisionFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _TorchvisionFirst())


class _TorchvisionFirst(importlib.abc.MetaPathFinder):
    """An import hook that finds nothing itself: before tensorflow or keras is first imported, it imports torchvision."""

    _TENSORFLOW = ("tensorflow", "keras")

    def __init__(self) -> None:
        self.asleep = 0  # > 0 while ``installed`` asks whether a framework is there, or torchvision is being imported

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None) -> ModuleSpec | None:
        """Import torchvision when ``fullname`` is tensorflow or keras and torchvision is not loaded; find nothing."""
        if fullname in self._TENSORFLOW and "torchvision" not in sys.modules and not self.asleep:
            self.asleep += 1
            try:
                import torchvision  # noqa: F401
            finally:
                self.asleep -= 1
        return None

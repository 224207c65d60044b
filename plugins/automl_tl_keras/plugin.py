"""Hook implementations of the built-in Keras plugin (entry point ``keras`` in group ``automl_tl``).

Importing this module does not import TensorFlow; the adapter does, lazily, after torchvision.
"""

from __future__ import annotations

from collections.abc import Callable

from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, FrameworkAdapter

from .adapter import KerasAdapter
from .backbones import keras_backbones


@hookimpl
def register_frameworks(register: Callable[[FrameworkAdapter], None]) -> None:
    """Register the Keras adapter under the name ``keras`` (only where TensorFlow is installed)."""
    adapter = KerasAdapter()
    if adapter.is_installed():
        register(adapter)


@hookimpl
def register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Register keras.applications backbones (MobileNetV2, ResNet50, ConvNeXtTiny, ...)."""
    if KerasAdapter().is_installed():
        for spec in keras_backbones():
            register(spec)

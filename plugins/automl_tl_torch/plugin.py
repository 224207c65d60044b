"""Hook implementations of the built-in PyTorch plugin (entry point ``torch`` in group ``automl_tl``)."""

from __future__ import annotations

from collections.abc import Callable

from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, FrameworkAdapter

from .adapter import TorchAdapter
from .backbones import torchvision_backbones
from .scratch import small_cnn_spec


@hookimpl
def register_frameworks(register: Callable[[FrameworkAdapter], None]) -> None:
    """Register the PyTorch adapter under the name ``torch``."""
    register(TorchAdapter())


@hookimpl
def register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Register the torchvision backbones (mobilenet_v2, resnet18, convnext_tiny, ...) and
    ``small_cnn``, a small CNN trained from scratch."""
    for spec in [*torchvision_backbones(), small_cnn_spec()]:
        register(spec)

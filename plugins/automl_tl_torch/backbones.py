"""torchvision backbones declared as data: blocks, feature size, normalisation, weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from automl_tl.types import BackboneSpec

from .weights import torchvision_weights


def torchvision_factory(model_name: str, weights_name: str) -> Callable[[bool], Any]:
    """A factory that builds the torchvision model, with its ImageNet weights when asked."""

    def build(pretrained: bool) -> Any:
        from torchvision.models import get_model

        return get_model(model_name, weights=weights_name if pretrained else None)

    build.__name__ = f"build_{model_name}"
    return build


def numbered(prefix: str, count: int) -> list[str]:
    return [f"{prefix}.{i}" for i in range(count)]


def nested(prefix: str, sizes: dict[int, int]) -> list[str]:
    """Blocks inside stages: ``nested("layer", {1: 2})`` -> ["layer1.0", "layer1.1"]."""
    return [f"{prefix}{stage}.{i}" for stage, count in sizes.items() for i in range(count)]


def _spec(name: str, weights_name: str, blocks: list[str], feature_dim: int, *, crop_pct: float = 0.875,
          interpolation: str = "bilinear", **options: Any) -> BackboneSpec:
    """``crop_pct`` and ``interpolation``: the evaluation transform of those weights (torchvision's
    ``weights.transforms()``: crop size over resize size)."""
    return BackboneSpec(
        name=name,
        framework="torch",
        factory=torchvision_factory(name, weights_name),
        blocks=tuple(blocks),
        feature_dim=feature_dim,
        default_image_size=224,
        weights=torchvision_weights(name, weights_name),
        options=options,
        crop_pct=crop_pct,
        interpolation=interpolation,
    )


RESNET_STEM = "conv1+bn1+relu+maxpool"

EFFICIENTNET_B0_STAGES = [1, 2, 2, 3, 3, 4, 1]
CONVNEXT_TINY_DEPTHS = [3, 3, 9, 3]


def _convnext_blocks(depths: list[int]) -> list[str]:
    blocks = ["features.0"]
    for stage, depth in enumerate(depths):
        index = 1 + 2 * stage
        if stage:
            blocks.append(f"features.{index - 1}")  # the downsampling layer before the stage
        blocks.extend(f"features.{index}.{i}" for i in range(depth))
    return blocks


def torchvision_backbones() -> list[BackboneSpec]:
    """The built-in torchvision backbones, smallest first."""
    efficientnet_blocks = ["features.0"]
    for stage, count in enumerate(EFFICIENTNET_B0_STAGES, start=1):
        efficientnet_blocks.extend(f"features.{stage}.{i}" for i in range(count))
    efficientnet_blocks.append("features.8")
    return [
        _spec("mobilenet_v3_small", "IMAGENET1K_V1", numbered("features", 13), 576),
        _spec("mobilenet_v2", "IMAGENET1K_V1", numbered("features", 19), 1280),
        _spec("mobilenet_v3_large", "IMAGENET1K_V1", numbered("features", 17), 960),
        _spec("efficientnet_b0", "IMAGENET1K_V1", efficientnet_blocks, 1280),
        _spec("resnet18", "IMAGENET1K_V1", [RESNET_STEM, *nested("layer", {1: 2, 2: 2, 3: 2, 4: 2})], 512),
        # V2 (80.9% top-1 against V1's 76.1%), evaluated at resize 232, centre crop 224, bilinear
        _spec("resnet50", "IMAGENET1K_V2", [RESNET_STEM, *nested("layer", {1: 3, 2: 4, 3: 6, 4: 3})], 2048,
              crop_pct=224 / 232),
        _spec("convnext_tiny", "IMAGENET1K_V1", _convnext_blocks(CONVNEXT_TINY_DEPTHS), 768, post_pool=["classifier.0"]),
    ]
